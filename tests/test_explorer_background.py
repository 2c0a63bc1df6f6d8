"""Background work reports through its state's ``dispatch`` (explorer.background): in a
dashboard session no parameter a view draws from changes on a worker thread, so every
change reaches the browser by Panel's route, in order (explorer.views.session)."""

from __future__ import annotations

import threading

import param
import pytest

from core.errors import InvalidInputError
from explorer.attribute import AttributeState
from explorer.background import BackgroundState
from explorer.embeddings import EmbeddingsState
from explorer.image_sets import ImageSet
from explorer.manifold_view_state import ManifoldState
from explorer.views.session import in_session
from tests.test_explorer_embeddings import write_models


class Queue:
    """A dispatch that keeps what it is given until :meth:`drain` runs it here."""

    def __init__(self):
        self.calls = []

    def __call__(self, function):
        self.calls.append(function)

    def drain(self) -> int:
        n = 0
        while self.calls:
            self.calls.pop(0)()
            n += 1
        return n


def watch_threads(state: param.Parameterized) -> set[str]:
    """The names of the threads on which any of ``state``'s parameters change."""
    seen: set[str] = set()
    state.param.watch(lambda *events: seen.add(threading.current_thread().name),
                      [p for p in state.param if p != "name"])
    return seen


class Toy(BackgroundState):
    result = param.String(default="")

    def failed(self) -> dict:
        return {"result": "failed"}


def test_reports_wait_for_the_dispatch_and_land_on_its_thread():
    s, queue = Toy(), Queue()
    s.dispatch = queue
    threads = watch_threads(s)

    def work(gen):
        s.say(gen, progress=0.5, status="half")
        s.say(gen, result="done", progress=1.0)

    s.run(work, "toy")
    s.wait()
    assert (s.busy, s.progress, s.result) == (True, 0.0, "")  # nothing landed yet
    assert queue.drain() == 3  # two reports and the end
    assert (s.busy, s.progress, s.status, s.result) == (False, 1.0, "half", "done")
    assert threads == {threading.current_thread().name}


def test_a_failure_is_one_line_and_leaves_the_failed_values():
    s = Toy()  # the default dispatch: at once

    def work(gen):
        raise InvalidInputError("bad folder\nthe details")

    s.run(work, "toy")
    s.wait()
    assert (s.message, s.result, s.busy) == ("bad folder", "failed", False)


def test_a_superseded_computation_reports_nothing():
    s, queue = Toy(), Queue()
    s.dispatch = queue
    release = threading.Event()

    def slow(gen):
        release.wait(30)
        s.say(gen, result="old")

    s.run(slow, "toy")
    first = s._thread
    s.run(lambda gen: s.say(gen, result="new"), "toy")
    s.wait()
    release.set()
    first.join(30)
    queue.drain()
    assert (s.result, s.busy) == ("new", False)


def test_in_session_runs_at_once_without_a_server_session():
    from bokeh.document import Document

    ran = []
    in_session(None, lambda: ran.append(1))
    in_session(Document(), lambda: ran.append(2))  # a document, but no session
    assert ran == [1, 2]


@pytest.fixture
def roots(tmp_path, monkeypatch):
    monkeypatch.setenv("FPX_DATA_ROOTS", str(tmp_path))
    write_models(tmp_path / "set", images=12)
    return tmp_path


def tab_state(tab: str, roots):
    """A tab's state and what starts a small background computation of it."""
    if tab == "embeddings":
        s = EmbeddingsState(runs=roots / "runs", autostart=False, entries=[], real=False,
                            folder=str(roots / "set"))
        return s, s.start
    if tab == "attribute":
        s = AttributeState(runs=roots / "runs", gallery=ImageSet("test", roots / "set"))
        data = (roots / "set" / "m1" / "003.png").read_bytes()
        return s, lambda: s.set_uploads([("query.png", data)])
    s = ManifoldState(runs=roots / "runs", entries=["gan_nearest"])
    return s, s.compute


@pytest.mark.parametrize("tab", ["embeddings", "attribute", "manifold"])
def test_every_tab_state_changes_its_parameters_only_where_it_dispatches(roots, tab):
    state, start = tab_state(tab, roots)
    queue = Queue()
    state.dispatch = queue
    threads = watch_threads(state)
    start()
    state.wait()
    while queue.drain():  # a report may dispatch more (a watcher's own)
        pass
    assert state.message == ""
    assert not state.busy and state.progress == 1.0
    assert threads == {threading.current_thread().name}
