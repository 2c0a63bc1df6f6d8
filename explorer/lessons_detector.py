"""Lesson 7 (``notebooks/07_breaking_a_detector.ipynb``): break a detector that relies on
one trace.

Chandrasegaran et al. (CVPR 2021) showed that the high-frequency discrepancies spectral
detectors rely on come from the *last* upsampling layer, and that swapping only that
layer (a transposed convolution for nearest or bilinear upsampling followed by a
convolution) removes them. Here a random-weight generator (``core.synthetic``) with two
transposed-convolution up-blocks runs on crops of the bundled photos, and two detectors
look at its output:

* the upsampling-lattice test (``core.spectrum.lattice`` through
  :func:`core.analysis.analyse_batches`): a verdict, "generated" when a lattice of the
  design's periods stands out at its false-alarm level, its period and score;
* the shipped fingerprint extractor (loaded with :func:`core.extractor.load_extractor`
  from :data:`core.extractor.DEFAULT_EXTRACTOR`, so a newer shipped extractor is picked
  up as it is): the cosine similarity of the mean embedding of the outputs to that of
  the unchanged generator on other crops. Its verdict, "same generator", holds when the
  similarity is nearer the unchanged generator's own (its outputs on two sets of crops)
  than the real photos' similarity to it (the midpoint of the two is the threshold).

The reader swaps the last layer and applies JPEG and resizing
(:mod:`core.data.processing`) and watches both. No panel import here.
"""

from __future__ import annotations

import functools
from dataclasses import replace

import param
import torch
import torch.nn.functional as F

from core.analysis import SpectrumReport, analyse_batches
from core.data import bundled_crops
from core.data.processing import jpeg, rescale
from core.extractor import DEFAULT_EXTRACTOR, load_extractor
from core.extractor.sizes import embed_any
from core.figures import ROLE_COLORS, draw_images, draw_spectrum, new_figure, shared_color_limits
from core.specs import BlockSpec, GeneratorSpec
from core.spectrum import periods_near
from core.synthetic import build_generator, match_statistics
from explorer.lessons import _digest, _png, param_widgets

SIZE = 64
CROPS = 16
JPEG_BLOCK = 8
LAST_LAYERS = {"Transposed conv (as trained)": "transposed", "Nearest + conv": "nearest",
               "Bilinear + conv": "bilinear"}


@functools.lru_cache(maxsize=1)
def shipped_extractor():
    """The extractor shipped with fpx, loaded once per process."""
    return load_extractor(DEFAULT_EXTRACTOR).eval()


@functools.lru_cache(maxsize=4)
def _crops(seed: int) -> torch.Tensor:
    return bundled_crops(SIZE, CROPS, seed=seed)


def mean_embedding(images: torch.Tensor) -> torch.Tensor:
    """The unit mean of the shipped extractor's unit embeddings of ``(B, 3, H, W)``:
    ``(D,)``."""
    with torch.no_grad():
        return F.normalize(embed_any(shipped_extractor(), images).mean(0), dim=0)


class DetectorLesson(param.Parameterized):
    """Lesson 7: swap the last upsampling layer, compress, resize; what do the lattice
    test and the extractor still see?"""

    last = param.Selector(default="transposed", objects=LAST_LAYERS, label="Last layer",
                          doc="The generator's last up-block: as designed (transposed "
                              "conv k4 s2) or swapped for a fixed upsampler and a conv")
    quality = param.Integer(default=100, bounds=(10, 100), label="JPEG quality",
                            doc="Save the outputs as JPEG at this quality (100: no JPEG)")
    resize = param.Number(default=1.0, bounds=(0.5, 1.5), step=0.25, label="Resize",
                          doc="Resize the outputs by this factor (bicubic; 1: none)")
    seed = param.Integer(default=0, bounds=(0, 999), precedence=-1,
                         doc="The generator's random weights")
    shown = param.String(default="", doc="Digest of the last figure's data")

    def controls(self) -> dict:
        return param_widgets(self, ["last", "quality", "resize"])

    def spec(self, last: str | None = None) -> GeneratorSpec:
        """Two transposed-conv x2 up-blocks (kernel 4), the last one swapped for
        ``last`` (default :attr:`last`); two x2 down-blocks first."""
        block = BlockSpec("transposed", 2, 4, "batch", "relu", "post", 1)
        last = self.last if last is None else last
        end = block if last == "transposed" else replace(block, upsampling=last, kernel=3)
        return GeneratorSpec(up=(block, end), down=2, channels=16, seed=self.seed)

    def outputs(self, last: str | None = None, crops_seed: int = 1) -> torch.Tensor:
        """The generator's outputs ``(CROPS, 3, SIZE, SIZE)`` on bundled crops."""
        x = _crops(crops_seed)
        with torch.no_grad():
            return match_statistics(build_generator(self.spec(last)).train()(x), x)

    def processed(self, y: torch.Tensor) -> torch.Tensor:
        """JPEG at :attr:`quality` (unless 100), then resizing by :attr:`resize`."""
        if self.quality < 100:
            y = jpeg(y, self.quality)
        if self.resize != 1.0:
            y = rescale(y, self.resize)
        return y

    @staticmethod
    def lattice(images: torch.Tensor, compressed: bool = False) -> SpectrumReport:
        """The lattice test on the periods a x4 design makes likely at this size (as the
        lab does); a JPEG's 8x8 block grid is left out of the evidence."""
        return analyse_batches([images], candidates=periods_near(4, images.shape[-1]),
                               fractional=False, draws=99,
                               exclude_period=JPEG_BLOCK if compressed else None)

    @functools.cached_property
    def _reference(self) -> dict:
        """The unchanged generator (other crops) and the real photos: computed once."""
        original = self.outputs("transposed", crops_seed=2)
        real = _crops(1)
        embedding = mean_embedding(original)
        own = float(mean_embedding(self.outputs("transposed", crops_seed=1)) @ embedding)
        real_similarity = float(mean_embedding(real) @ embedding)
        return {"original": original, "original_report": self.lattice(original),
                "original_embedding": embedding, "own_similarity": own,
                "real_similarity": real_similarity, "threshold": (own + real_similarity) / 2,
                "real_report": self.lattice(real)}

    def measure(self, **values) -> dict:
        """Set ``values``, run, and return what both detectors say: the lattice test's
        ``verdict``, ``period``, ``score_db``, ``false_alarm``; the extractor's
        ``similarity`` to the unchanged generator and ``same_generator`` verdict; the
        references (``real_*``, ``original_*``, ``own_similarity``, ``threshold``); and
        ``images`` and ``report`` for drawing."""
        self.param.update(**values)
        ref = self._reference
        images = self.processed(self.outputs())
        report = self.lattice(images, compressed=self.quality < 100)
        similarity = float(mean_embedding(images) @ ref["original_embedding"])
        return {"verdict": verdict(report), "period": report.grid.period,
                "score_db": report.grid.score_db, "false_alarm": report.grid.false_alarm,
                "similarity": similarity, "same_generator": similarity > ref["threshold"],
                "own_similarity": ref["own_similarity"], "threshold": ref["threshold"],
                "real_verdict": verdict(ref["real_report"]),
                "real_similarity": ref["real_similarity"],
                "original_verdict": verdict(ref["original_report"]),
                "original_period": ref["original_report"].grid.period,
                "images": images, "report": report}

    def figure(self, m: dict | None = None):
        m = self.measure() if m is None else m
        ref = self._reference
        report, original = m["report"], ref["original_report"]
        fig = new_figure((13, 7.5))
        grid = fig.add_gridspec(2, 3)
        ax = fig.add_subplot(grid[0, 0])
        shown = F.interpolate(m["images"][:2], size=(SIZE, SIZE), mode="nearest")
        draw_images(ax, [ref["original"][0], *shown],
                    title="unchanged | now (2 outputs, shown at 64 px)")
        clim = shared_color_limits([original.spectrum, report.spectrum]) \
            if report.spectrum.shape == original.spectrum.shape else (None, None)
        draw_spectrum(fig.add_subplot(grid[0, 1]), original.spectrum, peaks=original.peaks,
                      vmin=clim[0], vmax=clim[1], colorbar_label="dB",
                      title=f"unchanged generator: {m['original_verdict']}")
        draw_spectrum(fig.add_subplot(grid[0, 2]), report.spectrum, peaks=report.peaks,
                      vmin=clim[0], vmax=clim[1], colorbar_label="dB",
                      title=f"now: {m['verdict']}")
        ax = fig.add_subplot(grid[1, 0:2])
        names = ["unchanged", "now", "real photos"]
        scores = [original.grid.score_db, report.grid.score_db,
                  ref["real_report"].grid.score_db]
        alarms = [original.grid.false_alarm, report.grid.false_alarm,
                  ref["real_report"].grid.false_alarm]
        colors = [ROLE_COLORS["generated"], ROLE_COLORS["generated"], ROLE_COLORS["real"]]
        bars = ax.bar(names, scores, color=colors, alpha=0.85)
        for bar, alarm in zip(bars, alarms):
            ax.annotate(f"false alarm {alarm:.2f}", (bar.get_x() + bar.get_width() / 2,
                                                     bar.get_height()),
                        ha="center", va="bottom", fontsize=9)
        ax.set_ylabel("lattice score (dB)")
        ax.set_title("the lattice test (a verdict needs false alarm <= "
                     f"{report.grid.alpha:.2f})")
        ax = fig.add_subplot(grid[1, 2])
        ax.bar(["unchanged\n(other crops)", "now", "real photos"],
               [m["own_similarity"], m["similarity"], m["real_similarity"]],
               color=colors, alpha=0.85)
        ax.axhline(m["threshold"], color="black", lw=1, ls="--", label="threshold")
        ax.axhline(0, color="black", lw=0.5)
        ax.set_ylim(-1, 1)
        ax.set_ylabel("cosine similarity to the unchanged generator")
        ax.legend(fontsize=8, loc="lower left")
        ax.set_title("extractor: " + ("same generator" if m["same_generator"]
                                      else "not the same generator"))
        fig.tight_layout()
        self.shown = _digest(report.spectrum, [m["similarity"], report.grid.score_db])
        return fig

    def render(self, **values) -> bytes:
        return _png(self.figure(self.measure(**values)))


def verdict(report: SpectrumReport) -> str:
    """The lattice detector's verdict in words."""
    g = report.grid
    if g.period is None:
        return f"looks real (no lattice; false alarm {g.false_alarm:.2f})"
    return f"generated (period {g.period}, {g.score_db:.1f} dB)"


__all__ = ["LAST_LAYERS", "DetectorLesson", "mean_embedding", "shipped_extractor", "verdict"]
