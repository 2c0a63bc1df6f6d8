"""``fpx bench transfer``: extractors beside the baselines on one protocol, per test set
and per processing of the test images.

:func:`run_transfer` embeds each set once per method and processing, fixes each
method's verification threshold on synthetic validation models of the set's size
(:func:`core.bench.protocol.calibrate`, on unprocessed validation images), and measures
everything :mod:`core.bench.protocol` measures; the supervised linear probe on the
residual spectrum runs on the same galleries. The result is a :class:`TransferReport`:
rows of plain numbers, as text, markdown (``docs/results.md``) or JSON, and figures::

    report = run_transfer(methods, sets, validation, Protocol(), processings=("none",))
    print(report.markdown())
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.bench.baselines import Method, spectrum_features
from core.bench.metrics import unit_rows
from core.bench.protocol import Protocol, calibrate, check_set, evaluate, probe
from core.bench.sets import TestSet
from core.errors import InvalidInputError

PROBE = "probe"  # the row name of the supervised reference
KIND_COLORS = {"extractor": "#4c72b0", "baseline": "#8c8c8c",
               "supervised reference": "#dd8452"}  # bars of the transfer figure


@dataclass(frozen=True)
class TransferReport:
    """Everything one run measured.

    Attributes:
        protocol: the protocol's settings.
        sets: each set's summary (name, models, images, size, source).
        methods: ``name -> {label, kind}`` in run order (the probe last).
        rows: one per set x processing x method: ``{set, processing, method, scores}``
            (:meth:`Scores.to_dict`, or the probe's ``{identification}``).
        thresholds: ``"method@size" -> threshold`` fixed on validation models.
        made_by: command and code version.
    """

    protocol: dict
    sets: tuple[dict, ...]
    methods: Mapping[str, dict]
    rows: tuple[dict, ...]
    thresholds: Mapping[str, float]
    made_by: Mapping[str, str]

    def to_dict(self) -> dict:
        return {"protocol": self.protocol, "sets": list(self.sets),
                "methods": dict(self.methods), "thresholds": dict(self.thresholds),
                "rows": list(self.rows), "made_by": dict(self.made_by)}

    def select(self, *, processing: str | None = None, set_name: str | None = None):
        return [r for r in self.rows if (processing is None or r["processing"] == processing)
                and (set_name is None or r["set"] == set_name)]

    # --- tables -------------------------------------------------------------------------

    def main_rows(self) -> list[list[str]]:
        """Header and one line per set x method (unprocessed images)."""
        ks = self.protocol["shots"]
        far = f"{100 * self.protocol['far']:g}"
        head = ["set", "method", "AUC", f"TAR@{far}% FAR (test FAR)",
                *[f"{k}-shot acc" for k in ks], f"{ks[-1]}-shot F1", "open AUROC", "OSCR"]
        lines = [head]
        for r in self.select(processing="none"):
            s, label = r["scores"], self.methods[r["method"]]["label"]
            ident = s["identification"]
            ver, opened = s.get("verification"), s.get("open_set")
            lines.append([
                r["set"], label, _f(ver and ver["auc"]),
                "-" if not ver or "tar" not in ver else
                f"{ver['tar']:.3f} ({ver['far']:.3f})",
                *[_f(ident[str(k)]["accuracy"]) for k in ks],
                _f(ident[str(ks[-1])]["macro_f1"]), _f(opened and opened["auroc"]),
                _f(opened and opened["oscr"])])
        return lines

    def robustness_rows(self) -> list[list[str]]:
        """Header and one line per set x processing x method."""
        k = self.protocol["shots"][-1]
        lines = [["set", "processing", "method", "AUC", "TAR (test FAR)", f"{k}-shot acc",
                  "open AUROC"]]
        for r in self.rows:
            s, label = r["scores"], self.methods[r["method"]]["label"]
            ver, opened = s.get("verification"), s.get("open_set")
            lines.append([r["set"], r["processing"], label, _f(ver and ver["auc"]),
                          "-" if not ver or "tar" not in ver else
                          f"{ver['tar']:.3f} ({ver['far']:.3f})",
                          _f(s["identification"][str(k)]["accuracy"]),
                          _f(opened and opened["auroc"])])
        return lines

    def relationship_rows(self) -> list[list[str]]:
        """Header and one line per set x method x design field: NMI, LOMO accuracy and
        its chance."""
        lines = [["set", "method", "field", "values", "NMI", "LOMO acc", "chance"]]
        for r in self.select(processing="none"):
            for name, v in r["scores"].get("relationship", {}).items():
                lines.append([r["set"], self.methods[r["method"]]["label"], name,
                              str(v["values"]), _f(v["nmi"]), _f(v["lomo_accuracy"]),
                              _f(v["lomo_chance"])])
        return lines

    def text(self) -> str:
        parts = [_aligned(self.main_rows())]
        if len({r["processing"] for r in self.rows}) > 1:
            parts.append(_aligned(self.robustness_rows()))
        if len(self.relationship_rows()) > 1:
            parts.append(_aligned(self.relationship_rows()))
        return "\n\n".join(parts)

    def markdown(self) -> str:
        parts = [_markdown(self.main_rows())]
        if len({r["processing"] for r in self.rows}) > 1:
            parts.append(_markdown(self.robustness_rows()))
        if len(self.relationship_rows()) > 1:
            parts.append(_markdown(self.relationship_rows()))
        return "\n\n".join(parts)


def _f(v) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


def _aligned(lines: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in lines) for i in range(len(lines[0]))]
    return "\n".join("  ".join(c.ljust(w) if i < 3 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(row, widths)))
                     for row in lines)


def _markdown(lines: list[list[str]]) -> str:
    head, *body = lines
    align = ["---" if not any(ch.isdigit() for ch in (body[0][i] if body else "")) else
             "---:" for i in range(len(head))]
    return "\n".join("| " + " | ".join(row) + " |" for row in [head, align, *body])


# --- the run --------------------------------------------------------------------------


def features(method: Method, images: torch.Tensor) -> np.ndarray:
    """Unit feature rows of ``images`` by ``method``, normalised as it says (no labels:
    each image's own mean, or the set's statistics)."""
    f = method.features(images)
    if not bool(torch.isfinite(f).all()):
        raise InvalidInputError(f"{method.label}: non-finite features (damaged weights?)")
    a = f.detach().cpu().numpy().astype(np.float64).reshape(len(f), -1)
    if method.normalise == "image":
        a = a - a.mean(1, keepdims=True)
    elif method.normalise in ("centre", "standardise"):
        a = a - a.mean(0)
        if method.normalise == "standardise":
            std = a.std(0)
            a = a / np.where(std > 0, std, 1.0)
    return unit_rows(a)


def run_transfer(methods: Sequence[Method], sets: Sequence[TestSet],
                 validation: Mapping[int, TestSet] | Callable[[int], TestSet],
                 protocol: Protocol, *, processings: Sequence[str] = ("none",),
                 with_probe: bool = True, made_by: Mapping[str, str] | None = None,
                 progress: Callable[[str], None] | None = None) -> TransferReport:
    """Measure every method on every set under every processing.

    Args:
        methods: extractors and baselines (names unique).
        sets: test sets; each is checked against the protocol before any work.
        validation: image size -> a set of validation models of that size (or a function
            making one): where each method's threshold is fixed.
        processings: names of :data:`core.data.processing.PROCESSING` steps applied to
            the test images (``none`` first gives the main table).
        with_probe: add the supervised linear probe on the residual spectrum.
    """
    from core.data.processing import processing as get_processing
    from core.runtime import code_version

    say = progress or (lambda message: None)
    names = [m.name for m in methods]
    if len(set(names)) != len(names) or PROBE in names:
        raise InvalidInputError(f"method names must be unique and not {PROBE!r}: {names}")
    steps = [get_processing(p) for p in processings]
    for s in sets:
        check_set(s.name, s.labels.numpy(), s.models, protocol)
    thresholds: dict[str, float] = {}

    def threshold(method: Method, size: int) -> float:
        key = f"{method.name}@{size}"
        if key not in thresholds:
            val = validation(size) if callable(validation) else validation[size]
            thresholds[key] = calibrate(features(method, val.images), val.labels.numpy(),
                                        protocol)
        return thresholds[key]

    rows = []
    for s in sets:
        labels = s.labels.numpy()
        for step in steps:
            x = step.apply(s.images, protocol.seed)
            for method in methods:
                say(f"{s.name} / {step.label}: {method.label}")
                e = features(method, x)
                scores = evaluate(e, labels, protocol, threshold=threshold(method, s.size),
                                  models=s.models, designs=s.designs)
                rows.append({"set": s.name, "processing": step.name, "method": method.name,
                             "scores": scores.to_dict()})
            if with_probe:
                say(f"{s.name} / {step.label}: supervised linear probe")
                ident = probe(spectrum_features(x).numpy(), labels, protocol)
                rows.append({"set": s.name, "processing": step.name, "method": PROBE,
                             "scores": {"identification": {str(k): v
                                                           for k, v in ident.items()}}})
    labels_of = {m.name: {"label": m.label, "kind": m.kind} for m in methods}
    if with_probe:
        labels_of[PROBE] = {"label": "linear probe on the residual spectrum (supervised "
                                     "reference)", "kind": "supervised reference"}
    return TransferReport(protocol.to_dict(), tuple(s.summary() for s in sets), labels_of,
                          tuple(rows), thresholds,
                          {"code_version": code_version(), **(made_by or {})})


def write_figures(report: TransferReport, out: str | Path) -> list[Path]:
    """Per set, bars of AUC, the largest-k identification accuracy and open-set AUROC per
    method (``transfer_SET.png``); with processings, AUC per processing and method
    (``robustness_SET.png``)."""
    from core.figures.canvas import new_figure, save_figure

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    k = report.protocol["shots"][-1]
    written = []
    for summary in report.sets:
        name = summary["name"]
        rows = report.select(processing="none", set_name=name)
        labels = [report.methods[r["method"]]["label"] for r in rows]
        panels = [("verification AUC", lambda s: (s.get("verification") or {}).get("auc")),
                  (f"{k}-shot accuracy", lambda s: s["identification"][str(k)]["accuracy"]),
                  ("open-set AUROC", lambda s: (s.get("open_set") or {}).get("auroc"))]
        fig = new_figure((11, 0.45 * len(rows) + 1.6))
        axes = fig.subplots(1, 3, sharey=True)
        for ax, (title, get) in zip(axes, panels):
            values = [get(r["scores"]) for r in rows]
            y = np.arange(len(rows))
            ax.barh(y, [v if v is not None else 0 for v in values],
                    color=[KIND_COLORS[report.methods[r["method"]]["kind"]] for r in rows])
            for yi, v in zip(y, values):
                ax.text(0.01 if v is None else v, yi, " -" if v is None else f" {v:.3f}",
                        va="center", fontsize=8)
            ax.set_title(title, fontsize=10)
            ax.set_xlim(0, 1.15)
            ax.set_yticks(y, labels, fontsize=8)
            ax.invert_yaxis()
        fig.suptitle(f"{name}: {summary['source']}", fontsize=10)
        written.append(save_figure(fig, out / f"transfer_{_slug(name)}.png"))
        steps = list(dict.fromkeys(r["processing"] for r in report.select(set_name=name)))
        if len(steps) > 1:
            fig = new_figure((8, 4))
            ax = fig.subplots()
            for method, info in report.methods.items():
                auc = [next(((r["scores"].get("verification") or {}).get("auc")
                             for r in report.select(processing=p, set_name=name)
                             if r["method"] == method), None) for p in steps]
                if any(a is not None for a in auc):
                    ax.plot(steps, [np.nan if a is None else a for a in auc], "o-",
                            label=info["label"])
            ax.set_ylabel("verification AUC")
            ax.set_title(f"{name}: processing of the test images", fontsize=10)
            ax.tick_params(axis="x", labelrotation=30)
            ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=2)
            written.append(save_figure(fig, out / f"robustness_{_slug(name)}.png"))
    return written


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).strip("_") or "set"
