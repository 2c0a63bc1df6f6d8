"""Hostile cases of what is typed: output paths, image folders, numbers, embeddings
files, spec files (filed in casebook.CASES)."""

from __future__ import annotations

import shutil

from tests.hostile.casebook import CASES, CPU, cases, ext

# --- output paths: checked before any work --------------------------------------------

BAD_OUT_DIRS = {
    "out-is-a-file": lambda w, o: w.bad / "file.txt",
    "out-under-a-file": lambda w, o: w.bad / "file.txt" / "sub",
    "out-in-proc": lambda w, o: "/proc/fpx-out/sub",
    "out-under-dev-null": lambda w, o: "/dev/null/sub",
}

OUT_COMMANDS = {
    "embed": lambda w, o, c, out: ["embed", w.gen, "--out", out, *ext(w)],
    "relate": lambda w, o, c, out: ["relate", w.gen, "--out", out, *ext(w)],
    "train": lambda w, o, c, out: ["train", "--steps", 1, "--out", out, *CPU],
    "bank": lambda w, o, c, out: ["bank", "sample", "--models", 1, "--images", 1,
                                  "--out", out, *CPU],
    "zoo-train": lambda w, o, c, out: ["zoo", "train", "gan_tconv", "--steps", 1,
                                       "--batch", 4, "--out", out, *CPU],
    "zoo-sample": lambda w, o, c, out: ["zoo", "sample", "gan_tconv", "-n", 2, "--runs",
                                        w.zoo_run(c), "--out", out, *CPU],
    "zoo-quality": lambda w, o, c, out: ["zoo", "quality", w.gen / "a", "--real", w.real,
                                         "--sheets", out],
    "zoo-ship": lambda w, o, c, out: ["zoo", "ship", "--runs", w.zoo_run(c), "-n", 2,
                                      "--out", out, *CPU],
    "artifacts": lambda w, o, c, out: ["artifacts", "--real", w.real, "--generated", w.gen,
                                       "--out", out, *CPU],
    "attribute": lambda w, o, c, out: ["attribute", w.artifacts(c), "--epochs", 1,
                                       "--seeds", "0", "--out", out, *CPU],
    "structure": lambda w, o, c, out: ["structure", w.artifacts(c), "--out", out],
    "spectrum": lambda w, o, c, out: ["spectrum", w.real, "--size", 32, "--out", out],
}


def _out_case(command, where):
    return lambda w, o, c: OUT_COMMANDS[command](w, o, c, where(w, o))


for _cmd in OUT_COMMANDS:
    for _kind, _where in BAD_OUT_DIRS.items():
        if (_cmd, _kind) != ("embed", "out-is-a-file"):  # FILE.npz: replacing it is fine
            CASES.append((f"{_cmd}-{_kind}", _out_case(_cmd, _where)))

cases("embed", {
    "out-is-a-folder": lambda w, o, c: ["embed", w.gen, "--out", w.bad / "empty", *ext(w)],
})

# --- image folders ----------------------------------------------------------------------

BAD_FOLDERS = {
    "missing": lambda w: w.bad / "no-such-folder",
    "a-file": lambda w: w.bad / "file.txt",
    "empty": lambda w: w.bad / "empty",
    "text-only": lambda w: w.bad / "text",
    "junk": lambda w: w.bad / "junk",
    "too-small": lambda w: w.bad / "small",
    "huge": lambda w: w.bad / "huge",
    "nan-pixels": lambda w: w.bad / "nan",
    "fifo": lambda w: w.bad / "fifo",
    "dev-zero": lambda w: w.bad / "devzero",
}

for _kind, _folder in BAD_FOLDERS.items():
    cases(_kind, {
        "embed": lambda w, o, c, f=_folder: ["embed", f(w), "--out", o / "e.npz", *ext(w)],
        "embed-mixed": lambda w, o, c, f=_folder: ["embed", w.gen / "a", f(w), "--out",
                                                    o / "e.npz", *ext(w)],
        "verify-mixed": lambda w, o, c, f=_folder: ["verify", w.gen / "a", w.gen / "b",
                                                     f(w), "--pairs", 50, *ext(w)],
        "zoo-quality": lambda w, o, c, f=_folder: ["zoo", "quality", f(w), "--real", w.real],
        "artifacts-generated": lambda w, o, c, f=_folder: [
            "artifacts", "--real", w.real, "--generated", w.gen / "a", f(w), "--out", o,
            "--size", 32, *CPU],
    })

cases("folder", {
    "identify-gallery-junk": lambda w, o, c: ["identify", "--gallery", w.bad / "junk",
                                              "--query", w.gen, *ext(w)],
    "identify-query-empty": lambda w, o, c: ["identify", "--gallery", w.gen, "--query",
                                             w.bad / "empty", *ext(w)],
    "identify-one-model": lambda w, o, c: ["identify", "--gallery", w.gen / "a", "--query",
                                           w.gen / "a", *ext(w)],
    "relate-one-model": lambda w, o, c: ["relate", w.gen / "a", *ext(w)],
    "verify-one-model": lambda w, o, c: ["verify", w.gen / "a", *ext(w)],
    "verify-nothing": lambda w, o, c: ["verify", *ext(w)],
    "artifacts-real-junk": lambda w, o, c: ["artifacts", "--real", w.bad / "junk",
                                            "--generated", w.gen, "--out", o, "--size", 32,
                                            *CPU],
    "artifacts-real-missing": lambda w, o, c: ["artifacts", "--real", w.bad / "nope",
                                               "--generated", w.gen, "--out", o, *CPU],
    "artifacts-real-huge": lambda w, o, c: ["artifacts", "--real", w.bad / "huge",
                                            "--generated", w.gen, "--out", o, "--size", 32,
                                            *CPU],
    "zoo-quality-real-junk": lambda w, o, c: ["zoo", "quality", w.gen / "a", "--real",
                                              w.bad / "junk"],
    "zoo-train-data-junk": lambda w, o, c: ["zoo", "train", "gan_tconv", "--data",
                                            w.bad / "junk", "--steps", 1, "--out", o, *CPU],
    "zoo-train-data-missing": lambda w, o, c: ["zoo", "train", "gan_tconv", "--data",
                                               w.bad / "nope", "--steps", 1, "--out", o, *CPU],
    "zoo-train-data-huge": lambda w, o, c: ["zoo", "train", "gan_tconv", "--data",
                                            w.bad / "huge", "--steps", 1, "--out", o, *CPU],
    "spectrum-junk": lambda w, o, c: ["spectrum", w.bad / "junk", "--size", 32],
    "spectrum-huge": lambda w, o, c: ["spectrum", w.bad / "huge", "--size", 32],
    "spectrum-missing": lambda w, o, c: ["spectrum", w.bad / "nope"],
})

def _with_junk_model(w, o):
    root = o.parent / "models"
    shutil.copytree(w.gen, root)
    shutil.copytree(w.bad / "junk", root / "junk")
    return root


cases("folder", {
    "embed-junk-model-inside": lambda w, o, c: ["embed", _with_junk_model(w, o), "--out",
                                                o / "e.npz", *ext(w)],
    "verify-junk-model-inside": lambda w, o, c: ["verify", _with_junk_model(w, o), *ext(w)],
    "relate-junk-model-inside": lambda w, o, c: ["relate", _with_junk_model(w, o), *ext(w)],
    "artifacts-junk-model-inside": lambda w, o, c: [
        "artifacts", "--real", w.real, "--generated", _with_junk_model(w, o), "--size", 32,
        "--out", o, *CPU],
})

# --- numbers ----------------------------------------------------------------------------

BIG = 10**12
cases("number", {
    "verify-seed-negative": lambda w, o, c: ["verify", w.gen, "--seed", -1, *ext(w)],
    "verify-seed-2-32": lambda w, o, c: ["verify", w.gen, "--seed", 2**32, *ext(w)],
    "verify-seed-5000-digits": lambda w, o, c: ["verify", w.gen, "--seed", "9" * 5000,
                                                *ext(w)],
    "verify-seed-float": lambda w, o, c: ["verify", w.gen, "--seed", "1e3", *ext(w)],
    "verify-pairs-zero": lambda w, o, c: ["verify", w.gen, "--pairs", 0, *ext(w)],
    "verify-pairs-one": lambda w, o, c: ["verify", w.gen, "--pairs", 1, *ext(w)],
    "verify-pairs-huge": lambda w, o, c: ["verify", w.gen, "--pairs", BIG, *ext(w)],
    "verify-pairs-negative": lambda w, o, c: ["verify", w.gen, "--pairs", -5, *ext(w)],
    "identify-seed-negative": lambda w, o, c: ["identify", "--gallery", w.gen, "--query",
                                               w.gen, "--seed", -1, *ext(w)],
    "identify-shots-zero": lambda w, o, c: ["identify", "--gallery", w.gen, "--query",
                                            w.gen, "--shots", 0, *ext(w)],
    "identify-shots-huge": lambda w, o, c: ["identify", "--gallery", w.gen, "--query",
                                            w.gen, "--shots", BIG, *ext(w)],
    "zoo-sample-seed-2-64": lambda w, o, c: ["zoo", "sample", "gan_tconv", "--runs",
                                             w.zoo_run(c), "--seed", 2**64, "--out", o, *CPU],
    "zoo-sample-seed-negative": lambda w, o, c: ["zoo", "sample", "gan_tconv", "--runs",
                                                 w.zoo_run(c), "--seed", -1, "--out", o,
                                                 *CPU],
    "zoo-sample-n-zero": lambda w, o, c: ["zoo", "sample", "gan_tconv", "--runs",
                                          w.zoo_run(c), "-n", 0, "--out", o, *CPU],
    "zoo-sample-n-huge": lambda w, o, c: ["zoo", "sample", "gan_tconv", "--runs",
                                          w.zoo_run(c), "-n", BIG, "--out", o, *CPU],
    "zoo-train-steps-huge": lambda w, o, c: ["zoo", "train", "gan_tconv", "--steps", BIG,
                                             "--out", o, *CPU],
    "zoo-train-steps-negative": lambda w, o, c: ["zoo", "train", "gan_tconv", "--steps", -1,
                                                 "--out", o, *CPU],
    "zoo-train-batch-huge": lambda w, o, c: ["zoo", "train", "gan_tconv", "--batch", 10**9,
                                             "--steps", 1, "--out", o, *CPU],
    "zoo-train-every-zero": lambda w, o, c: ["zoo", "train", "gan_tconv", "--steps", 1,
                                             "--checkpoint-every", 0, "--out", o, *CPU],
    "zoo-train-size-48": lambda w, o, c: ["zoo", "train", "gan_tconv", "--size", 48,
                                          "--out", o, *CPU],
    "zoo-train-unknown-entry": lambda w, o, c: ["zoo", "train", "biggan", "--out", o, *CPU],
    "zoo-ship-n-huge": lambda w, o, c: ["zoo", "ship", "--runs", w.zoo_run(c), "-n", BIG,
                                        "--out", o, *CPU],
    "zoo-ship-real-huge": lambda w, o, c: ["zoo", "ship", "--runs", w.zoo_run(c), "--real",
                                           BIG, "--out", o, *CPU],
    "train-steps-zero": lambda w, o, c: ["train", "--steps", 0, "--out", o, *CPU],
    "train-steps-negative": lambda w, o, c: ["train", "--steps", -3, "--out", o, *CPU],
    "train-steps-huge": lambda w, o, c: ["train", "--steps", BIG, "--out", o, *CPU],
    "train-steps-text": lambda w, o, c: ["train", "--steps", "many", "--out", o, *CPU],
    "bank-images-huge": lambda w, o, c: ["bank", "sample", "--images", BIG, "--out", o, *CPU],
    "bank-models-zero": lambda w, o, c: ["bank", "sample", "--models", 0, "--out", o, *CPU],
    "artifacts-k-zero": lambda w, o, c: ["artifacts", "--real", w.real, "--generated", w.gen,
                                         "--k", 0, "--out", o, *CPU],
    "artifacts-k-huge": lambda w, o, c: ["artifacts", "--real", w.real, "--generated", w.gen,
                                         "--k", BIG, "--out", o, *CPU],
    "artifacts-holdout-negative": lambda w, o, c: ["artifacts", "--real", w.real,
                                                   "--generated", w.gen, "--holdout-real",
                                                   -1, "--out", o, *CPU],
    "artifacts-holdout-huge": lambda w, o, c: ["artifacts", "--real", w.real, "--generated",
                                               w.gen, "--holdout-real", BIG, "--out", o,
                                               *CPU],
    "artifacts-size-4": lambda w, o, c: ["artifacts", "--real", w.real, "--generated", w.gen,
                                         "--size", 4, "--out", o, *CPU],
    "artifacts-size-huge": lambda w, o, c: ["artifacts", "--real", w.real, "--generated",
                                            w.gen, "--size", BIG, "--out", o, *CPU],
    "artifacts-ssl-steps-huge": lambda w, o, c: ["artifacts", "--real", w.real, "--generated",
                                                 w.gen, "--space", "learned", "--learned",
                                                 "ssl", "--ssl-steps", BIG, "--out", o,
                                                 *CPU],
    "artifacts-seed-negative": lambda w, o, c: ["artifacts", "--real", w.real, "--generated",
                                                w.gen, "--seed", -1, "--out", o, *CPU],
    "attribute-seeds-text": lambda w, o, c: ["attribute", w.artifacts(c), "--seeds", "a,b",
                                             *CPU],
    "attribute-seeds-empty": lambda w, o, c: ["attribute", w.artifacts(c), "--seeds", ",",
                                              *CPU],
    "attribute-seeds-negative": lambda w, o, c: ["attribute", w.artifacts(c), "--seeds",
                                                 "-1", *CPU],
    "attribute-seeds-huge": lambda w, o, c: ["attribute", w.artifacts(c), "--seeds",
                                             str(10**30), *CPU],
    "attribute-epochs-huge": lambda w, o, c: ["attribute", w.artifacts(c), "--epochs", BIG,
                                              *CPU],
    "structure-seed-negative": lambda w, o, c: ["structure", w.artifacts(c), "--seed", -1],
    "spectrum-size-4": lambda w, o, c: ["spectrum", w.real, "--size", 4],
    "spectrum-batch-zero": lambda w, o, c: ["spectrum", w.real, "--batch-size", 0],
})

# --- embeddings files -------------------------------------------------------------------

for _name in ("empty", "random", "bare", "wrongkeys", "one_d", "mismatch", "nan", "inf",
              "strings", "onemodel", "singletons", "claims_huge", "inflates", "object"):
    cases("embeddings", {
        f"verify-{_name}": lambda w, o, c, n=_name: ["verify", "--embeddings",
                                                      w.bad / f"{n}.npz"],
    })
cases("embeddings", {
    "relate-nan": lambda w, o, c: ["relate", "--embeddings", w.bad / "nan.npz"],
    "relate-inf": lambda w, o, c: ["relate", "--embeddings", w.bad / "inf.npz"],
    "relate-claims-huge": lambda w, o, c: ["relate", "--embeddings", w.bad / "claims_huge.npz"],
    "verify-missing": lambda w, o, c: ["verify", "--embeddings", w.bad / "nope.npz"],
    "verify-folder": lambda w, o, c: ["verify", "--embeddings", w.bad / "empty"],
    "verify-fifo": lambda w, o, c: ["verify", "--embeddings", w.bad / "fifo" / "pipe.png"],
    "verify-dev-zero": lambda w, o, c: ["verify", "--embeddings", "/dev/zero"],
})

# --- specs beside model folders (relate) ------------------------------------------------


def _spec_case(bad_file):
    def build(w, o, c):
        root = o.parent / "specs"
        shutil.copytree(w.gen, root)
        shutil.copy(w.bad / bad_file, root / "a" / "spec.json")
        return ["relate", root, *ext(w)]
    return build


for _bad in ("binary.json", "nested.json", "bigint.json", "empty.json", "list.json"):
    CASES.append((f"spec-relate-{_bad.removesuffix('.json')}", _spec_case(_bad)))
