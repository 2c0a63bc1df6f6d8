"""One ``pn.viewable.Viewer`` per dashboard tab; views render state and hold no maths.

Tabs describe themselves: a view module that is a tab defines ``TAB = Tab(order, title,
view)``, and :func:`tabs` finds them all (so adding a tab touches only its own module).
A tab's view is built with no arguments and exposes ``controls`` for the sidebar.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Tab:
    """A dashboard tab: ``order`` sorts the tabs left to right, ``title`` is its label,
    ``view`` builds its Viewer (one per browser session)."""

    order: int
    title: str
    view: Callable[[], object]


def tabs() -> list[Tab]:
    """Every module of this package that defines ``TAB``, in ``order``."""
    found = []
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        tab = getattr(module, "TAB", None)
        if isinstance(tab, Tab):
            found.append(tab)
    return sorted(found, key=lambda t: (t.order, t.title))
