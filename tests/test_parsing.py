"""Design-choice heads (core.parsing): labels, features, fitting, storage, scoring, CLI."""

import json
import math
import random

import pytest
import torch

from core.cli import main
from core.errors import InvalidInputError
from core.parsing import (
    DesignHeads,
    entry_labels,
    fit_heads,
    score_heads,
    spec_labels,
    spectrum_grid,
    table,
)
from core.parsing.bench import zoo_truth
from core.parsing.data import labelled_features
from core.parsing.fit import load_heads, space_configs
from core.specs import BlockSpec
from core.synthetic.decoder import DecoderSpec, sample_decoder
from core.synthetic.space import sample_spec


def test_spec_labels_period_is_the_product_of_stage_factors():
    spec = DecoderSpec(up=(BlockSpec("nearest", norm="group", activation="silu"),) * 4)
    assert spec_labels(spec) == {"upsampling": "nearest", "normalization": "group",
                                 "activation": "silu", "period": "16"}
    rng = random.Random(0)
    for _ in range(20):
        s = sample_spec(rng)
        assert spec_labels(s)["period"] == str(2 ** len(s.up))
        d = sample_decoder(rng)
        assert spec_labels(d)["period"] == str(2 ** len(d.up))


def test_entry_labels_read_the_zoo_design():
    from core.zoo.shipped import SHIPPED_ZOO, read_manifest

    m = read_manifest(SHIPPED_ZOO)
    labels = entry_labels(m.entries["gan_tconv"].entry, m.size)
    assert labels == {"upsampling": "transposed", "normalization": "batch",
                      "activation": "relu", "period": "8"}
    assert entry_labels(m.entries["ddpm_nearest"].entry, m.size)["period"] == "2"


def _clusters(n=60, d=8, seed=0):
    """Three separable clusters labelled by field a; field b is constant."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(3, d, generator=g) * 5
    y = torch.arange(n) % 3
    x = centres[y] + torch.randn(n, d, generator=g) * 0.3
    return x, {"upsampling": [["a", "b", "c"][i] for i in y],
               "period": ["8"] * n}


def test_fit_heads_separates_clusters_and_skips_constant_fields():
    x, labels = _clusters()
    heads = fit_heads(x, labels, kind="spectrum")
    assert heads.fields == ("upsampling",)  # period has one value: nothing to predict
    assert heads.predict_images(x)["upsampling"] == labels["upsampling"]
    probs = heads.predict_set(x[torch.arange(0, 60, 3)])["upsampling"]  # all class "a"
    assert next(iter(probs)) == "a" and math.isclose(sum(probs.values()), 1, abs_tol=1e-3)


def test_fit_heads_refuses_what_cannot_be_fitted():
    x, labels = _clusters()
    with pytest.raises(InvalidInputError, match="no field"):
        fit_heads(x, {"period": labels["period"]}, kind="spectrum")
    with pytest.raises(InvalidInputError, match="labels"):
        fit_heads(x, {"upsampling": labels["upsampling"][:5]}, kind="spectrum")


def test_heads_round_trip_and_refuse_damage(tmp_path):
    x, labels = _clusters()
    heads = fit_heads(x, labels, kind="spectrum", made_by={"command": "test"})
    heads.save(tmp_path / "h")
    back = DesignHeads.load(tmp_path / "h")
    assert back.vocab == heads.vocab and back.made_by == {"command": "test"}
    assert back.predict_set(x) == heads.predict_set(x)
    assert set(load_heads(tmp_path)) == {"spectrum"}  # found in a sub-folder
    with pytest.raises(InvalidInputError, match="features"):
        back.predict_set(x[:, :3])
    record = json.loads((tmp_path / "h" / "heads.json").read_text())
    for bad, match in ((dict(record, format="x"), "not fpx design heads"),
                       (dict(record, vocab={"upsampling": ["a", "b"]}), "do not match"),
                       (dict(record, vocab={"colour": ["a", "b"]}), "vocab")):
        (tmp_path / "h" / "heads.json").write_text(json.dumps(bad))
        with pytest.raises(InvalidInputError, match=match):
            DesignHeads.load(tmp_path / "h")
    (tmp_path / "h" / "heads.json").write_text(json.dumps(record))
    (tmp_path / "h" / "heads.safetensors").write_bytes(b"\0" * 20)
    with pytest.raises(InvalidInputError, match="unreadable|damaged"):
        DesignHeads.load(tmp_path / "h")
    with pytest.raises(InvalidInputError, match="no design heads"):
        load_heads(tmp_path / "nowhere")


def test_spectrum_grid_puts_a_lattice_on_the_same_bins_at_any_size():
    """A period-4 checker (frequency 1/4 on both axes) lands on the same grid bins at
    32 and 64 px, and at 16 px after resampling."""
    rows = []
    for s in (16, 32, 64):
        i = torch.arange(s)
        pattern = torch.cos(math.pi / 2 * i)[None, :] * torch.cos(math.pi / 2 * i)[:, None]
        g = torch.Generator().manual_seed(s)
        x = (0.3 * pattern + 0.05 * torch.randn(2, 3, s, s, generator=g)).clamp(-1, 1)
        f = spectrum_grid(x)
        assert f.shape == (2, 32 * 32) and torch.allclose(f.mean(1), torch.zeros(2), atol=1e-3)
        rows.append(f[0].view(32, 32))
    for r in rows:
        peak = divmod(int(r.argmax()), 32)
        assert peak in {(8, 8), (8, 24), (24, 8), (24, 24)}  # 16 +- 32/4


def test_score_heads_counts_unnameable_generators_apart():
    x, labels = _clusters()
    heads = fit_heads(x, labels, kind="spectrum", made_by={"majority": {"upsampling": "a"}})
    rows = ["g_" + v for v in labels["upsampling"]]
    truth = {"g_a": {"upsampling": "a"}, "g_b": {"upsampling": "b"},
             "g_c": {"upsampling": "squeeze"}}  # no head can name squeeze
    s = score_heads(heads, x, rows, truth, name="h", set_name="toy")
    (field,) = s.fields
    assert field.generators == 2 and field.left_out == ("g_c",)
    assert field.accuracy == 1.0 and field.majority == 0.5 and field.best_constant == 0.5
    assert field.confusion == {"a": {"a": 1}, "b": {"b": 1}}
    assert s.predictions["g_c"]["upsampling"][2] == "squeeze"
    assert "toy" in table([s]) and table([s], markdown=True).startswith("| set")
    with pytest.raises(InvalidInputError, match="no recorded design"):
        score_heads(heads, x, rows, {"g_a": {}}, name="h", set_name="toy")


def test_zoo_truth_maps_recorded_designs():
    class Fake:
        designs = {"e": {"upsampling": "nearest", "normalization": "group",
                         "activation": "silu", "period": "None", "loss": "x"}}
    assert zoo_truth(Fake())["e"] == {"upsampling": "nearest", "normalization": "group",
                                      "activation": "silu", "period": "none"}


def test_labelled_features_fits_only_what_it_reads():
    configs = space_configs(["decoder", "autoencoder"], 2, fit_steps=1)
    reads = {"spectrum": spectrum_grid}
    feats, labels, groups = labelled_features(configs, reads, models=1, images=3,
                                              sizes=(32,))
    assert feats["spectrum"].shape == (6, 1024)
    assert all(len(v) == 6 for v in labels.values())
    assert groups == [0] * 3 + [1] * 3
    assert set(labels["period"]) <= {"2", "4", "8", "16", "32"}
    with pytest.raises(InvalidInputError, match="multiple"):
        labelled_features(configs, reads, models=1, images=1, sizes=(20,))


@pytest.mark.slow
def test_cli_fit_predict_bench_end_to_end(tmp_path, capsys):
    from core.zoo.shipped import SHIPPED_ZOO

    out = tmp_path / "heads"
    assert main(["design", "fit", "--out", str(out), "--architectures", "3", "--images", "2",
                 "--sizes", "32", "--heldout", "2", "--json"]) == 0
    fitted = json.loads(capsys.readouterr().out)
    assert set(fitted["heads"]) == {"extractor", "spectrum"}
    record = json.loads((out / "extractor" / "heads.json").read_text())
    assert record["made_by"]["command"].startswith("fpx design fit")
    assert set(record["made_by"]["heldout"]) <= {"upsampling", "normalization",
                                                 "activation", "period"}
    entry = SHIPPED_ZOO / "samples" / "gan_tconv"
    assert main(["design", "predict", str(entry), "--heads", str(out), "--json"]) == 0
    pred = json.loads(capsys.readouterr().out)[str(entry)]
    assert pred["images"] == 200 and pred["size"] == 32
    for kind in ("extractor", "spectrum"):
        for probs in pred[kind].values():
            assert math.isclose(sum(probs.values()), 1, abs_tol=1e-3)
    assert main(["bench", "design", "--heads", str(out), "--sets", "architectures",
                 "--heldout", "2", "--images", "2"]) == 0
    assert "held-out synthetic architectures" in capsys.readouterr().out


def test_cli_predict_bad_input(tmp_path, capsys):
    x, labels = _clusters(d=1024)
    fit_heads(x, labels, kind="spectrum").save(tmp_path / "h")
    (tmp_path / "empty").mkdir()
    assert main(["design", "predict", str(tmp_path / "empty"), "--heads",
                 str(tmp_path / "h")]) == 1
    assert "no generator folder" in capsys.readouterr().err
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.png").write_bytes(b"not a png")
    assert main(["design", "predict", str(tmp_path / "junk"), "--heads",
                 str(tmp_path / "h")]) == 1
    assert "skip-unusable" in capsys.readouterr().err
    assert main(["design", "predict", str(tmp_path / "junk"), "--heads",
                 str(tmp_path / "nowhere")]) == 1
    assert "no design heads" in capsys.readouterr().err


def test_extractor_heads_refuse_another_extractor(tmp_path, capsys):
    from core.extractor import DEFAULT_EXTRACTOR
    from core.parsing import check_extractor

    x, labels = _clusters(d=128)
    heads = fit_heads(x, labels, kind="extractor", made_by={"extractor": "0" * 16})
    with pytest.raises(InvalidInputError, match="another|not on"):
        check_extractor(heads, DEFAULT_EXTRACTOR)


def test_fit_reads_a_saved_bank_instead_of_fitting_its_space(tmp_path):
    from core.parsing import fit_design_heads
    from core.synthetic import fit_bank

    (config,) = space_configs(["decoder"], 3, fit_steps=1)
    fit_bank(config).save(tmp_path / "bank")
    heads, scores = fit_design_heads(None, tmp_path / "heads", kinds=["spectrum"],
                                     spaces=["decoder"], banks=[tmp_path / "bank"],
                                     images=2, sizes=(32,), heldout=0)
    assert scores == [] and (tmp_path / "heads" / "spectrum" / "heads.json").exists()
    made_by = heads["spectrum"].made_by
    assert "3 models of a saved decoder bank" in made_by["data"]
    assert made_by["spaces"][0]["space"] == "decoder"


def test_shipped_heads_match_their_manifest_and_the_shipped_extractor(capsys):
    import hashlib
    from pathlib import Path

    from core.extractor import DEFAULT_EXTRACTOR
    from core.parsing import check_extractor
    from core.parsing.fit import DEFAULT_HEADS
    from core.zoo.shipped import SHIPPED_ZOO

    assets = Path(DEFAULT_HEADS).parent
    entry = json.loads((assets / "manifest.json").read_text())["design_heads"]
    for name, digest in entry["files"].items():
        assert hashlib.sha256((assets / name).read_bytes()).hexdigest() == digest, name
    heads = load_heads(DEFAULT_HEADS)
    assert set(heads) == {"extractor", "spectrum"}
    check_extractor(heads["extractor"], DEFAULT_EXTRACTOR)  # fitted on its embeddings
    for h in heads.values():
        assert set(h.fields) == {"upsampling", "normalization", "activation", "period"}
        assert "transposed" in h.vocab["upsampling"] and "heldout" in h.made_by
    entry_folder = SHIPPED_ZOO / "samples" / "gan_tconv"
    assert main(["design", "predict", str(entry_folder), "--json"]) == 0  # default heads
    pred = json.loads(capsys.readouterr().out)[str(entry_folder)]
    assert set(pred) == {"images", "size", "extractor", "spectrum"}
