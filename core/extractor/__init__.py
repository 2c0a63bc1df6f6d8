"""The fingerprint extractor (Yang et al.): trained on synthetic models only, used to
verify, identify and relate real generators.

``python -m core.extractor.train`` (or ``fpx train``) trains it; ``core.extractor.evaluate``
embeds folders and measures the three tasks.
"""

from pathlib import Path

from core.extractor.checkpoint import export_extractor, load_checkpoint, load_extractor
from core.extractor.model import Extractor, ExtractorConfig, batch_hard_triplet

DEFAULT_EXTRACTOR = Path(__file__).resolve().parent.parent / "assets" / "extractor"

__all__ = ["DEFAULT_EXTRACTOR", "Extractor", "ExtractorConfig", "batch_hard_triplet",
           "export_extractor", "load_checkpoint", "load_extractor"]
