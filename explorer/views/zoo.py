"""The Zoo tab: the spectra of the small real generators shipped with fpx, and of the
generator runs chosen with "Use this run" in the Train tab.

Pick an entry and what to compare it with (:attr:`ZooView.controls`, shown in the
sidebar while this tab is open); every figure redraws from one
:class:`~explorer.zoo.ZooResult`, in place, like the Spectrum Lab.
"""

from __future__ import annotations

import panel as pn
import param

from core.figures.axes import shared_color_limits
from explorer.readout import zoo_markdown
from explorer.views import Tab
from explorer.views.figures import TABLE_CSS, CropFigure, ProfileFigure, SpectrumFigure
from explorer.views.session import in_session
from explorer.views.spectrum_lab import flow
from explorer.zoo import REAL, ZooState

SHARED = "dB (one scale for entry and reference)"
SAMPLES_SIZE = 256  # px: the 4 x 4 tile of 32-px samples, each enlarged 2x
REFRESH_MS = 3000  # how often the used runs are read back


class ZooView(pn.viewable.Viewer):
    """Controls in :attr:`controls` (for a sidebar); readout, samples, spectra and
    profiles in the viewer itself."""

    state = param.ClassSelector(class_=ZooState)

    def __init__(self, **params):
        params.setdefault("state", ZooState())
        super().__init__(**params)
        s = self.state
        self._doc = pn.state.curdoc
        self.fig = {
            "samples": CropFigure("Samples (first 16)", size=SAMPLES_SIZE),
            "entry": SpectrumFigure("Entry: mean log spectrum", colorbar_title=SHARED),
            "reference": SpectrumFigure("Reference: mean log spectrum", colorbar_title=SHARED),
            "difference": SpectrumFigure("Difference: entry - reference", diverging=True),
            "profiles": ProfileFigure("Radial profiles", ["reference", "entry"],
                                      roles={"reference": "real", "entry": "generated"}),
        }
        self._draw()
        s.param.watch(lambda e: in_session(self._doc, self._draw), "result")
        if pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:
            # runs chosen with "Use this run" in the Train tab join the list
            self._callback = pn.state.add_periodic_callback(s.refresh_entries,
                                                            period=REFRESH_MS)
        self.controls = pn.Column(
            pn.pane.Markdown("### Zoo"),
            pn.widgets.Select.from_param(s.param.entry, sizing_mode="stretch_width"),
            pn.widgets.Select.from_param(s.param.reference, sizing_mode="stretch_width"),
            pn.widgets.Select.from_param(s.param.residual, sizing_mode="stretch_width"),
            sizing_mode="stretch_width")
        alert = pn.pane.Alert(pn.bind(lambda m: m or "", s.param.message),
                              alert_type="warning", visible=pn.bind(bool, s.param.message),
                              sizing_mode="stretch_width")
        readout = pn.pane.Markdown(pn.bind(zoo_markdown, s.param.result),
                                   css_classes=["fpx-zoo-readout"], width=480,
                                   stylesheets=[TABLE_CSS])

        def pane(key):
            fig = self.fig[key].figure
            fig.css_classes = [f"fpx-zoo-{key}"]
            return pn.pane.Bokeh(fig)

        self._layout = pn.Column(
            pn.pane.Markdown("Small GANs, VAEs, a flow and DDPMs trained by "
                             "`fpx zoo train` on the bundled photos; 200 samples each "
                             "(`core/assets/zoo`). Their design choices are recorded, "
                             "so their spectra can be read against the design. Entries "
                             "named *your run: ...* are generators you trained in the "
                             "Train tab and chose with **Use this run** (200 samples in "
                             "the run's folder).",
                             sizing_mode="stretch_width"),
            alert, flow(readout, pane("samples")),
            flow(pane("entry"), pane("reference"), pane("difference"), pane("profiles")),
            sizing_mode="stretch_width")

    def _draw(self) -> None:
        r = self.state.result
        if r is None:
            return
        f = self.fig
        f["samples"].update(r.samples)
        clim = shared_color_limits([r.report.spectrum, r.ref_report.spectrum])
        f["entry"].update(r.report.spectrum, r.report.peaks, clim=clim)
        f["reference"].update(r.ref_report.spectrum, r.ref_report.peaks, clim=clim)
        f["difference"].update(r.difference)
        # The reference is the real crops (their colour) or another entry (A's colour).
        real = r.reference == REAL
        f["profiles"].set_role("reference", "real" if real else "A",
                               "real crops" if real else r.reference)
        f["profiles"].set_role("entry", "generated", r.entry)
        f["profiles"].update({"reference": r.ref_report.profile, "entry": r.report.profile})

    def __panel__(self):
        return self._layout


TAB = Tab(order=20, title="Zoo", view=ZooView)
