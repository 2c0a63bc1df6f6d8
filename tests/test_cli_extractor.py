"""``fpx bank sample | embed | verify | identify | relate`` end to end through
``core.cli.main``, on a few models of the tiny preset's bank and an untrained extractor
of the samples' size (what is checked is the plumbing, not the accuracy), and ``fpx
train``'s parser as ``python -m core.extractor.train`` reaches it."""

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from core.cli import EXIT_INPUT, EXIT_USAGE
from core.extractor import Extractor, ExtractorConfig, export_extractor
from tests.test_cli import run

ROOT = Path(__file__).resolve().parent.parent
MODELS, IMAGES = 3, 6


@pytest.fixture(scope="module")
def extractor(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = Extractor(ExtractorConfig(width=4, embed_dim=16, crop_size=32))
    return export_extractor(model, tmp_path_factory.mktemp("extractor"), {"command": "test"})


def test_bank_sample_then_embed_verify_identify_relate(capsys, tmp_path, extractor):
    out = tmp_path / "bank"
    argv = ["bank", "sample", "--preset", "tiny", "--models", MODELS, "--images", IMAGES,
            "--out", out, "--device", "cpu"]
    status, stdout, err = run(capsys, *argv)
    assert status == 0 and stdout == ""
    assert err[-1] == f"fpx: wrote {MODELS} models x {IMAGES} images to {out}"
    # a bar per stage, counting only the models sampled (the bank holds 8)
    bars = " ".join(err)
    assert "fitting models: 100%" in bars and f"{MODELS}/{MODELS}" in bars
    assert "writing samples: 100%" in bars
    folders = sorted(p for p in out.iterdir() if p.is_dir())
    assert len(folders) == MODELS and all(f.name.startswith(f"m{i:03d}-")
                                          for i, f in enumerate(folders))
    for folder in folders:
        assert sorted(p.name for p in folder.glob("*.png")) == [f"{j:05d}.png"
                                                                for j in range(IMAGES)]
        assert (folder / "spec.json").is_file()
    record = json.loads((out / "bank.json").read_text())
    assert record["preset"] == "tiny" and record["heldout"] == "none"
    assert record["command"] == shlex.join(["fpx", *map(str, argv)])
    assert record["models"] == MODELS and record["images_per_model"] == IMAGES

    common = ["--extractor", extractor, "--device", "cpu"]
    status, stdout, err = run(capsys, "embed", out, "--out", tmp_path / "e.npz", *common,
                              "--json")
    assert status == 0 and err == []
    summary = json.loads(stdout)
    assert summary["images"] == MODELS * IMAGES and summary["models"] == MODELS
    assert summary["dimensions"] == 16 and summary["skipped"] == []

    status, stdout, err = run(capsys, "verify", "--embeddings", tmp_path / "e.npz",
                              "--pairs", 100, "--json")
    assert status == 0
    result = json.loads(stdout)
    assert result["pairs"] == 100 and 0 <= result["auc"] <= 1
    assert result["images"] == MODELS * IMAGES and result["models"] == MODELS

    # One folder as gallery and query: per model, the first --shots images are the
    # gallery and the rest the queries.
    status, stdout, err = run(capsys, "identify", "--gallery", out, "--query", out,
                              "--shots", 2, *common, "--json")
    assert status == 0
    result = json.loads(stdout)
    assert result["gallery_models"] == MODELS and result["shots"] == 2
    assert result["queries"] == result["known_queries"] == MODELS * (IMAGES - 2)
    status, stdout, err = run(capsys, "identify", "--gallery", out, "--query", out, *common)
    assert status == EXIT_INPUT and err == ["fpx: error: identification needs query images"]
    status, stdout, err = run(capsys, "identify", "--gallery", out, "--query", out,
                              "--shots", 3, *common)
    assert status == 0 and stdout.splitlines()[0].startswith("gallery_models  3")
    assert any(line.startswith("accuracy ") for line in stdout.splitlines())

    status, stdout, err = run(capsys, "relate", out, "--out", tmp_path / "figs", *common,
                              "--json")
    assert status == 0
    result = json.loads(stdout)
    assert result["models"] == [f.name for f in folders]
    assert "spearman_embedding_vs_spec_distance" in result  # specs read from spec.json
    assert Path(result["dendrogram"]).is_file()
    status, stdout, err = run(capsys, "relate", out, *common)
    assert status == 0 and "Spearman rho" in stdout and folders[0].name in stdout
    # From saved embeddings: the same similarities (no specs without the folders).
    status, stdout, err = run(capsys, "relate", "--embeddings", tmp_path / "e.npz", "--json")
    assert status == 0
    saved = json.loads(stdout)
    assert saved["models"] == result["models"] and saved["similarity"] == result["similarity"]


def test_extractor_command_errors(capsys, tmp_path, extractor):
    status, out, err = run(capsys, "verify", "--extractor", extractor)
    assert status == EXIT_INPUT and err == ["fpx: error: give image folders or --embeddings "
                                            "FILE.npz"]
    status, out, err = run(capsys, "verify", tmp_path, "--seed", "-1")
    assert status == EXIT_USAGE and "seed must be in [0, 2**32)" in err[0]
    status, out, err = run(capsys, "bank", "sample", "--images", "0", "--out", tmp_path)
    assert status == EXIT_USAGE and "--images" in err[0]
    status, out, err = run(capsys, "train")
    assert status == EXIT_USAGE and "--out" in err[0]


def test_module_entry_points_are_the_fpx_parser(tmp_path):
    # ``torchrun ... -m core.extractor.train ARGS`` is ``fpx train ARGS``.
    done = subprocess.run([sys.executable, "-m", "core.extractor.train", "--preset", "huge",
                           "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == EXIT_USAGE and "Traceback" not in done.stderr
    assert done.stderr.startswith("fpx train: error: argument --preset: invalid choice")
    done = subprocess.run([sys.executable, "-m", "core.cli", "--version"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("fpx ")
