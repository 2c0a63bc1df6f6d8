"""What a zoo entry's recorded design predicts about its lattice: the upsampling stages of
its generator, the period they give, and which lattice lines :mod:`core.theory` expects.

``design_of(entry)`` reads only the entry (family, upsampling, normalization, activation,
resolution, options), never weights: the prediction the Zoo tab and ``fpx zoo list`` set
beside what :func:`core.spectrum.detect_lattice` finds in the samples.

Each family says how its generator grows an image (:data:`STAGE_RULES`, filed with
:func:`register_stages`); a family without a rule has no prediction.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from core.registry import file_under
from core.specs import BlockSpec, GeneratorSpec
from core.theory import predict_peaks
from core.zoo.base import ups_for
from core.zoo.entries import ZooEntry

# family -> rule(entry, size) -> (up-stages in order, what bypasses them)
STAGE_RULES: dict[str, Callable[[ZooEntry, int], tuple[tuple[BlockSpec, ...], str]]] = {}


def register_stages(family: str):
    """Decorator: file ``rule(entry, size) -> (stages, bypass)`` for ``family``; ``bypass``
    names a path that reaches the output without the stages ("" when none)."""

    def add(rule):
        file_under(STAGE_RULES, family, rule, kind="stage rule")
        return rule

    return add


@dataclass(frozen=True)
class Design:
    """A zoo entry's upsampling design and the lattice it predicts.

    Attributes:
        entry: the entry's name.
        size: output side in pixels.
        stages: the up-stages from the bottleneck to the output (``BlockSpec`` each).
        period: the product of their factors (``None`` without stages): the period of
            the output's lattice.
        lines: ``replica`` when the design predicts replica lines (learned upsampling:
            strong), ``nonlinearity`` when only activations carry the period (fixed
            interpolation filters null the replicas, :func:`core.theory.predict_peaks`),
            ``none``.
        bypass: what reaches the output around the stages (a U-Net's full-resolution
            skip), "" when nothing does.
    """

    entry: str
    size: int
    stages: tuple[BlockSpec, ...]
    period: int | None
    lines: str
    bypass: str = ""

    def describe(self) -> str:
        """``"three x2 transposed stages from 4x4: period 8"``."""
        if not self.stages:
            return "no upsampling stage: no period predicted"
        kinds = sorted({s.upsampling for s in self.stages})
        factors = {s.factor for s in self.stages}
        n = len(self.stages)
        words = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}
        how = f"x{factors.pop()}" if len(factors) == 1 else "mixed-factor"
        text = (f"{words.get(n, str(n))} {how} {'/'.join(kinds)} stage{'s' * (n > 1)} "
                f"from {self.size // self.period}x{self.size // self.period}: "
                f"period {self.period}")
        if self.lines == "nonlinearity":
            text += " (interpolation nulls the replicas; activations carry the period)"
        if self.bypass:
            text += f"; {self.bypass}"
        return text

    def consistent(self, detected: float | None) -> bool:
        """Whether a detected period agrees with the design: equal, or a divisor of it
        (later stages' filters can hide earlier stages' lattice, never invent a longer
        one)."""
        if detected is None or self.period is None or not float(detected).is_integer():
            return False
        return self.period % int(detected) == 0

    def to_json_dict(self) -> dict:
        return {"period": self.period, "stages": len(self.stages), "lines": self.lines,
                "bypass": self.bypass, "description": self.describe()}


def design_of(entry: ZooEntry, size: int | None = None) -> Design:
    """The upsampling design of ``entry`` at ``size`` px (default its resolution)."""
    size = entry.resolution if size is None else size
    rule = STAGE_RULES.get(entry.family)
    stages, bypass = rule(entry, size) if rule else ((), "")
    if not stages:
        return Design(entry.name, size, (), None, "none", bypass)
    period = math.prod(s.factor for s in stages)
    origins = {p.origin for p in predict_peaks(GeneratorSpec(up=stages, down=0))}
    lines = "replica" if "replica" in origins else ("nonlinearity" if origins else "none")
    return Design(entry.name, size, stages, period, lines, bypass)


def _stage(entry: ZooEntry, last: bool = False) -> BlockSpec:
    # The last decoder block goes straight to RGB (then tanh): no norm, no activation.
    return BlockSpec(entry.upsampling, 2, norm="none" if last else entry.normalization,
                     activation="none" if last else entry.activation)


@register_stages("gan")
@register_stages("vae")
def _latent_decoder(entry: ZooEntry, size: int):
    """DCGAN-shaped decoder: 4x4 from the latent, then x2 blocks to ``size``."""
    steps = ups_for(size)
    return tuple(_stage(entry, last=i == steps - 1) for i in range(steps)), ""


@register_stages("flow")
def _flow(entry: ZooEntry, size: int):
    """Glow: each of ``levels`` squeezes is undone by an unsqueeze (depth-to-space x2)."""
    levels = int(entry.option("levels", 3))
    return tuple(BlockSpec("pixelshuffle", 2, norm="none", activation="none")
                 for _ in range(levels)), ""


@register_stages("diffusion")
def _diffusion(entry: ZooEntry, size: int):
    """U-Net: one x2 up-stage per level below the top; the top level's skip carries the
    full-resolution features around every stage."""
    from core.zoo.diffusion import channel_mults

    levels = len(channel_mults(size, entry.option("mults", None)))
    stages = tuple(_stage(entry) for _ in range(levels - 1))
    return stages, "a full-resolution skip path bypasses every up-stage"


@dataclass(frozen=True)
class LatticeCheck:
    """An entry's predicted period beside the one detected in its samples.

    Attributes:
        entry: the entry's name.
        design: its :class:`Design`.
        detected: the period :func:`core.spectrum.detect_lattice` found (``None``: none).
        score_db, false_alarm: the detection's score and false-alarm rate.
        images, size: samples analysed and their side in pixels.
        consistent: :meth:`Design.consistent` of the detected period.
        peaks_factor: the simplest baseline in the same run: the period the isolated-peak
            finder reads off the mean spectrum (``estimate_upsampling_factor``), or ``None``.
    """

    entry: str
    design: Design
    detected: float | None
    score_db: float
    false_alarm: float
    images: int
    size: int
    consistent: bool
    peaks_factor: int | None = None

    def to_json_dict(self) -> dict:
        return {"predicted": self.design.period, "detected": self.detected,
                "consistent": self.consistent, "peaks_factor": self.peaks_factor,
                "score_db": round(self.score_db, 2),
                "false_alarm": round(self.false_alarm, 4), "images": self.images,
                "size": self.size, "design": self.design.describe()}


def check_lattice(entry: ZooEntry, folder, *, notify=None) -> LatticeCheck:
    """Detect the lattice in ``folder`` (an entry's samples, at their own size) and set
    it beside the entry's design at that size, and beside the isolated-peak baseline."""
    from core.analysis import analyse_paths
    from core.spectrum import estimate_upsampling_factor

    report = analyse_paths([folder], notify=notify)
    design = design_of(entry, report.size)
    period = report.grid.period
    return LatticeCheck(entry.name, design, period, report.grid.score_db,
                        report.grid.false_alarm, report.images, report.size,
                        design.consistent(period), estimate_upsampling_factor(report.peaks))
