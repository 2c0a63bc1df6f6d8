"""core.extractor.embeddings: EmbeddingSet (validation, exact JSON and npz round trips,
one-line refusals of bad files) and embed_folders on real folders."""

import json
import re

import numpy as np
import pytest
import torch
from PIL import Image

from core.errors import InvalidInputError
from core.extractor import Extractor, ExtractorConfig
from core.extractor.embeddings import EmbeddingSet, embed_folders


def small_set(n=5, dim=3, seed=0) -> EmbeddingSet:
    e = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    labels = tuple("ba"[i % 2] + "x" * (i // 4) for i in range(n))
    return EmbeddingSet(e, tuple(f"f/{i}.png" for i in range(n)), labels,
                        (("f/bad.png", "too small: 8x8 < 32x32"),))


def test_fields_models_and_equality():
    s = small_set()
    assert s.embeddings.dtype == np.float32 and s.dim == 3 and len(s.paths) == 5
    assert s.models == ("b", "a", "bx")  # first-seen order, not sorted
    lists = EmbeddingSet(s.embeddings.astype(np.float64), list(s.paths), list(s.labels),
                         [list(p) for p in s.skipped])
    assert lists == s and lists.embeddings.dtype == np.float32
    assert isinstance(lists.paths, tuple) and isinstance(lists.skipped[0], tuple)
    other = EmbeddingSet(s.embeddings + 1, s.paths, s.labels, s.skipped)
    assert other != s and s != "not a set"
    with pytest.raises(TypeError):
        hash(s)


def test_json_round_trip_is_exact():
    s = small_set(n=7, dim=4, seed=3)
    d = json.loads(json.dumps(s.to_dict()))
    assert list(d) == ["embeddings", "paths", "labels", "skipped", "extractor"]
    assert d["skipped"] == [{"path": "f/bad.png", "reason": "too small: 8x8 < 32x32"}]
    back = EmbeddingSet.from_dict(d)
    assert back == s and back.embeddings.tobytes() == s.embeddings.tobytes()
    del d["skipped"], d["extractor"]  # optional: a set with no skips, of an unknown extractor
    assert EmbeddingSet.from_dict(d).skipped == () and EmbeddingSet.from_dict(d).extractor == ""
    made = EmbeddingSet(s.embeddings, s.paths, s.labels, s.skipped, "ee451ba61278be02")
    assert EmbeddingSet.from_dict(json.loads(json.dumps(made.to_dict()))) == made != s


def test_npz_round_trip_is_exact_and_atomic(tmp_path):
    s = small_set()
    path = s.save(tmp_path / "out" / "e.npz")
    assert [p.name for p in path.parent.iterdir()] == ["e.npz"]  # no temp file left
    assert EmbeddingSet.load(path) == s
    with np.load(path, allow_pickle=False) as z:  # plain arrays, no pickles
        assert sorted(z.files) == ["embeddings", "extractor", "labels", "paths",
                                   "skipped_paths", "skipped_reasons"]
    empty = EmbeddingSet(s.embeddings, s.paths, s.labels)
    assert EmbeddingSet.load(empty.save(tmp_path / "none.npz")) == empty
    made = EmbeddingSet(s.embeddings, s.paths, s.labels, extractor="ee451ba61278be02")
    assert EmbeddingSet.load(made.save(tmp_path / "made.npz")).extractor == "ee451ba61278be02"


def test_a_file_without_skips_loads(tmp_path):
    # what fpx embed wrote before skips were saved: three arrays
    s = small_set()
    np.savez(tmp_path / "old.npz", embeddings=s.embeddings, paths=np.asarray(s.paths),
             labels=np.asarray(s.labels))
    old = EmbeddingSet.load(tmp_path / "old.npz")
    assert old == EmbeddingSet(s.embeddings, s.paths, s.labels) and old.extractor == ""


@pytest.mark.parametrize("args, message", [
    ((np.zeros(3, np.float32), ["a"], ["m"]), r"must be \(N, D\) with N, D >= 1, got shape \(3,\)"),
    ((np.zeros((0, 3), np.float32), [], []), r"got shape \(0, 3\)"),
    ((np.array([[1.0, np.nan]]), ["a"], ["m"]), "embeddings contain NaN or Inf"),
    ((np.array([[True]]), ["a"], ["m"]), "must be a real-valued array, got bool"),
    (([[1.0]], ["a"], ["m"]), "must be a real-valued array, got list"),
    ((np.zeros((2, 3)), ["a"], ["m", "m"]), "1 paths for 2 embeddings; one per row"),
    ((np.zeros((2, 3)), ["a", "b"], ["m"]), "1 labels for 2 embeddings; one per row"),
    ((np.zeros((1, 3)), "a", ["m"]), "paths must be a sequence of strings"),
    ((np.zeros((1, 3)), [1], ["m"]), "paths must be a sequence of strings"),
    ((np.zeros((1, 3)), ["a"], ["m"], [("x",)]), r"skipped must be \(path, reason\) pairs"),
    ((np.zeros((1, 3)), ["a"], ["m"], (), 7), "extractor must be an identity: up to 64"),
    ((np.zeros((1, 3)), ["a"], ["m"], (), "ab\ncd"), "extractor must be an identity"),
])
def test_validation_names_the_problem_in_one_line(args, message):
    with pytest.raises(InvalidInputError, match=message) as err:
        EmbeddingSet(*args)
    assert "\n" not in str(err.value)


def test_from_dict_refuses_malformed_records():
    good = small_set().to_dict()
    with pytest.raises(InvalidInputError, match="must be a JSON object, got list"):
        EmbeddingSet.from_dict([1])
    with pytest.raises(InvalidInputError, match=r"missing \['labels'\], unknown \['extra'\]"):
        EmbeddingSet.from_dict({**{k: v for k, v in good.items() if k != "labels"},
                                "extra": 1})
    with pytest.raises(InvalidInputError, match="equal-length lists of numbers"):
        EmbeddingSet.from_dict({**good, "embeddings": [[1.0], [1.0, 2.0]]})
    with pytest.raises(InvalidInputError, match=r"list of \{path, reason\} objects"):
        EmbeddingSet.from_dict({**good, "skipped": ["f/bad.png"]})


def test_bad_files_are_refused_with_one_line_naming_them(tmp_path):
    s = small_set()
    cases = {"missing.npz": r"no such embeddings file \(make one with fpx embed\)"}
    (tmp_path / "text.npz").write_text("not an archive")
    cases["text.npz"] = r"not a readable fpx embeddings file \(not an \.npz archive\)"
    np.save(tmp_path / "bare.npy", np.zeros((2, 3)))
    cases["bare.npy"] = r"a bare \.npy array, not an \.npz"
    np.savez(tmp_path / "partial.npz", embeddings=s.embeddings)
    cases["partial.npz"] = "no paths, labels"
    np.savez(tmp_path / "pickled.npz", embeddings=s.embeddings,
             paths=np.array(list(s.paths), dtype=object), labels=np.asarray(s.labels))
    cases["pickled.npz"] = "holds Python objects \\(pickled\\); fpx never unpickles them"
    np.savez(tmp_path / "nan.npz", embeddings=np.full((5, 3), np.nan, np.float32),
             paths=np.asarray(s.paths), labels=np.asarray(s.labels))
    cases["nan.npz"] = "embeddings contain NaN or Inf"
    np.savez(tmp_path / "short.npz", embeddings=s.embeddings, paths=np.asarray(s.paths[:4]),
             labels=np.asarray(s.labels))
    cases["short.npz"] = "4 paths for 5 embeddings"
    np.savez(tmp_path / "skips.npz", embeddings=s.embeddings, paths=np.asarray(s.paths),
             labels=np.asarray(s.labels), skipped_paths=np.asarray(["a", "b"]),
             skipped_reasons=np.asarray(["r"]))
    cases["skips.npz"] = "2 skipped paths but 1 reasons"
    np.savez(tmp_path / "two.npz", embeddings=s.embeddings, paths=np.asarray(s.paths),
             labels=np.asarray(s.labels), extractor=np.asarray(["a", "b"]))
    cases["two.npz"] = "2 extractor identities, not one"
    for name, message in cases.items():
        with pytest.raises(InvalidInputError) as err:
            EmbeddingSet.load(tmp_path / name)
        text = str(err.value)
        assert text.startswith(str(tmp_path / name) + ":") and "\n" not in text, text
        assert re.search(message, text), text


def _write(folder, n, size, seed):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(
            folder / f"{i:05d}.png")


def test_embed_folders_labels_by_top_folder_and_records_skips(tmp_path):
    torch.manual_seed(0)
    model = Extractor(ExtractorConfig(width=4, embed_dim=8, crop_size=32))
    _write(tmp_path / "models" / "gan", 3, 32, 0)
    _write(tmp_path / "models" / "vae", 2, 40, 1)  # larger: tiles of 32
    _write(tmp_path / "flat", 2, 32, 2)
    _write(tmp_path / "models" / "tiny", 1, 12, 3)  # under 16 px: skipped, recorded
    # A model folder none of whose images is usable is an error unless asked to go on,
    # then a named skip of its own.
    with pytest.raises(InvalidInputError, match=r"models/tiny: no usable image .* "
                                                r"--skip-unusable"):
        embed_folders(model, [tmp_path / "models", tmp_path / "flat"],
                      notify=lambda p, r: None)
    seen = []
    s = embed_folders(model, [tmp_path / "models", tmp_path / "flat"],
                      notify=lambda p, r: seen.append(p), skip_unusable=True)
    assert isinstance(s, EmbeddingSet) and s.embeddings.shape == (7, 8)
    assert s.models == ("gan", "vae", "flat") and s.labels.count("gan") == 3
    assert np.allclose(np.linalg.norm(s.embeddings, axis=1), 1, atol=1e-5)  # unit rows
    assert [p for p, _ in s.skipped] == seen == [str(tmp_path / "models/tiny/00000.png"),
                                                 str(tmp_path / "models/tiny")]
    assert "too small" in s.skipped[0][1] and "left out" in s.skipped[1][1]
    assert EmbeddingSet.load(s.save(tmp_path / "e.npz")) == s
    with pytest.raises(InvalidInputError, match=r"no usable image \(readable, at least 16x16\)"):
        embed_folders(model, [tmp_path / "models" / "tiny"], notify=lambda p, r: None)
