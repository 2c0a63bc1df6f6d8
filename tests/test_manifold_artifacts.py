"""Artifacts (sample minus nearest real sample), their file format, and the manifold CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from core.cli import main
from core.errors import InvalidInputError
from core.manifold.artifacts import (
    REAL,
    ArtifactSet,
    compute_artifacts,
    load_artifact_sets,
)
from core.manifold.embeddings import SPACES, embed


def smooth_images(n: int, seed: int, size: int = 16) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.nn.functional.avg_pool2d(torch.rand(n, 3, size + 4, size + 4, generator=g),
                                       5, 1)
    return (x - 0.5) * 4


@pytest.mark.parametrize("space", ["rgb", "freq"])
def test_real_sample_against_a_set_holding_it_has_zero_artifact(space):
    real = smooth_images(20, 0).clamp(-1, 1)
    result = compute_artifacts({"copy": real[5:9]}, real, space)
    assert np.array_equal(result.neighbors[:, 0], np.arange(5, 9))
    assert not result.artifacts.any() and not result.image_artifacts.any()
    assert not result.distances.any()


def test_artifact_is_the_difference_to_the_brute_force_nearest():
    real = smooth_images(40, 1).clamp(-1, 1)
    fake = smooth_images(10, 2).clamp(-1, 1)
    result = compute_artifacts({"m": fake}, real, "freq", k=3)
    e_fake, e_real = embed(fake, "freq"), embed(real, "freq")
    d = torch.cdist(e_fake.double(), e_real.double())
    order = d.argsort(dim=1, stable=True)[:, :3]
    assert np.array_equal(result.neighbors, order.numpy())
    expected = e_fake - e_real[order[:, 0]]
    assert np.allclose(result.artifacts, expected.numpy(), atol=1e-6)
    assert np.allclose(result.image_artifacts, (fake - real[order[:, 0]]).numpy())
    assert np.allclose(result.distances, d.gather(1, order).numpy(), rtol=1e-4)


def test_held_out_real_class_leaves_the_reference_set():
    real = smooth_images(50, 3).clamp(-1, 1)
    result = compute_artifacts({"m": smooth_images(5, 4).clamp(-1, 1)}, real, "rgb",
                               holdout_real=10, seed=1,
                               real_paths=[f"r{i}.png" for i in range(50)])
    assert result.models == [REAL, "m"]
    assert (result.labels == REAL).sum() == 10
    assert len(result.real_paths) == 40
    held = set(result.paths[result.labels == REAL].tolist())
    assert not held & set(result.real_paths.tolist())
    assert result.distances[result.labels == REAL].min() > 0


def test_bad_inputs_give_one_line_errors():
    real = smooth_images(10, 0).clamp(-1, 1)
    with pytest.raises(InvalidInputError, match="use one size for both"):
        compute_artifacts({"m": smooth_images(3, 1, size=8)}, real, "rgb")
    with pytest.raises(InvalidInputError, match="no generated images"):
        compute_artifacts({}, real, "rgb")
    with pytest.raises(InvalidInputError, match="samples of m is empty"):
        compute_artifacts({"m": real[:0]}, real, "rgb")
    bad = real[:3].clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(InvalidInputError, match="NaN"):
        compute_artifacts({"m": bad}, real, "rgb")
    with pytest.raises(InvalidInputError, match="fewer than k=20"):
        compute_artifacts({"m": real[:2]}, real, "rgb", k=20)
    with pytest.raises(InvalidInputError, match="reserved"):
        compute_artifacts({REAL: real[:2]}, real, "rgb")
    with pytest.raises(InvalidInputError, match="valid: rgb, freq, learned"):
        compute_artifacts({"m": real[:2]}, real, "pixels")


def test_learned_space_uses_the_shipped_extractor(shipped_dim):
    x = smooth_images(4, 5, size=32).clamp(-1, 1)
    e = embed(x, "learned")
    assert e.shape == (4, shipped_dim)
    assert torch.allclose(e.norm(dim=1), torch.ones(4), atol=1e-5)
    assert SPACES == ("rgb", "freq", "learned")


def test_artifact_file_round_trip_and_refusals(tmp_path):
    real = smooth_images(12, 0).clamp(-1, 1)
    a = compute_artifacts({"m": smooth_images(3, 9).clamp(-1, 1)}, real, "rgb",
                          holdout_real=2)
    a.meta["designs"] = {"m": {"upsampling": "nearest"}}
    b = ArtifactSet.load(a.save(tmp_path / "a.npz"))
    for key in ("artifacts", "image_artifacts", "images", "neighbors", "distances", "labels",
                "paths", "real_paths"):
        assert np.array_equal(getattr(a, key), getattr(b, key)), key
    assert b.meta == a.meta and b.space == "rgb"
    np.savez(tmp_path / "foreign.npz", x=np.zeros(3))
    with pytest.raises(InvalidInputError, match="not an fpx artifact file"):
        ArtifactSet.load(tmp_path / "foreign.npz")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(InvalidInputError, match="not a readable fpx artifact file"):
        ArtifactSet.load(tmp_path / "junk.npz")
    with pytest.raises(InvalidInputError, match="no such artifact file"):
        ArtifactSet.load(tmp_path / "none")


def test_classifier_input_model_summary_and_set_names(tmp_path):
    import dataclasses

    real = smooth_images(20, 0).clamp(-1, 1)
    # copies of real images: zero artifacts; one image thrice: one distinct neighbour
    result = compute_artifacts({"copy": real[5:9], "same": real[[3, 3, 3]]}, real, "rgb")
    x = result.classifier_input()
    assert x.shape == (7, 3, 16, 16)  # image-shaped space: images for a convolution
    assert torch.equal(x.flatten(1), torch.from_numpy(result.artifacts))
    vectors = dataclasses.replace(result, space="learned")
    assert vectors.classifier_input().shape == (7, 3 * 16 * 16)
    assert result.model_summary() == {
        "copy": {"samples": 4, "nn_distance": 0.0, "artifact_abs": 0.0, "unique_neighbors": 4},
        "same": {"samples": 3, "nn_distance": 0.0, "artifact_abs": 0.0, "unique_neighbors": 1},
    }
    fake = compute_artifacts({"m": smooth_images(3, 1).clamp(-1, 1) + 0.5}, real, "rgb")
    row = fake.model_summary()["m"]
    assert row["nn_distance"] == pytest.approx(float(fake.distances[:, 0].mean()))
    assert row["artifact_abs"] == pytest.approx(float(np.abs(fake.artifacts).mean()))
    # Names: the space, or space:folder where two sets share a space.
    result.save(tmp_path / "one" / "artifacts.npz")
    fake.save(tmp_path / "two" / "artifacts.npz")
    freq = compute_artifacts({"copy": real[5:9]}, real, "freq")
    freq.save(tmp_path / "f.npz")
    sets = load_artifact_sets([tmp_path / "one", tmp_path / "two", tmp_path / "f.npz"])
    assert [name for name, _ in sets] == ["rgb:one", "rgb:two", "freq"]
    assert sets[2][1].space == "freq" and sets[0][1].models == ["copy", "same"]


def _write_model(folder, images, design):
    folder.mkdir(parents=True)
    pixels = ((images.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    for i, p in enumerate(pixels):
        Image.fromarray(p).save(folder / f"{i:03d}.png")
    if design is not None:
        entry = {"name": folder.name, "family": "gan", "upsampling": design,
                 "normalization": "batch", "activation": "relu", "loss": "ns"}
        (folder / "samples.json").write_text(json.dumps({"entry": entry}))


def test_cli_artifacts_attribute_structure_end_to_end(tmp_path, capsys):
    real = smooth_images(60, 0, size=32).clamp(-1, 1)
    _write_model(tmp_path / "real", real, None)
    grid = torch.zeros(1, 3, 32, 32)
    grid[..., ::2, ::2] = 0.3
    for i, (name, ups) in enumerate((("a", "nearest"), ("b", "transposed"),
                                     ("c", "nearest"))):
        fake = smooth_images(12, 10 + i, size=32) + grid * (i + 1) / 2
        _write_model(tmp_path / "gen" / name, fake, ups)
    (tmp_path / "gen" / "a" / "broken.png").write_bytes(b"x")
    out = tmp_path / "art"
    assert main(["artifacts", "--real", str(tmp_path / "real"), "--generated",
                 str(tmp_path / "gen"), "--space", "rgb", "--holdout-real", "12",
                 "--out", str(out), "--json"]) == 0
    captured = capsys.readouterr()
    assert "skipped" in captured.err and "broken.png" in captured.err
    summary = json.loads(captured.out)
    assert set(summary["models"]) == {"real", "a", "b", "c"}
    assert (out / "artifact_grid.png").exists()
    assert ArtifactSet.load(out).meta["designs"]["b"]["upsampling"] == "transposed"
    assert main(["attribute", str(out), "--seeds", "0", "--epochs", "2", "--out",
                 str(tmp_path / "figs"), "--json"]) == 0
    results = json.loads(capsys.readouterr().out)["results"]
    assert set(results) == {"rgb/artifacts", "raw/raw images"}
    assert (tmp_path / "figs" / "confusion_rgb_artifacts.png").exists()
    assert (tmp_path / "figs" / "confusion_raw_raw.png").exists()
    assert main(["structure", str(out), "--out", str(tmp_path / "figs")]) == 0
    text = capsys.readouterr().out
    assert "upsampling" in text and "leave-one-model-out" in text
    assert (tmp_path / "figs" / "tsne_rgb.png").exists()
    # mismatched sizes between real and generated sets: one clear line, unless --size
    # asks for centre crops of both
    _write_model(tmp_path / "small" / "s", smooth_images(3, 1, size=16).clamp(-1, 1), None)
    assert main(["artifacts", "--real", str(tmp_path / "real"), "--generated",
                 str(tmp_path / "small"), "--out", str(tmp_path / "x")]) == 1
    assert "real images are 32x32 but the samples are 16x16" in capsys.readouterr().err
    assert main(["artifacts", "--real", str(tmp_path / "real"), "--generated",
                 str(tmp_path / "small"), "--size", "16", "--holdout-real", "0", "--out",
                 str(tmp_path / "x")]) == 0
    assert main(["artifacts", "--real", str(tmp_path / "real"), "--generated",
                 str(tmp_path / "small"), "--size", "32", "--out", str(tmp_path / "x")]) == 1
    assert "no usable image of at least 32x32" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        main(["structure", str(out), "--seed", "-1"])
    assert stop.value.code == 2 and "seed must be in" in capsys.readouterr().err
    (tmp_path / "bare.npy").write_bytes(b"")
    np.save(tmp_path / "bare.npy", np.zeros(3))
    assert main(["attribute", str(tmp_path / "bare.npy")]) == 1
    assert "fpx artifact file (a bare .npy array" in capsys.readouterr().err


def test_self_supervised_encoder_learns_and_serves_the_learned_space(monkeypatch):
    from core.manifold import artifacts as module
    from core.manifold.ssl import SSLConfig, augment, nt_xent, train_encoder

    real = smooth_images(64, 0, size=32).clamp(-1, 1)
    g = torch.Generator().manual_seed(0)
    view = augment(real, g)
    assert view.shape == real.shape and view.abs().max() <= 1 and not torch.equal(view, real)
    z = torch.nn.functional.normalize(torch.randn(8, 16), dim=1)
    assert nt_xent(z, z, 0.1) < nt_xent(z, z.roll(1, 0), 0.1)  # matching views score best
    short = train_encoder(real, SSLConfig(steps=1, batch=32, width=8, dim=16))
    longer = train_encoder(real, SSLConfig(steps=60, batch=32, width=8, dim=16))
    x1, x2 = augment(real, g), augment(real, g)

    def alignment(model):  # views of one crop closer than views of different crops
        with torch.no_grad():
            a, b = model(x1), model(x2)
        return ((a * b).sum(1).mean() - (a @ b.T).mean()).item()

    assert alignment(longer) > alignment(short)
    # with no extractor installed, the learned space falls back to the encoder
    monkeypatch.setattr(module, "has_default_extractor", lambda: False)
    result = compute_artifacts({"m": real[:4]}, real[4:], "learned",
                               ssl_config=SSLConfig(steps=2, batch=16, width=8, dim=16))
    assert result.artifacts.shape == (4, 16)
    assert result.meta["network"].startswith("self-supervised encoder")
