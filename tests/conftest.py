"""Shared test settings: every test starts from the same random state."""

import random

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _seeded():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(autouse=True, scope="session")
def _data_roots(tmp_path_factory):
    """The dashboard's folder source reads only under its data roots (FPX_DATA_ROOTS); the
    tests' folders lie under pytest's temporary folder, so that is a root too (for an app
    served by a test as well: it inherits the environment)."""
    import os
    from pathlib import Path

    roots = [os.getcwd(), str(Path.home()), str(tmp_path_factory.getbasetemp())]
    os.environ.setdefault("FPX_DATA_ROOTS", os.pathsep.join(roots))


@pytest.fixture(scope="session")
def shipped_dim() -> int:
    """The shipped extractor's embedding size (tests follow the extractor that ships)."""
    from core.extractor import DEFAULT_EXTRACTOR, load_extractor

    return load_extractor(DEFAULT_EXTRACTOR).config.embed_dim
