"""The real-photo spectrum page: mean log spectrum, radial profile and readouts."""

from __future__ import annotations

import holoviews as hv
import numpy as np
import panel as pn
import param

from core.analysis import SpectrumReport
from explorer.state import RealSpectrumState


def spectrum_image(report: SpectrumReport, title: str) -> hv.Image:
    """Centred dB spectrum on cycles/pixel axes, fy increasing upwards."""
    spec = report.spectrum.numpy()
    h, w = spec.shape
    dy, dx = 1.0 / h, 1.0 / w
    # Bin centres run from -0.5 to 0.5 - 1/n (even n); the image covers +- half a bin.
    fy0, fx0 = -(h // 2) * dy, -(w // 2) * dx
    bounds = (fx0 - dx / 2, fy0 - dy / 2, fx0 + (w - 0.5) * dx, fy0 + (h - 0.5) * dy)
    lo, hi = np.quantile(spec, [0.01, 0.999])
    return hv.Image(np.flipud(spec), bounds=bounds, kdims=["fx", "fy"], vdims=["power_db"]).opts(
        cmap="magma", colorbar=True, clim=(float(lo), float(hi)), title=title,
        xlabel="fx (cycles/pixel)", ylabel="fy (cycles/pixel)", clabel="power (dB)",
        frame_width=320, frame_height=320, tools=["hover"],
    )


def profile_curve(report: SpectrumReport, label: str) -> hv.Curve:
    f = report.profile.frequency.numpy()[1:]
    p = report.profile.power.numpy()[1:]
    return hv.Curve((f, p), kdims=["frequency"], vdims=["power_db"], label=label).opts(
        xlabel="frequency (cycles/pixel)", ylabel="mean power (dB)", xlim=(0, 0.5),
        frame_width=360, frame_height=280, show_grid=True, tools=["hover"],
    )


def readout(report: SpectrumReport) -> str:
    factor = report.upsampling_factor
    fit = report.power_law
    return "\n".join([
        f"**{report.images} crops** of {report.size}x{report.size} px, "
        f"residual *{report.residual}*, window *{report.window or 'none'}*",
        "",
        f"- estimated upsampling factor: **{factor if factor else 'none (no grid)'}**",
        f"- isolated peaks found: **{len(report.peaks)}**",
        f"- power-law exponent of the tail: **{float(fit.exponent):.2f}** "
        f"(rms {float(fit.rms_db):.2f} dB)",
    ])


class RealSpectrumView(pn.viewable.Viewer):
    """Mean spectrum and radial profile of the bundled real photos."""

    state = param.ClassSelector(class_=RealSpectrumState)

    def __init__(self, **params):
        params.setdefault("state", RealSpectrumState())
        super().__init__(**params)
        self.controls = pn.Param(
            self.state.param, parameters=["residual"], show_name=False,
            widgets={"residual": {"type": pn.widgets.RadioButtonGroup, "name": "Residual",
                                  "button_type": "primary"}},
        )

    @param.depends("state.report")
    def _plots(self):
        report = self.state.report
        return pn.Row(
            pn.pane.HoloViews(spectrum_image(report, "Mean log spectrum: real photos")),
            pn.pane.HoloViews(profile_curve(report, "real photos")),
        )

    @param.depends("state.report")
    def _readout(self):
        return pn.pane.Markdown(readout(self.state.report), sizing_mode="stretch_width")

    def __panel__(self):
        return pn.Column(self._readout, self._plots, sizing_mode="stretch_width")
