"""A Spectrum Lab design as a zoo entry: the lab's generator choices (upsampling, scale
factor, kernel, normalization, activation) become a :class:`~core.zoo.ZooEntry` of the
GAN or VAE family, with a generated name, recorded as JSON like every entry, that
``fpx zoo train ENTRY.json`` trains.

The zoo's generators grow a 4x4 map to the image by x2 stages (``core.zoo.base``), so a
lab design with scale factor 4 is refused with a one-line reason; the kernel is kept
(entry option ``kernel``) where the upsampler learns its filter (transposed conv, zero
insertion), since there it shapes the checkerboard.
"""

from __future__ import annotations

from core.blocks import ACTIVATION, NORMALIZATION, UPSAMPLING, upsampler
from core.errors import InvalidInputError, check_int
from core.zoo.entries import ZooEntry

LOSSES = {"gan": "ns", "vae": "elbo"}
ZOO_KERNEL = 4  # the zoo's default kernel of a checkerboarding upsampler (DCGAN's k4 s2)



def _lab_presets() -> dict[str, dict]:
    """The lab's defaults and presets (``explorer.state``, read only) as design choices;
    a preset without a kernel keeps the lab's default one."""
    from explorer.state import PRESETS, LabState

    defaults = {k: LabState.param[k].default for k in ("upsampling", "factor", "kernel",
                                                       "norm", "activation")}
    return {"Lab defaults": defaults,
            **{name: {k: p.get(k, v) for k, v in defaults.items()}
               for name, p in PRESETS.items()}}


DESIGN_PRESETS: dict[str, dict] = _lab_presets()
LIVE = "This session's Spectrum Lab"  # the design set now in the lab, not a preset
# The teaching pair: one seed, one architecture but the upsampler.
PAIR = ("DCGAN-like transposed conv", "Resize-conv (nearest)")
DESIGN_KEYS = ("upsampling", "factor", "kernel", "norm", "activation")


def lab_design(lab) -> dict:
    """The design choices of a Spectrum Lab state (``explorer.state.LabState``), read
    only."""
    return {k: getattr(lab, k) for k in DESIGN_KEYS}


def design_name(values: dict, family: str) -> str:
    """``lab_gan_transposed_k3_batch_relu``: the entry's generated name, from its choices."""
    kernel = f"_k{values['kernel']}" if _learned(values["upsampling"]) else ""
    return f"lab_{family}_{values['upsampling']}{kernel}_{values['norm']}_" \
           f"{values['activation']}".lower()


def _learned(upsampling: str) -> bool:
    return upsampler(upsampling).checkerboard


def design_entry(values: dict, family: str = "gan", seed: int = 0) -> ZooEntry:
    """The zoo entry of a lab design (``values`` as :func:`lab_design` gives them)."""
    missing = [k for k in DESIGN_KEYS if k not in values]
    if missing:
        raise InvalidInputError(f"a lab design needs {', '.join(missing)}")
    if family not in LOSSES:
        raise InvalidInputError(f"a lab design trains as a gan or a vae, not {family!r}")
    for key, allowed in (("upsampling", UPSAMPLING), ("norm", NORMALIZATION),
                         ("activation", ACTIVATION)):
        if values[key] not in allowed:
            raise InvalidInputError(f"lab design: {key} must be one of "
                                    f"{', '.join(allowed)}, got {values[key]!r}")
    if values["factor"] != 2:
        raise InvalidInputError(f"the zoo's generators upsample x2 per stage; the lab's "
                                f"scale factor {values['factor']} cannot train: set it to 2")
    kernel = check_int("lab design kernel", values["kernel"], 1, 8)
    options = {}
    if _learned(values["upsampling"]) and kernel != ZOO_KERNEL:
        options["kernel"] = kernel
    width = 32  # as the default zoo's GANs and VAEs
    return ZooEntry(design_name(values, family), family, values["upsampling"],
                    values["norm"], values["activation"], LOSSES[family], seed=seed,
                    width=width, options=options)
