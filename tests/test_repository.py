"""Promises the repository makes about itself (README commands, CI, docs)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _readme_commands():
    head = "\n".join((ROOT / "README.md").read_text().splitlines()[:40])
    return re.findall(r"```bash\n(.+?)\n```", head)


def test_readme_starts_with_the_two_commands():
    commands = _readme_commands()
    assert any("panel serve explorer/app.py" in c for c in commands)
    assert any(c.rstrip().endswith("pytest") for c in commands)
    for c in commands[:2]:
        assert "pip install torch==2.13.0" in c  # the CPU build, before the project


def test_ci_runs_exactly_the_readme_test_command():
    test_command = next(c for c in _readme_commands() if c.rstrip().endswith("pytest"))
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_command.strip() in ci.splitlines()


def test_architecture_map_names_every_module():
    text = (ROOT / "docs" / "architecture.md").read_text()
    modules = [*(ROOT / "core").rglob("*.py"), *(ROOT / "explorer").rglob("*.py"),
               *(ROOT / "benchmarks").glob("*.py")]
    for path in sorted(modules):
        if path.name == "__init__.py":
            continue
        assert path.name in text, f"docs/architecture.md does not mention {path.name}"
