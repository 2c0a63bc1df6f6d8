"""Every hostile case of the casebook, run through ``core.cli.main`` in this process: a
non-zero exit, exactly one ``error:`` line (argparse's usage errors are the ``fpx CMD:
error:`` kind), no traceback, no raw Python warning, and nothing written outside the
case's own output path (nor into the working folder)."""

from __future__ import annotations

import pytest

from tests.hostile import cases_inputs, cases_records  # noqa: F401 - they file the cases
from tests.hostile.casebook import CASES, CPU, ext
from tests.hostile.workspace import files_under, fpx


@pytest.mark.parametrize("build", [b for _, b in CASES], ids=[n for n, _ in CASES])
def test_hostile_input(build, ws, capsys, tmp_path, monkeypatch):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    out = tmp_path / "case" / "out"
    out.parent.mkdir()
    argv = build(ws, out, capsys)
    capsys.readouterr()
    before = files_under(ws.root) | files_under(tmp_path)
    result = fpx(capsys, *argv)
    if result.error is not None:
        raise AssertionError(f"traceback: {type(result.error).__name__}: {result.error}") \
            from result.error
    errors = [line for line in result.stderr if ": error:" in line]
    assert result.status in (1, 2), (result.status, result.stderr)
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith("fpx"), errors
    print(f"\n{errors[0]}")  # -s shows every message, for reading them side by side
    assert not any("Traceback" in line or "Warning:" in line for line in result.stderr), \
        result.stderr
    written = (files_under(ws.root) | files_under(tmp_path)) - before
    strays = [p for p in written if out not in p.parents and p != out]
    assert not strays, strays


@pytest.mark.parametrize("command", ["embed", "verify", "zoo-quality", "artifacts"])
def test_skip_unusable_goes_on_and_names_what_it_left_out(command, ws, capsys, tmp_path):
    """The same mixed inputs with ``--skip-unusable``: exit 0, and one ``fpx: skipped``
    line for the folder left out (no raw warning, no error)."""
    junk = ws.bad / "junk"
    argv = {
        "embed": ["embed", ws.gen, junk, "--out", tmp_path / "e.npz", *ext(ws)],
        "verify": ["verify", ws.gen, junk, "--pairs", 50, *ext(ws)],
        "zoo-quality": ["zoo", "quality", ws.gen / "a", junk, "--real", ws.real],
        "artifacts": ["artifacts", "--real", ws.real, "--generated", ws.gen / "a", junk,
                      "--size", 32, "--out", tmp_path / "arts", "--holdout-real", 2, *CPU],
    }[command]
    result = fpx(capsys, *argv, "--skip-unusable")
    assert result.error is None and result.status == 0, result.stderr
    assert f"fpx: skipped {junk}: no usable image" in "\n".join(result.stderr)
    assert all(line.startswith("fpx: skipped ") for line in result.stderr
               if "fpx" in line), result.stderr
    assert not any("Warning" in line or "error:" in line for line in result.stderr)
