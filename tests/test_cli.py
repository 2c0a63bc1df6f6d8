"""The ``fpx spectrum`` command, run in-process through ``core.cli.main`` (and once for
real through the installed console script), and the options every command shares
(``core.cli.options``).

Folders are built once per module: 12 bundled real 64x64 crops plus a corrupt file and a
too-small image, and 12 crops put through a random transposed-convolution x2 block,
which leaves a period-2 grid (peaks at 0.5 cycles/pixel).
"""

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import core
from core.blocks import get_upsampling
from core.cli import EXIT_INPUT, EXIT_USAGE, main
from core.data import bundled_crops

SIZE = 64
SUMMARY_KEYS = {"images", "size", "residual", "window", "skipped", "radial_profile", "peaks",
                "upsampling_factor", "grid_prominence_db", "power_law"}


def save_pngs(images: torch.Tensor, folder: Path) -> None:
    """Write ``(B, 3, H, W)`` images in ``[-1, 1]`` as 8-bit PNGs ``00.png``, ``01.png``..."""
    folder.mkdir(parents=True, exist_ok=True)
    pixels = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    for i, image in enumerate(pixels.permute(0, 2, 3, 1).numpy()):
        Image.fromarray(image).save(folder / f"{i:02d}.png")


def small_png(path: Path, size: int = 20) -> Path:
    Image.fromarray(np.full((size, size, 3), 100, np.uint8)).save(path)
    return path


@pytest.fixture(scope="module")
def real_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("real")
    save_pngs(bundled_crops(SIZE, 12), folder)
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n but then nothing sensible")
    small_png(folder / "small.png")
    return folder


@pytest.fixture(scope="module")
def upsampled_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("transposed_x2")
    torch.manual_seed(0)
    block = get_upsampling("transposed", 3, 3, 2)
    with torch.no_grad():
        fake = block(bundled_crops(SIZE // 2, 12)).clamp(-1, 1)
    assert fake.shape == (12, 3, SIZE, SIZE)
    save_pngs(fake, folder)
    return folder


def run(capsys, *argv):
    """``main(argv)`` -> ``(status, stdout, stderr lines)``; usage errors exit via argparse."""
    try:
        status = main([str(a) for a in argv])
    except SystemExit as stop:
        status = stop.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err.splitlines()


def strict_json(text: str):
    """Parse exactly one JSON value, refusing NaN and Infinity (not JSON)."""
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def check_summary(summary: dict) -> None:
    assert SUMMARY_KEYS <= set(summary)
    assert summary["size"] == SIZE
    profile = summary["radial_profile"]
    assert len(profile["frequency"]) == len(profile["power_db"]) == SIZE // 2 + 1
    assert profile["frequency"][0] == 0
    assert profile["frequency"][1] == pytest.approx(1 / SIZE, abs=1e-6)
    assert profile["frequency"][-1] == pytest.approx(0.5)
    assert all(isinstance(p, float) for p in profile["power_db"])
    assert isinstance(summary["peaks"], list)
    assert isinstance(summary["power_law"]["exponent"], float)


def check_skips(summary: dict, stderr: list[str], folder: Path) -> None:
    names = {Path(item["path"]).name: item["reason"] for item in summary["skipped"]}
    assert set(names) == {"corrupt.png", "small.png"}
    assert all(Path(item["path"]).parent == folder for item in summary["skipped"])
    assert names["small.png"].startswith("too small")
    assert "20x20" in names["small.png"]
    skip_lines = [line for line in stderr if line.startswith("fpx: skipped ")]
    assert len(skip_lines) == 2
    assert any("corrupt.png" in line for line in skip_lines)
    assert any("small.png" in line and "too small" in line for line in skip_lines)


def assert_one_line_error(stderr: list[str], prefix: str = "fpx") -> str:
    assert len(stderr) == 1, stderr
    assert stderr[0].startswith(f"{prefix}") and "error:" in stderr[0]
    assert "Traceback" not in stderr[0]
    return stderr[0]


# --- JSON mode --------------------------------------------------------------------------


def test_json_on_real_crops(capsys, real_dir):
    status, out, err = run(capsys, "spectrum", real_dir, "--size", SIZE, "--json")
    assert status == 0
    assert out.endswith("\n") and out.count("\n") == 1  # exactly one JSON object, one line
    summary = strict_json(out)
    check_summary(summary)
    assert summary["images"] == 12
    assert summary["residual"] == "none" and summary["window"] is None
    assert summary["upsampling_factor"] is None
    assert summary["grid_prominence_db"] == 0
    check_skips(summary, err, real_dir)
    assert err == [line for line in err if line.startswith("fpx: skipped ")]
    # Natural images: power falls with frequency, roughly as 1/f^2.
    assert 1.0 < summary["power_law"]["exponent"] < 4.0


def test_json_on_transposed_x2_output(capsys, upsampled_dir):
    status, out, err = run(capsys, "spectrum", upsampled_dir, "--size", SIZE, "--json")
    assert status == 0 and err == []
    summary = strict_json(out)
    check_summary(summary)
    assert summary["images"] == 12 and summary["skipped"] == []
    assert summary["upsampling_factor"] == 2
    assert summary["grid_prominence_db"] > 6
    assert summary["peaks"]
    for peak in summary["peaks"]:
        assert {abs(peak["fy"]), abs(peak["fx"])} <= {0.0, 0.5}


def test_files_named_directly_and_options(capsys, real_dir):
    files = sorted(real_dir.glob("0*.png"))[:3]
    status, out, err = run(capsys, "spectrum", *files, "--size", 32, "--residual", "blur",
                           "--window", "hann", "--batch-size", 2, "--device", "cpu", "--json")
    assert status == 0 and err == []
    summary = strict_json(out)
    assert summary["images"] == 3 and summary["size"] == 32
    assert summary["residual"] == "blur" and summary["window"] == "hann"
    assert len(summary["radial_profile"]["frequency"]) == 17


# --- --out ------------------------------------------------------------------------------


def test_out_writes_figures_and_record(capsys, real_dir, tmp_path):
    out_dir = tmp_path / "report" / "nested"
    argv = ["spectrum", str(real_dir), "--size", str(SIZE), "--json", "--out", str(out_dir)]
    status, out, err = run(capsys, *argv)
    assert status == 0
    summary = strict_json(out)
    check_skips(summary, err, real_dir)
    assert sorted(p.name for p in out_dir.iterdir()) == ["profile.png", "spectrum.json",
                                                         "spectrum.png"]
    for name in ("spectrum.png", "profile.png"):
        with Image.open(out_dir / name) as image:
            assert image.format == "PNG"
            image.verify()
        with Image.open(out_dir / name) as image:
            assert image.size[0] > 100 and image.size[1] > 100
    record = strict_json((out_dir / "spectrum.json").read_text())
    assert set(record) == set(summary) | {"made_by"}
    assert {k: v for k, v in record.items() if k != "made_by"} == summary
    assert record["made_by"]["code_version"].startswith(core.__version__)
    # The record names the command that made it, not the test runner's argv.
    assert record["made_by"]["command"] == shlex.join(["fpx", *argv])


def test_table_mode_with_out(capsys, real_dir, tmp_path):
    status, out, err = run(capsys, "spectrum", real_dir, "--size", SIZE, "--out", tmp_path)
    assert status == 0
    assert "upsampling factor" in out and "none detected" in out
    assert "wrote" in out and str(tmp_path / "spectrum.json") in out
    assert (tmp_path / "spectrum.png").is_file()


def test_out_that_is_a_file(capsys, real_dir, tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("keep")
    status, out, err = run(capsys, "spectrum", real_dir, "--size", SIZE, "--out", blocker)
    assert status == EXIT_INPUT and out == ""
    error = [line for line in err if not line.startswith("fpx: skipped")]
    assert len(error) == 1 and error[0].startswith("fpx: error:") and "--out" in error[0]
    assert blocker.read_text() == "keep"


# --- table mode -------------------------------------------------------------------------


def test_table_on_real_crops(capsys, real_dir):
    status, out, err = run(capsys, "spectrum", real_dir, "--size", SIZE)
    assert status == 0
    assert "upsampling factor" in out and "none detected" in out
    assert "images" in out and "12 (skipped 2)" in out
    assert "power-law exponent" in out
    assert len([line for line in err if line.startswith("fpx: skipped")]) == 2
    with pytest.raises(json.JSONDecodeError):
        json.loads(out)


def test_table_on_transposed_x2_output(capsys, upsampled_dir):
    status, out, err = run(capsys, "spectrum", upsampled_dir, "--size", SIZE)
    assert status == 0 and err == []
    line = next(line for line in out.splitlines() if line.startswith("upsampling factor"))
    assert "period 2: consistent with one x2 upsampling stage (score" in line
    assert "fy (c/px)" in out
    assert "+0.5000" in out or "-0.5000" in out


# --- usage errors (exit 2) --------------------------------------------------------------


@pytest.mark.parametrize("argv,fragment", [
    ([], "COMMAND"),
    (["spectrum"], "PATH"),
    (["spectrum", ".", "--size", "0"], "--size"),
    (["spectrum", ".", "--size", "-3"], "--size"),
    (["spectrum", ".", "--size", "4"], "--size"),
    (["spectrum", ".", "--size", "big"], "--size"),
    (["spectrum", ".", "--residual", "foo"], "--residual"),
    (["spectrum", ".", "--window", "square"], "--window"),
    (["spectrum", ".", "--batch-size", "0"], "--batch-size"),
    (["spectrum", ".", "--frobnicate"], "--frobnicate"),
    (["transmogrify"], "transmogrify"),
])
def test_usage_errors_exit_2_with_one_line(capsys, argv, fragment):
    status, out, err = run(capsys, *argv)
    assert status == EXIT_USAGE
    assert out == ""
    line = assert_one_line_error(err)
    assert fragment in line
    assert "--help" in line


def test_version_and_help(capsys):
    status, out, err = run(capsys, "--version")
    assert status == 0 and out.strip() == f"fpx {core.__version__}"
    status, out, err = run(capsys, "spectrum", "--help")
    assert status == 0 and "--size" in out and "--residual" in out


# --- unusable input (exit 1) ------------------------------------------------------------


def error_lines(err: list[str]) -> list[str]:
    return [line for line in err if line.startswith("fpx: error:")]


def test_empty_folder(capsys, tmp_path):
    (tmp_path / "notes.txt").write_text("no images here")
    status, out, err = run(capsys, "spectrum", tmp_path, "--size", SIZE)
    assert status == EXIT_INPUT and out == ""
    assert len(error_lines(err)) == 1 and "no image files" in error_lines(err)[0]
    assert err[:-1] == [f"fpx: skipped {tmp_path}: folder holds no image files"]


def test_missing_path(capsys, tmp_path):
    missing = tmp_path / "nowhere"
    status, out, err = run(capsys, "spectrum", missing, "--json")
    assert status == EXIT_INPUT and out == ""
    assert err == [f"fpx: skipped {missing}: no such file or folder",
                   "fpx: error: no image files found in the given paths"]


def test_all_too_small_hints_at_size(capsys, tmp_path):
    for i in range(3):
        small_png(tmp_path / f"s{i}.png", size=30)
    status, out, err = run(capsys, "spectrum", tmp_path, "--size", SIZE, "--json")
    assert status == EXIT_INPUT and out == ""
    assert len(err) == 4
    assert all(line.startswith("fpx: skipped ") and "too small" in line for line in err[:3])
    assert err[-1].startswith("fpx: error:")
    assert "--size" in err[-1] and "3" in err[-1]


def test_only_corrupt_files(capsys, tmp_path):
    (tmp_path / "a.png").write_bytes(b"garbage")
    (tmp_path / "b.jpg").write_bytes(b"")
    status, out, err = run(capsys, "spectrum", tmp_path, "--size", 16)
    assert status == EXIT_INPUT
    assert len(error_lines(err)) == 1 and "--size" not in error_lines(err)[0]
    assert len([line for line in err if line.startswith("fpx: skipped")]) == 2


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_on_cpu_machine(capsys, real_dir):
    status, out, err = run(capsys, "spectrum", real_dir, "--size", SIZE, "--device", "cuda")
    assert status == EXIT_INPUT and out == ""
    line = assert_one_line_error(err)
    assert line.startswith("fpx: error:") and "cuda" in line


def test_bad_device_name(capsys, real_dir):
    status, out, err = run(capsys, "spectrum", real_dir, "--device", "gpu")
    assert status == EXIT_INPUT and out == ""
    assert assert_one_line_error(err).startswith("fpx: error: bad device 'gpu'")


# --- the installed console script -------------------------------------------------------


def fpx_script() -> str:
    script = Path(sys.executable).with_name("fpx")
    found = str(script) if script.exists() else shutil.which("fpx")
    if found is None:
        pytest.skip("the fpx console script is not installed")
    return found


def test_console_script(real_dir):
    done = subprocess.run([fpx_script(), "spectrum", str(real_dir), "--size", str(SIZE),
                           "--json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    summary = strict_json(done.stdout)
    check_summary(summary)
    assert summary["images"] == 12
    err = done.stderr.splitlines()
    check_skips(summary, err, real_dir)
    assert len(err) == 2


def test_console_script_closed_stdout_is_no_traceback(real_dir):
    # ``fpx spectrum ... --json | head -c 0``: the reader leaves before fpx prints.
    proc = subprocess.Popen([fpx_script(), "spectrum", str(real_dir), "--size", str(SIZE),
                             "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    assert proc.returncode == EXIT_INPUT


# --- shared options and output (core.cli.options) ---------------------------------------


def test_argument_types():
    import argparse

    from core.cli.options import count, crop_size, int_range, positive_int, seed

    assert positive_int("3") == 3 and crop_size("8") == 8 and seed("0") == 0
    assert seed(str(2**32 - 1)) == 2**32 - 1 and count("1000000") == 10**6
    for parse, text, fragment in [(positive_int, "0", "positive integer"),
                                  (positive_int, "x", "positive integer, got 'x'"),
                                  (crop_size, "7", "size in [8, 8192]"),
                                  (crop_size, "8193", "size in [8, 8192]"),
                                  (count, str(10**12), "in [1, 1000000]"),
                                  (int_range(0, 5), "-1", "in [0, 5], got '-1'"),
                                  (seed, "-1", "[0, 2**32)"), (seed, str(2**32), "[0, 2**32)"),
                                  (seed, "9" * 5000, "(5000 characters)"),
                                  (seed, "1.5", "integer seed")]:
        with pytest.raises(argparse.ArgumentTypeError, match=re.escape(fragment)):
            parse(text)


def test_seed_list_is_checked_when_the_command_runs():
    from core.cli.options import seed_list
    from core.errors import InvalidInputError

    assert seed_list("0, 1,2,") == (0, 1, 2)
    with pytest.raises(InvalidInputError, match="--seeds must be comma-separated integers"):
        seed_list("0,a")
    with pytest.raises(InvalidInputError, match="--seeds is empty"):
        seed_list(" , ")
    with pytest.raises(InvalidInputError, match=r"in \[0, 2\*\*32\), got '-1'"):
        seed_list("0,-1")


def test_output_helpers(capsys):
    from core.cli.options import print_json, print_rows, say, skipped

    print_rows({"auc": 0.123456, "pairs": 10, "a longer key": "text"})
    print_json({"b": [1, 2]})
    say("fpx: note")
    skipped("x.png", "too small")
    captured = capsys.readouterr()
    assert captured.out.splitlines() == ["auc           0.1235", "pairs         10",
                                         "a longer key  text", '{"b": [1, 2]}']
    assert captured.err.splitlines() == ["fpx: note", "fpx: skipped x.png: too small"]


def test_every_command_group_is_registered(capsys):
    status, out, err = run(capsys, "--help")
    assert status == 0
    for command in ("spectrum", "train", "bank", "embed", "verify", "identify", "relate",
                    "zoo", "artifacts", "attribute", "structure"):
        assert command in out


def test_artifact_table_explains_its_columns_and_one_seed_shows_no_spread(capsys):
    import argparse

    from core.cli.manifold import _artifact_table, _attribution_table

    args = argparse.Namespace(space="rgb", holdout_real=2, out="arts")
    _artifact_table(args, 10, {"gan": {"samples": 4, "nn_distance": 1.5, "artifact_abs": 0.1,
                                       "unique_neighbors": 3}})
    out = capsys.readouterr().out.splitlines()
    assert "NN dist" in out[1] and "|artifact|" in out[1] and "distinct NN" in out[1]
    legend = out[-1]
    assert all(f"{column}:" in legend for column in ("NN dist", "|artifact|", "distinct NN"))
    row = {"accuracy_mean": 0.5, "accuracy_std": 0.0, "macro_f1_mean": 0.4,
           "fisher_ratio": 1.0}
    _attribution_table({"rgb/artifacts": row}, seeds=1)
    one = capsys.readouterr().out
    assert "±" not in one and "one seed" in one
    _attribution_table({"rgb/artifacts": {**row, "accuracy_std": 0.02}}, seeds=3)
    assert "0.500 ± 0.020" in capsys.readouterr().out


def test_output_paths_are_checked_before_any_work(tmp_path):
    from core.cli.options import OutputPathError, check_output

    (tmp_path / "file").write_text("x")
    check_output(tmp_path / "new" / "deeper", "dir")  # creatable: fine, nothing created
    assert not (tmp_path / "new").exists()
    check_output(tmp_path / "file", "file")  # an existing file may be replaced
    for path, kind, fragment in [
        (tmp_path / "file", "dir", "exists and is not a folder"),
        (tmp_path / "file" / "sub", "dir", "is a file, not a folder"),
        (tmp_path, "file", "is a folder; give a file path"),
        (Path("/proc/fpx-probe/out"), "dir", "cannot write in /proc"),
    ]:
        with pytest.raises(OutputPathError, match=re.escape(fragment)):
            check_output(path, kind)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # no probe left behind
