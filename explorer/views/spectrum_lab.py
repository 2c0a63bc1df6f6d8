"""The Spectrum Lab tab: flip a generator's building blocks, watch its fingerprint form.

Every plot here is a ``DynamicMap`` fed by one stream on ``LabState.result``, so a change
of any control runs one computation and all views update together, in place.
"""

from __future__ import annotations

import io

import holoviews as hv
import panel as pn
import param

from explorer.export import lab_png
from explorer.state import LabResult, LabState
from explorer.views.plots import (
    crop_rgb,
    peak_points,
    predicted_points,
    profile_curves,
    spectrum_image,
)

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
                                        disabled=s.upsampling != "transposed")
        s.param.watch(lambda e: setattr(kernel, "disabled", e.new != "transposed"),
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
            w.IntSlider.from_param(s.param.seed, throttled=True, end=99),
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

    def _stream(self, *names: str) -> hv.streams.Params:
        return hv.streams.Params(self.state, list(names))

    def _generated(self, result: LabResult | None, show_predicted: bool):
        if result is None:
            return hv.Overlay([hv.Image([])])
        pts = [(p.fx, p.fy) for p in result.predicted]
        return (spectrum_image(result.generated.spectrum, "Generated: mean log spectrum")
                * peak_points(result.generated.peaks)
                * predicted_points(pts, show_predicted)).opts(legend_position="bottom_left")

    def _real(self, result: LabResult | None):
        if result is None:
            return hv.Image([])
        return (spectrum_image(result.real.spectrum, "Real: mean log spectrum")
                * peak_points(result.real.peaks))

    def _difference(self, result: LabResult | None):
        if result is None:
            return hv.Image([])
        return spectrum_image(result.difference, "Difference: generated - real",
                              diverging=True)

    def _profiles(self, result: LabResult | None):
        if result is None:
            return hv.Overlay([hv.Curve([])])
        return profile_curves({"real": result.real.profile,
                               "generated": result.generated.profile})

    def _crop(self, result: LabResult | None, which: str):
        if result is None:
            return hv.RGB([])
        crop = result.input_crop if which == "input" else result.output_crop
        return crop_rgb(crop, "Input crop" if which == "input" else "Generated output")

    def _pane(self, fn, names, css: str) -> pn.pane.HoloViews:
        # Sized by the plots' own frame sizes (see explorer.views.plots).
        return pn.pane.HoloViews(hv.DynamicMap(fn, streams=[self._stream(*names)]),
                                 css_classes=[css])

    def _make_layout(self) -> pn.Column:
        s = self.state
        alert = pn.pane.Alert(pn.bind(lambda m: m or "", s.param.message), alert_type="warning",
                              visible=pn.bind(bool, s.param.message),
                              css_classes=["fpx-message"])
        numbers = pn.pane.Markdown(pn.bind(readout, s.param.result),
                                   css_classes=["fpx-readout"], width=440)
        top = pn.Row(
            numbers,
            self._pane(lambda result: self._crop(result, "input"), ["result"], "fpx-input"),
            self._pane(lambda result: self._crop(result, "output"), ["result"], "fpx-output"),
        )
        middle = pn.Row(
            self._pane(self._generated, ["result", "show_predicted"], "fpx-generated"),
            self._pane(self._real, ["result"], "fpx-real"),
        )
        bottom = pn.Row(
            self._pane(self._difference, ["result"], "fpx-difference"),
            self._pane(self._profiles, ["result"], "fpx-profiles"),
        )
        return pn.Column(alert, top, middle, bottom, self._compare_card(),
                         self._export_card(), sizing_mode="stretch_width")

    # --- compare and export ----------------------------------------------------------

    def _compare_card(self) -> pn.Card:
        s = self.state
        pin = pn.widgets.Button(label="Pin current as A", color="primary")
        clear = pn.widgets.Button(label="Clear A")
        pin.on_click(lambda e: s.pin())
        clear.on_click(lambda e: s.unpin())

        def compare(result: LabResult | None, pinned: LabResult | None):
            if pinned is None or result is None:
                return pn.pane.Markdown("Pin a configuration as **A**, change a block, and "
                                        "compare it here with the current one (**B**).")
            spectra = [pinned.generated.spectrum, result.generated.spectrum]
            lo = min(float(t.quantile(0.01)) for t in spectra)
            hi = max(float(t.quantile(0.999)) for t in spectra)
            gap = s.compare_distance_db()
            caption = pn.pane.Markdown(
                f"**A**: {_describe(pinned)} &nbsp;&nbsp; **B** (current): {_describe(result)}"
                f" &nbsp;&nbsp; spectral distance A-B: {gap:.2f} dB",
                css_classes=["fpx-compare-caption"])
            return pn.Column(caption, pn.Row(
                pn.pane.HoloViews(spectrum_image(spectra[0], f"A: {_describe(pinned)}",
                                                 clim=(lo, hi))),
                pn.pane.HoloViews(spectrum_image(spectra[1], f"B: {_describe(result)}",
                                                 clim=(lo, hi))),
                pn.pane.HoloViews(profile_curves(
                    {"real": result.real.profile, "A": pinned.generated.profile,
                     "B": result.generated.profile}, title="Radial profiles: A vs B")),
            ))

        body = pn.panel(pn.bind(compare, s.param.result, s.param.pinned))
        return pn.Card(pn.Row(pin, clear), body, title="Compare A / B", collapsed=False,
                       css_classes=["fpx-compare"], sizing_mode="stretch_width")

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


def _describe(result: LabResult) -> str:
    b = result.spec.up[0]
    k = f" k{b.kernel}" if b.upsampling == "transposed" else ""
    return f"{len(result.spec.up)}x {b.upsampling}{k} s{b.factor}, {b.norm}, {b.activation}"
