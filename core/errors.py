"""Exceptions that carry a one-line message meant for the user.

Everything that rejects user input (a bad spec, an unreadable folder, an unknown block
name, a NaN in a tensor handed to a public function) raises a subclass of
:class:`FpxError`. The CLI prints ``fpx: error: <message>`` for these and exits non-zero;
anything else is a bug and keeps its traceback.
"""

import math
import numbers


class FpxError(Exception):
    """Base class: the message is complete, one line, and names the bad value."""


class InvalidInputError(FpxError, ValueError):
    """A value, tensor, file or folder handed to fpx cannot be used."""


class NoImagesError(InvalidInputError):
    """A set of images to analyse turned out empty (nothing found, or nothing usable).

    Callers that can say *why* (files skipped as too small, say) catch this type and
    raise their own, more specific message.
    """


class SpecError(InvalidInputError):
    """A generator spec (or its JSON) is malformed; the message names the field."""


class UnknownNameError(FpxError, KeyError):
    """A registry lookup missed; the message lists the valid names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def check_int(name: str, value, lo: int = 1, hi: int | None = None, *,
              error: type[FpxError] = InvalidInputError) -> int:
    """``value`` as an ``int`` if it is an integer (not a bool) in ``[lo, hi]``; otherwise
    raise ``error`` with one line naming ``name``, the range and the value:
    ``"steps must be a positive integer, got 0"``, ``"seed must be an integer >= 0, got
    -1"``, ``"kernel must be an integer in [1, 11], got 12"``.

    The one integer check of fpx: configs, specs, CLI values and function arguments all
    use it, so every such message reads alike.
    """
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if ok and lo <= value and (hi is None or value <= hi):
        return int(value)
    if hi is not None:
        want = f"an integer in [{lo}, {hi}]"
    else:
        want = "a positive integer" if lo == 1 else f"an integer >= {lo}"
    raise error(f"{name} must be {want}, got {value!r}")


def check_real(name: str, value, lo: float = -math.inf, hi: float = math.inf, *,
               slack: float = 0.0, error: type[FpxError] = InvalidInputError) -> float:
    """``value`` as a ``float`` if it is a finite real number (not a bool) in ``[lo, hi]``
    (widened by ``slack`` for values that overshoot a bound by rounding); otherwise raise
    ``error`` naming ``name``, the range and the value: ``"kernel_mmd must be a finite
    number, got nan"``, ``"nmi must be a finite number in [0, 1], got 1.5"``."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok and math.isfinite(value) and lo - slack <= value <= hi + slack:
        return float(value)
    if lo > -math.inf and hi < math.inf:
        want = f" in [{lo:g}, {hi:g}]"
    elif lo > -math.inf:
        want = f" >= {lo:g}"
    elif hi < math.inf:
        want = f" <= {hi:g}"
    else:
        want = ""
    raise error(f"{name} must be a finite number{want}, got {value!r}")
