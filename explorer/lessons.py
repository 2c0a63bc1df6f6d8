"""State and figures of the teaching notebooks (``notebooks/*.ipynb``).

Each lesson is a ``param.Parameterized`` over ``core`` (and, for the lab lessons, the
dashboard's own :class:`~explorer.state.LabState`), with a ``figure()`` in matplotlib, a
``render(**values)`` that sets the values and returns the figure as PNG bytes, for an
``ipywidgets.Image`` to show, and ``controls()``: the lesson's ipywidgets, made from the
parameters' own bounds, labels and docs (:func:`param_widgets`), so a notebook never
repeats a bound. :attr:`shown` keeps a digest of the data drawn. Notebooks hold only
glue and prose. No panel import here.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import param
import torch
import torch.nn.functional as F

from core.analysis import analyse_batches
from core.blocks import ACTIVATION, NORMALIZATION, upsampler, zero_insert
from core.data import bundled_crops
from core.figures import (
    ROLE_COLORS,
    draw_images,
    draw_profiles,
    draw_spectrum,
    figure_bytes,
    new_figure,
    shared_color_limits,
)
from core.spectrum import (
    mean_spectrum,
    power_law_fit,
)
from core.synthetic import build_generator, match_statistics, sample_spec
from core.theory import (
    INTERPOLATORS,
    checkerboard,
    interpolation_response,
    interpolation_taps,
    overlap_counts,
)
from explorer.state import LabState

FILTERS = ("none", *INTERPOLATORS)
# Lines that are neither real nor generated (a sweep's members): hues no role wears.
OTHER_COLORS = ["#ff7f0e", "#2ca02c", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
                "#17becf", "#000000"]


def param_widgets(owner: param.Parameterized, names) -> dict:
    """ipywidgets for the parameters ``names`` of ``owner``, keyed by name: a slider over
    the soft bounds (else the bounds) for numbers, a dropdown (toggle buttons for up to
    three choices) for selectors, a checkbox for booleans. Each starts at the current
    value, is labelled with the parameter's label and explained by its doc; sliders
    report on release only (``continuous_update=False``)."""
    import ipywidgets as widgets

    out = {}
    for name in names:
        p = owner.param[name]
        common = dict(value=getattr(owner, name), description=p.label,
                      tooltip=p.doc or None, style={"description_width": "initial"})
        if isinstance(p, param.Selector):
            options = list(p.names.items()) if p.names else list(p.objects)
            kind = widgets.ToggleButtons if len(options) <= 3 else widgets.Dropdown
            out[name] = kind(options=options, **common)
        elif isinstance(p, param.Boolean):
            out[name] = widgets.Checkbox(**common)
        elif isinstance(p, param.Number):
            lo, hi = (p.softbounds if p.softbounds is not None else None) or p.bounds
            slider = widgets.IntSlider if isinstance(p, param.Integer) else widgets.FloatSlider
            out[name] = slider(min=lo, max=hi, continuous_update=False, **common)
        else:
            raise TypeError(f"no widget for parameter {name!r} ({type(p).__name__})")
    return out


def _digest(*arrays) -> str:
    h = hashlib.sha1()
    for a in arrays:
        h.update(np.ascontiguousarray(np.asarray(a, dtype=np.float32)).tobytes())
    return h.hexdigest()[:16]


def _png(fig) -> bytes:
    """A lesson's figure as the PNG bytes an ``ipywidgets.Image`` shows."""
    return figure_bytes(fig, dpi=80)


class ReplicaLesson(param.Parameterized):
    """Lesson 1: zero insertion tiles the spectrum; the interpolation filter is the cure.

    A smooth 1-D signal and a 2-D photo crop are upsampled by ``factor``: zeros inserted,
    then the ``filter`` (``none`` keeps the bare zero insertion).
    """

    factor = param.Integer(default=2, bounds=(2, 8), doc="Upsampling factor s")
    filter = param.Selector(default="none", objects=list(FILTERS),
                            doc="Interpolation filter after zero insertion")
    shown = param.String(default="", doc="Digest of the last figure's data")

    def signal(self, n: int = 64) -> torch.Tensor:
        """A smooth random 1-D signal ``(n,)``: energy below 0.15 cycles/sample."""
        g = torch.Generator().manual_seed(0)
        spec = torch.randn(n // 2 + 1, generator=g, dtype=torch.float64)
        f = torch.arange(n // 2 + 1, dtype=torch.float64) / n
        return torch.fft.irfft(spec * torch.exp(-(f / 0.08) ** 2), n=n) * n ** 0.5 + 1.0

    def upsample_1d(self, x: torch.Tensor) -> torch.Tensor:
        """Zero insertion by ``factor`` then the filter (circular, so the spectrum is
        exactly the product of the tiled spectrum and the filter's response)."""
        s = self.factor
        z = torch.zeros(x.numel() * s, dtype=x.dtype)
        z[::s] = x
        if self.filter == "none":
            return z
        taps = interpolation_taps(self.filter, s)
        kernel = torch.zeros_like(z)
        kernel[:taps.numel()] = taps
        return torch.fft.irfft(torch.fft.rfft(z) * torch.fft.rfft(kernel), n=z.numel())

    def replica_level_db(self) -> float:
        """Mean power of the replicas around ``k / s`` relative to the baseband, in dB
        (0 dB: bare zero insertion keeps full-strength copies)."""
        y = self.upsample_1d(self.signal())
        p = torch.fft.fft(y).abs().square()
        f = torch.fft.fftfreq(y.numel(), dtype=torch.float64).abs()
        half = 0.5 / self.factor
        base = p[f < half * 0.6].mean()
        replica = torch.stack([p[(f - k / self.factor).abs() < half * 0.6].mean()
                               for k in range(1, self.factor // 2 + 1)]).mean()
        return float(10 * torch.log10(replica / base))

    def controls(self) -> dict:
        return param_widgets(self, ["factor", "filter"])

    def crop_2d(self) -> torch.Tensor:
        """A bundled 48-px crop upsampled the same way in 2-D, ``(1, 3, 48 s, 48 s)``."""
        x = bundled_crops(48, 1, seed=3)
        z = zero_insert(x, self.factor)
        if self.filter == "none":
            return z
        align = None if self.filter == "nearest" else False
        return F.interpolate(x, scale_factor=self.factor, mode=self.filter, align_corners=align)

    def figure(self):
        s = self.factor
        x = self.signal()
        y = self.upsample_1d(x)
        fig = new_figure((15, 4))
        axes = fig.subplots(1, 3)
        ax = axes[0]
        t = torch.arange(y.numel()) / s
        ax.plot(t[:24 * s], y[:24 * s], ".-", ms=3, label=f"upsampled x{s} ({self.filter})")
        ax.plot(torch.arange(24), x[:24], "o", label="original samples")
        ax.set_xlabel("position (original samples)")
        ax.legend(fontsize=8)
        ax.set_title("signal")
        ax = axes[1]
        f = torch.fft.fftshift(torch.fft.fftfreq(y.numel(), dtype=torch.float64))
        p = torch.fft.fftshift(torch.fft.fft(y).abs().square())
        ax.plot(f, 10 * torch.log10(p / p.max() + 1e-12), lw=1, label="|Y(f)|^2")
        if self.filter != "none":
            r = interpolation_response(self.filter, s, f)
            ax.plot(f, 20 * torch.log10(r + 1e-6), "--", label=f"{self.filter} response (theory)")
        for k in range(1, s):
            fk = k / s - (1 if k / s >= 0.5 else 0)
            ax.axvline(fk, color="grey", ls=":", lw=1)
        ax.set_ylim(-90, 5)
        ax.set_xlabel("frequency (cycles/sample of the output)")
        ax.set_ylabel("dB")
        level = self.replica_level_db()
        ax.set_title(f"spectrum: replicas at k/{s} (dotted), {level:.0f} dB below baseband")
        ax.legend(fontsize=8, loc="lower left")
        spec = mean_spectrum([self.crop_2d()]).mean(0).numpy()
        grid = [(a / s - (a / s >= 0.5), b / s - (b / s >= 0.5)) for a in range(s)
                for b in range(s) if (a, b) != (0, 0)]  # (fx, fy) of the replicas
        draw_spectrum(axes[2], spec, predicted=grid,
                      title="2-D: a photo crop, same upsampling")
        fig.tight_layout()
        self.shown = _digest(y, spec)
        return fig

    def render(self, **values) -> bytes:
        self.param.update(**values)
        return _png(self.figure())


class UpsamplingLesson(param.Parameterized):
    """Lesson 2: each upsampler on real photos, observed against ``core.theory``.

    Drives a :class:`LabState` (the dashboard's own state) with one up-block, no
    normalization and no activation, so that what you see is the upsampler alone.
    """

    shown = param.String(default="")

    def __init__(self, **params):
        super().__init__(**params)
        self.lab = LabState(blocks=1, norm="none", activation="none")

    def controls(self) -> dict:
        return param_widgets(self.lab, ["upsampling", "factor", "kernel", "seed"])

    def checkerboard_text(self) -> str:
        lab = self.lab
        if not upsampler(lab.upsampling).checkerboard:
            return f"{lab.upsampling}: no transposed convolution, no overlap to count."
        counts = overlap_counts(lab.kernel, lab.factor).tolist()
        verdict = "uneven: checkerboard" if checkerboard(lab.kernel, lab.factor) else "even"
        return (f"transposed conv k={lab.kernel}, stride {lab.factor}: taps per output phase "
                f"{counts} -> {verdict} (k % s = {lab.kernel % lab.factor})")

    def figure(self):
        r = self.lab.result
        fig = new_figure((15, 4.6))
        axes = fig.subplots(1, 3)
        draw_images(axes[0], [r.input_crop, r.output_crop],
                    "input crop | output of the random block")
        draw_spectrum(axes[1], r.generated.spectrum, peaks=r.generated.peaks,
                      predicted=[(p.fx, p.fy) for p in r.predicted],
                      title=f"observed: factor {r.generated.upsampling_factor or 'none'} "
                            f"(design {r.spec.total_factor})")
        draw_profiles(axes[2], {"real": r.real.profile, "generated": r.generated.profile},
                      title="radial profiles")
        fig.suptitle(self.checkerboard_text(), fontsize=10)
        fig.tight_layout()
        self.shown = _digest(r.generated.spectrum)
        return fig

    def render(self, **values) -> bytes:
        self.lab.param.update(**values)
        return _png(self.figure())


class NormActLesson(param.Parameterized):
    """Lesson 3: normalization and activations move energy across frequencies.

    Uses a :class:`LabState` with bilinear upsampling (whose nulls leave no replica peaks)
    so that only the radial profile's shape changes.
    """

    sweep = param.Selector(default="activation", objects=["activation", "norm"],
                           doc="Which choice the sweep figure varies")
    shown = param.String(default="")

    def __init__(self, **params):
        super().__init__(**params)
        self.lab = LabState(upsampling="bilinear", blocks=2, norm="none", activation="none")

    def controls(self) -> dict:
        return {**param_widgets(self, ["sweep"]),
                **param_widgets(self.lab, ["norm", "activation", "order"])}

    def profiles(self) -> dict:
        """Generated radial profiles for every value of :attr:`sweep`, others fixed."""
        choices = list(ACTIVATION) if self.sweep == "activation" else list(NORMALIZATION)
        current = getattr(self.lab, self.sweep)
        out = {}
        for value in choices:
            setattr(self.lab, self.sweep, value)
            out[value] = self.lab.result.generated.profile
        setattr(self.lab, self.sweep, current)
        return out

    def figure(self):
        r = self.lab.result
        profiles = self.profiles()
        fig = new_figure((13, 4.4))
        axes = fig.subplots(1, 2)
        fitted = {f"{label} (exponent {float(power_law_fit(prof).exponent):.2f})": prof
                  for label, prof in profiles.items()}
        others = {label: {"color": c} for label, c in zip(fitted, OTHER_COLORS)}
        draw_profiles(axes[0], {"real": r.real.profile, **fitted},
                      styles={"real": {"lw": 2.5}, **others}, legend_size=7,
                      title=f"radial profiles for every {self.sweep}")
        base = profiles[getattr(self.lab, self.sweep)]
        draw_profiles(axes[1], {label: prof._replace(power=prof.power - base.power)
                                for label, prof in profiles.items()},
                      styles={label: {"color": c} for label, c in zip(profiles, OTHER_COLORS)},
                      ylabel="dB", legend_size=7,
                      title=f"difference from the current {self.sweep} "
                            f"({getattr(self.lab, self.sweep)})")
        fig.tight_layout()
        self.shown = _digest(*(p.power for p in profiles.values()), r.generated.spectrum)
        return fig

    def render(self, sweep=None, **values) -> bytes:
        if sweep is not None:
            self.sweep = sweep
        self.lab.param.update(**values)
        return _png(self.figure())


class GeneratorsLesson(param.Parameterized):
    """Lesson 4: random synthetic generators from the design space, against real photos.

    Draws ``models`` specs with :func:`core.synthetic.sample_spec`, runs each on bundled
    crops, and compares their spectra and radial profiles with the real ones.
    """

    models = param.Integer(default=6, bounds=(2, 12), doc="How many random generators")
    seed = param.Integer(default=0, bounds=(0, 999), softbounds=(0, 50),
                         doc="Seed of the draw")
    shown = param.String(default="")

    def controls(self) -> dict:
        return param_widgets(self, ["models", "seed"])

    def run(self) -> list[dict]:
        """``[{spec, report}]`` for each drawn generator (64-px crops, 8 per model)."""
        x = bundled_crops(64, 8, seed=2)
        out = []
        for i in range(self.models):
            spec = sample_spec(self.seed * 1000 + i, channels=16)
            with torch.no_grad():
                y = build_generator(spec).train()(x)
            y = match_statistics(y, x)  # as the lab does: random weights, arbitrary gains
            out.append({"spec": spec, "report": analyse_batches([y])})
        return out

    def detection_table(self, runs: list[dict]) -> list[tuple[str, int, int | None]]:
        """``(design, design factor, detected factor)`` per generator."""
        rows = []
        for r in runs:
            b = r["spec"].up[0]
            rows.append((f"{len(r['spec'].up)}x {b.upsampling} {b.norm} {b.activation} "
                         f"{b.order}", r["spec"].total_factor, r["report"].upsampling_factor))
        return rows

    def figure(self):
        runs = self.run()
        real = analyse_batches([bundled_crops(64, 64, seed=2)])
        cols = min(4, len(runs))
        rows = math.ceil(len(runs) / cols)
        fig = new_figure((4 * cols, 3.6 * rows + 4))
        fig.set_layout_engine("constrained")  # room for the one colour bar of all spectra
        table = self.detection_table(runs)
        # One colour scale for the spectra that are compared here, one bar stating it.
        clim = shared_color_limits([r["report"].spectrum for r in runs])
        spectrum_axes, grid = [], fig.add_gridspec(rows + 1, cols)
        for i, (r, row) in enumerate(zip(runs, table)):
            ax = fig.add_subplot(grid[i // cols, i % cols])
            im = draw_spectrum(ax, r["report"].spectrum, peaks=r["report"].peaks,
                               colorbar=False, legend=False, vmin=clim[0], vmax=clim[1],
                               title=f"{row[0]}\nfactor {row[1]}, detected {row[2]}")
            ax.set_xlabel("")
            ax.set_ylabel("")
            spectrum_axes.append(ax)
        fig.colorbar(im, ax=spectrum_axes, fraction=0.02, label="dB (one scale for all)")
        ax = fig.add_subplot(grid[rows, :])
        # Two draws can share a design (the label), so no label -> profile mapping here.
        ax.plot(real.profile.frequency[1:], real.profile.power[1:], color=ROLE_COLORS["real"],
                lw=2.5, label="real")
        for r, row, color in zip(runs, table, OTHER_COLORS * 2):
            prof = r["report"].profile
            ax.plot(prof.frequency[1:], prof.power[1:], lw=1, color=color, label=row[0])
        ax.set_xlabel("frequency (cycles/pixel)")
        ax.set_ylabel("mean power (dB)")
        ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.12),
                  frameon=False)  # below the axes, off the lines
        ax.grid(alpha=0.3)
        self.shown = _digest(*(r["report"].spectrum for r in runs))
        return fig

    def render(self, **values) -> bytes:
        self.param.update(**values)
        return _png(self.figure())


__all__ = ["FILTERS", "GeneratorsLesson", "NormActLesson", "ReplicaLesson",
           "UpsamplingLesson", "param_widgets"]
