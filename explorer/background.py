"""Work off the request thread, for the dashboard's state objects (``param`` only, never
panel).

:class:`BackgroundState` holds what a tab that computes in the background shows while it
does (``busy``, ``progress``, ``status``, ``message``). :meth:`~BackgroundState.run` starts
one computation on a worker thread; a newer one supersedes it, and what the older one still
reports is dropped. :meth:`~BackgroundState.say` is how a computation reports, and
:meth:`~BackgroundState.wait` joins it (tests, notebooks).

Every report goes through :attr:`~BackgroundState.dispatch`, which runs it at once by
default. A dashboard session sets it to run reports on the session's own tick
(:func:`explorer.views.session.in_session`), so that no parameter a view draws from ever
changes on a worker thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial

import param

from core.errors import FpxError


def call_now(function: Callable[[], None]) -> None:
    """The default dispatch: run ``function`` here, now."""
    function()


class BackgroundState(param.Parameterized):
    """A state whose computations run on a worker thread, one at a time."""

    busy = param.Boolean(default=False, doc="A computation is running")
    progress = param.Number(default=0.0, bounds=(0.0, 1.0))
    status = param.String(default="")
    message = param.String(default="", doc="The last problem, one line (empty if none)")

    #: what an out-of-memory failure advises (``out of memory: ...``)
    too_much = "choose fewer images"

    def __init__(self, **params):
        super().__init__(**params)
        self.dispatch: Callable[[Callable[[], None]], None] = call_now
        """Runs a report where this state's watchers may run (see the module's text)."""
        self._thread: threading.Thread | None = None
        self._generation = 0

    def run(self, work: Callable[[int], None], name: str) -> None:
        """Run ``work(generation)`` on a worker thread named ``name``. A failure it raises
        becomes :attr:`message` (its first line), with :meth:`failed`'s values."""
        self._generation += 1
        gen = self._generation
        self.busy, self.progress, self.message = True, 0.0, ""

        def target() -> None:
            try:
                work(gen)
            except FpxError as err:
                self.say(gen, message=str(err).splitlines()[0], status="", **self.failed())
            except MemoryError:
                self.say(gen, message=f"out of memory: {self.too_much}", status="",
                         **self.failed())
            except OSError as err:
                self.say(gen, message=f"cannot read or write: {str(err).splitlines()[0]}",
                         status="", **self.failed())
            finally:
                self.say(gen, busy=False)

        self._thread = threading.Thread(target=target, daemon=True, name=name)
        self._thread.start()

    def failed(self) -> dict:
        """Parameter values that a failed computation leaves (none by default)."""
        return {}

    def supersede(self) -> None:
        """Whatever computation is running is no longer shown."""
        self._generation += 1

    def current(self, gen: int) -> bool:
        """Whether computation ``gen`` is still the one shown."""
        return gen == self._generation

    def later(self, gen: int, function: Callable[[], None]) -> None:
        """Dispatch ``function``; it runs only if computation ``gen`` is still current
        when it does."""
        self.dispatch(lambda: self.current(gen) and function())

    def say(self, gen: int, **values) -> None:
        """Report ``values`` (parameter updates) of computation ``gen``."""
        self.later(gen, partial(self.param.update, **values))

    def wait(self, timeout: float | None = None) -> None:
        """Block until the running computation (if any) ends."""
        t = self._thread
        if t is not None:
            t.join(timeout)
