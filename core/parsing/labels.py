"""The design fields a parsing head predicts, read from what each kind of model records.

A synthetic model's fields come from its spec (:class:`core.specs.GeneratorSpec` of the
autoencoder space or :class:`core.synthetic.decoder.DecoderSpec`); a zoo entry's from its
recorded design and the period :func:`core.zoo.design.design_of` derives from it. The
vocabularies agree by construction: both name blocks by the same registries
(:mod:`core.blocks`), so ``transposed`` in a spec and in a zoo entry are one label.

Fields (:data:`FIELDS`):
  * ``upsampling``: the up-block kind (of the last stage, the one nearest the pixels);
  * ``normalization``, ``activation``: the up-blocks' (of the last stage);
  * ``period``: the product of the up-stages' factors, ``2**stages`` for x2 stages: the
    period of the lattice in pixels (as a string, like every label).
"""

from __future__ import annotations

import math

FIELDS = ("upsampling", "normalization", "activation", "period")


def spec_labels(spec) -> dict[str, str]:
    """A synthetic spec's fields (anything with ``up``: a tuple of
    :class:`core.specs.BlockSpec`)."""
    last = spec.up[-1]
    period = math.prod(b.factor for b in spec.up)
    return {"upsampling": last.upsampling, "normalization": last.norm,
            "activation": last.activation, "period": str(period)}


def entry_labels(entry, size: int) -> dict[str, str]:
    """A zoo entry's fields at ``size`` px (its period as its design predicts; ``"none"``
    when the design has no up-stage)."""
    from core.zoo.design import design_of

    period = design_of(entry, size).period
    return {"upsampling": entry.upsampling, "normalization": entry.normalization,
            "activation": entry.activation, "period": str(period) if period else "none"}
