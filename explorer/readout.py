"""What the lab and the zoo tab say in words: each readout number with its one-line help,
and the sentences that explain what a reader would otherwise stop at (a predicted line
that is not seen, a detected period that is not the design's, random weights).

Written once here, shown three ways: a Markdown table in the dashboard (help as a
tooltip on each row's name), a block of lines in the exported PNG, and the notebooks.
No panel; no maths beyond matching predicted lines to detected peaks.
"""

from __future__ import annotations

import html
import textwrap

import numpy as np

from core.blocks import upsampler

# One-line help for every number a readout shows (plain words, units).
HELP = {
    "factor": "The period P (pixels) of the upsampling lattice (power at k/P "
              "cycles/pixel) shared by the images at the same alignment, as the lattice "
              "test finds it; 'none': no period passes its 1% false-alarm level. Design: "
              "the generator's total upsampling factor (scale factor ** up-blocks).",
    "prominence": "How far the lattice's frequencies rise above their surroundings, on "
                  "average, in dB (0 dB: no lattice), and the chance that images with "
                  "nothing locked to the pixel grid score as high (false alarm).",
    "predicted": "The period the entry's recorded design predicts (the product of its "
                 "up-stages' factors; core.zoo.design) and whether the detected one agrees "
                 "(equal, or a divisor: fixed interpolation filters can hide earlier "
                 "stages' lattice).",
    "distance": "Root-mean-square difference between two radial profiles, in dB, over "
                "0-0.5 cycles/pixel (0 dB: the same power at every frequency).",
    "exponent": "Slope a of power ~ 1/f^a over 0.125-0.5 cycles/pixel. Photos: about 2 to "
                "3 (power falls with frequency); near 0 or negative: flat or rising, as "
                "noise or a strong grid. A window lowers it (less edge leakage).",
    "peaks": "Isolated peaks found in the spectrum (circles) / lines core.theory predicts "
             "from the design (crosses).",
    "mmd": "Kernel MMD: squared maximum mean discrepancy between samples and real crops in "
           "fixed image features (0: indistinguishable; the noise figure: uniform noise).",
    "design": "The entry's recorded design: family, upsampling, normalization, "
              "activation, training loss and seed.",
    "training": "Training steps, batch size and wall time of the run that made the entry.",
}

RANDOM_WEIGHTS = ("The lab's generator has random weights (untrained; the seed picks "
                  "them), so its output looks like coloured noise: the spectrum shows the "
                  "fingerprint of the architecture, not of learning.")
WEAK = 0.1  # a fixed filter's gain below this (-20 dB) damps a predicted line out of sight


def unseen_predictions(result) -> list:
    """The predicted lines of a lab result that no detected peak lies on (within one and
    a half bins, wrapping at +-0.5 cycles/pixel)."""
    peaks = result.generated.peaks
    if not len(peaks):
        return list(result.predicted)
    h, w = peaks.shape
    fy, fx = np.asarray(peaks.fy, float), np.asarray(peaks.fx, float)

    def near(a, b, n):
        d = np.abs(a - b) % 1.0
        return np.minimum(d, 1.0 - d) <= 1.5 / n

    return [p for p in result.predicted
            if not np.any(near(fy, p.fy, h) & near(fx, p.fx, w))]


def lab_notes(result) -> list[str]:
    """Plain sentences about a lab result: why predicted lines go unseen, why the detected
    period differs from the design, and that the weights are random."""
    notes = []
    gen, spec = result.generated, result.spec
    up = upsampler(spec.up[0].upsampling)
    unseen = unseen_predictions(result)
    if up.interpolation is not None:
        notes.append(f"{up.label} upsampling interpolates with a fixed filter whose "
                     f"response is zero at the replica frequencies k/{spec.up[0].factor}: "
                     "the copies of the spectrum that upsampling makes are nulled there, "
                     "so no replica peaks are predicted.")
    if unseen:
        weak = [p for p in unseen if p.fixed_gain < WEAK]
        act = [p for p in unseen if p.fixed_gain >= WEAK and p.origin == "nonlinearity"]
        rest = len(unseen) - len(weak) - len(act)
        why = []
        if weak:
            why.append(f"{len(weak)} lie near the {up.label.lower()} filter's nulls (its "
                       "gain there is below -20 dB)")
        if act:
            why.append(f"{len(act)} come from the activation: weak lines whose strength "
                       "depends on the random weights")
        if rest:
            why.append(f"{rest} are damped by the later blocks' random filters below the "
                       "spectrum's background")
        notes.append(f"{len(unseen)} of {len(result.predicted)} predicted lines (crosses) "
                     f"have no detected peak: {'; '.join(why)}.")
    design, found = spec.total_factor, gen.upsampling_factor
    if found is None and design > 1 and result.predicted:
        notes.append(f"No grid stands out, although the design upsamples by {design}: "
                     "its lines are weaker than the spectrum's background.")
    elif found is not None and found != design:
        if design % found == 0:
            notes.append(f"Detected period {found}, design {design}: only the lines of the "
                         f"coarser 1/{found} grid rise clearly above the background; the "
                         f"finer lines at multiples of 1/{design} pass through more of the "
                         "later blocks' random filters and end weaker.")
        else:
            notes.append(f"Detected period {found} is not a divisor of the design's "
                         f"{design}: those peaks come from the images' texture, not from "
                         "the upsampling.")
    notes.append(RANDOM_WEIGHTS)
    return notes


def _factor(report) -> str:
    return str(report.upsampling_factor or "none")


def lab_rows(result) -> list[tuple[str, str, str, str]]:
    """``(name, help key, generated, real)`` of every number the lab shows."""
    gen, real = result.generated, result.real
    return [
        ("Estimated upsampling factor", "factor",
         f"{_factor(gen)} (design: {result.spec.total_factor})", _factor(real)),
        ("Grid prominence", "prominence", f"{gen.grid_prominence_db:.1f} dB",
         f"{real.grid_prominence_db:.1f} dB"),
        ("Spectral distance to real", "distance", f"{result.distance_db:.2f} dB", ""),
        ("Power-law exponent", "exponent", f"{float(gen.power_law.exponent):.2f}",
         f"{float(real.power_law.exponent):.2f}"),
        ("Peaks detected / predicted", "peaks", f"{len(gen.peaks)} / {len(result.predicted)}",
         str(len(real.peaks))),
    ]


def _name(name: str, key: str) -> str:
    """A row name whose tooltip is its help (and a dotted underline saying so)."""
    return (f'<span class="fpx-help" title="{html.escape(HELP[key])}" '
            f'style="text-decoration: underline dotted; cursor: help">{name}</span>')


def lab_markdown(result) -> str:
    """The lab's readout as Markdown: a table (help on hover) and the notes."""
    if result is None:
        return "No result yet."
    lines = ["| | generated | real |", "|---|---|---|"]
    for name, key, gen, real in lab_rows(result):
        lines.append(f"| {_name(name, key)} | **{gen}** | {real} |")
    lines.append("")
    lines += [f"- {n}" for n in lab_notes(result)]
    lines += ["", f"<small>{result.generated.images} generated crops vs {result.source}; "
                  f"computed in {result.compute_ms:.0f} ms</small>"]
    return "\n".join(lines)


def lab_text(result, width: int = 64) -> list[str]:
    """The lab's readout as plain lines (the exported PNG's block): an aligned table,
    then the notes wrapped to ``width`` characters."""
    rows = lab_rows(result)
    first = max(len(r[0]) for r in rows)
    second = max(len(r[2]) for r in rows)
    lines = [f"{'':<{first}}  {'generated':<{second}}  real"]
    lines += [f"{name:<{first}}  {gen:<{second}}  {real}" for name, _, gen, real in rows]
    lines.append(f"real images: {result.source}")
    for note in lab_notes(result):
        lines.append("")
        lines += textwrap.wrap(note, width)
    return lines


def _predicted(entry, report) -> str:
    """``"8 (three x2 transposed stages from 4x4): detected 8 agrees"``."""
    from core.zoo.design import design_of

    design = design_of(entry, report.size)
    if design.period is None:
        return "no prediction (no up-stage)"
    found = report.upsampling_factor
    verdict = ("not detected" if found is None else
               f"detected {found:g} {'agrees' if design.consistent(found) else 'disagrees'}")
    return f"{design.period} ({design.describe().split(': period')[0]}): {verdict}"


def zoo_markdown(result) -> str:
    """The zoo tab's readout as Markdown (help on hover)."""
    if result is None:
        return "No zoo samples to show."
    info = result.info
    e, q = info.entry, info.quality
    rep, ref = result.report, result.ref_report
    rows = [
        ("Design", "design", f"{e.family}: {e.upsampling} upsampling, {e.normalization} "
                             f"norm, {e.activation}, loss {e.loss}, seed {e.seed}"),
        ("Training", "training", f"{info.train_steps} steps, batch {info.settings.batch}, "
                                 f"{info.train_seconds:.0f} s on CPU ({info.data} photos)"),
        ("Spectral distance to real crops (recorded)", "distance",
         f"{q.spectral_distance_db:.2f} dB"),
        ("Kernel MMD to real crops (recorded)", "mmd",
         f"{q.kernel_mmd:.3f} (uniform noise: {q.kernel_mmd_noise:.2f})"),
        ("Estimated upsampling factor", "factor",
         f"**{_factor(rep)}** (reference: {_factor(ref)})"),
        ("Predicted by the design", "predicted", _predicted(e, rep)),
        ("Lattice score / false alarm", "prominence",
         f"{rep.grid_prominence_db:.1f} dB / {rep.grid.false_alarm:.3f}"),
        (f"Spectral distance to {result.reference}", "distance",
         f"**{result.distance_db:.2f} dB**"),
        ("Power-law exponent", "exponent", f"{float(rep.power_law.exponent):.2f} "
                                           f"(reference {float(ref.power_law.exponent):.2f})"),
    ]
    lines = [f"| **{result.entry}** | |", "|---|---|"]
    lines += [f"| {_name(name, key)} | {value} |" for name, key, value in rows]
    lines += ["", f"<small>{rep.images} samples vs {ref.images} ({result.reference}); "
                  f"computed in {result.compute_ms:.0f} ms. Trained weights, unlike the "
                  "lab's random ones.</small>"]
    return "\n".join(lines)
