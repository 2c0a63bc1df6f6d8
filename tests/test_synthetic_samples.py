"""core.synthetic.samples: held-out bank configs and the folders ``fpx bank sample``
writes (5-digit lossless PNGs written atomically, spec.json, bank.json)."""

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from core.data import bundled_crops, to_uint8
from core.errors import InvalidInputError
from core.extractor.embeddings import labelled_files
from core.extractor.evaluate import read_specs
from core.synthetic import BankConfig, fit_bank, heldout_config, write_bank_samples
from core.synthetic.samples import (
    PICK_SEED,
    REAL_SEED,
    WEIGHT_SEED_OFFSET,
    model_folder_name,
)

# Two architectures x one seed, random weights: a bank in well under a second.
TINY = BankConfig(architectures=2, seeds=1, fit_steps=0, crop_size=16, batch=4, channels=4)


@pytest.fixture(scope="module")
def bank():
    return fit_bank(TINY)


def test_heldout_configs():
    assert heldout_config(TINY, "none") == TINY
    seeds = heldout_config(TINY, "seeds")
    assert seeds.weight_seed == TINY.seed + WEIGHT_SEED_OFFSET
    base, unseen = TINY.specs(), seeds.specs()
    # same architectures, other weights
    assert [s.up for s in unseen] == [s.up for s in base]
    assert [s.seed for s in unseen] != [s.seed for s in base]
    archs = heldout_config(TINY, "architectures")
    assert archs.skip_architectures == TINY.architectures
    assert not {s.to_json() for s in archs.specs()} & {s.to_json() for s in base}


def test_heldout_config_errors():
    everything = BankConfig(architectures=0)
    with pytest.raises(InvalidInputError, match="^preset gpu's bank holds every architecture$"):
        heldout_config(everything, "architectures", name="preset gpu's bank")
    with pytest.raises(InvalidInputError, match="heldout must be one of"):
        heldout_config(TINY, "weights")


def test_writes_five_digit_pngs_specs_and_record(bank, tmp_path):
    out = tmp_path / "samples"
    folders = write_bank_samples(bank, out, images=3, made_by={"preset": "test",
                                                                "command": "fpx bank sample"})
    assert [f.name for f in folders] == [model_folder_name(i, s)
                                         for i, s in enumerate(bank.specs)]
    assert sorted(p.name for p in out.iterdir()) == sorted([*(f.name for f in folders),
                                                            "bank.json"])
    for folder in folders:
        assert sorted(p.name for p in folder.iterdir()) == ["00000.png", "00001.png",
                                                             "00002.png", "spec.json"]
        with Image.open(folder / "00000.png") as im:
            assert im.format == "PNG" and im.mode == "RGB" and im.size == (16, 16)
    record = json.loads((out / "bank.json").read_text())
    assert list(record)[:2] == ["preset", "command"]  # what made it comes first
    assert record["models"] == 2 and record["images_per_model"] == 3
    assert BankConfig(**record["config"]) == TINY
    assert record["code_version"]
    # The extractor's evaluation reads the folders back: labels and specs by model.
    files, labels = labelled_files([out], skipped=None)
    assert sorted(set(labels)) == [f.name for f in folders] and len(files) == 6
    assert read_specs([out]) == {f.name: s for f, s in zip(folders, bank.specs)}


def test_pixels_are_the_models_outputs_and_reruns_replace(bank, tmp_path):
    out = tmp_path / "samples"
    write_bank_samples(bank, out, images=2, models=1)
    first = out / model_folder_name(0, bank.specs[0])
    pixels = [np.asarray(Image.open(first / f"0000{j}.png")) for j in range(2)]
    # A stale set (an older run's 4-digit names, more images) is replaced, not mixed in.
    Image.fromarray(pixels[0]).save(first / "0000.png")
    Image.fromarray(pixels[0]).save(first / "00007.png")
    write_bank_samples(bank, out, images=2, models=1)
    assert sorted(p.name for p in first.glob("*.png")) == ["00000.png", "00001.png"]
    again = [np.asarray(Image.open(first / f"0000{j}.png")) for j in range(2)]
    assert all(np.array_equal(a, b) for a, b in zip(pixels, again))  # same bank, same files
    # The PNGs hold the model's outputs on its draw of held-out real crops, in 8 bits.
    real = bundled_crops(16, 2 * 4, seed=REAL_SEED, split="test")
    pick = torch.randperm(len(real), generator=torch.Generator().manual_seed(PICK_SEED))[:2]
    expected = to_uint8(bank.generate([0], real[pick][None])[0])
    assert np.array_equal(np.stack(pixels), expected)


def test_an_interrupted_write_leaves_whole_files_only(bank, tmp_path, monkeypatch):
    real_replace, calls = os.replace, []

    def failing_replace(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError("disk full")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        write_bank_samples(bank, tmp_path, images=3, models=1)
    folder = tmp_path / model_folder_name(0, bank.specs[0])
    assert sorted(p.name for p in folder.iterdir()) == ["00000.png"]  # no partial, no temp
    with Image.open(folder / "00000.png") as im:
        im.verify()


@pytest.mark.parametrize("kwargs", [{"images": 0}, {"images": 2.5}, {"models": 0},
                                    {"images": True}])
def test_bad_counts(bank, tmp_path, kwargs):
    with pytest.raises(InvalidInputError, match="must be a positive integer"):
        write_bank_samples(bank, tmp_path, **kwargs)
    assert not any(tmp_path.iterdir())


def test_fitting_only_the_sampled_models_gives_the_whole_banks_first():
    """``fpx bank sample --models N`` fits N models, not the whole bank: they must be the
    whole bank's first N (same specs, weights and fit losses), with progress per model."""
    config = BankConfig(architectures=3, seeds=2, fit_steps=2, crop_size=16, batch=4,
                        channels=4)
    whole = fit_bank(config)
    ticks = []
    part = fit_bank(config, models=3, progress=ticks.append)
    assert len(part) == 3 and part.specs == whole.specs[:3]
    assert part.losses == whole.losses[:3]
    for a, b in zip(part.states, whole.states):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert sum(ticks) == 3 and len(ticks) == 2  # one tick per architecture fitted
    with pytest.raises(InvalidInputError, match="models"):
        fit_bank(config, models=0)


def test_read_specs_reads_decoder_specs(tmp_path):
    import random

    from core.synthetic.decoder import sample_decoder

    spec = sample_decoder(random.Random(3))
    (tmp_path / "m000").mkdir()
    (tmp_path / "m000" / "spec.json").write_text(spec.to_json())
    assert read_specs([tmp_path]) == {"m000": spec}
