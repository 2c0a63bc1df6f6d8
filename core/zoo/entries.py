"""Zoo entries as data: a name and every design choice of one small real generator.

An entry is a frozen, JSON-serialisable record. Families read their architecture from it
(``core.zoo.FAMILIES[entry.family](entry)``), manifests store it, and the manifold
fingerprint work (``core.manifold``) groups models by its fields::

    entry = get_entry("gan_tconv")
    entry.upsampling, entry.normalization, entry.loss    # 'transposed', 'batch', 'ns'
    ZooEntry.from_dict(entry.to_dict()) == entry         # exact round trip
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

from core.blocks import ACTIVATION, NORMALIZATION, UPSAMPLING
from core.errors import SpecError, UnknownNameError

FAMILY_NAMES = ("gan", "vae", "flow", "diffusion")
# The objective each family may be trained with.
LOSSES = {
    "gan": ("ns", "hinge", "lsgan", "wgan-gp"),
    "vae": ("elbo",),
    "flow": ("nll",),
    "diffusion": ("eps-mse",),
}
# Flows do not upsample features: their only resolution change is the (un)squeeze, a
# lossless space-to-depth reshuffle; they normalise with actnorm.
FLOW_UPSAMPLING = "squeeze"
FLOW_NORMALIZATION = "actnorm"
RESOLUTIONS = (32, 64)


@dataclass(frozen=True)
class ZooEntry:
    """One zoo generator's identity and design choices.

    Attributes:
        name: unique, ``[a-z0-9_]``; also the folder name of its samples.
        family: ``gan | vae | flow | diffusion``.
        upsampling: a ``core.blocks.UPSAMPLING`` name (``squeeze`` for flows).
        normalization: a ``core.blocks.NORMALIZATION`` name (``actnorm`` for flows).
        activation: a ``core.blocks.ACTIVATION`` name.
        loss: the training objective, one of ``LOSSES[family]``.
        resolution: default image side in pixels (``fpx zoo train --size`` overrides).
        data: default training data, ``bundled``, a folder path or ``cifar10:PATH``.
        seed: seeds initial weights, data order and sampling noise.
        width: base channel count of the networks.
        latent: latent size (GAN, VAE); ignored by flows and diffusion.
        options: family-specific extras as JSON scalars (``beta``, ``spectral_norm``,
            ``levels``, ``depth``, ``timesteps`` ...; each family documents its own).
    """

    name: str
    family: str
    upsampling: str
    normalization: str
    activation: str
    loss: str
    resolution: int = 32
    data: str = "bundled"
    seed: int = 0
    width: int = 64
    latent: int = 64
    options: dict = field(default_factory=dict)

    def __post_init__(self):
        _validate(self)
        object.__setattr__(self, "options", dict(self.options))

    def option(self, key: str, default):
        return self.options.get(key, default)

    def design(self) -> dict:
        """The recorded design choices (what attribution and clustering group by)."""
        return {"family": self.family, "upsampling": self.upsampling,
                "normalization": self.normalization, "activation": self.activation,
                "loss": self.loss}

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> ZooEntry:
        if not isinstance(d, dict):
            raise SpecError(f"a zoo entry must be a JSON object, got {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        extra = sorted(set(d) - known)
        if extra:
            raise SpecError(f"unknown zoo entry field(s) {extra}; valid: {sorted(known)}")
        try:
            return cls(**d)
        except TypeError as err:
            raise SpecError(f"bad zoo entry: {err}") from None


def _validate(e: ZooEntry) -> None:
    if not isinstance(e.name, str) or not e.name or not all(
            c.islower() or c.isdigit() or c == "_" for c in e.name):
        raise SpecError(f"entry name must be non-empty [a-z0-9_], got {e.name!r}")
    if e.family not in FAMILY_NAMES:
        raise SpecError(f"{e.name}: family must be one of {', '.join(FAMILY_NAMES)}, "
                        f"got {e.family!r}")
    if e.family == "flow":
        up, norm = (FLOW_UPSAMPLING,), (FLOW_NORMALIZATION,)
    else:
        up, norm = tuple(UPSAMPLING), tuple(NORMALIZATION)
    for fld, allowed in (("upsampling", up), ("normalization", norm),
                         ("activation", tuple(ACTIVATION)), ("loss", LOSSES[e.family])):
        value = getattr(e, fld)
        if value not in allowed:
            raise SpecError(f"{e.name}: {fld} must be one of {', '.join(sorted(allowed))} "
                            f"for a {e.family}, got {value!r}")
    if e.resolution not in RESOLUTIONS:
        raise SpecError(f"{e.name}: resolution must be one of {RESOLUTIONS}, "
                        f"got {e.resolution!r}")
    for fld in ("seed", "width", "latent"):
        value, low = getattr(e, fld), 0 if fld == "seed" else 1
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise SpecError(f"{e.name}: {fld} must be an integer >= {low}, got {value!r}")
    if not isinstance(e.data, str) or not e.data:
        raise SpecError(f"{e.name}: data must be 'bundled', a folder or 'cifar10:PATH'")
    if not isinstance(e.options, dict) or not all(
            isinstance(k, str) and (v is None or isinstance(v, (bool, int, float, str)))
            for k, v in e.options.items()):
        raise SpecError(f"{e.name}: options must map names to JSON scalars")


def _gan(name, upsampling, loss="ns", seed=0, norm="batch", act="relu", **options):
    return ZooEntry(name, "gan", upsampling, norm, act, loss, seed=seed, width=32,
                    options=options)


# The default zoo. Pairs that isolate one factor: gan_tconv / gan_tconv_s1 differ only in
# seed (the hardest attribution case); gan_tconv / gan_nearest, vae_tconv / vae_bilinear
# and ddpm_nearest / ddpm_tconv differ only in upsampling.
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
    ZooEntry("flow_glow", "flow", FLOW_UPSAMPLING, FLOW_NORMALIZATION, "relu", "nll",
             width=64, options={"levels": 3, "depth": 4}),
    ZooEntry("ddpm_nearest", "diffusion", "nearest", "group", "silu", "eps-mse", width=16,
             options={"mults": "1,2"}),
    ZooEntry("ddpm_tconv", "diffusion", "transposed", "group", "silu", "eps-mse", width=16,
             options={"mults": "1,2"}),
)
ZOO: dict[str, ZooEntry] = {e.name: e for e in DEFAULT_ZOO}


def get_entry(name: str) -> ZooEntry:
    """The default entry called ``name``; a miss lists the valid names."""
    try:
        return ZOO[name]
    except (KeyError, TypeError):
        raise UnknownNameError(f"unknown zoo entry '{name}'; valid: "
                               f"{', '.join(ZOO)}") from None
