"""The Zoo tab: the spectra of the small real generators shipped with fpx.

Pick an entry and what to compare it with; every figure redraws from one
:class:`~explorer.zoo.ZooResult`, in place, like the Spectrum Lab.
"""

from __future__ import annotations

import panel as pn
import param

from explorer.views.figures import CropFigure, ProfileFigure, SpectrumFigure
from explorer.views.spectrum_lab import _under_lock
from explorer.zoo import ZooResult, ZooState


def zoo_readout(result: ZooResult | None) -> str:
    if result is None:
        return "No zoo samples to show."
    info = result.info
    e, q = info.entry, info.quality
    rep, ref = result.report, result.ref_report
    return "\n".join([
        f"| **{result.entry}** | |",
        "|---|---|",
        f"| Design | {e.family}: {e.upsampling} upsampling, {e.normalization} norm, "
        f"{e.activation}, loss {e.loss}, seed {e.seed} |",
        f"| Training | {info.train_steps} steps, batch {info.settings.batch}, "
        f"{info.train_seconds:.0f} s on CPU ({info.data} photos) |",
        f"| Quality vs real crops | spectral distance {q.spectral_distance_db:.2f} dB, "
        f"kernel MMD {q.kernel_mmd:.3f} (noise: {q.kernel_mmd_noise:.2f}) |",
        f"| Estimated upsampling factor | **{rep.upsampling_factor or 'none'}** "
        f"(reference: {ref.upsampling_factor or 'none'}) |",
        f"| Grid peaks / prominence | {len(rep.peaks)} / {rep.grid_prominence_db:.1f} dB |",
        f"| Spectral distance to {result.reference} | **{result.distance_db:.2f} dB** |",
        f"| Power-law exponent | {float(rep.power_law.exponent):.2f} "
        f"(reference {float(ref.power_law.exponent):.2f}) |",
        "",
        f"<small>{rep.images} samples vs {ref.images} ({result.reference}); computed in "
        f"{result.compute_ms:.0f} ms</small>",
    ])


class ZooView(pn.viewable.Viewer):
    """Controls on top, the entry's samples, spectra and profiles below."""

    state = param.ClassSelector(class_=ZooState)

    def __init__(self, **params):
        params.setdefault("state", ZooState())
        super().__init__(**params)
        s = self.state
        self.fig = {
            "samples": CropFigure("Samples"),
            "entry": SpectrumFigure("Entry: mean log spectrum"),
            "reference": SpectrumFigure("Reference: mean log spectrum"),
            "difference": SpectrumFigure("Difference: entry - reference", diverging=True),
            "profiles": ProfileFigure("Radial profiles", ["reference", "entry"]),
        }
        self._draw()
        s.param.watch(lambda e: _under_lock(self._draw), "result")
        controls = pn.Row(pn.widgets.Select.from_param(s.param.entry, width=230),
                          pn.widgets.Select.from_param(s.param.reference, width=230),
                          pn.widgets.Select.from_param(s.param.residual, name="Residual ",
                                                       width=120))
        alert = pn.pane.Alert(pn.bind(lambda m: m or "", s.param.message),
                              alert_type="warning", visible=pn.bind(bool, s.param.message))
        readout = pn.pane.Markdown(pn.bind(zoo_readout, s.param.result),
                                   css_classes=["fpx-zoo-readout"], width=560)

        def pane(key):
            fig = self.fig[key].figure
            fig.css_classes = [f"fpx-zoo-{key}"]
            return pn.pane.Bokeh(fig)

        self._layout = pn.Column(
            pn.pane.Markdown("Small GANs, VAEs, a flow and DDPMs trained by "
                             "`fpx zoo train` on the bundled photos; 200 samples each "
                             "(`core/assets/zoo`). Their design choices are recorded, "
                             "so their spectra can be read against the design."),
            controls, alert, pn.Row(readout, pane("samples")),
            pn.Row(pane("entry"), pane("reference")),
            pn.Row(pane("difference"), pane("profiles")), sizing_mode="stretch_width")

    def _draw(self) -> None:
        r = self.state.result
        if r is None:
            return
        f = self.fig
        f["samples"].update(r.samples)
        f["entry"].update(r.report.spectrum, r.report.peaks)
        f["reference"].update(r.ref_report.spectrum, r.ref_report.peaks)
        f["difference"].update(r.difference)
        f["profiles"].update({"reference": r.ref_report.profile, "entry": r.report.profile})

    def __panel__(self):
        return self._layout
