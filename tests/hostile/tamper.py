"""Damaged copies of good artefacts: checkpoints with keys missing or wrong, extractor
folders with bad records or weights, artifact sets with bad arrays."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import torch

from core.checkpoints import save_checkpoint


def checkpoint(src: Path, dst: Path, change) -> Path:
    """Copy the run folder ``src`` to ``dst`` and rewrite its checkpoint with ``change``
    applied to the record (``change(record)`` edits it in place)."""
    shutil.copytree(src, dst)
    path = dst / "checkpoint.pt"
    record = torch.load(path, weights_only=True)
    fmt = record.pop("format")
    change(record)
    record.pop("code_version", None)
    save_checkpoint(path, record, format=fmt, version="test")
    return dst


def drop(*keys):
    def change(record):
        for key in keys:
            record.pop(key, None)
    return change


def put(key, value):
    def change(record):
        record[key] = value
    return change


def first_weight(scale=None, shape=None):
    """Change the first floating weight of ``record['model']``."""
    def change(record):
        name = next(k for k, v in record["model"].items() if v.is_floating_point())
        if shape is not None:
            record["model"][name] = torch.zeros(shape)
        else:
            record["model"][name] = record["model"][name] * scale
    return change


def extractor(src: Path, dst: Path, *, record=None, weights=None, json_text=None,
              weights_bytes=None) -> Path:
    """A copy of the exported extractor ``src`` with its record and/or weights changed."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(src, dst)
    if json_text is not None:
        (dst / "extractor.json").write_text(json_text)
    if record is not None:
        data = json.loads((dst / "extractor.json").read_text())
        record(data)
        (dst / "extractor.json").write_text(json.dumps(data))
    if weights is not None:
        tensors = load_file(str(dst / "extractor.safetensors"))
        weights(tensors)
        save_file(tensors, str(dst / "extractor.safetensors"))
    if weights_bytes is not None:
        (dst / "extractor.safetensors").write_bytes(weights_bytes)
    return dst


def artifact_set(src: Path, dst: Path, change) -> Path:
    """A copy of ``src/artifacts.npz`` with ``change(arrays)`` applied."""
    dst.mkdir(parents=True)
    with np.load(src / "artifacts.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    change(arrays)
    with open(dst / "artifacts.npz", "wb") as fh:
        np.savez(fh, **arrays)
    return dst
