"""fpx explorer: the Panel dashboard (``panel serve explorer/app.py``).

``explorer.state`` holds the state and logic as ``param.Parameterized`` classes and never
imports panel, so the notebooks reuse it; ``explorer.views`` renders it.
"""
