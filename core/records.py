"""Helpers of fpx's frozen, JSON-serialisable records (manifests, reports, embeddings).

Every record is a frozen dataclass with ``to_dict`` / ``from_dict`` (exact round trip)
and validation in ``__post_init__`` that raises one line naming the bad field. These
three functions are what their ``from_dict`` and ``to_dict`` share.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from core.errors import InvalidInputError


def exact_fields(cls, d, what: str) -> dict:
    """``d`` if it is a dict with exactly the fields of the dataclass ``cls`` (a record
    read from a file must be complete); otherwise one line naming what is missing or
    unknown."""
    if not isinstance(d, dict):
        raise InvalidInputError(f"{what} must be a JSON object, got {type(d).__name__}")
    names = [f.name for f in dataclasses.fields(cls)]
    missing, extra = [n for n in names if n not in d], sorted(set(d) - set(names))
    if missing or extra:
        raise InvalidInputError(f"{what} has the fields {', '.join(names)}; missing "
                                f"{missing}, unknown {extra}")
    return d


def check_text(record, *names: str) -> None:
    """Each named field of ``record`` is a non-empty string."""
    for name in names:
        value = getattr(record, name)
        if not isinstance(value, str) or not value:
            raise InvalidInputError(f"{name} must be a non-empty string, got {value!r}")


def plain(record) -> dict:
    """A record as JSON-able data in field order: nested records by their ``to_dict``,
    tuples as lists, mappings value by value."""
    def value_of(value):
        if hasattr(value, "to_dict"):
            return value.to_dict()
        if isinstance(value, tuple):
            return list(value)
        if isinstance(value, Mapping):
            return {k: value_of(v) for k, v in value.items()}
        return value

    return {f.name: value_of(getattr(record, f.name)) for f in dataclasses.fields(record)}
