"""Checkpoints and exported extractors: self-describing, atomic, never blindly unpickled.

* A training checkpoint (``checkpoint.pt``) holds the model, optimiser, scheduler and
  sampler state, the step, the full training config and the code version. It is read
  with ``torch.load(weights_only=True)``, which rebuilds tensors and plain containers
  only, and refused unless it carries fpx's format tag.
* An exported extractor is ``extractor.safetensors`` (weights) plus ``extractor.json``
  (config, what made it): all an ``fpx embed`` needs.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from core import checkpoints
from core.errors import InvalidInputError
from core.extractor.model import Extractor, ExtractorConfig
from core.runtime import atomic_path, atomic_write, code_version

CHECKPOINT_FORMAT = "fpx.extractor_checkpoint/1"
EXPORT_FORMAT = "fpx.extractor/1"


def save_checkpoint(path: str | Path, payload: dict) -> Path:
    """Write ``payload`` (state dicts, numbers, strings) atomically with the format tag."""
    return checkpoints.save_checkpoint(path, payload, format=CHECKPOINT_FORMAT)


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint`; refuse anything else."""
    return checkpoints.load_checkpoint(path, format=CHECKPOINT_FORMAT, what="fpx extractor")


def export_extractor(model: Extractor, folder: str | Path, made_by: dict) -> Path:
    """Write the embedding network (no classification head) for inference."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()
               if not k.startswith("classify.")}
    with atomic_path(folder / "extractor.safetensors") as tmp:
        save_file(weights, str(tmp))
    record = {"format": EXPORT_FORMAT, "config": model.config.to_dict(),
              "code_version": made_by.get("code_version", code_version()),
              "made_by": made_by}
    atomic_write(folder / "extractor.json", json.dumps(record, indent=2))
    return folder


def load_extractor(folder: str | Path, device: torch.device | str = "cpu") -> Extractor:
    """Load an exported extractor (a folder with extractor.json + extractor.safetensors).

    Checked as a whole before the network is built or a weight is read: the record's
    format and config (bounded sizes), then the weights file's header (names, shapes and
    dtypes exactly those of the config's network), then the weights (finite). Every
    refusal is one line naming the file at fault.
    """
    from safetensors import safe_open

    from core.limits import regular_file

    folder = Path(folder)
    if not folder.is_dir():
        what = "no such folder" if not folder.exists() else "not a folder"
        raise InvalidInputError(f"{folder}: {what} (give an exported extractor: a folder "
                                "made by fpx train, holding extractor.json)")
    record_path, weights_path = folder / "extractor.json", folder / "extractor.safetensors"
    if not record_path.exists():
        raise InvalidInputError(f"{folder}: no extractor.json (not an exported extractor)")
    regular_file(record_path, "extractor record")
    try:
        record = json.loads(record_path.read_bytes().decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        why = "nested too deeply" if isinstance(err, RecursionError) else \
            str(err).splitlines()[0]
        raise InvalidInputError(f"{record_path} is corrupt: {why}") from None
    if not isinstance(record, dict) or record.get("format") != EXPORT_FORMAT:
        raise InvalidInputError(f"{record_path} is not an fpx extractor record (format "
                                f"{EXPORT_FORMAT!r} expected)")
    config = record.get("config")
    if not isinstance(config, dict):
        raise InvalidInputError(f"{record_path}: no config object")
    known = {f.name for f in dataclasses.fields(ExtractorConfig)}
    if set(config) - known:
        raise InvalidInputError(f"{record_path}: unknown config field(s) "
                                f"{sorted(set(config) - known)}; valid: {sorted(known)}")
    try:
        config = ExtractorConfig(**config)
    except InvalidInputError as err:
        raise InvalidInputError(f"{record_path}: {err}") from None
    model = Extractor(config)
    expected = {k: v for k, v in model.state_dict().items()}
    regular_file(weights_path, "extractor weights file")
    try:
        with safe_open(str(weights_path), framework="pt") as fh:
            names = set(fh.keys())
            missing, extra = sorted(set(expected) - names), sorted(names - set(expected))
            if missing or extra:
                raise InvalidInputError(
                    f"{weights_path}: weights do not fit {record_path.name}'s config "
                    f"(missing {missing[:3]}{'...' if len(missing) > 3 else ''}, unexpected "
                    f"{extra[:3]}{'...' if len(extra) > 3 else ''})")
            for name, want in expected.items():
                part = fh.get_slice(name)
                shape, dtype = tuple(part.get_shape()), part.get_dtype()
                if shape != tuple(want.shape) or dtype != _SAFETENSORS_DTYPE[want.dtype]:
                    raise InvalidInputError(
                        f"{weights_path}: {name} is {dtype} {list(shape)}, the config wants "
                        f"{_SAFETENSORS_DTYPE[want.dtype]} {list(want.shape)}")
            weights = {name: fh.get_tensor(name) for name in expected}
    except InvalidInputError:
        raise
    except Exception as err:  # safetensors raises its own error types
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InvalidInputError(f"{weights_path} cannot be read ({first[:160]})") from None
    bad = [name for name, w in weights.items()
           if w.is_floating_point() and not bool(torch.isfinite(w).all())]
    if bad:
        raise InvalidInputError(f"{weights_path}: {bad[0]} holds NaN or Inf (damaged "
                                "weights)")
    model.load_state_dict(weights)
    return model.to(device).eval()


_SAFETENSORS_DTYPE = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
                      torch.float64: "F64", torch.int64: "I64", torch.int32: "I32",
                      torch.uint8: "U8", torch.bool: "BOOL"}
