"""The zoo's typed records: QualityReport (core.zoo.quality) and the sample-set manifest
(core.zoo.shipped: ZooManifest, ShippedEntry, RealCrops). Exact JSON round trips, the
shipped manifest byte for byte, and one-line refusals."""

import dataclasses
import json

import pytest

from core.errors import InvalidInputError
from core.zoo import DEFAULT_ZOO, QualityReport, ZooSettings
from core.zoo.shipped import (
    MANIFEST_FORMAT,
    SHIPPED_ZOO,
    RealCrops,
    ShippedEntry,
    ZooManifest,
    read_manifest,
)

FIGURES = {"spectral_distance_db": 2.132, "spectral_distance_noise_db": 16.606,
           "kernel_mmd": 0.1113, "kernel_mmd_noise": 2.6631, "kernel_mmd_to_noise": 3.4381,
           "passed": True, "samples": 200, "real": 1000}


def one_line(err) -> str:
    text = str(err.value)
    assert "\n" not in text
    return text


# --- QualityReport ----------------------------------------------------------------------


def test_quality_report_round_trips_in_the_manifest_order():
    q = QualityReport.from_dict(dict(FIGURES))
    assert q.passed is True and q.kernel_mmd == 0.1113 and q.samples == 200
    assert list(q.to_dict()) == list(FIGURES) and q.to_dict() == FIGURES
    assert json.dumps(QualityReport.from_dict(json.loads(json.dumps(q.to_dict()))).to_dict()) \
        == json.dumps(FIGURES)
    assert QualityReport(**{**FIGURES, "kernel_mmd": -0.002}).kernel_mmd == -0.002  # unbiased


@pytest.mark.parametrize("change, message", [
    ({"kernel_mmd": float("nan")}, "kernel_mmd must be a finite number, got nan"),
    ({"spectral_distance_db": "2.1"}, "spectral_distance_db must be a finite number"),
    ({"passed": 1}, "passed must be true or false, got 1"),
    ({"samples": 1}, "samples must be an integer >= 2, got 1"),
    ({"real": 2.0}, "real must be an integer >= 2, got 2.0"),
])
def test_quality_report_validation(change, message):
    with pytest.raises(InvalidInputError, match=message) as err:
        QualityReport(**{**FIGURES, **change})
    assert one_line(err).startswith("quality report: ")


def test_quality_report_from_dict_names_missing_and_unknown_fields():
    d = {k: v for k, v in FIGURES.items() if k != "passed"}
    with pytest.raises(InvalidInputError, match=r"missing \['passed'\], unknown \['fid'\]"):
        QualityReport.from_dict({**d, "fid": 3.0})
    with pytest.raises(InvalidInputError, match="must be a JSON object, got list"):
        QualityReport.from_dict([])


# --- the manifest ------------------------------------------------------------------------


def test_the_shipped_manifest_round_trips_byte_for_byte():
    text = (SHIPPED_ZOO / "manifest.json").read_text()
    manifest = ZooManifest.from_json(text)
    assert manifest.to_json() == text
    assert read_manifest() == manifest
    assert list(manifest.entries) == [e.name for e in DEFAULT_ZOO]
    info = manifest.entries["vae_bicubic_beta"]
    assert isinstance(info, ShippedEntry) and isinstance(info.settings, ZooSettings)
    assert isinstance(info.quality, QualityReport) and info.entry.options == {"beta": 4.0}
    assert manifest.real == RealCrops(folder="real", count=1000, seed=7919,
                                      data=manifest.real.data)
    assert ZooManifest.from_dict(manifest.to_dict()) == manifest


def shipped_entry(name="t_gan", **change) -> ShippedEntry:
    entry = dataclasses.replace(DEFAULT_ZOO[0], name=name)
    fields = dict(entry=entry, folder=f"samples/{name}", sample_seed=1000, preset="quick",
                  settings=ZooSettings(steps=2, batch=4, lr=2e-4), data="bundled",
                  train_steps=2, train_seconds=1.5, trained_by=None,
                  quality=QualityReport(**FIGURES))
    return ShippedEntry(**{**fields, **change})


def small_manifest(**change) -> ZooManifest:
    fields = dict(format=MANIFEST_FORMAT, code_version="0.1.0", commands=["a", "b"], size=32,
                  count=200, real=RealCrops("real", 1000, 7919, "bundled photos"),
                  quality="what the figures mean", entries={"t_gan": shipped_entry()})
    return ZooManifest(**{**fields, **change})


def test_a_built_manifest_round_trips_through_json():
    m = small_manifest()
    assert m.commands == ("a", "b")  # lists are stored as tuples
    d = json.loads(m.to_json())
    assert list(d) == ["format", "code_version", "commands", "size", "count", "real",
                       "quality", "entries"]
    assert list(d["entries"]["t_gan"]) == ["entry", "folder", "sample_seed", "preset",
                                           "settings", "data", "train_steps",
                                           "train_seconds", "trained_by", "quality"]
    assert d["entries"]["t_gan"]["trained_by"] is None
    back = ZooManifest.from_json(m.to_json())
    assert back == m and back.to_json() == m.to_json()


@pytest.mark.parametrize("change, message", [
    ({"format": "fpx.zoo_samples/0"}, "format must be 'fpx.zoo_samples/1'"),
    ({"size": 0}, "size must be a positive integer, got 0"),
    ({"commands": "fpx zoo ship"}, "commands must be a list of strings"),
    ({"code_version": ""}, "code_version must be a non-empty string"),
    ({"real": {"folder": "real"}}, "real must be a RealCrops, got dict"),
    ({"entries": {"other": shipped_entry()}}, r"entries\['other'\] must be the ShippedEntry "
                                              "of 'other', got t_gan"),
    ({"entries": {"t_gan": {"folder": "x"}}}, r"entries\['t_gan'\] must be the ShippedEntry"),
])
def test_manifest_validation(change, message):
    with pytest.raises(InvalidInputError, match=message) as err:
        small_manifest(**change)
    one_line(err)


@pytest.mark.parametrize("change, message", [
    ({"sample_seed": -1}, "sample_seed must be an integer >= 0, got -1"),
    ({"train_seconds": -1.0}, "train_seconds must be a finite number >= 0, got -1.0"),
    ({"folder": None}, "folder must be a non-empty string, got None"),
    ({"preset": 3}, "preset must be a non-empty string, got 3"),
    ({"quality": FIGURES}, "quality must be a QualityReport, got dict"),
])
def test_shipped_entry_validation(change, message):
    with pytest.raises(InvalidInputError, match=message) as err:
        shipped_entry(**change)
    one_line(err)
    with pytest.raises(InvalidInputError, match="real crops: seed must be an integer >= 0"):
        RealCrops("real", 10, -1, "photos")


def test_read_manifest_refuses_bad_files_in_one_line_naming_them(tmp_path):
    path = tmp_path / "manifest.json"
    cases = {None: r"no zoo sample manifest \(make one with fpx zoo ship\)",
             "{not json": "is corrupt",
             json.dumps({"format": "other"}): "is not an fpx zoo sample manifest"}
    d = small_manifest().to_dict()
    broken = json.loads(json.dumps(d))
    del broken["entries"]["t_gan"]["quality"]["passed"]
    cases[json.dumps(broken)] = (r"entry 't_gan': a quality report has the fields .*missing "
                                 r"\['passed'\]")
    broken = json.loads(json.dumps(d))
    broken["entries"]["t_gan"]["settings"]["warmup"] = 3
    cases[json.dumps(broken)] = r"entry 't_gan': settings has the fields .*unknown \['warmup'\]"
    broken = json.loads(json.dumps(d))
    broken["entries"]["t_gan"]["entry"]["family"] = "biggan"
    cases[json.dumps(broken)] = "entry 't_gan': t_gan: family must be one of"
    cases[json.dumps({**d, "real": [1]})] = "the real crops' record must be a JSON object"
    for text, message in cases.items():
        if text is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(text)
        with pytest.raises(InvalidInputError, match=message) as err:
            read_manifest(tmp_path)
        assert one_line(err).startswith(str(path)), text
    path.write_text(small_manifest().to_json())
    assert read_manifest(tmp_path) == small_manifest()
    with pytest.raises(InvalidInputError, match="corrupt JSON"):
        ZooManifest.from_json("{")
