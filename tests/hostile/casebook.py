"""The book of hostile cases: ``(id, build)`` pairs, where ``build(ws, out, capsys)``
makes whatever the case needs and returns the command line (``out``: a path that does not
exist yet, the only place the command may write). Every case must end in a non-zero exit
with exactly one ``fpx: error:`` line (argparse's own usage errors say ``fpx CMD:
error:``). The cases are filed by cases_inputs.py (output paths, image folders, numbers,
embeddings files, specs) and cases_records.py (extractor folders, checkpoints, artifact
sets, CIFAR-10)."""

from __future__ import annotations

CPU = ("--device", "cpu")
CASES: list[tuple[str, object]] = []


def case(name: str):
    def add(build):
        CASES.append((name, build))
        return build
    return add


def cases(prefix: str, table: dict):
    for name, build in table.items():
        CASES.append((f"{prefix}-{name}", build))


def ext(w):
    return ("--extractor", w.extractor, *CPU)
