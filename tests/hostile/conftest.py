"""The hostile-input workspace, built once for the session (see workspace.py)."""

import pytest

from tests.hostile.workspace import Workspace


@pytest.fixture(scope="session")
def ws(tmp_path_factory) -> Workspace:
    return Workspace(tmp_path_factory.mktemp("hostile"))
