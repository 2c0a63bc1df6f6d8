"""The fingerprint extractor (Yang et al.): trained on synthetic models only, used to
verify, identify and relate real generators.

``python -m core.extractor.train`` (or ``fpx train``) trains it; ``core.extractor.embeddings``
embeds folders into an :class:`EmbeddingSet`; ``core.extractor.evaluate`` measures the three
tasks on embeddings.
"""

from pathlib import Path

from core.extractor.checkpoint import export_extractor, load_checkpoint, load_extractor
from core.extractor.embeddings import EmbeddingSet, embed_folders
from core.extractor.model import Extractor, ExtractorConfig, batch_hard_triplet

DEFAULT_EXTRACTOR = Path(__file__).resolve().parent.parent / "assets" / "extractor"

__all__ = ["DEFAULT_EXTRACTOR", "EmbeddingSet", "Extractor", "ExtractorConfig",
           "batch_hard_triplet", "embed_folders", "export_extractor", "load_checkpoint",
           "load_extractor"]
