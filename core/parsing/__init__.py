"""Model parsing: heads that name a generator's design choices (upsampling, period,
normalization, activation) from a set of its images, fitted on synthetic models only.

    labels.py    the design fields, read from synthetic specs and zoo entries
    features.py  fixed-length features per image: extractor embeddings, the spectrum baseline
    data.py      labelled features of synthetic models (only the models used are fitted)
    heads.py     DesignHeads: per-field linear softmax heads, fit, set prediction, storage
    evaluate.py  per-field accuracy against the majority baseline, confusion, tables
    fit.py       fpx design fit end to end (fit, check on held-out architectures, write)
    bench.py     fpx bench design: heads on the shipped zoo and held-out architectures
"""

from core.parsing.evaluate import DesignScores, FieldScore, score_heads, table
from core.parsing.features import FEATURES, feature_fn, spectrum_grid
from core.parsing.fit import check_extractor, fit_design_heads, load_heads
from core.parsing.heads import DesignHeads, fit_heads
from core.parsing.labels import FIELDS, entry_labels, spec_labels

__all__ = ["DesignScores", "FieldScore", "score_heads", "table", "FEATURES", "feature_fn",
           "spectrum_grid", "check_extractor", "fit_design_heads", "load_heads",
           "DesignHeads", "fit_heads", "FIELDS", "entry_labels", "spec_labels"]
