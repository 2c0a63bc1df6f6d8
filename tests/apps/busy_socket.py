"""A two-tab app for tests/test_explorer_session_ui.py (``panel serve`` it; not a test).

Opening tab "b" renders a status line, a progress bar and a plot, and the render starts
a worker that reports 40 steps at once, then draws the plot's points. Meanwhile the
session's socket is busy: its write lock is held for 1 s, as while a large message
drains to a slow browser, so Panel queues the tab's new models. ``FPX_ROUTE`` says how
the worker reports:

- ``direct``: it sets the parameters on its own thread (Panel then sends each change by
  Bokeh's route, which can overtake Panel's queue) and draws on the session's next tick
  (the dashboard's way before :mod:`explorer.views.session`);
- ``session``: both through :func:`explorer.views.session.in_session`, as the dashboard
  does now.
"""

import os
import threading
import time

import panel as pn
import param
from bokeh.models import ColumnDataSource
from bokeh.plotting import figure
from tornado.ioloop import IOLoop

from explorer.views.session import in_session

ROUTE = os.environ.get("FPX_ROUTE", "session")
STEPS = 40
POINTS = 500


class Work(param.Parameterized):
    status = param.String(default="")
    progress = param.Integer(default=0)


def hold_the_socket(doc, seconds: float = 1.0) -> None:
    """Hold the write lock of every connection of ``doc``'s session for ``seconds``."""
    loop = IOLoop.current()
    for connection in doc.session_context._session._subscribed_connections:
        lock = connection._socket.write_lock
        # taken now when free, else when its holder lets go; let go once, when held
        lock.acquire().add_done_callback(
            lambda _, lock=lock: loop.call_later(seconds, lock.release))


def app() -> pn.Tabs:
    work, doc = Work(), pn.state.curdoc
    source = ColumnDataSource(dict(x=[], y=[]))
    plot = figure(width=200, height=200, css_classes=["fpx-plot"])
    plot.scatter("x", "y", source=source)

    def report(step: int) -> None:
        values = dict(status=f"step {step}", progress=step)
        if ROUTE == "direct":
            work.param.update(**values)
        else:
            in_session(doc, lambda: work.param.update(**values))

    def draw() -> None:
        source.data = dict(x=list(range(POINTS)), y=list(range(POINTS)))

    def start():
        hold_the_socket(doc)

        def run():
            for step in range(1, STEPS + 1):
                report(step)
                time.sleep(0.002)
            if ROUTE == "direct":
                doc.add_next_tick_callback(draw)
            else:
                in_session(doc, draw)

        threading.Thread(target=run, daemon=True).start()
        return pn.pane.HTML("started", css_classes=["fpx-started"])

    tab = pn.Column(
        pn.pane.Markdown(pn.bind(lambda s: s, work.param.status), css_classes=["fpx-status"]),
        pn.indicators.Progress(value=work.param.progress, max=STEPS, width=200),
        pn.pane.Bokeh(plot),
        pn.param.ParamFunction(start, lazy=True))  # runs when the tab is first shown
    return pn.Tabs(("a", pn.pane.Markdown("first tab")), ("b", tab), dynamic=True)


app().servable()
