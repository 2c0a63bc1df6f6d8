"""Benchmarks of fingerprint methods on real and held-out generators.

``fpx bench transfer`` (:func:`core.bench.transfer.run_transfer`): extractors trained on
synthetic models only, beside the simplest baselines, on the shipped zoo, on held-out
synthetic models and on any folders of model folders, under one protocol:

    sets.py       TestSet; the zoo, held-out synthetic models, folders of model folders
    baselines.py  Method; raw pixels, residual spectrum, the extractor's input spectrum,
                  radial profile + power-law tail, the untrained network, extractors and
                  their hybrid fingerprints; the supervised linear probe
    metrics.py    pairs, AUC, threshold at a FAR, k-shot identification, open set, OSCR
    protocol.py   Protocol (every draw seeded apart from the method), calibration on
                  validation models, evaluate, relationship to design fields
    transfer.py   run_transfer -> TransferReport (text, markdown, JSON), figures
"""

from core.bench.baselines import (
    BASELINES,
    Method,
    baseline_methods,
    extractor_method,
    hybrid_method,
    load_method,
)
from core.bench.protocol import Protocol, Scores, calibrate, evaluate
from core.bench.sets import TestSet, folder_set, synthetic_set, zoo_set
from core.bench.transfer import TransferReport, run_transfer, write_figures

__all__ = ["BASELINES", "Method", "Protocol", "Scores", "TestSet", "TransferReport",
           "baseline_methods", "calibrate", "evaluate", "extractor_method", "folder_set",
           "hybrid_method", "load_method", "run_transfer", "synthetic_set", "write_figures",
           "zoo_set"]
