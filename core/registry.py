"""Plain-dict registries: filing an entry once, and a lookup whose miss lists the names.

Every registry of fpx (blocks, interpolators, zoo families, default zoo entries) is a
``dict`` from name to entry; these two functions are all the machinery there is.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import TypeVar

from core.errors import UnknownNameError

T = TypeVar("T")


def file_under(registry: MutableMapping[str, T], name: str, entry: T, *, kind: str) -> T:
    """Put ``entry`` under ``name``; a second entry of the same name is a bug (ValueError)."""
    if name in registry:
        raise ValueError(f"{kind} '{name}' is registered twice")
    registry[name] = entry
    return entry


def lookup(registry: Mapping[str, T], name, *, kind: str, sort: bool = False) -> T:
    """``registry[name]``; a miss (or an unhashable name) raises :class:`UnknownNameError`
    ``"unknown KIND 'NAME'; valid: a, b, c"`` (names in registry order, or sorted)."""
    try:
        return registry[name]
    except (KeyError, TypeError):
        names = sorted(registry) if sort else list(registry)
        raise UnknownNameError(f"unknown {kind} '{name}'; valid: {', '.join(names)}") from None
