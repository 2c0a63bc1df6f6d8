"""The generator zoo: small real GANs, VAEs, flows and diffusion models whose design
choices are recorded as data (:mod:`core.zoo.entries`)."""

# The families register themselves on import, in this order; the default entries are
# checked against them, so they come after.
from core.zoo import gan, vae, flow, diffusion  # noqa: F401, I001
from core.zoo.base import (
    FAMILIES,
    PRESET_NAMES,
    Family,
    ZooModel,
    ZooSettings,
    build_model,
    get_family,
    register_family,
    up_block,
)
from core.zoo.default import DEFAULT_ZOO, ZOO, get_entry
from core.zoo.entries import ZooEntry
from core.zoo.quality import QualityReport

FAMILY_NAMES = tuple(FAMILIES)  # the built-in families

# The manifest records (ZooManifest, ShippedEntry, RealCrops) stay in core.zoo.shipped:
# importing it pulls in training and figures, which `import core.zoo` should not.
__all__ = ["DEFAULT_ZOO", "FAMILIES", "FAMILY_NAMES", "PRESET_NAMES", "ZOO", "Family",
           "QualityReport", "ZooEntry", "ZooModel", "ZooSettings", "build_model", "get_entry",
           "get_family", "register_family", "up_block"]
