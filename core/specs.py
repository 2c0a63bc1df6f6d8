"""Generator specs: frozen, validated, JSON-serialisable descriptions of an architecture.

A :class:`GeneratorSpec` is the design card of a shallow image-to-image generator in the
style of Yang et al.'s synthetic models: ``down`` down-blocks (average pool x2, conv,
norm, ReLU) bring a real image to a bottleneck, then the up-blocks (:class:`BlockSpec`)
bring it back up. The spec is pure data: ``core.synthetic`` builds the network,
``core.theory`` predicts its spectral traces and :func:`spec_distance` says how far two
designs are apart.

JSON round trip is exact: ``GeneratorSpec.from_json(spec.to_json()) == spec``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from core.blocks import ACTIVATION, NORMALIZATION, UPSAMPLING, upsampler
from core.errors import SpecError, check_int

ORDERS = ("post", "pre")
SPEC_FORMAT = "fpx.generator_spec/1"

# Bounds that keep every spec buildable and meaningful; the messages quote them.
MAX_FACTOR = 8
MAX_KERNEL = 11
MAX_CONVS = 4
MAX_BLOCKS = 4
MAX_DOWN = 6
MAX_CHANNELS = 1024


def _choice(owner: str, name: str, value: Any, allowed) -> None:
    if not isinstance(value, str) or value not in allowed:
        raise SpecError(
            f"{owner}.{name} = {value!r} is not allowed; choose from {', '.join(sorted(allowed))}"
        )


def _int_in(owner: str, name: str, value: Any, lo: int, hi: int) -> None:
    check_int(f"{owner}.{name}", value, lo, hi, error=SpecError)


@dataclass(frozen=True)
class BlockSpec:
    """One up-block.

    Attributes:
        upsampling: a name in :data:`core.blocks.UPSAMPLING`.
        factor: upsampling factor ``s`` (output is ``s`` times larger per axis).
        kernel: kernel size of the upsampling layer's own convolution: the transposed
            convolution's kernel for ``transposed`` (default ``factor``), else the conv
            that follows interpolation / zero insertion or precedes pixel shuffle
            (default 3, must be odd). The upsampler's record
            (:class:`core.blocks.Upsampler`) says which. Further convs are 3x3.
        norm: a name in :data:`core.blocks.NORMALIZATION`.
        activation: a name in :data:`core.blocks.ACTIVATION`.
        order: ``post`` = up, conv(s), norm, act; ``pre`` = norm, act, up, conv(s).
        convs: convolutions per block, counting the upsampling layer's own.
    """

    upsampling: str = "transposed"
    factor: int = 2
    kernel: int | None = None
    norm: str = "batch"
    activation: str = "relu"
    order: str = "post"
    convs: int = 1

    def __post_init__(self) -> None:
        owner = "block"
        _choice(owner, "upsampling", self.upsampling, UPSAMPLING)
        _int_in(owner, "factor", self.factor, 2, MAX_FACTOR)
        up = upsampler(self.upsampling)
        if self.kernel is None:
            object.__setattr__(self, "kernel", up.kernel_for(self.factor))
        _int_in(owner, "kernel", self.kernel, 1, MAX_KERNEL)
        if not up.allows_kernel(self.kernel):
            even = sorted(f"'{n}'" for n, u in UPSAMPLING.items() if u.kernels == "any")
            raise SpecError(
                f"block.kernel = {self.kernel} must be odd for upsampling '{self.upsampling}' "
                f"(only {', '.join(even)} {'takes' if len(even) == 1 else 'take'} even kernels)"
            )
        _choice(owner, "norm", self.norm, NORMALIZATION)
        _choice(owner, "activation", self.activation, ACTIVATION)
        _choice(owner, "order", self.order, ORDERS)
        _int_in(owner, "convs", self.convs, 1, MAX_CONVS)

    @property
    def uneven_overlap(self) -> bool:
        """True when the upsampler's taps overlap unevenly (a transposed convolution whose
        kernel is not a multiple of its stride): a checkerboard."""
        return upsampler(self.upsampling).uneven_overlap(self.kernel, self.factor)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> BlockSpec:
        return cls(**_fields_of(cls, data, "block"))


@dataclass(frozen=True)
class GeneratorSpec:
    """A whole generator: down-blocks, then up-blocks.

    Attributes:
        up: the up-blocks, applied in order; the total factor is the product of theirs.
        down: number of x2 down-blocks before the up-blocks (0 = the input is the latent
            feature map). With ``2**down == total factor`` the output has the input's size.
        channels: feature channels inside the network.
        in_channels, out_channels: image channels (3 for RGB).
        seed: initialisation seed. Not a design choice: :func:`spec_distance` ignores it.
        name: free label, ignored by :func:`spec_distance`.
    """

    up: tuple[BlockSpec, ...] = field(default_factory=lambda: (BlockSpec(),))
    down: int = 1
    channels: int = 32
    in_channels: int = 3
    out_channels: int = 3
    seed: int = 0
    name: str = ""

    def __post_init__(self) -> None:
        owner = "spec"
        up = self.up
        if isinstance(up, BlockSpec):
            up = (up,)
        if not isinstance(up, (tuple, list)) or not up:
            raise SpecError(f"spec.up must be a non-empty list of blocks, got {self.up!r}")
        if len(up) > MAX_BLOCKS:
            raise SpecError(f"spec.up has {len(up)} blocks; at most {MAX_BLOCKS} are allowed")
        blocks = tuple(b if isinstance(b, BlockSpec) else BlockSpec.from_dict(b) for b in up)
        object.__setattr__(self, "up", blocks)
        _int_in(owner, "down", self.down, 0, MAX_DOWN)
        _int_in(owner, "channels", self.channels, 1, MAX_CHANNELS)
        _int_in(owner, "in_channels", self.in_channels, 1, 4)
        _int_in(owner, "out_channels", self.out_channels, 1, 4)
        _int_in(owner, "seed", self.seed, 0, 2**63 - 1)
        if not isinstance(self.name, str):
            raise SpecError(f"spec.name must be a string, got {self.name!r}")

    @property
    def total_factor(self) -> int:
        """Product of the up-blocks' factors."""
        out = 1
        for block in self.up:
            out *= block.factor
        return out

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["up"] = [b.to_dict() for b in self.up]
        return {"format": SPEC_FORMAT, **data}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False)

    @classmethod
    def from_dict(cls, data: Any) -> GeneratorSpec:
        if isinstance(data, dict) and "format" in data:
            if data["format"] != SPEC_FORMAT:
                raise SpecError(
                    f"spec.format = {data['format']!r} is not supported; expected {SPEC_FORMAT!r}"
                )
            data = {k: v for k, v in data.items() if k != "format"}
        values = _fields_of(cls, data, "spec")
        if "up" in values and isinstance(values["up"], list):
            values["up"] = tuple(
                BlockSpec.from_dict(b) if not isinstance(b, BlockSpec) else b
                for b in values["up"]
            )
        return cls(**values)

    @classmethod
    def from_json(cls, text: str | bytes) -> GeneratorSpec:
        """Parse a spec from JSON text; at most :data:`MAX_SPEC_BYTES`, and anything that
        is not a spec (binary bytes, deep nesting, giant integers) is a :class:`SpecError`."""
        if len(text) > MAX_SPEC_BYTES:
            raise SpecError(f"spec JSON is {len(text)} bytes; a spec is at most "
                            f"{MAX_SPEC_BYTES}")
        if not text.strip():
            raise SpecError("spec JSON is empty")
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise SpecError(f"spec JSON is not valid JSON: {err}") from None
        except RecursionError:
            raise SpecError("spec JSON is nested too deeply to be a spec") from None
        except ValueError as err:  # e.g. an integer past Python's digit limit
            raise SpecError(f"spec JSON holds a value fpx cannot read: "
                            f"{str(err).splitlines()[0][:120]}") from None
        return cls.from_dict(data)


def _fields_of(cls, data: Any, owner: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise SpecError(f"{owner} must be a JSON object, got {type(data).__name__}")
    allowed = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise SpecError(
            f"{owner} has unknown field(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}"
        )
    return dict(data)


MAX_SPEC_BYTES = 1 << 16  # a spec is a few hundred bytes; more is not a spec


BLOCK_CHOICES = ("upsampling", "factor", "kernel", "norm", "activation", "order", "convs")
GENERATOR_CHOICES = ("down", "channels")


def _choices(spec) -> tuple[str, ...]:
    """The spec-level design choices of ``spec``'s kind: ``DESIGN_CHOICES`` of its class
    (a :class:`core.synthetic.decoder.DecoderSpec` names its own), else
    :data:`GENERATOR_CHOICES`."""
    return getattr(type(spec), "DESIGN_CHOICES", GENERATOR_CHOICES)


def spec_distance(a, b) -> int:
    """Number of design choices in which two specs differ (either space's specs, mixed
    or not: anything with ``up``, a tuple of :class:`BlockSpec`).

    Counted, each as 1:
      * every up-block field in :data:`BLOCK_CHOICES` that differs between blocks at the
        same position;
      * every up-block present in one spec and not the other (a missing block differs in
        all its choices, so it counts ``len(BLOCK_CHOICES)``);
      * every spec-level choice of either kind (``down`` and ``channels`` of a
        :class:`GeneratorSpec`; a decoder's channels, widths, skip and output layer)
        that differs, a choice one kind lacks differing from any value.
    Not counted: ``seed``, ``name`` and the image channel counts, which are not
    architecture choices. The result is a metric: symmetric, zero iff the designs agree,
    and it satisfies the triangle inequality (it is a Hamming distance over padded
    choice lists).
    """
    for s in (a, b):
        if not isinstance(getattr(s, "up", None), tuple) or not all(
                isinstance(u, BlockSpec) for u in s.up):
            raise SpecError("spec_distance takes two specs (GeneratorSpec or DecoderSpec)")
    fields = dict.fromkeys((*_choices(a), *_choices(b)))
    missing = object()
    dist = sum(getattr(a, f, missing) != getattr(b, f, missing) for f in fields)
    for i in range(max(len(a.up), len(b.up))):
        if i >= len(a.up) or i >= len(b.up):
            dist += len(BLOCK_CHOICES)
            continue
        dist += sum(getattr(a.up[i], f) != getattr(b.up[i], f) for f in BLOCK_CHOICES)
    return dist
