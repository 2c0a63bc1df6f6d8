"""The default zoo: twelve small real generators, as data (:class:`ZooEntry` records).

Pairs that isolate one factor: gan_tconv / gan_tconv_s1 differ only in seed (the hardest
attribution case); gan_tconv / gan_nearest, vae_tconv / vae_bilinear and ddpm_nearest /
ddpm_tconv differ only in upsampling.

Sampling noise: every entry draws its shipped samples with ``SAMPLE_SEED`` plus its seed
(:func:`core.zoo.shipped.sample_seed`), except the entries of :data:`OWN_NOISE`. A
diffusion sampler maps a given noise to nearly the same image whatever the network's
upsampler once two networks have learned the same photos: the DDPM pair, sampled from
one seed, matched pixel for pixel (correlation 0.91 at equal index, -0.01 at shifted
index; the GAN pairs 0.07 against 0.09), so the pair measured its shared noise, not its
upsampling. Their seeds are derived from their names.
"""

from __future__ import annotations

from core.registry import lookup
from core.zoo.entries import ZooEntry


def _gan(name, upsampling, loss="ns", seed=0, norm="batch", act="relu", **options):
    return ZooEntry(name, "gan", upsampling, norm, act, loss, seed=seed, width=32,
                    options=options)


DEFAULT_ZOO: tuple[ZooEntry, ...] = (
    _gan("gan_tconv", "transposed"),
    _gan("gan_tconv_s1", "transposed", seed=1),
    _gan("gan_nearest", "nearest"),
    _gan("gan_bilinear_hinge", "bilinear", loss="hinge", spectral_norm=True),
    _gan("gan_pixelshuffle_lsgan", "pixelshuffle", loss="lsgan", act="leaky_relu"),
    _gan("gan_tconv_wgangp", "transposed", loss="wgan-gp", norm="layer", n_critic=2),
    ZooEntry("vae_tconv", "vae", "transposed", "batch", "leaky_relu", "elbo", width=32),
    ZooEntry("vae_bilinear", "vae", "bilinear", "batch", "leaky_relu", "elbo", width=32),
    ZooEntry("vae_bicubic_beta", "vae", "bicubic", "instance", "silu", "elbo", width=32,
             options={"beta": 4.0}),
    ZooEntry("flow_glow", "flow", "squeeze", "actnorm", "relu", "nll",
             width=64, options={"levels": 3, "depth": 4}),
    ZooEntry("ddpm_nearest", "diffusion", "nearest", "group", "silu", "eps-mse", width=16,
             options={"mults": "1,2"}),
    ZooEntry("ddpm_tconv", "diffusion", "transposed", "group", "silu", "eps-mse", width=16,
             options={"mults": "1,2"}),
)
ZOO: dict[str, ZooEntry] = {e.name: e for e in DEFAULT_ZOO}
OWN_NOISE = frozenset({"ddpm_nearest", "ddpm_tconv"})  # sampling seeds from their names


def get_entry(name: str) -> ZooEntry:
    """The default entry called ``name``; a miss lists the valid names."""
    return lookup(ZOO, name, kind="zoo entry")
