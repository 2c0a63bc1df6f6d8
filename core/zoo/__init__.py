"""The generator zoo: small real GANs, VAEs, flows and diffusion models whose design
choices are recorded as data (:mod:`core.zoo.entries`)."""

from core.zoo import diffusion, flow, gan, vae  # noqa: F401  (register the families)
from core.zoo.base import FAMILIES, ZooModel, build_model, register_family, up_block
from core.zoo.entries import DEFAULT_ZOO, FAMILY_NAMES, ZOO, ZooEntry, get_entry

__all__ = ["DEFAULT_ZOO", "FAMILIES", "FAMILY_NAMES", "ZOO", "ZooEntry", "ZooModel",
           "build_model", "get_entry", "register_family", "up_block"]
