"""core.zoo.design: what a zoo entry's recorded design predicts about its lattice."""

import pytest

from core.errors import InvalidInputError
from core.zoo.default import DEFAULT_ZOO, get_entry
from core.zoo.design import STAGE_RULES, design_of, register_stages
from core.zoo.entries import ZooEntry


@pytest.mark.parametrize("entry", DEFAULT_ZOO, ids=lambda e: e.name)
def test_every_default_entry_has_a_design(entry):
    d = design_of(entry)
    assert d.period is not None and d.period == 2 ** len(d.stages)
    assert d.describe().endswith(tuple(["activations carry the period)", f"period {d.period}",
                                        "bypasses every up-stage"]))
    assert d.to_json_dict()["period"] == d.period


def test_latent_decoders_grow_from_4x4():
    d = design_of(get_entry("gan_tconv"))
    assert d.period == 8 and len(d.stages) == 3 and d.lines == "replica"
    assert d.describe() == "three x2 transposed stages from 4x4: period 8"
    assert design_of(get_entry("gan_tconv"), 64).period == 16  # one stage more at 64 px
    assert design_of(get_entry("vae_bilinear")).lines == "nonlinearity"


def test_flow_and_diffusion_designs():
    assert design_of(get_entry("flow_glow")).period == 8
    d = design_of(get_entry("ddpm_tconv"))  # mults "1,2": one up-stage
    assert d.period == 2 and "skip" in d.bypass


def test_consistent_means_equal_or_a_divisor():
    d = design_of(get_entry("gan_bilinear_hinge"))
    assert d.consistent(8) and d.consistent(2) and d.consistent(4)
    assert not d.consistent(16) and not d.consistent(3) and not d.consistent(None)
    assert not d.consistent(10.5)


def test_a_family_without_a_rule_predicts_nothing():
    entry = ZooEntry("toy", "gan", "transposed", "batch", "relu", "ns")
    rules = dict(STAGE_RULES)
    try:
        STAGE_RULES.pop("gan")
        d = design_of(entry)
        assert d.period is None and d.describe().startswith("no upsampling stage")
    finally:
        STAGE_RULES.clear()
        STAGE_RULES.update(rules)
    with pytest.raises(ValueError, match="registered twice"):
        register_stages("gan")(lambda entry, size: ((), ""))


def test_bad_size_is_refused():
    with pytest.raises(InvalidInputError, match="power of two"):
        design_of(get_entry("gan_tconv"), 48)


def test_fpx_zoo_list_sets_detected_beside_predicted(capsys, tmp_path):
    import json
    import shutil

    from core.cli import main
    from core.zoo.shipped import SHIPPED_ZOO

    for name in ("gan_tconv", "ddpm_tconv"):
        shutil.copytree(SHIPPED_ZOO / "samples" / name, tmp_path / name)
    assert main(["zoo", "list", "--lattice", str(tmp_path), "--json"]) == 0
    out, err = capsys.readouterr()
    rows = {r["name"]: r for r in json.loads(out)["entries"]}
    assert rows["gan_tconv"]["design"]["period"] == 8
    assert rows["gan_tconv"]["lattice"]["detected"] == 8
    assert rows["gan_tconv"]["lattice"]["consistent"] is True
    assert rows["gan_tconv"]["lattice"]["peaks_factor"] is None  # the baseline misses it
    # The U-Net's one up-stage, beside its full-resolution skip: period 2 (the DDPMs
    # re-shipped with their own sampling noise show it; the earlier weights did not).
    assert rows["ddpm_tconv"]["lattice"]["detected"] == 2
    assert rows["ddpm_tconv"]["lattice"]["consistent"] is True
    assert rows["vae_tconv"]["lattice"] is None
    assert f"fpx: skipped vae_tconv: no folder {tmp_path / 'vae_tconv'}" in err
    assert main(["zoo", "list"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].endswith("trained  period (design)") and "detected" not in table[0]
    assert main(["zoo", "list", "--lattice", str(tmp_path / "none")]) == 1
    assert capsys.readouterr().err.strip().endswith("not a folder")


def test_fpx_zoo_quality_uses_the_samples_own_size(capsys, tmp_path):
    from core.cli import main
    from core.data import bundled_crops
    from core.data.pngs import write_pngs

    write_pngs(bundled_crops(64, 12, seed=3), tmp_path / "big")
    assert main(["zoo", "quality", str(tmp_path / "big"), "--json"]) == 0
    captured = capsys.readouterr()
    assert "comparing 64-px crops (the samples' own size)" in captured.err
    write_pngs(bundled_crops(48, 4, seed=3), tmp_path / "odd")
    assert main(["zoo", "quality", str(tmp_path / "odd")]) == 1
    assert "the samples are 48 px; zoo quality compares crops of 32 or 64 px" \
        in capsys.readouterr().err
