"""Training runs as folders and OS processes: plain Python, no panel, no param.

Every run is the CLI command a user would type (``fpx zoo train ...``, ``fpx train
--preset ...``, under ``torchrun`` for the extractor on several GPUs), started as its own
process in its own session (it outlives the dashboard's server) and writing into its own
folder under one runs directory (``runs/`` under the working directory, ``FPX_RUNS``
overrides). The folder holds:

* ``run.json``: name, kind, what is trained, settings, the command (argv and the text a
  user would type), the code version, the process id and its start time;
* ``log.txt`` (the process's stderr: progress bar, messages) and ``summary.json`` (its
  stdout: the trainer's JSON summary when it ends);
* the trainer's own output (``checkpoint.pt``, ``metrics.jsonl``, snapshots, ...) in
  :attr:`RunInfo.train_dir`.

The runs list is always read back from the directory, so a browser reload or a server
restart finds every run; a run whose process is gone before its last step is
*interrupted*, and resumes with the same command plus ``--resume``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from core.errors import InvalidInputError
from core.runtime import atomic_write, code_version

RUNS_ENV = "FPX_RUNS"
RECORD = "run.json"
LOG = "log.txt"
SUMMARY = "summary.json"
_NAME = re.compile(r"^[a-z0-9_]+-\d{8}-\d{6}-[0-9a-f]{4}$")
STATES = ("starting", "running", "finished", "interrupted", "failed")


def runs_dir() -> Path:
    """The runs directory: ``$FPX_RUNS``, else ``runs`` under the working directory."""
    return Path(os.environ.get(RUNS_ENV) or "runs").absolute()


def new_name(what: str) -> str:
    """A generated run name: what is trained, the UTC time and 4 random hex digits."""
    stem = re.sub(r"[^a-z0-9_]", "_", what.lower())[:40] or "run"
    return f"{stem}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{secrets.token_hex(2)}"


def fpx_command() -> list[str]:
    """How this interpreter runs ``fpx``: the console script beside it, or ``-m core.cli``."""
    script = Path(sys.executable).parent / "fpx"
    return [str(script)] if script.exists() else [sys.executable, "-m", "core.cli"]


def _start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (Linux), to tell it from a reused id; ``""``
    where /proc is missing; ``None`` when no such process runs (or it is a zombie)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return None
    except OSError:
        fields = None
    if fields is None:
        try:
            os.kill(pid, 0)
        except (ProcessLookupError, PermissionError):
            return None
        return ""
    return None if fields[0] == "Z" else fields[19]


@dataclass(frozen=True)
class RunInfo:
    """One run as read from its folder.

    Attributes:
        name: the folder's name (generated); folder: its path.
        record: ``run.json``.
        state: ``running``, ``finished``, ``interrupted`` (resumable: a checkpoint
            exists), ``failed`` (ended before its first checkpoint, or refused its input).
        message: the process's last ``fpx:`` message (why it failed), or "".
    """

    name: str
    folder: Path
    record: dict
    state: str
    message: str = ""

    @property
    def kind(self) -> str:
        return self.record["kind"]

    @property
    def steps(self) -> int:
        return int(self.record["settings"]["steps"])

    @property
    def train_dir(self) -> Path:
        return self.folder / self.record["train_dir"]

    @property
    def checkpoint(self) -> Path:
        return self.train_dir / "checkpoint.pt"

    @property
    def resumable(self) -> bool:
        return self.state in ("interrupted", "failed") and self.checkpoint.exists()

    @property
    def command_text(self) -> str:
        return self.record["command_text"]


def _summary(folder: Path) -> dict | None:
    try:
        text = (folder / SUMMARY).read_text()
        return json.loads(text.strip().splitlines()[-1]) if text.strip() else None
    except (OSError, ValueError, IndexError):
        return None


def last_message(folder: Path, limit: int = 20000) -> str:
    """The last line of the run's log that starts with ``fpx:`` (an error, a refusal)."""
    try:
        with open(folder / LOG, "rb") as fh:
            fh.seek(max(0, fh.seek(0, os.SEEK_END) - limit))
            tail = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    lines = [ln.strip() for ln in re.split(r"[\r\n]", tail) if ln.strip().startswith("fpx:")]
    return lines[-1] if lines else ""


def read_run(folder: Path) -> RunInfo | None:
    """The run in ``folder``, or ``None`` if it holds no readable ``run.json``."""
    try:
        record = json.loads((folder / RECORD).read_text())
        record["kind"], record["settings"]["steps"], record["train_dir"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    pid, started = record.get("pid"), record.get("pid_start")
    alive = isinstance(pid, int) and pid > 0 and (now := _start_time(pid)) is not None \
        and (now == "" or now == started)
    if alive and record.get("attempt_ended") != record.get("attempt"):
        return RunInfo(folder.name, folder, record, "running")
    summary = _summary(folder)
    steps = int(record["settings"]["steps"])
    if summary and not summary.get("interrupted") and int(summary.get("step", 0) or 0) >= steps:
        return RunInfo(folder.name, folder, record, "finished")
    message = last_message(folder)
    ckpt = folder / record["train_dir"] / "checkpoint.pt"
    if record.get("returncode") not in (None, 0, 130, -15) and message:
        return RunInfo(folder.name, folder, record, "failed", message)
    return RunInfo(folder.name, folder, record, "interrupted" if ckpt.exists() else "failed",
                   message)


def list_runs(root: Path | None = None) -> list[RunInfo]:
    """Every run under ``root`` (default :func:`runs_dir`), newest first."""
    root = runs_dir() if root is None else root
    if not root.is_dir():
        return []
    found = [read_run(p) for p in root.iterdir() if p.is_dir() and _NAME.match(p.name)]
    return sorted((r for r in found if r is not None), key=lambda r: r.record.get("created", 0),
                  reverse=True)


def write_record(folder: Path, record: dict) -> None:
    atomic_write(folder / RECORD, json.dumps(record, indent=2))


def create_run(root: Path, name: str, *, kind: str, target: str, settings: dict,
               train_dir: str, args: list[str], shown: str,
               files: dict[str, str] | None = None, extra: dict | None = None) -> Path:
    """Make the run folder ``root/name`` with its ``run.json`` (and ``files``: name ->
    text, e.g. a lab design's entry); nothing runs yet."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=False)
    for fname, text in (files or {}).items():
        atomic_write(folder / fname, text)
    write_record(folder, {"name": name, "kind": kind, "target": target, "settings": settings,
                          "train_dir": train_dir, "args": args, "command_text": shown,
                          "code_version": code_version(), "created": time.time(),
                          "attempt": 0, **(extra or {})})
    return folder


def launch(folder: Path, argv: list[str], env: dict[str, str] | None = None
           ) -> subprocess.Popen:
    """Start ``argv`` in ``folder``'s run: its own session (a server restart or Ctrl-C
    leaves it running), stderr appended to ``log.txt``, stdout to ``summary.json``; the
    process id and start time go into ``run.json``."""
    record = json.loads((folder / RECORD).read_text())
    with open(folder / LOG, "ab") as log, open(folder / SUMMARY, "wb") as out:
        log.write(f"\n$ {' '.join(argv)}\n".encode())
        log.flush()
        proc = subprocess.Popen(argv, stdout=out, stderr=log, stdin=subprocess.DEVNULL,
                                cwd=os.getcwd(), env={**os.environ, **(env or {})},
                                start_new_session=True)
    lower_priority(proc.pid)
    record.update(pid=proc.pid, pid_start=_start_time(proc.pid) or "",
                  attempt=int(record.get("attempt", 0)) + 1, started=time.time(),
                  returncode=None, argv=argv)
    write_record(folder, record)
    return proc


BACKGROUND_NICE = 19  # training yields the CPU to the server's interactive work


def lower_priority(pid: int, nice: int = BACKGROUND_NICE) -> None:
    """Give a run's process ``nice`` (its threads made later inherit it) and, on Linux
    with autogroups, its session's group too: a run is started in its own session, and
    the scheduler weighs each session's group against the server's as a whole, so the
    group's nice is what keeps the Spectrum Lab responsive
    (``benchmarks/explorer_latency.py``). Where either is not allowed, nothing changes."""
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, pid, nice)
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/autogroup").write_text(str(nice))


def ended(folder: Path, returncode: int) -> None:
    """Record that the current attempt's process ended with ``returncode``."""
    try:
        record = json.loads((folder / RECORD).read_text())
    except (OSError, ValueError):
        return
    record.update(returncode=returncode, attempt_ended=record.get("attempt"),
                  ended=time.time())
    write_record(folder, record)


def cancel(run: RunInfo) -> None:
    """SIGTERM to the run's process: the harness finishes the step, checkpoints, stops."""
    if run.state != "running":
        raise InvalidInputError(f"{run.name} is {run.state}, not running: nothing to cancel")
    try:
        os.kill(int(run.record["pid"]), signal.SIGTERM)
    except ProcessLookupError:
        pass  # it ended meanwhile


def delete(run: RunInfo, root: Path) -> None:
    """Remove the run's folder (never a running one; never outside ``root``)."""
    if run.state == "running":
        raise InvalidInputError(f"{run.name} is running: cancel it before deleting it")
    folder = run.folder.resolve()
    if folder.parent != root.resolve() or not _NAME.match(folder.name):
        raise InvalidInputError(f"{run.name} is not a run of {root}")
    shutil.rmtree(folder)


def finished_runs(kind: str | None = None, root: Path | None = None,
                  used_only: bool = False) -> list[RunInfo]:
    """Finished runs (of ``kind``: ``zoo``, ``design``, ``extractor``) in the runs
    directory; ``used_only``: those marked "Use this run"."""
    return [r for r in list_runs(root)
            if r.state == "finished" and (kind is None or r.kind == kind)
            and (not used_only or r.record.get("used"))]


def finished_extractors(root: Path | None = None, used_only: bool = False) -> dict[str, Path]:
    """Run name -> exported extractor folder (for ``fpx embed --extractor``) of every
    finished extractor run: what other tabs list where an extractor is chosen."""
    found = {}
    for r in finished_runs("extractor", root, used_only):
        folder = r.train_dir / "extractor"
        if folder.is_dir():
            found[r.name] = folder
    return found


def finished_generators(root: Path | None = None, used_only: bool = True) -> dict[str, Path]:
    """Run name -> trained zoo run folder (``checkpoint.pt``; ``core.zoo.train.
    load_trained`` reads it) of every finished generator run marked used."""
    return {r.name: r.train_dir for r in finished_runs(None, root, used_only)
            if r.kind in ("zoo", "design") and r.checkpoint.exists()}
