"""``fpx zoo sample --overwrite`` and ``fpx zoo ship`` replace what they write all or
nothing: a failure part-way (a model that paints NaN, a write the system refuses) names
what failed and leaves the old set byte for byte as it was, with no stray folder."""

from __future__ import annotations

import pytest
import torch

from core.errors import InvalidInputError
from tests.hostile.workspace import fpx

CPU = ("--device", "cpu")


def snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def nan_samples(self, n, generator=None):
    return torch.full((n, 3, self.size, self.size), float("nan"))


def test_zoo_sample_overwrite_keeps_the_old_set_when_sampling_fails(ws, tmp_path, capsys,
                                                                   monkeypatch):
    from core.zoo.gan import GAN

    runs, out = ws.zoo_run(capsys), tmp_path / "samples"
    assert fpx(capsys, "zoo", "sample", "gan_tconv", "-n", 3, "--runs", runs, "--out", out,
               *CPU).status == 0
    (out / "gan_tconv" / "notes.txt").write_text("mine")  # a user's file beside the set
    before = snapshot(out)
    monkeypatch.setattr(GAN, "sample", nan_samples)
    result = fpx(capsys, "zoo", "sample", "gan_tconv", "-n", 5, "--runs", runs, "--out", out,
                 "--overwrite", *CPU)
    errors = [line for line in result.stderr if "error:" in line]
    assert result.status == 1 and len(errors) == 1
    assert "gan_tconv: the model produced NaN" in errors[0] and "old samples are kept" in \
        errors[0]
    assert snapshot(out) == before
    assert sorted(p.name for p in out.iterdir()) == ["gan_tconv"]  # no .new left over
    monkeypatch.undo()
    assert fpx(capsys, "zoo", "sample", "gan_tconv", "-n", 2, "--runs", runs, "--out", out,
               "--overwrite", *CPU).status == 0
    names = sorted(p.name for p in (out / "gan_tconv").iterdir())
    assert names == ["00000.png", "00001.png", "notes.txt", "samples.json"]


def test_zoo_sample_keeps_the_old_set_when_a_write_fails(ws, tmp_path, capsys, monkeypatch):
    import core.zoo.sample as sample

    runs, out = ws.zoo_run(capsys), tmp_path / "samples"
    assert fpx(capsys, "zoo", "sample", "gan_tconv", "-n", 3, "--runs", runs, "--out", out,
               *CPU).status == 0
    before = snapshot(out)

    def full_disk(images, folder, start=0):
        raise OSError(28, "No space left on device", str(folder / f"{start:05d}.png"))

    monkeypatch.setattr(sample, "write_pngs", full_disk)
    result = fpx(capsys, "zoo", "sample", "gan_tconv", "-n", 3, "--runs", runs, "--out", out,
                 "--overwrite", *CPU)
    assert result.status == 1 and result.error is None
    assert "No space left on device" in result.stderr[-1]
    assert snapshot(out) == before and sorted(p.name for p in out.iterdir()) == ["gan_tconv"]


@pytest.mark.slow
def test_ship_failing_part_way_names_the_entry_and_leaves_the_set(ws, tmp_path, capsys,
                                                                  monkeypatch):
    from core.zoo import get_entry
    from core.zoo.gan import GAN
    from core.zoo.shipped import read_manifest, ship
    from core.zoo.train import train_entry

    runs = tmp_path / "runs"
    entries = (get_entry("gan_tconv"), get_entry("gan_nearest"))
    for entry in entries:
        train_entry(entry, runs, steps=2, batch=4, device="cpu", quiet=True)
    out = tmp_path / "zoo"
    ship(runs, out, count=3, real_count=5, entries=entries, log=lambda msg: None)
    before = snapshot(out)
    assert read_manifest(out).real.count == 5

    real_sample = GAN.sample

    def second_fails(self, n, generator=None):
        if self.entry.name == "gan_nearest":
            return nan_samples(self, n)
        return real_sample(self, n, generator=generator)

    monkeypatch.setattr(GAN, "sample", second_fails)
    with pytest.raises(InvalidInputError) as err:
        ship(runs, out, count=4, real_count=7, entries=entries, log=lambda msg: None)
    assert str(err.value).startswith("gan_nearest: the model produced NaN")
    assert f"{out} is left as it was" in str(err.value)
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs", "zoo"]
