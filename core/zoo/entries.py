"""Zoo entries as data: a name and every design choice of one small real generator.

An entry is a frozen, JSON-serialisable record, checked against the family registry
(``core.zoo.base.FAMILIES``: the family's losses and any fixed design choice). Families
read their architecture from it, manifests store it, and the manifold fingerprint work
(``core.manifold``) groups models by its fields. The default entries live in
:mod:`core.zoo.default`::

    entry = get_entry("gan_tconv")
    entry.upsampling, entry.normalization, entry.loss    # 'transposed', 'batch', 'ns'
    ZooEntry.from_dict(entry.to_dict()) == entry         # exact round trip
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field

from core.blocks import ACTIVATION, NORMALIZATION, UPSAMPLING
from core.errors import SpecError, check_int
from core.zoo.base import FAMILIES, RESOLUTIONS

MAX_OPTION = 100_000  # a diffusion's 1000 timesteps, a flow's few levels: far below


@dataclass(frozen=True)
class ZooEntry:
    """One zoo generator's identity and design choices.

    Attributes:
        name: unique, ``[a-z0-9_]``; also the folder name of its samples.
        family: a name in ``core.zoo.base.FAMILIES`` (``gan | vae | flow | diffusion``).
        upsampling: a ``core.blocks.UPSAMPLING`` name, unless the family fixes it
            (``squeeze`` for flows).
        normalization: a ``core.blocks.NORMALIZATION`` name, unless the family fixes it
            (``actnorm`` for flows).
        activation: a ``core.blocks.ACTIVATION`` name.
        loss: the training objective, one of the family's ``losses``.
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
    family = FAMILIES.get(e.family) if isinstance(e.family, str) else None
    if family is None:
        raise SpecError(f"{e.name}: family must be one of {', '.join(FAMILIES)}, "
                        f"got {e.family!r}")
    up = family.upsampling or tuple(UPSAMPLING)
    norm = family.normalization or tuple(NORMALIZATION)
    for fld, allowed in (("upsampling", up), ("normalization", norm),
                         ("activation", tuple(ACTIVATION)), ("loss", family.losses)):
        value = getattr(e, fld)
        if value not in allowed:
            raise SpecError(f"{e.name}: {fld} must be one of {', '.join(sorted(allowed))} "
                            f"for a {e.family}, got {value!r}")
    if e.resolution not in RESOLUTIONS:
        raise SpecError(f"{e.name}: resolution must be one of {RESOLUTIONS}, "
                        f"got {e.resolution!r}")
    # Widths and latents are bounded: an entry read back from a checkpoint or manifest
    # must not ask for a network of gigabytes (width 256 is four times the largest entry).
    for fld, lo, hi in (("seed", 0, 2**63 - 1), ("width", 1, 256), ("latent", 1, 4096)):
        check_int(f"{e.name}: {fld}", getattr(e, fld), lo, hi, error=SpecError)
    if not isinstance(e.data, str) or not e.data:
        raise SpecError(f"{e.name}: data must be 'bundled', a folder or 'cifar10:PATH'")
    if not isinstance(e.options, dict) or not all(
            isinstance(k, str) and (v is None or isinstance(v, (bool, int, float, str)))
            for k, v in e.options.items()):
        raise SpecError(f"{e.name}: options must map names to JSON scalars")
    for key, value in e.options.items():  # counts (timesteps, levels, depth) allocate
        if isinstance(value, int) and not isinstance(value, bool) \
                and abs(value) > MAX_OPTION:
            raise SpecError(f"{e.name}: option {key} must be at most {MAX_OPTION} in size, "
                            f"got {value}")
        if isinstance(value, float) and not math.isfinite(value):
            raise SpecError(f"{e.name}: option {key} must be finite, got {value}")
