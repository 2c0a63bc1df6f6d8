"""Checkpoints and exported extractors: self-describing, atomic, never blindly unpickled.

* A training checkpoint (``checkpoint.pt``) holds the model, optimiser, scheduler and
  sampler state, the step, the full training config and the code version. It is read
  with ``torch.load(weights_only=True)``, which rebuilds tensors and plain containers
  only, and refused unless it carries fpx's format tag.
* An exported extractor is ``extractor.safetensors`` (weights) plus ``extractor.json``
  (config, what made it): all an ``fpx embed`` needs.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

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
    """Load an exported extractor (a folder with extractor.json + extractor.safetensors)."""
    folder = Path(folder)
    try:
        record = json.loads((folder / "extractor.json").read_text())
    except FileNotFoundError:
        raise InvalidInputError(f"{folder}: no extractor.json (not an exported extractor)") \
            from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InvalidInputError(f"{folder}/extractor.json is corrupt: {err}") from None
    if not isinstance(record, dict) or record.get("format") != EXPORT_FORMAT:
        raise InvalidInputError(f"{folder}/extractor.json is not an fpx extractor")
    try:
        config = ExtractorConfig(**record["config"])
        weights = load_file(str(folder / "extractor.safetensors"))
    except (TypeError, KeyError) as err:
        raise InvalidInputError(f"{folder}: bad extractor config ({err})") from None
    except Exception as err:  # safetensors raises its own error types
        raise InvalidInputError(f"{folder}/extractor.safetensors cannot be read: {err}") \
            from None
    model = Extractor(config)
    try:
        model.load_state_dict(weights)
    except RuntimeError as err:
        raise InvalidInputError(f"{folder}: weights do not fit the config "
                                f"({str(err).splitlines()[0]})") from None
    return model.to(device).eval()
