"""The Attribute tab: drop images (or name a server folder) and read who made them.

The verdict table (nearest generators, cosine, "unknown" under the calibrated
threshold), the threshold's measured false-accept rate, one line on the features and the
transform the cosines were taken in, the detected lattice, and the
evidence: the images' mean spectrum beside the nearest generator's and the real
photos', and their radial profiles. The answer downloads as JSON.
"""

from __future__ import annotations

import io

import panel as pn
import param

from core.figures.axes import shared_color_limits
from core.spectrum.lattice import describe_period
from explorer.attribute import AttributeResult, AttributeState
from explorer.views import Tab
from explorer.views.embeddings import status_row
from explorer.views.figures import TABLE_CSS, ProfileFigure, SpectrumFigure
from explorer.views.session import dispatcher, in_session
from explorer.views.spectrum_lab import IMAGE_TYPES, MAX_UPLOAD, flow

SHARED = "dB (one scale for the three)"


def design_lines(design: dict | None) -> list[str]:
    """The design heads' guess, with what it is worth on real generators."""
    if not design:
        return []
    said = "; ".join(
        f"{field} " + ", ".join(f"**{v}** {p:.2f}" if i == 0 else f"{v} {p:.2f}"
                                for i, (v, p) in enumerate(list(probs.items())[:3]))
        for field, probs in design.items())
    return [f"Design guess: {said} (heads fitted on synthetic models only; they name "
            f"the upsampling of 6 of the zoo's 11 nameable generators, the majority "
            f"guess 5)."]


def verdict_markdown(r: AttributeResult | None) -> str:
    """The answer as Markdown: verdict; calibration, method, lattice, design guess and
    spectral evidence as a list; the per-image table."""
    if r is None:
        return "*Drop one or more images in the sidebar, or type a server folder.*"
    c, grid = r.calibration, r.report.grid
    lattice = (f"period **{grid.period}** px (false alarm {grid.false_alarm:.3f}): "
               f"{describe_period(grid.period)}" if grid.period else
               f"none detected in {grid.images} image(s) (false alarm of the strongest "
               f"candidate {grid.false_alarm:.3f})")
    lines = [
        f"### Verdict: {r.summary}",
        f"- Threshold cosine **{c.threshold:.3f}**: images of generators outside the gallery "
        f"are accepted at **{100 * c.far:.1f} %** (measured leaving each of "
        f"{len(r.gallery)} models out in turn, {c.impostors} images); held-back images of "
        f"known models are attributed correctly {100 * c.correct:.1f} % of the time, and "
        f"above the threshold {100 * c.accept:.1f} %.",
        f"- *{r.method()}*",
        f"- Upsampling lattice: {lattice}.",
        *(f"- {line}" for line in design_lines(r.design)),
        f"- Mean spectrum vs the nearest generator **{r.nearest_model}**: "
        + (f"{r.distance_nearest_db:.2f} dB" if r.distance_nearest_db is not None else "n/a")
        + f"; vs real photos: {r.distance_real_db:.2f} dB (radial profiles, "
          f"{r.shown.size} px, blur residual).",
        "", "| image | verdict | nearest (cosine) |", "|---|---|---|",
    ]
    for v in r.verdicts[:50]:
        near = ", ".join(f"{m} ({s:.3f})" for m, s in v.nearest[:5])
        lines.append(f"| {v.name} | **{v.answer}** | {near} |")
    if len(r.verdicts) > 50:
        lines.append(f"| ... {len(r.verdicts) - 50} more | | |")
    if r.removed:
        lines.append(f"\nLeft out of the gallery: {', '.join(r.removed)}.")
    return "\n".join(lines)


class AttributeView(pn.viewable.Viewer):
    """Controls in :attr:`controls`; verdict, evidence and export in the viewer."""

    state = param.ClassSelector(class_=AttributeState)

    def __init__(self, **params):
        params.setdefault("state", AttributeState())
        super().__init__(**params)
        s = self.state
        self._doc = pn.state.curdoc
        s.dispatch = dispatcher(self._doc)  # results land in this session's tick
        self.fig = {
            "images": SpectrumFigure("Your images: mean log spectrum", colorbar_title=SHARED),
            "nearest": SpectrumFigure("Nearest generator", colorbar_title=SHARED),
            "real": SpectrumFigure("Real photos", colorbar_title=SHARED),
            "profiles": ProfileFigure("Radial profiles", ["real", "nearest", "images"],
                                      roles={"real": "real", "nearest": "A",
                                             "images": "generated"}),
        }
        s.param.watch(lambda e: in_session(self._doc, self._draw), "result")
        wide = dict(sizing_mode="stretch_width")
        upload = pn.widgets.FileDropper(accepted_filetypes=IMAGE_TYPES, multiple=True,
                                        max_file_size=MAX_UPLOAD, label="Drop images",
                                        css_classes=["fpx-att-upload"], **wide)
        # No fixed height: the dropped files are listed under the drop area. The value
        # grows by one file per finished upload and shrinks when one is removed.
        upload.param.watch(lambda e: s.set_uploads(
            [(k, v if isinstance(v, bytes) else v.encode()) for k, v in e.new.items()]),
            "value")
        export = pn.widgets.FileDownload(
            callback=lambda: io.BytesIO((s.result.to_json() if s.result else "{}").encode()),
            filename="fpx-attribution.json", label="Download the answer (JSON)",
            button_type="success", **wide)
        self.controls = pn.Column(
            pn.pane.Markdown("### Attribute"), upload,
            pn.widgets.TextInput.from_param(s.param.folder, placeholder="server folder", **wide),
            pn.widgets.Select.from_param(s.param.extractor, **wide),
            pn.widgets.FloatSlider.from_param(s.param.target_far, **wide),
            pn.widgets.MultiSelect.from_param(s.param.removed, size=4, **wide),
            export, **wide)
        self.readout = pn.pane.Markdown(pn.bind(verdict_markdown, s.param.result),
                                        css_classes=["fpx-att-verdict"], stylesheets=[TABLE_CSS],
                                        sizing_mode="stretch_width")

        def pane(key):
            fig = self.fig[key].figure
            fig.css_classes = [f"fpx-att-{key}"]
            return pn.pane.Bokeh(fig)

        self._layout = pn.Column(
            pn.pane.Markdown("Who made these images? Each is embedded by the extractor, its "
                             "residual spectrum read beside, and set against the shipped "
                             "zoo (10 reference images per entry) and any models added "
                             "from the Embeddings tab.",
                             sizing_mode="stretch_width"),
            status_row(s, "att"), self.readout,
            flow(pane("images"), pane("nearest"), pane("real"), pane("profiles")),
            sizing_mode="stretch_width")

    def _draw(self) -> None:
        r = self.state.result
        if r is None:
            return
        spectra = [r.shown.spectrum, r.real_report.spectrum]
        if r.nearest_report is not None:
            spectra.append(r.nearest_report.spectrum)
        clim = shared_color_limits(spectra)
        self.fig["images"].update(r.shown.spectrum, r.shown.peaks, clim=clim)
        self.fig["real"].update(r.real_report.spectrum, r.real_report.peaks, clim=clim)
        profiles = {"real": r.real_report.profile, "images": r.shown.profile}
        self.fig["nearest"].figure.title.text = f"Nearest generator: {r.nearest_model}"
        if r.nearest_report is not None:
            self.fig["nearest"].update(r.nearest_report.spectrum, r.nearest_report.peaks,
                                       clim=clim)
            profiles["nearest"] = r.nearest_report.profile
        self.fig["profiles"].set_role("nearest", "A", r.nearest_model)
        self.fig["profiles"].update(profiles)

    def __panel__(self):
        return self._layout


TAB = Tab(order=50, title="Attribute", view=AttributeView)
