"""The Spectrum Lab tab: flip a generator's building blocks, watch its fingerprint form.

A change of any control runs one computation (``LabState.result``); one watcher then
pushes it into every figure's data sources, so all views update together, in place.
"""

from __future__ import annotations

import io

import panel as pn
import param

from core.blocks import upsampler
from explorer.export import lab_png
from explorer.state import LabResult, LabState
from explorer.views.figures import CropFigure, ProfileFigure, SpectrumFigure

IMAGE_TYPES = [".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"]
MAX_UPLOAD = "25MB"


def readout(result: LabResult | None) -> str:
    if result is None:
        return "No result yet."
    gen, real = result.generated, result.real
    factor = gen.upsampling_factor
    total = result.spec.total_factor
    return "\n".join([
        "| | generated | real |",
        "|---|---|---|",
        f"| Estimated upsampling factor | **{factor or 'none'}** "
        f"(design: {total}) | {real.upsampling_factor or 'none'} |",
        f"| Grid prominence | **{gen.grid_prominence_db:.1f} dB** | "
        f"{real.grid_prominence_db:.1f} dB |",
        f"| Spectral distance to real | **{result.distance_db:.2f} dB** | |",
        f"| Power-law exponent | **{float(gen.power_law.exponent):.2f}** | "
        f"{float(real.power_law.exponent):.2f} |",
        f"| Peaks detected / predicted | {len(gen.peaks)} / {len(result.predicted)} | "
        f"{len(real.peaks)} |",
        "",
        f"<small>{gen.images} generated crops vs {result.source}; "
        f"computed in {result.compute_ms:.0f} ms</small>",
    ])


class SpectrumLab(pn.viewable.Viewer):
    """Controls in :attr:`controls` (for a sidebar); plots in the viewer itself."""

    state = param.ClassSelector(class_=LabState)

    def __init__(self, **params):
        params.setdefault("state", LabState())
        super().__init__(**params)
        self.controls = self._make_controls()
        self._layout = self._make_layout()

    # --- controls --------------------------------------------------------------------

    def _make_controls(self) -> pn.Column:
        s, w = self.state, pn.widgets
        # Every widget's visible label is its parameter's label ("Upsampling", ...).
        kernel = w.IntSlider.from_param(s.param.kernel, throttled=True,
                                        disabled=not s.kernel_applies)
        s.param.watch(lambda e: setattr(kernel, "disabled", not s.kernel_applies),
                      "upsampling")
        design = [
            w.Select.from_param(s.param.preset),
            w.Select.from_param(s.param.upsampling),
            w.Select.from_param(s.param.factor),
            kernel,
            w.IntSlider.from_param(s.param.blocks, throttled=True),
            w.Select.from_param(s.param.norm),
            w.Select.from_param(s.param.activation),
            w.Select.from_param(s.param.order),
            w.IntSlider.from_param(s.param.seed, throttled=True),
        ]
        self.upload = w.FileDropper(
            accepted_filetypes=IMAGE_TYPES, max_file_size=MAX_UPLOAD, multiple=False,
            label="Upload image", visible=s.source == "upload", height=90,
        )
        self.upload.param.watch(self._on_upload, "value")
        folder = w.TextInput.from_param(s.param.folder, placeholder="/path/to/images",
                                        visible=s.source == "folder")
        s.param.watch(lambda e: (setattr(self.upload, "visible", e.new == "upload"),
                                 setattr(folder, "visible", e.new == "folder")), "source")
        analysis = [
            w.Select.from_param(s.param.residual),
            w.Select.from_param(s.param.window),
            w.Select.from_param(s.param.crop_size),
            w.Checkbox.from_param(s.param.show_predicted),
        ]
        return pn.Column(
            pn.pane.Markdown("### Generator"), *design,
            pn.pane.Markdown("### Real images"), w.Select.from_param(s.param.source),
            self.upload, folder,
            pn.pane.Markdown("### Analysis"), *analysis,
            sizing_mode="stretch_width",
        )

    def _on_upload(self, event) -> None:
        if event.new:
            name, data = list(event.new.items())[-1]
            self.state.set_upload(data if isinstance(data, bytes) else data.encode(), name)

    # --- plots -----------------------------------------------------------------------

    def _make_layout(self) -> pn.Column:
        s = self.state
        self.fig = {
            "input": CropFigure("Input crop"), "output": CropFigure("Generated output"),
            "generated": SpectrumFigure("Generated: mean log spectrum"),
            "real": SpectrumFigure("Real: mean log spectrum"),
            "difference": SpectrumFigure("Difference: generated - real", diverging=True),
            "profiles": ProfileFigure("Radial profiles", ["real", "generated"]),
        }
        self._drawn_real = None
        self._draw()
        s.param.watch(lambda e: _under_lock(self._draw), ["result", "show_predicted"])
        alert = pn.pane.Alert(pn.bind(lambda m: m or "", s.param.message), alert_type="warning",
                              visible=pn.bind(bool, s.param.message),
                              css_classes=["fpx-message"])
        numbers = pn.pane.Markdown(pn.bind(readout, s.param.result),
                                   css_classes=["fpx-readout"], width=440)

        def pane(key):
            fig = self.fig[key].figure
            fig.css_classes = [f"fpx-{key}"]  # a handle for browser tests and benchmarks
            return pn.pane.Bokeh(fig)

        return pn.Column(
            alert,
            pn.Row(numbers, pane("input"), pane("output")),
            pn.Row(pane("generated"), pane("real")),
            pn.Row(pane("difference"), pane("profiles")),
            self._compare_card(), self._export_card(), sizing_mode="stretch_width",
        )

    def _draw(self) -> None:
        """Push the current result into the figures (only what changed)."""
        r = self.state.result
        if r is None:
            return
        f = self.fig
        predicted = [(p.fx, p.fy) for p in r.predicted] if self.state.show_predicted else []
        f["generated"].update(r.generated.spectrum, r.generated.peaks, predicted)
        f["output"].update(r.output_crop)
        f["difference"].update(r.difference)
        f["profiles"].update({"real": r.real.profile, "generated": r.generated.profile})
        if r.real is not self._drawn_real:  # the real side changes only with its settings
            f["real"].update(r.real.spectrum, r.real.peaks)
            f["input"].update(r.input_crop)
            self._drawn_real = r.real

    # --- compare and export ----------------------------------------------------------

    def _compare_card(self) -> pn.Card:
        s = self.state
        pin = pn.widgets.Button(label="Pin current as A", color="primary")
        clear = pn.widgets.Button(label="Clear A")
        pin.on_click(lambda e: s.pin())
        clear.on_click(lambda e: s.unpin())
        figs = {"A": SpectrumFigure("A: generated spectrum"),
                "B": SpectrumFigure("B (current): generated spectrum"),
                "profiles": ProfileFigure("Radial profiles: A vs B", ["real", "A", "B"])}
        hint = pn.pane.Markdown("Pin a configuration as **A**, change a block, and compare it "
                                "here with the current one (**B**).")
        caption = pn.pane.Markdown("", css_classes=["fpx-compare-caption"])
        plots = pn.Row(*(pn.pane.Bokeh(f.figure) for f in figs.values()), visible=False)

        def draw(*_):
            a, b = s.pinned, s.result
            shown = a is not None and b is not None
            hint.visible, plots.visible, caption.visible = not shown, shown, shown
            if not shown:
                return
            spectra = [a.generated.spectrum, b.generated.spectrum]
            clim = (min(float(t.quantile(0.01)) for t in spectra),
                    max(float(t.quantile(0.999)) for t in spectra))
            figs["A"].update(spectra[0], a.generated.peaks, clim=clim)
            figs["B"].update(spectra[1], b.generated.peaks, clim=clim)
            figs["profiles"].update({"real": b.real.profile, "A": a.generated.profile,
                                     "B": b.generated.profile})
            caption.object = (f"**A**: {_describe(a)} &nbsp;&nbsp; **B** (current): "
                              f"{_describe(b)} &nbsp;&nbsp; spectral distance A-B: "
                              f"{s.compare_distance_db():.2f} dB")

        s.param.watch(lambda e: _under_lock(draw), ["pinned", "result"])
        draw()
        return pn.Card(pn.Row(pin, clear), hint, caption, plots, title="Compare A / B",
                       collapsed=False, css_classes=["fpx-compare"], sizing_mode="stretch_width")

    def _export_card(self) -> pn.Card:
        s = self.state
        png = pn.widgets.FileDownload(
            callback=lambda: io.BytesIO(lab_png(s.result)), filename="fpx-lab.png",
            label="Download figure (PNG)", color="success")
        spec = pn.widgets.FileDownload(
            callback=lambda: io.BytesIO(s.spec_json().encode()), filename="fpx-spec.json",
            label="Download spec (JSON)", color="success")
        load = pn.widgets.FileInput(accept=".json", label="Load spec (JSON)")
        load.param.watch(lambda e: e.new and s.load_spec_json(e.new), "value")
        return pn.Card(pn.Row(png, spec), load, title="Export", collapsed=False,
                       sizing_mode="stretch_width")

    def __panel__(self):
        return self._layout


def _under_lock(draw) -> None:
    """Run ``draw``, which changes raw Bokeh models, where that is allowed.

    In a server session Panel handles some widget events outside the document lock, and
    a data source changed there raises; the session's next tick always holds the lock.
    Outside a server (tests, notebooks, benchmarks) ``draw`` runs at once.
    """
    doc = pn.state.curdoc
    if doc is not None and doc.session_context is not None:
        doc.add_next_tick_callback(draw)
    else:
        draw()


def _describe(result: LabResult) -> str:
    b = result.spec.up[0]
    k = f" k{b.kernel}" if upsampler(b.upsampling).kernels == "any" else ""
    return f"{len(result.spec.up)}x {b.upsampling}{k} s{b.factor}, {b.norm}, {b.activation}"
