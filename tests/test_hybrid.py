"""The hybrid fingerprint (:mod:`core.extractor.hybrid`): the extractor's input spectrum on
its grid at any size, the two halves' weights, files read in order with one-line errors,
and ``--hybrid`` in the embedding commands."""

import numpy as np
import pytest
import torch

from core.bench.metrics import unit_rows, verification
from core.data import write_pngs
from core.errors import InvalidInputError
from core.extractor.hybrid import GRID, hybrid, input_spectrum, spectra_of


def images(shape, seed=0):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_input_spectrum_is_the_extractor_input_on_its_grid():
    """At the grid's size the feature is the extractor's input itself; larger images are
    averaged over tiles on a regular grid, smaller ones resampled, non-square ones
    squared: same length."""
    from core.extractor.inputs import extractor_input

    x = images((4, 3, GRID, GRID))
    assert np.allclose(input_spectrum(x).numpy(),
                       extractor_input(x, "spectrum", "blur").flatten(1).numpy(), atol=1e-5)
    for side, starts in ((2 * GRID, (0, GRID)), (GRID + GRID // 2, (0, GRID // 2))):
        big = images((2, 3, side, side))
        tiles = [big[..., r:r + GRID, c:c + GRID] for r in starts for c in starts]
        mean = np.mean([input_spectrum(t).numpy() for t in tiles], 0)
        assert np.allclose(input_spectrum(big).numpy(), mean, atol=1e-5)
    for shape in ((2, 3, 20, 20), (2, 3, 40, 56), (2, 3, 24, 40)):
        assert input_spectrum(images(shape)).shape == (2, 3 * GRID ** 2)


def test_hybrid_keeps_what_the_embedding_cannot_tell_apart():
    """Two 'models' whose embeddings are identical but whose spectra differ: the
    embedding alone is at chance, the hybrid separates them."""

    labels = np.repeat(np.arange(2), 20)
    rng = np.random.default_rng(0)
    emb = np.ones((40, 4))
    spectra = rng.normal(size=(40, 30)) * 0.1 + np.eye(30)[labels]
    auc = {name: verification(unit_rows(f), labels, pairs=400, threshold=None,
                                rng=np.random.default_rng(1))["auc"]
           for name, f in (("embedding", hybrid(emb, None)), ("hybrid", hybrid(emb, spectra)))}
    assert auc["embedding"] == 0.5 and auc["hybrid"] > 0.99
    with pytest.raises(ValueError, match="4 embeddings but 3 spectra"):
        hybrid(emb[:4], spectra[:3])


def test_spectra_of_files_in_order_at_mixed_sizes_and_a_bad_file(tmp_path):
    small, big = images((3, 3, 32, 32), 1), images((2, 3, 64, 64), 2)
    a = write_pngs(small, tmp_path / "a")
    b = write_pngs(big, tmp_path / "b")
    paths = [str(p) for p in (a[0], b[0], a[1], b[1], a[2])]
    got = spectra_of(paths, batch=2)
    from core.data.images import load_rgb
    from core.data.transforms import to_signed, to_tensor

    want = [input_spectrum(to_signed(to_tensor(load_rgb(p)))[None])[0].numpy() for p in paths]
    assert got.shape == (5, 3 * GRID ** 2)
    assert np.abs(got - np.stack(want)).max() < 1e-3  # batched FFTs: float32 rounding
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(InvalidInputError, match="bad.png: cannot read the image"):
        spectra_of([paths[0], str(tmp_path / "bad.png")])


def test_embedding_commands_compare_the_hybrid_fingerprint(capsys, tmp_path):
    """``verify | identify | relate --hybrid`` end to end on two spectrally distinct
    'models' (white noise, and noise upsampled x2 by pixel repetition), from folders and
    from a saved embeddings file; an image gone from disk is one line naming it."""
    from core.cli import EXIT_INPUT
    from core.extractor import Extractor, ExtractorConfig, export_extractor
    from tests.test_cli import run

    torch.manual_seed(0)
    extractor = export_extractor(Extractor(ExtractorConfig(width=4, embed_dim=16,
                                                           crop_size=32)),
                                 tmp_path / "extractor", {"command": "test"})
    data = tmp_path / "models"
    write_pngs(images((12, 3, 32, 32), 1), data / "noise")
    write_pngs(images((12, 3, 16, 16), 2).repeat_interleave(2, -1).repeat_interleave(2, -2),
               data / "nearest")
    common = ["--extractor", extractor, "--device", "cpu", "--json"]
    import json

    status, out, err = run(capsys, "verify", data, "--pairs", 200, "--hybrid", *common)
    assert status == 0, err
    assert json.loads(out)["auc"] > 0.99
    status, out, err = run(capsys, "identify", "--gallery", data, "--query", data,
                           "--shots", 4, "--hybrid", *common)
    assert status == 0, err
    assert json.loads(out)["accuracy"] == 1.0
    status, out, err = run(capsys, "relate", data, "--hybrid", *common)
    assert status == 0 and json.loads(out)["models"] == ["nearest", "noise"]
    status, out, err = run(capsys, "embed", data, "--out", tmp_path / "e.npz",
                           "--extractor", extractor, "--device", "cpu")
    assert status == 0, err
    status, out, err = run(capsys, "verify", "--embeddings", tmp_path / "e.npz", "--pairs",
                           200, "--hybrid", "--json")
    assert status == 0 and json.loads(out)["auc"] > 0.99
    (data / "noise" / "00003.png").unlink()
    status, out, err = run(capsys, "verify", "--embeddings", tmp_path / "e.npz", "--hybrid")
    assert status == EXIT_INPUT and len(err) == 1 and "00003.png" in err[0], err
