"""What survives which processing: the upsampling lattice of a set of images after JPEG,
resizing, blur, noise and shifts (:mod:`core.data.processing`), beside the same
processing of real photos (which must stay without a period).

``robustness_sweep`` runs :func:`core.spectrum.detect_lattice_in_images` on each
processed copy. A lattice of period ``P`` is expected at ``P * scale`` after resizing by
``scale`` and at ``P`` otherwise; JPEG copies are judged with the 8x8 block lattice left
out (:data:`core.analysis.JPEG_BLOCK`), as ``fpx spectrum`` does for JPEG files.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass

import torch

from core.analysis import JPEG_BLOCK
from core.data.folder import SizeChoice, Skipped, choose_crop_size, iter_image_batches, scan_images
from core.data.processing import PROCESSING, processing
from core.errors import NoImagesError
from core.spectrum import detect_lattice_in_images

DEFAULT_STEPS = tuple(PROCESSING)  # every registered step, "none" first


@dataclass(frozen=True)
class RobustnessRow:
    """The lattice after one processing step.

    Attributes:
        step, label: the step's registry name and table label.
        size: image side after the step (pixels).
        expected: the period the unprocessed lattice predicts here (``None`` when the
            unprocessed images have none).
        period, score_db, false_alarm: what the detector found on the processed images.
        survives: ``period`` within a quarter pixel of ``expected``.
        real_period, real_false_alarm: the same on the processed real photos (``None``
            when no real images were given).
    """

    step: str
    label: str
    size: int
    expected: float | None
    period: float | None
    score_db: float
    false_alarm: float
    survives: bool
    real_period: float | None = None
    real_false_alarm: float | None = None


def load_images(paths: Iterable[str], size: int | None = None,
                notify: Callable[[str, str], None] | None = None
                ) -> tuple[torch.Tensor, SizeChoice]:
    """Centre crops ``(N, 3, S, S)`` in ``[-1, 1]`` of every usable image under ``paths``,
    at ``size`` or the images' own size (:func:`core.data.folder.choose_crop_size`)."""
    skipped = Skipped(notify=notify)
    files = scan_images(paths, skipped)
    choice = choose_crop_size(files, size)
    batches = list(iter_image_batches(files, choice.size, 256, skipped=skipped))
    if not batches:
        raise NoImagesError(f"none of the {len(files)} image files is usable"
                            if files else "no image files found in the given paths")
    return torch.cat(batches), choice


def _detect(x: torch.Tensor, jpeg: bool, seed: int):
    if min(x.shape[-2:]) < 8:
        return None
    return detect_lattice_in_images(x, exclude_period=JPEG_BLOCK if jpeg else None, seed=seed)


def robustness_sweep(images: torch.Tensor, *, real: torch.Tensor | None = None,
                     steps: Sequence[str] = DEFAULT_STEPS, seed: int = 0,
                     progress: Callable[[str], None] | None = None) -> list[RobustnessRow]:
    """Detect the lattice of ``images`` ``(N, 3, S, S)`` after each processing step.

    Args:
        real: real photos ``(M, 3, S', S')`` given the same steps (false alarms).
        steps: names in :data:`core.data.processing.PROCESSING`; ``none`` is always run
            first (it sets the expected period).
        progress: called with each step's name before it runs.
    """
    names = ["none"] + [s for s in steps if s != "none"]
    chosen = [processing(n) for n in names]  # unknown names fail before any work
    rows: list[RobustnessRow] = []
    base = None
    for step in chosen:
        if progress is not None:
            progress(step.name)
        y = step.apply(images, seed)
        d = _detect(y, step.jpeg, seed)
        if step.name == "none":
            base = d.period if d else None
        expected = None if base is None else base * step.scale
        period = d.period if d else None
        survives = (expected is not None and period is not None
                    and abs(float(period) - expected) <= 0.25)
        r = _detect(step.apply(real, seed), step.jpeg, seed) if real is not None else None
        rows.append(RobustnessRow(
            step.name, step.label, int(y.shape[-1]), expected, period,
            round(d.score_db, 2) if d else 0.0, round(d.false_alarm, 4) if d else 1.0,
            survives, r.period if r else None,
            round(r.false_alarm, 4) if r else None))
    return rows


def rows_to_json(rows: Sequence[RobustnessRow]) -> list[dict]:
    return [asdict(r) for r in rows]


def markdown_table(rows: Sequence[RobustnessRow], *, real: bool) -> str:
    """The sweep as a markdown table (``docs/results.md``-ready)."""

    def fmt(p):
        return "none" if p is None else f"{p:g}"

    head = "| processing | size | expected | detected | score (dB) | false alarm |"
    rule = "|---|---:|---:|---:|---:|---:|"
    if real:
        head += " real photos |"
        rule += "---:|"
    lines = [head, rule]
    for r in rows:
        line = (f"| {r.label} | {r.size} | {fmt(r.expected)} | {fmt(r.period)}"
                f"{' ✓' if r.survives else ''} | {r.score_db:.1f} | {r.false_alarm:.3f} |")
        if real:
            line += f" {fmt(r.real_period)} ({r.real_false_alarm:.2f}) |"
        lines.append(line)
    return "\n".join(lines)
