"""The Spectrum Lab tab: flip a generator's building blocks, watch its fingerprint form.

A change of any control runs one computation (``LabState.result``); one watcher then
pushes it into every figure's data sources, so all views update together, in place.
"""

from __future__ import annotations

import io

import panel as pn
import param

from core.blocks import upsampler
from core.figures.axes import shared_color_limits
from explorer.export import lab_png
from explorer.readout import lab_markdown
from explorer.state import LabResult, LabState
from explorer.views import Tab
from explorer.views.figures import TABLE_CSS, CropFigure, ProfileFigure, SpectrumFigure
from explorer.views.session import dispatcher, in_session

IMAGE_TYPES = [".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"]
MAX_UPLOAD = "25MB"
# The drop box refuses a larger spec in the browser, before a byte is sent (a spec is at
# most core.specs.MAX_SPEC_BYTES = 64 KiB; FilePond's KB is 1000 bytes). A FileInput sent
# the whole file as one websocket message, and past Bokeh's 20 MB message limit the
# server closed the page's connection.
MAX_SPEC = "64KB"
SHARED = "dB (one scale for generated and real)"


class SpectrumLab(pn.viewable.Viewer):
    """Controls in :attr:`controls` (for a sidebar); plots in the viewer itself."""

    state = param.ClassSelector(class_=LabState)

    def __init__(self, **params):
        params.setdefault("state", LabState())
        super().__init__(**params)
        self._doc = pn.state.curdoc
        _land_in_session(self.state, self._doc)
        self.controls = self._make_controls()
        self._layout = self._make_layout()

    # --- controls --------------------------------------------------------------------

    def _make_controls(self) -> pn.Column:
        s, w = self.state, pn.widgets
        # Every widget's visible label is its parameter's label ("Upsampling", ...).
        kernel = w.IntSlider.from_param(s.param.kernel, throttled=True,
                                        disabled=not s.kernel_applies)
        slider = {name: w.IntSlider.from_param(s.param[name], throttled=True)
                  for name in ("blocks", "seed")}
        s.param.watch(lambda e: setattr(kernel, "disabled", not s.kernel_applies),
                      "upsampling")
        design = [
            w.Select.from_param(s.param.preset),
            w.Select.from_param(s.param.upsampling),
            w.Select.from_param(s.param.factor),
            with_help(kernel, s.param.kernel),
            with_help(slider["blocks"], s.param.blocks),
            w.Select.from_param(s.param.norm),
            w.Select.from_param(s.param.activation),
            w.Select.from_param(s.param.order),
            with_help(slider["seed"], s.param.seed),
        ]
        self._upload_box = pn.Column(self._new_upload(), visible=s.source == "upload",
                                     sizing_mode="stretch_width", margin=0)
        using = pn.pane.Markdown(pn.bind(lambda n: f"Using **{n}**" if n else "",
                                         s.param.upload_name),
                                 visible=s.source == "upload", css_classes=["fpx-upload-name"],
                                 sizing_mode="stretch_width", margin=(0, 10))
        folder = w.TextInput.from_param(s.param.folder, placeholder="/path/to/images",
                                        visible=s.source == "folder",
                                        sizing_mode="stretch_width")

        def on_source(e):
            self._upload_box.visible = using.visible = e.new == "upload"
            folder.visible = e.new == "folder"

        s.param.watch(on_source, "source")
        analysis = [
            w.Select.from_param(s.param.residual),
            w.Select.from_param(s.param.window),
            w.Select.from_param(s.param.crop_size),
            with_help(w.Checkbox.from_param(s.param.show_predicted), s.param.show_predicted),
        ]
        for widget in design + analysis:  # as wide as the sidebar, never wider
            if isinstance(widget, pn.widgets.Widget):
                widget.sizing_mode = "stretch_width"
        return pn.Column(
            pn.pane.Markdown("### Generator"), *design,
            pn.pane.Markdown("### Real images"),
            w.Select.from_param(s.param.source, sizing_mode="stretch_width"),
            self._upload_box, using, folder,
            pn.pane.Markdown("### Analysis"), *analysis,
            sizing_mode="stretch_width",
        )

    def _new_upload(self) -> pn.widgets.FileDropper:
        upload = pn.widgets.FileDropper(
            accepted_filetypes=IMAGE_TYPES, max_file_size=MAX_UPLOAD, multiple=False,
            label="Upload image", height=90, sizing_mode="stretch_width")
        upload.param.watch(self._on_upload, "value")
        return upload

    @property
    def upload(self) -> pn.widgets.FileDropper:
        """The upload box now shown."""
        return self._upload_box.objects[0]

    def _on_upload(self, event) -> None:
        if not event.new:
            return
        name, data = list(event.new.items())[-1]
        taken = self.state.set_upload(data if isinstance(data, bytes) else data.encode(), name)
        if not taken:
            # The drop box marks any finished transfer "Upload complete"; a refused file
            # gets a fresh, empty box instead (the message above says why).
            self._upload_box.objects = [self._new_upload()]

    # --- plots -----------------------------------------------------------------------

    def _make_layout(self) -> pn.Column:
        s = self.state
        self.fig = {
            "input": CropFigure("Input crop"), "output": CropFigure("Generated output"),
            "generated": SpectrumFigure("Generated: mean log spectrum", colorbar_title=SHARED),
            "real": SpectrumFigure("Real: mean log spectrum", colorbar_title=SHARED),
            "difference": SpectrumFigure("Difference: generated - real", diverging=True),
            "profiles": ProfileFigure("Radial profiles", ["real", "generated"]),
        }
        self._draw()
        s.param.watch(lambda e: in_session(self._doc, self._draw), ["result", "show_predicted"])
        alert = pn.pane.Alert(pn.bind(lambda m: m or "", s.param.message), alert_type="warning",
                              visible=pn.bind(bool, s.param.message),
                              css_classes=["fpx-message"], sizing_mode="stretch_width")
        loading = pn.pane.Alert(pn.bind(lambda m: m or "", s.param.loading), alert_type="info",
                                visible=pn.bind(bool, s.param.loading),
                                css_classes=["fpx-loading"], sizing_mode="stretch_width")
        numbers = pn.pane.Markdown(pn.bind(lab_markdown, s.param.result),
                                   css_classes=["fpx-readout"], width=480,
                                   stylesheets=[TABLE_CSS])

        def pane(key):
            fig = self.fig[key].figure
            fig.css_classes = [f"fpx-{key}"]  # a handle for browser tests and benchmarks
            return pn.pane.Bokeh(fig)

        # FlexBoxes wrap what does not fit the width onto the next line (a Row would
        # squeeze its plots out of square and scroll the page sideways).
        return pn.Column(
            alert, loading,
            flow(numbers, pn.Row(pane("input"), pane("output"))),
            flow(pane("generated"), pane("real"), pane("difference"), pane("profiles")),
            self._compare_card(), self._export_card(), sizing_mode="stretch_width",
        )

    def _draw(self) -> None:
        """Push the current result into the figures. The generated and real spectra
        share one colour range (one colour, one power)."""
        r = self.state.result
        if r is None:
            return
        f = self.fig
        predicted = [(p.fx, p.fy) for p in r.predicted] if self.state.show_predicted else []
        clim = shared_color_limits([r.generated.spectrum, r.real.spectrum])
        f["generated"].update(r.generated.spectrum, r.generated.peaks, predicted, clim=clim)
        f["real"].update(r.real.spectrum, r.real.peaks, clim=clim)
        f["output"].update(r.output_crop)
        f["input"].update(r.input_crop)
        f["difference"].update(r.difference)
        f["profiles"].update({"real": r.real.profile, "generated": r.generated.profile})

    # --- compare and export ----------------------------------------------------------

    def _compare_card(self) -> pn.Card:
        s = self.state
        pin = pn.widgets.Button(label="Pin current as A", color="primary")
        clear = pn.widgets.Button(label="Clear A")
        pin.on_click(lambda e: s.pin())
        clear.on_click(lambda e: s.unpin())
        shared = "dB (one scale for A and B)"
        figs = {"A": SpectrumFigure("A (pinned): generated spectrum", colorbar_title=shared),
                "B": SpectrumFigure("B (current): generated spectrum", colorbar_title=shared),
                "profiles": ProfileFigure("Radial profiles: A vs B", ["real", "A", "B"])}
        for key, fig in figs.items():
            fig.figure.css_classes = [f"fpx-compare-{key}"]
        self.compare_fig = figs
        hint = pn.pane.Markdown("Pin a configuration as **A**, change a block, and compare it "
                                "here with the current one (**B**). Circles: detected "
                                "peaks; crosses: predicted ones.")
        caption = pn.pane.Markdown("", css_classes=["fpx-compare-caption"])
        plots = flow(*(pn.pane.Bokeh(f.figure) for f in figs.values()), visible=False)

        def draw(*_):
            a, b = s.pinned, s.result
            shown = a is not None and b is not None
            hint.visible, plots.visible, caption.visible = not shown, shown, shown
            if not shown:
                return
            clim = shared_color_limits([a.generated.spectrum, b.generated.spectrum])
            figs["A"].update(a.generated.spectrum, a.generated.peaks,
                             [(p.fx, p.fy) for p in a.predicted], clim=clim)
            figs["B"].update(b.generated.spectrum, b.generated.peaks,
                             [(p.fx, p.fy) for p in b.predicted], clim=clim)
            figs["profiles"].update({"real": b.real.profile, "A": a.generated.profile,
                                     "B": b.generated.profile})
            caption.object = (f"**A**: {_describe(a)} &nbsp;&nbsp; **B** (current): "
                              f"{_describe(b)} &nbsp;&nbsp; spectral distance A-B: "
                              f"{s.compare_distance_db():.2f} dB")

        s.param.watch(lambda e: in_session(self._doc, draw), ["pinned", "result"])
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
        self._spec_box = pn.Column(self._new_spec_dropper(), sizing_mode="stretch_width",
                                   margin=0)
        return pn.Card(pn.Row(png, spec), self._spec_box, title="Export", collapsed=False,
                       sizing_mode="stretch_width")

    def _new_spec_dropper(self) -> pn.widgets.FileDropper:
        load = pn.widgets.FileDropper(accepted_filetypes=[".json"], max_file_size=MAX_SPEC,
                                      multiple=False, label="Load spec (JSON)", height=70,
                                      previews=[], css_classes=["fpx-spec-load"],
                                      sizing_mode="stretch_width")
        load.param.watch(self._on_spec, "value")
        return load

    def _on_spec(self, event) -> None:
        if not event.new:
            return
        _, text = list(event.new.items())[-1]
        # An empty file is a spec error like any other (said in the page), not ignored.
        self.state.load_spec_json(text)
        # A fresh box, so that the same file (edited) can be loaded again.
        self._spec_box.objects = [self._new_spec_dropper()]

    def __panel__(self):
        return self._layout


def flow(*items, **options) -> pn.FlexBox:
    """Items side by side while they fit, wrapped onto the next line when they do not."""
    return pn.FlexBox(*items, flex_wrap="wrap", align_items="flex-start",
                      sizing_mode="stretch_width", **options)


def with_help(widget, parameter) -> pn.Row:
    """A widget that has no ``description`` of its own (sliders, checkboxes) beside a
    help icon whose tooltip is its parameter's ``doc``."""
    widget.sizing_mode = "stretch_width"
    return pn.Row(widget, pn.widgets.TooltipIcon(value=parameter.doc, width=20,
                                                 margin=(18, 5, 0, 0)),
                  sizing_mode="stretch_width")


def _land_in_session(state: LabState, doc) -> None:
    """In a server session, make what the state's background loads report run on the
    session's next tick (:func:`~explorer.views.session.in_session`), and give up a load
    when the session closes. Elsewhere the state's default (at once) stays."""
    if doc is None or doc.session_context is None:
        return
    state.dispatch = dispatcher(doc)
    doc.on_session_destroyed(lambda context: state.cancel_load())


def _describe(result: LabResult) -> str:
    b = result.spec.up[0]
    k = f" k{b.kernel}" if upsampler(b.upsampling).kernels == "any" else ""
    return f"{len(result.spec.up)}x {b.upsampling}{k} s{b.factor}, {b.norm}, {b.activation}"


TAB = Tab(order=10, title="Spectrum Lab", view=SpectrumLab)
