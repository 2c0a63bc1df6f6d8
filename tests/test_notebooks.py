"""The teaching notebooks run headless top to bottom, and their widgets drive the display.

Each notebook defines ``controls`` (name -> widget), ``view`` (the ``ipywidgets.Image``
that shows the lesson's figure) and ``lesson``. After the notebook's own cells (whose
last cell is the reader's check), the test appends one cell that moves every control in
the kernel and asserts that the displayed image changed.
"""

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
# Lessons whose first drawing takes a minute or more on a loaded 2-core CPU: 05 embeds
# 1200 zoo images with the extractor, 08 trains two GANs for 150 steps.
SLOW = {"05_verify_identify_relate", "08_fingerprint_forming"}
RUNS = [pytest.param(p, marks=pytest.mark.slow) if p.stem in SLOW else p for p in NOTEBOOKS]

DRIVE_WIDGETS = '''
assert len(view.value) > 10_000, "the first drawing did not happen"
for name, widget in controls.items():
    if hasattr(widget, "continuous_update"):  # sliders redraw on release, not per pixel
        assert widget.continuous_update is False, name
    before, before_digest, old = view.value, lesson.shown, widget.value
    if hasattr(widget, "options"):
        widget.index = (widget.index + 1) % len(widget.options)
    else:
        widget.value = widget.max if widget.value != widget.max else widget.min
    assert widget.value != old, name
    assert view.value != before, f"moving {name} did not change the displayed figure"
    assert lesson.shown != before_digest, f"moving {name} did not change the data drawn"
    widget.value = old
print("drove", len(controls), "controls")
'''


def test_the_eight_lessons_exist():
    assert [p.name[:2] for p in NOTEBOOKS] == [f"0{i}" for i in range(1, 9)]
    assert SLOW <= {p.stem for p in NOTEBOOKS}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, path.name


@pytest.mark.parametrize("path", RUNS, ids=lambda p: p.stem)
def test_notebook_runs_and_its_widgets_change_the_display(path, tmp_path, monkeypatch):
    # Lesson 8 trains into the runs folder its kernel finds in FPX_RUNS (inherited).
    monkeypatch.setenv("FPX_RUNS", str(tmp_path / "runs"))
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(DRIVE_WIDGETS))
    client = nbclient.NotebookClient(
        nb, timeout=240, kernel_name="python3", shutdown_kernel="immediate",
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()  # raises CellExecutionError, naming the cell, on any failure
    last = nb.cells[-1].outputs
    assert any("drove" in o.get("text", "") for o in last), last


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_hold_glue_not_logic(path):
    """A notebook may define the one-line drawing callback, nothing more."""
    nb = nbformat.read(path, as_version=4)
    defs = [line for cell in nb.cells if cell.cell_type == "code"
            for line in cell.source.splitlines() if line.lstrip().startswith(("def ", "class "))]
    assert defs == ["def draw(**values):"], defs


def test_lesson_controls_come_from_the_parameters():
    """Widgets carry the parameters' bounds (soft bounds first), choices, labels and
    current values; a notebook repeats none of them."""
    import ipywidgets as widgets

    from explorer.lessons import FILTERS, GeneratorsLesson, ReplicaLesson, param_widgets
    from explorer.state import LabState

    replica = ReplicaLesson().controls()
    assert (replica["factor"].min, replica["factor"].max) == ReplicaLesson.param.factor.bounds
    assert list(replica["filter"].options) == list(FILTERS)
    assert replica["factor"].continuous_update is False
    seed = GeneratorsLesson().controls()["seed"]
    assert (seed.min, seed.max) == GeneratorsLesson.param.seed.softbounds
    param_lab = LabState.param
    made = param_widgets(LabState, ["upsampling", "order", "show_predicted"])
    assert dict(made["upsampling"].options) == dict(param_lab.upsampling.names)
    assert isinstance(made["order"], widgets.ToggleButtons)
    assert isinstance(made["show_predicted"], widgets.Checkbox)
    assert made["upsampling"].description == param_lab.upsampling.label
    assert made["upsampling"].value == LabState.upsampling
    with pytest.raises(TypeError, match="message"):
        param_widgets(LabState, ["message"])


def test_the_readme_notebook_command_starts_jupyter_as_written():
    """The README's ``jupyter lab ...`` command, word for word, starts a server here, root
    included (JupyterLab refuses root without ``--allow-root``). ``BROWSER=true`` only
    keeps a test machine from opening a browser."""
    import os
    import re
    import shlex
    import subprocess
    import sys
    import time

    readme = (ROOT / "README.md").read_text()
    command = re.search(r"`(jupyter lab [^`]*notebooks/?)`", readme).group(1)
    argv = shlex.split(command)
    argv[0] = str(Path(sys.executable).with_name("jupyter"))  # the venv's, as activated
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**os.environ, "BROWSER": "true"})
    try:
        deadline, seen = time.time() + 120, []
        while time.time() < deadline:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                break
            seen.append(line)
            if "is running at" in line:
                return
        pytest.fail(f"{command!r} did not start:\n{''.join(seen)}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_lesson5_controlled_pairs_come_from_the_manifest():
    from core.zoo.shipped import read_manifest
    from explorer.lessons_identify import controlled_pairs

    pairs = controlled_pairs()
    entries = read_manifest().entries
    assert ("gan_tconv", "gan_tconv_s1", "seed") in pairs
    for a, b, field in pairs:
        ea, eb = entries[a].entry.to_dict(), entries[b].entry.to_dict()
        assert [f for f in ea if f != "name" and ea[f] != eb[f]] == [field]


@pytest.mark.slow
def test_lesson5_identification_is_the_benchmarks():
    """The lesson's confusion draws the galleries core.bench.metrics.identification
    draws: its diagonal's mean is that function's accuracy (baseline features: seconds)."""
    import numpy as np

    from core.bench import metrics
    from explorer.lessons_identify import EPISODES, PER_MODEL, accuracy, labels, unit_features

    e, lab = unit_features("spectrum"), labels()
    assert np.bincount(lab).tolist() == [PER_MODEL] * 12
    for k in (1, 10):
        expected = np.mean([metrics.identification(e, lab, shots=k, rng=np.random.default_rng(
            [0, k, ep]))["accuracy"] for ep in range(EPISODES)])
        assert accuracy("spectrum", k) == pytest.approx(expected, abs=1e-12)


def test_lesson8_without_runs_says_what_to_do(tmp_path):
    from core.errors import InvalidInputError
    from explorer.lessons_training import TrainingLesson

    lesson = TrainingLesson(root=tmp_path)
    assert lesson.run is None and not [r for r in lesson.param.run.objects if r]
    with pytest.raises(InvalidInputError, match="train one first"):
        lesson.figure()
