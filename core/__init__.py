"""fpx core: generators, spectral analysis and fingerprint tools.

The package never imports ``explorer``, panel, holoviews or bokeh.
"""

__version__ = "0.1.0"
