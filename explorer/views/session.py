"""Where a view changes what the browser shows: its session's own tick, in order.

Only a session's document thread may change the session's Bokeh models. On that thread
Panel sends a change at once or, while the socket is busy, queues it and writes the
queue later. A change made anywhere else, or a raw Bokeh change outside Panel's route,
goes by Bokeh's own route, which waits for the socket and then goes first. When Panel's
queue holds a tab's new models, such a change overtakes their definitions and the
browser fails: "reference ... isn't known" (met when a tab opened on a loaded machine
while its background computation reported).

:func:`in_session` runs a change on the session's next tick, as that document, through
Panel's route (``unlocked``), so it queues behind whatever Panel has queued. All that
one call changes goes to the browser as one message. States report through
:func:`dispatcher` (their ``dispatch``), so their parameters change there too.
"""

from __future__ import annotations

from collections.abc import Callable

import panel as pn
from panel.io.state import set_curdoc


def in_session(doc, function: Callable[[], None]) -> None:
    """Run ``function`` (which may change Panel objects and raw Bokeh models) on the
    next tick of ``doc``'s server session, in order with what Panel has queued for it,
    its changes as one message; at once when there is no session (tests, notebooks,
    benchmarks). A closed session is nobody to tell: the call is dropped."""
    if doc is None or doc.session_context is None:
        function()
        return

    def tick() -> None:
        with set_curdoc(doc), pn.io.unlocked():
            function()

    try:
        doc.add_next_tick_callback(tick)
    except Exception:  # noqa: BLE001 - the session has closed
        pass


def dispatcher(doc) -> Callable[[Callable[[], None]], None]:
    """A state's ``dispatch`` for the session of ``doc``: see :func:`in_session`."""
    return lambda function: in_session(doc, function)
