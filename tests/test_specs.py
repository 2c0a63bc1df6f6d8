"""core.specs: exact JSON round trips, defaults, validation messages and the spec metric."""

import dataclasses
import itertools
import json
import random

import pytest

from core.errors import InvalidInputError, SpecError
from core.specs import (
    BLOCK_CHOICES,
    MAX_BLOCKS,
    MAX_CONVS,
    MAX_FACTOR,
    MAX_KERNEL,
    ORDERS,
    SPEC_FORMAT,
    BlockSpec,
    GeneratorSpec,
    spec_distance,
)
from tests.test_blocks import ACTS, NORMS, UPS


def random_block(rng: random.Random) -> BlockSpec:
    upsampling = rng.choice(UPS)
    if upsampling == "transposed":
        kernel = rng.choice([None, *range(1, MAX_KERNEL + 1)])
    else:
        kernel = rng.choice([None, *range(1, MAX_KERNEL + 1, 2)])
    return BlockSpec(upsampling=upsampling, factor=rng.randint(2, MAX_FACTOR), kernel=kernel,
                     norm=rng.choice(NORMS), activation=rng.choice(ACTS),
                     order=rng.choice(ORDERS), convs=rng.randint(1, MAX_CONVS))


def random_spec(rng: random.Random) -> GeneratorSpec:
    return GeneratorSpec(
        up=tuple(random_block(rng) for _ in range(rng.randint(1, MAX_BLOCKS))),
        down=rng.randint(0, 4), channels=rng.choice([1, 8, 16, 32, 1024]),
        in_channels=rng.randint(1, 4), out_channels=rng.randint(1, 4),
        seed=rng.randint(0, 2**63 - 1), name=rng.choice(["", "a", "héllo \"quoted\"\n"]),
    )


def small_random_spec(rng: random.Random) -> GeneratorSpec:
    """Specs drawn from few choices, so that random triples share many fields."""
    blocks = tuple(
        BlockSpec(upsampling=rng.choice(["transposed", "nearest"]), factor=rng.choice([2, 4]),
                  kernel=rng.choice([3, 5]), norm=rng.choice(["batch", "none"]),
                  activation=rng.choice(["relu", "tanh"]), order=rng.choice(ORDERS),
                  convs=rng.choice([1, 2]))
        for _ in range(rng.randint(1, 3))
    )
    return GeneratorSpec(up=blocks, down=rng.choice([0, 1]), channels=rng.choice([8, 16]),
                         seed=rng.randint(0, 9), name=rng.choice(["", "x"]))


def assert_round_trip(spec: GeneratorSpec) -> None:
    text = spec.to_json()
    back = GeneratorSpec.from_json(text)
    assert back == spec
    assert back.to_json() == text
    assert GeneratorSpec.from_json(back.to_json()).to_json() == text
    assert GeneratorSpec.from_dict(spec.to_dict()) == spec
    assert GeneratorSpec.from_json(spec.to_json(indent=None)) == spec


# --- round trip -------------------------------------------------------------------------


@pytest.mark.parametrize("upsampling", UPS)
@pytest.mark.parametrize("factor", [2, 3, 4, MAX_FACTOR])
def test_round_trip_every_upsampling(upsampling, factor):
    assert_round_trip(GeneratorSpec(up=(BlockSpec(upsampling=upsampling, factor=factor),)))


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("activation", ACTS)
def test_round_trip_every_norm_and_activation(norm, activation):
    assert_round_trip(GeneratorSpec(up=(BlockSpec(norm=norm, activation=activation),)))


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("convs", range(1, MAX_CONVS + 1))
def test_round_trip_every_order_and_conv_count(order, convs):
    assert_round_trip(GeneratorSpec(up=(BlockSpec(order=order, convs=convs),)))


@pytest.mark.parametrize("blocks", range(1, MAX_BLOCKS + 1))
def test_round_trip_block_counts(blocks):
    up = tuple(BlockSpec(upsampling=UPS[i % len(UPS)], factor=2 + i) for i in range(blocks))
    spec = GeneratorSpec(up=up, down=blocks, channels=16, seed=blocks, name=f"b{blocks}")
    assert_round_trip(spec)
    assert len(GeneratorSpec.from_json(spec.to_json()).up) == blocks


@pytest.mark.parametrize("kernel", range(1, MAX_KERNEL + 1))
def test_round_trip_transposed_kernels(kernel):
    assert_round_trip(GeneratorSpec(up=(BlockSpec("transposed", factor=3, kernel=kernel),)))


@pytest.mark.parametrize("upsampling", [u for u in UPS if u != "transposed"])
@pytest.mark.parametrize("kernel", range(1, MAX_KERNEL + 1, 2))
def test_round_trip_odd_kernels(upsampling, kernel):
    assert_round_trip(GeneratorSpec(up=(BlockSpec(upsampling, kernel=kernel),)))


def test_round_trip_random_specs():
    rng = random.Random(1234)
    for _ in range(200):
        assert_round_trip(random_spec(rng))


def test_json_is_tagged_and_complete():
    data = json.loads(GeneratorSpec().to_json())
    assert data["format"] == SPEC_FORMAT
    assert list(data) == ["format"] + [f.name for f in dataclasses.fields(GeneratorSpec)]
    assert list(data["up"][0]) == [f.name for f in dataclasses.fields(BlockSpec)]
    assert data["up"][0]["kernel"] == 2  # resolved, never null


def test_from_dict_without_format_tag_and_with_block_objects():
    spec = GeneratorSpec(up=(BlockSpec("nearest", factor=3),), down=0)
    data = spec.to_dict()
    del data["format"]
    assert GeneratorSpec.from_dict(data) == spec
    assert GeneratorSpec.from_dict({"up": [BlockSpec("nearest", factor=3)], "down": 0}) == spec


def test_up_accepts_single_block_list_and_dicts():
    block = BlockSpec("zero", factor=4)
    assert GeneratorSpec(up=block).up == (block,)
    assert GeneratorSpec(up=[block]).up == (block,)
    assert GeneratorSpec(up=[block.to_dict()]).up == (block,)


def test_from_json_accepts_bytes():
    spec = GeneratorSpec(name="bytes")
    assert GeneratorSpec.from_json(spec.to_json().encode("utf-8")) == spec


# --- defaults ---------------------------------------------------------------------------


@pytest.mark.parametrize("factor", range(2, MAX_FACTOR + 1))
def test_transposed_kernel_defaults_to_factor(factor):
    assert BlockSpec("transposed", factor=factor).kernel == factor
    assert not BlockSpec("transposed", factor=factor).uneven_overlap


@pytest.mark.parametrize("upsampling", [u for u in UPS if u != "transposed"])
@pytest.mark.parametrize("factor", [2, 3, 5])
def test_other_kernels_default_to_three(upsampling, factor):
    block = BlockSpec(upsampling, factor=factor)
    assert block.kernel == 3
    assert not block.uneven_overlap


def test_default_spec():
    spec = GeneratorSpec()
    assert spec.up == (BlockSpec(),)
    assert spec.total_factor == 2
    assert GeneratorSpec(up=(BlockSpec(factor=2), BlockSpec(factor=3))).total_factor == 6


@pytest.mark.parametrize("kernel,factor,uneven", [(3, 2, True), (4, 2, False), (1, 2, True),
                                                  (6, 3, False), (5, 4, True)])
def test_uneven_overlap(kernel, factor, uneven):
    assert BlockSpec("transposed", factor=factor, kernel=kernel).uneven_overlap is uneven


# --- validation -------------------------------------------------------------------------


def assert_spec_error(call, *fragments):
    with pytest.raises(SpecError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


def test_spec_error_is_invalid_input():
    assert issubclass(SpecError, InvalidInputError)
    assert issubclass(SpecError, ValueError)


def test_unknown_upsampling_lists_all_choices():
    assert_spec_error(lambda: BlockSpec(upsampling="deconv"), "upsampling", "'deconv'", *UPS)


def test_unknown_norm_and_activation_list_all_choices():
    assert_spec_error(lambda: BlockSpec(norm="weird"), "norm", "'weird'", *NORMS)
    assert_spec_error(lambda: BlockSpec(activation="swish"), "activation", "'swish'", *ACTS)


def test_bad_order():
    assert_spec_error(lambda: BlockSpec(order="middle"), "order", "'middle'", "post", "pre")


@pytest.mark.parametrize("factor", [1, 0, -2, MAX_FACTOR + 1])
def test_factor_out_of_range(factor):
    assert_spec_error(lambda: BlockSpec(factor=factor), "factor", f"[2, {MAX_FACTOR}]")


@pytest.mark.parametrize("upsampling", [u for u in UPS if u != "transposed"])
@pytest.mark.parametrize("kernel", [2, 4, 6])
def test_even_kernel_needs_transposed(upsampling, kernel):
    assert_spec_error(lambda: BlockSpec(upsampling, kernel=kernel), "kernel", str(kernel),
                      upsampling, "transposed")


@pytest.mark.parametrize("kernel", [0, MAX_KERNEL + 1])
def test_kernel_out_of_range(kernel):
    assert_spec_error(lambda: BlockSpec(kernel=kernel), "kernel", f"[1, {MAX_KERNEL}]")


@pytest.mark.parametrize("convs", [0, MAX_CONVS + 1])
def test_convs_out_of_range(convs):
    assert_spec_error(lambda: BlockSpec(convs=convs), "convs", f"[1, {MAX_CONVS}]")


def test_too_many_blocks():
    assert_spec_error(lambda: GeneratorSpec(up=(BlockSpec(),) * (MAX_BLOCKS + 1)),
                      "spec.up", str(MAX_BLOCKS + 1), str(MAX_BLOCKS))


@pytest.mark.parametrize("up", [(), [], None, "transposed", 3])
def test_up_must_be_non_empty_list(up):
    assert_spec_error(lambda: GeneratorSpec(up=up), "spec.up")


@pytest.mark.parametrize("field,value", [("down", -1), ("down", 7), ("channels", 0),
                                         ("channels", 1025), ("in_channels", 5),
                                         ("out_channels", 0), ("seed", -1), ("seed", 2**63)])
def test_generator_int_fields_out_of_range(field, value):
    assert_spec_error(lambda: GeneratorSpec(**{field: value}), f"spec.{field}", repr(value))


def test_unknown_json_field_names_it_and_lists_allowed():
    data = GeneratorSpec().to_dict()
    data["depth"] = 3
    allowed = [f.name for f in dataclasses.fields(GeneratorSpec)]
    assert_spec_error(lambda: GeneratorSpec.from_json(json.dumps(data)), "depth", *allowed)


def test_unknown_block_field_names_it_and_lists_allowed():
    data = GeneratorSpec().to_dict()
    data["up"][0]["stride"] = 2
    allowed = [f.name for f in dataclasses.fields(BlockSpec)]
    assert_spec_error(lambda: GeneratorSpec.from_dict(data), "block", "stride", *allowed)


@pytest.mark.parametrize("tag", ["fpx.generator_spec/2", "", None, 1])
def test_wrong_format_tag(tag):
    data = GeneratorSpec().to_dict()
    data["format"] = tag
    assert_spec_error(lambda: GeneratorSpec.from_dict(data), "format", repr(tag), SPEC_FORMAT)


@pytest.mark.parametrize("text", ["{", "{'up': []}", "not json", b"\xff\xfe\x00"])
def test_invalid_json_text(text):
    assert_spec_error(lambda: GeneratorSpec.from_json(text), "not valid JSON")


@pytest.mark.parametrize("text,kind", [("[]", "list"), ("3", "int"), ('"spec"', "str"),
                                       ("null", "NoneType")])
def test_non_object_json(text, kind):
    assert_spec_error(lambda: GeneratorSpec.from_json(text), "JSON object", kind)


def test_non_object_block():
    assert_spec_error(lambda: GeneratorSpec.from_dict({"up": [3]}), "block", "JSON object")


@pytest.mark.parametrize("block_field,value", [
    ("factor", "2"), ("factor", 2.0), ("factor", True), ("factor", None),
    ("kernel", "3"), ("kernel", 3.5), ("convs", [1]),
    ("upsampling", ["transposed"]), ("norm", None), ("activation", 1), ("order", {"a": 1}),
])
def test_wrong_block_types(block_field, value):
    data = GeneratorSpec().to_dict()
    data["up"][0][block_field] = value
    assert_spec_error(lambda: GeneratorSpec.from_json(json.dumps(data)), block_field)


@pytest.mark.parametrize("field,value", [("name", ["a"]), ("name", 3), ("down", "1"),
                                         ("channels", 32.0), ("seed", False), ("up", {})])
def test_wrong_generator_types(field, value):
    data = GeneratorSpec().to_dict()
    data[field] = value
    assert_spec_error(lambda: GeneratorSpec.from_json(json.dumps(data)), field)


def test_choice_messages_name_field_and_all_values():
    message = assert_spec_error(lambda: BlockSpec(upsampling=["x"]), "block.upsampling")
    assert message.endswith(", ".join(UPS))


# --- frozen -----------------------------------------------------------------------------


def test_specs_are_frozen_and_hashable():
    spec = GeneratorSpec()
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.down = 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.up[0].factor = 4
    assert isinstance(spec.up, tuple)
    assert hash(spec) == hash(GeneratorSpec.from_json(spec.to_json()))
    assert len({spec, GeneratorSpec(), GeneratorSpec(down=2)}) == 2


# --- spec_distance ----------------------------------------------------------------------


def test_distance_ignores_seed_name_and_image_channels():
    a = GeneratorSpec(seed=1, name="a", in_channels=3, out_channels=3)
    b = GeneratorSpec(seed=99, name="b", in_channels=1, out_channels=4)
    assert spec_distance(a, b) == 0
    assert spec_distance(a, a) == 0


@pytest.mark.parametrize("field,value", [
    ("upsampling", "nearest"), ("factor", 4), ("kernel", 5), ("norm", "none"),
    ("activation", "tanh"), ("order", "pre"), ("convs", 3),
])
def test_distance_counts_each_block_field(field, value):
    base = BlockSpec("transposed", factor=2, kernel=3)
    changed = dataclasses.replace(base, **{field: value})
    a = GeneratorSpec(up=(base, base))
    assert spec_distance(a, GeneratorSpec(up=(base, changed))) == 1
    assert spec_distance(a, GeneratorSpec(up=(changed, changed))) == 2


def test_distance_adds_up_fields():
    a = GeneratorSpec(up=(BlockSpec("transposed", factor=2, kernel=3),), down=1, channels=32)
    b = GeneratorSpec(up=(BlockSpec("nearest", factor=2, kernel=5, norm="none"),), down=2,
                      channels=16)
    assert spec_distance(a, b) == 3 + 2


def test_distance_counts_default_kernel_change():
    # transposed x4 defaults to kernel 4, nearest x4 to kernel 3: two fields differ.
    a = GeneratorSpec(up=(BlockSpec("transposed", factor=4),))
    b = GeneratorSpec(up=(BlockSpec("nearest", factor=4),))
    assert spec_distance(a, b) == 2


def test_distance_counts_missing_blocks_fully():
    block = BlockSpec()
    one = GeneratorSpec(up=(block,))
    three = GeneratorSpec(up=(block, block, block))
    assert spec_distance(one, three) == 2 * len(BLOCK_CHOICES)
    assert spec_distance(three, one) == 2 * len(BLOCK_CHOICES)


def test_distance_rejects_non_specs():
    with pytest.raises(SpecError):
        spec_distance(GeneratorSpec(), GeneratorSpec().to_dict())
    with pytest.raises(SpecError):
        spec_distance(BlockSpec(), GeneratorSpec())


def test_distance_is_a_metric_on_random_specs():
    rng = random.Random(2024)
    specs = [small_random_spec(rng) for _ in range(300)]
    for a, b in zip(specs, specs[1:]):
        d = spec_distance(a, b)
        assert d == spec_distance(b, a)
        assert d >= 0
        same_design = (a.up, a.down, a.channels) == (b.up, b.down, b.channels)
        assert (d == 0) == same_design
    for a, b, c in zip(specs, specs[1:], specs[2:]):
        assert spec_distance(a, c) <= spec_distance(a, b) + spec_distance(b, c)


def test_distance_triangle_on_wide_random_specs():
    rng = random.Random(7)
    specs = [random_spec(rng) for _ in range(60)]
    for a, b, c in itertools.islice(itertools.permutations(specs, 3), 3000):
        assert spec_distance(a, c) <= spec_distance(a, b) + spec_distance(b, c)


@pytest.mark.parametrize("text, message", [
    ("[" * 30000 + "]" * 30000, "nested too deeply"),
    ('{"down": ' + "9" * 5000 + "}", "holds a value fpx cannot read"),
    ("x" * 70000, "a spec is at most 65536"),
    ("", "spec JSON is empty"),
    (b"  ", "spec JSON is empty"),
    (b"\xff\xfe\x00", "not valid JSON"),
])
def test_hostile_spec_json_is_a_one_line_spec_error(text, message):
    from core.specs import SpecError

    with pytest.raises(SpecError, match=message):
        GeneratorSpec.from_json(text)


def test_spec_distance_reads_decoder_specs_and_mixed_pairs():
    from core.synthetic.decoder import DecoderSpec

    up = (BlockSpec("nearest"),) * 3
    a = DecoderSpec(up=up)
    assert spec_distance(a, DecoderSpec(up=up, seed=5, name="x")) == 0
    assert spec_distance(a, DecoderSpec(up=up, skip="image", widths="halving")) == 2
    assert spec_distance(a, DecoderSpec(up=up[:2])) == len(BLOCK_CHOICES)
    # a decoder and an autoencoder: each kind's own choices differ from the other's
    # absence (down; channels, widths, skip, output kernel and activation), blocks as usual
    g = GeneratorSpec(up=up, channels=a.channels)
    assert spec_distance(a, g) == spec_distance(g, a) == 1 + 4
    with pytest.raises(SpecError):
        spec_distance(a, "not a spec")
