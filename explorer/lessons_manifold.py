"""Lesson 6 (``notebooks/06_manifold_artifacts.ipynb``): the second definition of a
fingerprint, ManiFPT's artifacts.

A generated sample's *artifact* is the sample minus its nearest real image, measured in a
space (``rgb`` pixels, ``freq`` log spectra, or ``learned`` features of the shipped
extractor): :func:`core.manifold.artifacts.compute_artifacts`, used read-only. The lesson
shows one sample of a shipped zoo model, its nearest real crop, the artifact in the chosen
space and the mean spectrum of the model's pixel artifacts; then it asks whether
artifacts tell models apart better than the raw samples do, on two sets:

* a **planted toy**: real crops of the zoo's photos plus a faint grating, one frequency
  per "model" (and iid noise), so the fingerprint is known;
* the **zoo**: the shipped samples of every entry (``core/assets/zoo``).

Separability is the Fisher ratio (:func:`core.manifold.attribution.fisher_ratio`, no
training) in the figure, and a trained attribution classifier
(:func:`core.manifold.attribution.attribute`) in :meth:`ArtifactLesson.attribution`.
No panel import here.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import param
import torch

from core.data import read_folder
from core.figures import ROLE_COLORS, draw_images, draw_spectrum, new_figure
from core.manifold.artifacts import REAL, ArtifactSet, compute_artifacts
from core.manifold.attribution import AttributionConfig, attribute, fisher_ratio
from core.manifold.embeddings import SPACES, embed
from core.spectrum import power_spectrum
from core.zoo.shipped import SHIPPED_ZOO, read_manifest
from explorer.lessons import OTHER_COLORS, _digest, _png, param_widgets

SIZE = 32
PER_MODEL = 32  # samples of each zoo entry (and of each toy model) used
REFERENCE = 320  # real crops: the reference set and the held-out real class
HELD_OUT = 32
# Toy fingerprints: one grating (fy, fx) in cycles/pixel per planted model; faint
# (amplitude 0.08 in [-1, 1] units, a 40th of a crop's spread) and near Nyquist, where the
# photos have little energy.
GRATINGS = ((0.5, 0.5), (0.5, 0.0), (0.0, 0.5), (0.25, 0.5))
AMPLITUDE, NOISE = 0.08, 0.02
QUICK = AttributionConfig(epochs=4, batch=32, width=8, seeds=(0,))


@functools.lru_cache(maxsize=1)
def zoo_images() -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """The first :data:`PER_MODEL` shipped samples of each zoo entry ``(N, 3, 32, 32)``,
    and the first :data:`REFERENCE` real crops, in ``[-1, 1]``."""
    manifest = read_manifest()
    samples = {name: read_folder(SHIPPED_ZOO / entry.folder, SIZE)[0][:PER_MODEL]
               for name, entry in manifest.entries.items()}
    real = read_folder(SHIPPED_ZOO / manifest.real.folder, SIZE)[0][:REFERENCE]
    return samples, real


def planted_toy(real: torch.Tensor, seed: int = 0) -> dict[str, torch.Tensor]:
    """Toy models: real crops (drawn with ``seed``) plus one model's grating and noise,
    ``{"toy0": (PER_MODEL, 3, H, W), ...}`` in ``[-1, 1]``."""
    g = torch.Generator().manual_seed(seed)
    h, w = real.shape[-2:]
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    out = {}
    for k, (fy, fx) in enumerate(GRATINGS):
        base = real[torch.randint(len(real), (PER_MODEL,), generator=g)]
        grating = AMPLITUDE * torch.cos(2 * math.pi * (fy * yy + fx * xx))
        noise = NOISE * torch.randn(base.shape, generator=g)
        out[f"toy{k}"] = (base + grating + noise).clamp(-1, 1)
    return out


@functools.lru_cache(maxsize=6)
def artifact_set(which: str, space: str) -> ArtifactSet:
    """Artifacts of the ``zoo`` or the ``toy`` models in ``space``, against the zoo's real
    crops, with :data:`HELD_OUT` of them held out as the ``real`` class."""
    samples, real = zoo_images()
    generated = samples if which == "zoo" else planted_toy(real)
    return compute_artifacts(generated, real, space, holdout_real=HELD_OUT, seed=0)


@functools.lru_cache(maxsize=6)
def raw_features(which: str, space: str) -> np.ndarray:
    """The samples of :func:`artifact_set` themselves in its space, ``(N, D)``: what a
    classifier of raw samples sees (the artifact is this minus the nearest real
    image's)."""
    images = torch.from_numpy(artifact_set(which, space).images).float() / 127.5 - 1
    return embed(images, space).numpy()


def _labels(artifacts: ArtifactSet) -> tuple[np.ndarray, list[str]]:
    names = [REAL, *sorted(set(artifacts.labels.tolist()) - {REAL})]
    index = {n: i for i, n in enumerate(names)}
    return np.array([index[str(label)] for label in artifacts.labels]), names


class ArtifactLesson(param.Parameterized):
    """Lesson 6: one sample's artifact, the model's artifact spectrum, and whether
    artifacts attribute better than raw samples (toy and zoo)."""

    model = param.Selector(default="gan_tconv", objects=sorted(read_manifest().entries),
                           label="Zoo model", doc="A generator of the shipped zoo")
    sample = param.Integer(default=0, bounds=(0, PER_MODEL - 1), label="Sample",
                           doc="Which of the model's samples")
    space = param.Selector(default="rgb", objects=list(SPACES), label="Space",
                           doc="Where the nearest real image is found and the artifact "
                               "measured: pixels, log spectra, or the extractor's features")
    shown = param.String(default="", doc="Digest of the last figure's data")

    def controls(self) -> dict:
        return param_widgets(self, ["model", "sample", "space"])

    def separability(self, space: str | None = None) -> dict[str, dict[str, float]]:
        """Fisher ratios ``{"toy"|"zoo": {"raw": J, "artifacts": J}}`` in ``space``."""
        out = {}
        for which in ("toy", "zoo"):
            arts = artifact_set(which, space or self.space)
            labels, _ = _labels(arts)
            out[which] = {"raw": fisher_ratio(raw_features(which, arts.space), labels),
                          "artifacts": fisher_ratio(arts.artifacts, labels)}
        return out

    def attribution(self, space: str | None = None,
                    config: AttributionConfig = QUICK) -> dict[str, dict[str, float]]:
        """Test accuracy of a trained attribution classifier ``{"toy"|"zoo": {"raw",
        "artifacts", "chance"}}``, raw samples against artifacts in ``space``: an MLP on
        the space's vectors (the small ResNet ``fpx attribute`` gives image-shaped
        artifacts costs minutes on a CPU; this costs seconds)."""
        out = {}
        for which in ("toy", "zoo"):
            arts = artifact_set(which, space or self.space)
            labels, names = _labels(arts)
            raw, art = raw_features(which, arts.space), arts.artifacts
            out[which] = {"raw": attribute(raw, labels, names, config).accuracy_mean,
                          "artifacts": attribute(art, labels, names, config).accuracy_mean,
                          "chance": 1 / len(names)}
        return out

    def figure(self):
        arts = artifact_set("zoo", self.space)
        _, real = zoo_images()
        rows = np.flatnonzero(arts.labels == self.model)
        i = rows[min(self.sample, len(rows) - 1)]
        sample = torch.from_numpy(arts.images[i]).float() / 127.5 - 1
        # The neighbour's index is into the reference set; its path, "real[j]", names the
        # crop among all of them (the held-out ones are not in the reference set).
        neighbour = real[int(str(arts.real_paths[arts.neighbors[i, 0]])[5:-1])]
        pixel = torch.from_numpy(arts.image_artifacts[i])
        scale = float(pixel.abs().max()) or 1.0
        fig = new_figure((14, 8))
        grid = fig.add_gridspec(2, 3)
        draw_images(fig.add_subplot(grid[0, 0]), [sample, neighbour, pixel / scale],
                    title=f"{self.model}: sample | nearest real ({self.space}) | "
                          f"difference (x{1 / scale:.1f})")
        ax = fig.add_subplot(grid[0, 1])
        vector = arts.artifacts[i]
        if self.space == "learned":
            ax.stem(vector, markerfmt=" ", basefmt="k-")
            ax.set_xlabel("feature")
            ax.set_title(f"artifact in the learned space ({len(vector)} features)")
        else:
            shown = vector.reshape(3, SIZE, SIZE).mean(0)
            if self.space == "freq":  # log10 |X| per channel: show dB, centred layout
                draw_spectrum(ax, 20 * shown, diverging=True, colorbar_label="dB",
                              title="artifact in the freq space (sample - nearest)")
            else:
                lim = float(np.abs(shown).max()) or 1.0
                im = ax.imshow(shown, cmap="RdBu_r", vmin=-lim, vmax=lim)
                fig.colorbar(im, ax=ax, fraction=0.046)
                ax.axis("off")
                ax.set_title("artifact in the rgb space (channel mean)")
        mine = torch.from_numpy(arts.image_artifacts[rows])
        spectrum = power_spectrum(mine).mean((0, 1))
        draw_spectrum(fig.add_subplot(grid[0, 2]), spectrum, colorbar_label="dB",
                      title=f"{self.model}: mean spectrum of its pixel artifacts")
        ax = fig.add_subplot(grid[1, :])
        ratios = self.separability()
        names = [f"{which}: {kind}" for which in ratios for kind in ratios[which]]
        values = [ratios[which][kind] for which in ratios for kind in ratios[which]]
        colors = [ROLE_COLORS["real"] if n.endswith("raw") else OTHER_COLORS[0]
                  for n in names]
        bars = ax.bar(names, values, color=colors)
        ax.bar_label(bars, fmt="%.3g", fontsize=9)
        ax.set_yscale("log")
        ax.set_ylabel("Fisher ratio (between / within)")
        ax.set_title(f"how far apart the models are in the {self.space} space: raw samples "
                     "against artifacts (higher: easier to attribute)")
        fig.tight_layout()
        self.shown = _digest(vector, pixel, spectrum, values)
        return fig

    def render(self, **values) -> bytes:
        self.param.update(**values)
        return _png(self.figure())


__all__ = ["GRATINGS", "ArtifactLesson", "artifact_set", "planted_toy", "raw_features",
           "zoo_images"]
