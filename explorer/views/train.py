"""The Train tab: start a training run from the page and watch a generator's fingerprint
form, checkpoint by checkpoint.

What to train and how sit in :attr:`TrainView.controls` (the sidebar); the run list,
its command, progress, controls, loss curves and the time slider over checkpoints in the
viewer. Every run is a separate process (:mod:`explorer.runs`); a periodic callback of
the session calls :meth:`~explorer.training.TrainState.refresh` (a few small files) and
redraws only what changed. Nothing trains, and nothing heavy runs, on the server.
"""

from __future__ import annotations

import json
import types

import numpy as np
import panel as pn
import param
import torch
from bokeh.models import ColumnDataSource, Legend, LegendItem, Range1d, Span
from bokeh.plotting import figure

from core.errors import FpxError
from core.spectrum import RadialProfile
from core.zoo.design import design_of
from core.zoo.entries import ZooEntry
from core.zoo.snapshots import lattice_frequencies
from explorer.training import TrainState
from explorer.views import Tab
from explorer.views.figures import CropFigure, ProfileFigure, SpectrumFigure
from explorer.views.session import in_session
from explorer.views.spectrum_lab import flow
from explorer.zoo import tile

REFRESH_MS = 1000
SCORES = {"bank_accuracy": "accuracy on the bank (held batch)",
          "heldout_auc": "verification AUC, held-out models"}
SAMPLES_SIZE = 256
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
TEACHING = """
**What you see.** Each checkpoint's generator draws 128 images from the *same* noise; their
mean spectrum (dB) shows a lattice of peaks at *k/2^L* cycles/pixel, *L* being the number
of x2 upsampling stages (three for 32 px: period 8). **Circles**: the lattice the
detector found (`core.spectrum.detect_lattice`); **crosses**: the one the design predicts.

**Why it appears early.** The grid is made by the architecture, not learned: a transposed
convolution's stride-2 taps overlap unevenly from its first step, so the lattice is often
there at step 0 and training mostly *reshapes* it while the radial profile moves towards
the real crops' (the spectral distance falls).

**How the upsampling changes it.** A nearest resize-conv repeats each pixel, which nulls
the replicas: its lattice is weaker and carried by the activations. Train the preset pair
(sidebar: same seed, only the upsampler differs) and scrub both runs to compare.
"""


def _fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    m, s = divmod(int(round(seconds)), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"


class TrainView(pn.viewable.Viewer):
    """Controls in :attr:`controls`; runs, progress and the checkpoint views in the
    viewer."""

    state = param.ClassSelector(class_=TrainState)

    def __init__(self, **params):
        params.setdefault("state", TrainState())
        super().__init__(**params)
        s = self.state
        self._doc = pn.state.curdoc
        w = pn.widgets
        kind = w.Select.from_param(s.param.kind, sizing_mode="stretch_width")
        entry = w.Select.from_param(s.param.entry, sizing_mode="stretch_width")
        family = w.Select.from_param(s.param.family, sizing_mode="stretch_width")
        design = w.Select.from_param(s.param.design_preset, sizing_mode="stretch_width")
        preset = w.Select.from_param(s.param.extractor_preset, sizing_mode="stretch_width")
        for widget, kinds in ((entry, ("zoo",)), (family, ("design",)), (design, ("design",)),
                              (preset, ("extractor",))):
            widget.visible = s.kind in kinds
            s.param.watch(lambda e, widget=widget, kinds=kinds:
                          setattr(widget, "visible", e.new in kinds), "kind")
        texts = [w.TextInput.from_param(s.param[n], sizing_mode="stretch_width",
                                        placeholder="") for n in ("steps", "batch", "seed")]
        self._defaults(texts)
        for n in ("kind", "entry", "family", "design_preset", "extractor_preset",
                  "design_values"):
            s.param.watch(lambda e: self._defaults(texts), n)
        self.start = w.Button(name="Start", button_type="primary",
                              css_classes=["fpx-train-start"], sizing_mode="stretch_width")
        self.start.on_click(lambda e: s.start())
        pair = w.Button(name="Pair: tconv vs nearest, one seed",
                        description="Train the lab's DCGAN-like transposed conv and its "
                                    "nearest resize-conv twin with the same seed, one after "
                                    "the other", css_classes=["fpx-train-pair"],
                        sizing_mode="stretch_width")
        pair.on_click(lambda e: s.start_pair())
        self.controls = pn.Column(
            pn.pane.Markdown("### Train"), kind, entry, family, design, preset,
            w.Select.from_param(s.param.device, sizing_mode="stretch_width"), *texts,
            w.IntInput.from_param(s.param.checkpoints, sizing_mode="stretch_width"),
            self.start, pair, sizing_mode="stretch_width")

        # --- the run being watched ---
        self.preview = w.TextAreaInput(value=s.command_text(), disabled=True, rows=2,
                                       sizing_mode="stretch_width",
                                       css_classes=["fpx-train-command"])
        for n in ("kind", "entry", "family", "design_preset", "extractor_preset", "device",
                  "steps", "batch", "seed", "checkpoints", "design_values"):
            s.param.watch(lambda e: self._preview(), n)
        copy = w.Button(name="Copy command", width=130)
        copy.js_on_click(args={"src": self.preview},
                         code="navigator.clipboard && navigator.clipboard.writeText(src.value)")
        self.status = pn.pane.Markdown("", css_classes=["fpx-train-status"],
                                       sizing_mode="stretch_width")
        self.bar = w.Progress(value=0, max=1, sizing_mode="stretch_width",
                              css_classes=["fpx-train-progress"], bar_color="info")
        self.cancel = w.Button(name="Cancel", button_type="warning",
                               css_classes=["fpx-train-cancel"], width=110)
        self.cancel.on_click(lambda e: s.cancel())
        self.resume = w.Button(name="Resume", button_type="success",
                               css_classes=["fpx-train-resume"], width=110)
        self.resume.on_click(lambda e: s.resume())
        self.use = w.Button(name="Use this run", css_classes=["fpx-train-use"], width=130)
        self.use.on_click(lambda e: s.use())
        self.delete = w.Button(name="Delete run", button_type="danger",
                               css_classes=["fpx-train-delete"], width=130)
        self.delete.on_click(self._delete)
        self._armed = False
        runs = w.Select.from_param(s.param.run, sizing_mode="stretch_width",
                                   css_classes=["fpx-train-runs"])
        alert = pn.pane.Alert(pn.bind(lambda m: m or "", s.param.message),
                              alert_type="warning", visible=pn.bind(bool, s.param.message),
                              sizing_mode="stretch_width", css_classes=["fpx-train-message"])
        self.slider = w.IntSlider(name="Checkpoint", start=0, end=1, value=0,
                                  disabled=True, sizing_mode="stretch_width",
                                  css_classes=["fpx-train-slider"])
        self.slider.param.watch(lambda e: setattr(s, "checkpoint", e.new), "value_throttled")
        self.slider_label = pn.pane.Markdown("", css_classes=["fpx-train-checkpoint"])

        # --- figures ---
        self.losses = figure(title="Losses", frame_width=380, frame_height=220,
                             x_range=Range1d(0, 1), y_range=Range1d(0, 1),
                             x_axis_label="step", tools="pan,wheel_zoom,box_zoom,reset,save",
                             toolbar_location="above")
        self.losses.add_layout(Legend(items=[], orientation="horizontal",
                                      label_text_font_size="8pt"), "below")
        self._loss_lines: dict[str, ColumnDataSource] = {}
        # an extractor's scores, logged every few steps (core.extractor.monitor)
        self.scores = figure(title="Extractor: bank accuracy and held-out AUC",
                             frame_width=380, frame_height=220, x_range=Range1d(0, 1),
                             y_range=Range1d(0, 1.02), x_axis_label="step",
                             tools="pan,wheel_zoom,box_zoom,reset,save",
                             toolbar_location="above", visible=False,
                             css_classes=["fpx-train-scores"])
        self.scores_src = {k: ColumnDataSource(dict(step=[], value=[])) for k in SCORES}
        items = []
        for (key, label), color in zip(SCORES.items(), COLORS[2:]):
            line = self.scores.line("step", "value", source=self.scores_src[key],
                                    color=color, line_width=2)
            self.scores.scatter("step", "value", source=self.scores_src[key], color=color,
                                size=6)
            items.append((label, [line]))
        self.scores.add_layout(Legend(items=items, orientation="horizontal",
                                      label_text_font_size="8pt"), "below")
        self.trend = figure(title="Grid prominence and spectral distance", frame_width=380,
                            frame_height=220, x_range=Range1d(0, 1), y_range=Range1d(0, 1),
                            x_axis_label="step", y_axis_label="dB",
                            tools="pan,wheel_zoom,box_zoom,reset,save",
                            toolbar_location="above")
        self.trend_src = ColumnDataSource(dict(step=[], grid=[], distance=[]))
        g = self.trend.line("step", "grid", source=self.trend_src, color=COLORS[1],
                            line_width=2)
        self.trend.scatter("step", "grid", source=self.trend_src, color=COLORS[1], size=6)
        d = self.trend.line("step", "distance", source=self.trend_src, color=COLORS[0],
                            line_width=2)
        self.trend.scatter("step", "distance", source=self.trend_src, color=COLORS[0],
                           size=6)
        self.trend.add_layout(Legend(items=[("grid prominence", [g]),
                                            ("spectral distance to real", [d])],
                                     orientation="horizontal", label_text_font_size="8pt"),
                              "below")
        self.now = Span(location=0, dimension="height", line_color="grey",
                        line_dash="dashed")
        self.trend.add_layout(self.now)
        self.fig = {"samples": CropFigure("Samples at this checkpoint", size=SAMPLES_SIZE),
                    "spectrum": SpectrumFigure("Mean log spectrum at this checkpoint"),
                    "profiles": ProfileFigure("Radial profiles", ["real", "generated"])}
        for key, f in self.fig.items():
            f.figure.css_classes = [f"fpx-train-{key}"]
        self._drawn = (-1, -1, None)
        s.param.watch(lambda e: in_session(self._doc, self._draw),
                      ["ticks", "snapshot", "run", "runs"])
        self._draw()
        if pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:
            self._callback = pn.state.add_periodic_callback(s.refresh, period=REFRESH_MS)

        self._layout = pn.Column(
            pn.pane.Markdown("Train a zoo generator, the generator you designed in the "
                             "Spectrum Lab, or the fingerprint extractor. Each run is the "
                             "command below, run as its own process into the runs "
                             "directory; it survives a reload of this page."),
            alert, pn.Row(self.preview, copy, sizing_mode="stretch_width"),
            runs, self.status, self.bar,
            pn.Row(self.cancel, self.resume, self.use, self.delete),
            flow(pn.pane.Bokeh(self.losses), pn.pane.Bokeh(self.scores),
                 pn.pane.Bokeh(self.trend)),
            self.slider, self.slider_label,
            flow(pn.pane.Bokeh(self.fig["samples"].figure),
                 pn.pane.Bokeh(self.fig["spectrum"].figure),
                 pn.pane.Bokeh(self.fig["profiles"].figure),
                 pn.pane.Markdown(TEACHING, width=420)),
            sizing_mode="stretch_width")

    def connect(self, views) -> None:
        """This session's other tabs (``explorer.app`` calls it): the Spectrum Lab's state
        becomes the live design offered under "Lab design"."""
        from explorer.state import LabState

        for view in views:
            if isinstance(getattr(view, "state", None), LabState):
                self.state.set_lab(view.state)
                return

    # --- controls --------------------------------------------------------------------

    def _defaults(self, texts) -> None:
        try:
            d = self.state.defaults()
        except FpxError as err:  # a design the zoo cannot train: the message says why
            self.state.message = str(err).splitlines()[0]
            return
        for t, key in zip(texts, ("steps", "batch", "seed")):
            t.placeholder = f"{d[key]} (preset)"

    def _preview(self) -> None:
        self.preview.value = self.state.command_text()

    def _delete(self, event) -> None:
        if not self._armed:  # ask first: the button becomes its own confirmation
            self._armed = True
            self.delete.name = "Really delete? Click again"
            return
        self._armed = False
        self.delete.name = "Delete run"
        self.state.delete()

    # --- drawing ---------------------------------------------------------------------

    def _draw(self) -> None:
        s = self.state
        p = s.progress()
        if not p:
            self.status.object = "No run yet: choose what to train and press **Start**."
            for b in (self.cancel, self.resume, self.use, self.delete):
                b.disabled = True
            return
        rate = f"{p['rate']:.2f} steps/s" if p["rate"] else "- steps/s"
        text = (f"**{p['state']}**: step {p['step']} / {p['steps']} · {rate} · "
                f"ETA {_fmt_time(p['eta'])}" + (" · used" if p["used"] else "")
                + (" · writing its Zoo entry (200 samples)..." if p["using"] else ""))
        text += f"\n\n`{p['command']}`"
        if p["message"]:
            text += f"\n\n**Problem:** `{p['message']}`"
        self.status.object = text
        self.bar.max, self.bar.value = max(1, p["steps"]), min(p["step"], p["steps"])
        self.cancel.disabled = p["state"] != "running"
        self.resume.disabled = p["state"] not in ("interrupted", "failed")
        self.use.disabled = p["state"] != "finished" or p["used"] or p["using"]
        self.delete.disabled = p["state"] == "running"
        key = (s.ticks, s.checkpoint, s.run)
        if key == self._drawn:
            return
        self._drawn = key
        self._draw_losses()
        self._draw_checkpoint()

    def _draw_losses(self) -> None:
        tail = self.state.tail
        series = tail.series() if tail else {"step": []}
        steps = series.pop("step")
        scores = {k: series.pop(k) for k in SCORES if k in series}
        extractor = self.state.progress().get("kind") == "extractor"
        self.scores.visible, self.trend.visible = extractor, not extractor
        for key, src in self.scores_src.items():
            pts = [(st, v) for st, v in zip(steps, scores.get(key, [])) if np.isfinite(v)]
            src.data = dict(step=[p[0] for p in pts], value=[p[1] for p in pts])
        if steps:
            self.scores.x_range.update(start=0, end=max(steps[-1], 1))
        stride = max(1, len(steps) // 2000)  # a long run's curve, thinned for drawing
        lo, hi = np.inf, -np.inf
        for i, (name, values) in enumerate(series.items()):
            if name not in self._loss_lines:
                src = ColumnDataSource(dict(step=[], value=[]))
                line = self.losses.line("step", "value", source=src, line_width=1.5,
                                        color=COLORS[i % len(COLORS)])
                self.losses.legend[0].items.append(LegendItem(label=name, renderers=[line]))
                self._loss_lines[name] = src
            v = np.asarray(values[::stride], dtype=float)
            self._loss_lines[name].data = dict(step=steps[::stride], value=v)
            if np.isfinite(v).any():
                lo, hi = min(lo, np.nanmin(v)), max(hi, np.nanmax(v))
        for name, src in self._loss_lines.items():
            if name not in series:
                src.data = dict(step=[], value=[])
        if steps:
            self.losses.x_range.update(start=0, end=max(steps[-1], 1))
        if np.isfinite(lo):
            pad = 0.05 * max(hi - lo, 1e-3)
            self.losses.y_range.update(start=lo - pad, end=hi + pad)

    def _draw_checkpoint(self) -> None:
        s = self.state
        steps = s.snapshot_steps
        self.slider.disabled = len(steps) < 2
        self.slider.end = max(1, len(steps) - 1)
        self.slider.value = min(s.checkpoint, self.slider.end)
        hist = s.history
        self.trend_src.data = dict(step=[h["step"] for h in hist],
                                   grid=[h["grid_prominence_db"] for h in hist],
                                   distance=[h["spectral_distance_db"] for h in hist])
        if hist:
            last = max(h["step"] for h in hist)
            self.trend.x_range.update(start=0, end=max(last, 1))
            vals = [v for h in hist for v in (h["grid_prominence_db"],
                                              h["spectral_distance_db"])]
            self.trend.y_range.update(start=min(0.0, min(vals)) - 1, end=max(vals) + 1)
        snap = s.snapshot
        if snap is None:
            self.slider_label.object = ("No checkpoint yet." if s.run else "")
            return
        r = snap.record
        period = r["period"]
        self.now.location = snap.step
        self.slider_label.object = (
            f"checkpoint {s.checkpoint + 1} of {len(steps)}: **step {snap.step}** · "
            f"lattice period {period if period else 'none'} · grid prominence "
            f"{r['grid_prominence_db']:.1f} dB · spectral distance "
            f"{r['spectral_distance_db']:.1f} dB")
        samples = torch.from_numpy(snap.samples.astype(np.float32) / 127.5 - 1)
        self.fig["samples"].update(tile(samples))
        spectrum = torch.from_numpy(snap.spectrum)
        self.fig["spectrum"].update(spectrum, _lattice(period, r["size"],
                                                       r["grid_prominence_db"]),
                                    predicted=self._predicted(r["size"]))
        profiles = {"generated": _profile(r["profile"])}
        real = s.real_profile()
        if real:
            profiles["real"] = _profile(real["profile"])
        self.fig["profiles"].update(profiles)

    def _predicted(self, size: int) -> list[tuple[float, float]]:
        """The lattice the run's design predicts (``design_of`` its recorded entry)."""
        run = self.state.get(self.state.run)
        if run.kind == "extractor":
            return []
        try:
            record = json.loads((run.train_dir / "entry.json").read_text())
            period = design_of(ZooEntry.from_dict(record["entry"]), size).period
        except (OSError, ValueError, KeyError, TypeError, FpxError):
            return []
        if not period:
            return []
        fx, fy = lattice_frequencies(period)
        return list(zip(fx.tolist(), fy.tolist()))

    def __panel__(self):
        return self._layout


def _lattice(period, size: int, prominence: float):
    """The detected lattice drawn as peaks (circles), or none."""
    fx, fy = lattice_frequencies(period)
    return types.SimpleNamespace(fx=fx, fy=fy, prominence_db=np.full(fx.shape, prominence))


def _profile(d: dict) -> RadialProfile:
    return RadialProfile(torch.tensor(d["frequency"]), torch.tensor(d["power_db"]))


TAB = Tab(order=30, title="Train", view=TrainView)
