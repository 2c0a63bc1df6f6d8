"""How well design heads name the design of generators they never saw.

Each test generator is predicted from the set of its images (:meth:`DesignHeads.
predict_set`); per field, its top value is right or wrong. Scored per field:

* ``accuracy``: share of generators named right, over those whose true value the heads
  can name at all (a zoo flow's ``squeeze`` is in no synthetic space: such generators
  are listed in ``left_out``, never silently counted);
* ``image_accuracy``: the same per image (one image each, no set);
* ``majority``: predicting the fitting data's most common value for every generator
  (the baseline a head must beat);
* ``best_constant``: the test set's own most common value (a baseline that peeked);
* ``confusion``: true value -> predicted value -> generators.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import torch

from core.errors import InvalidInputError
from core.parsing.heads import DesignHeads


@dataclass(frozen=True)
class FieldScore:
    field: str
    generators: int
    left_out: tuple[str, ...]
    accuracy: float
    image_accuracy: float
    majority: float
    best_constant: float
    confusion: dict


@dataclass(frozen=True)
class DesignScores:
    """One heads file on one test set: per-field scores and each generator's top values
    (``predictions``: generator -> field -> ``[value, probability, true value]``)."""

    heads: str
    kind: str
    set_name: str
    fields: tuple[FieldScore, ...]
    predictions: dict

    def to_dict(self) -> dict:
        return asdict(self)


def score_heads(heads: DesignHeads, features: torch.Tensor, rows: Sequence[str],
                truth: Mapping[str, Mapping[str, str]], *, name: str, set_name: str
                ) -> DesignScores:
    """Score ``heads`` on ``features`` ``(N, D)`` whose row ``i`` is an image of
    generator ``rows[i]``, whose design is ``truth[generator]`` (field -> value)."""
    if len(rows) != len(features) or not len(rows):
        raise InvalidInputError(f"{len(rows)} generator names for {len(features)} rows")
    missing = sorted(set(rows) - set(truth))
    if missing:
        raise InvalidInputError(f"no recorded design for {missing[:3]}")
    generators = list(dict.fromkeys(rows))
    per_image = heads.predict_images(features)
    index = {g: [i for i, r in enumerate(rows) if r == g] for g in generators}
    sets = {g: heads.predict_set(features[index[g]]) for g in generators}
    majority = (heads.made_by or {}).get("majority", {})
    scores, predictions = [], {g: {} for g in generators}
    for f in heads.fields:
        vocab = set(heads.vocab[f])
        named = [g for g in generators if truth[g].get(f) in vocab]
        left = tuple(g for g in generators if g not in named)
        confusion: dict[str, dict[str, int]] = {}
        right = 0
        for g in generators:
            top, p = next(iter(sets[g][f].items()))
            predictions[g][f] = [top, p, truth[g].get(f)]
            if g in named:
                t = truth[g][f]
                confusion.setdefault(t, {})
                confusion[t][top] = confusion[t].get(top, 0) + 1
                right += top == t
        named_rows = [i for g in named for i in index[g]]
        img = sum(per_image[f][i] == truth[rows[i]][f] for i in named_rows)
        values = Counter(truth[g][f] for g in named)
        n = len(named)
        scores.append(FieldScore(
            f, n, left, round(right / n, 4) if n else float("nan"),
            round(img / len(named_rows), 4) if n else float("nan"),
            round(sum(truth[g][f] == majority.get(f) for g in named) / n, 4) if n
            else float("nan"),
            round(values.most_common(1)[0][1] / n, 4) if n else float("nan"), confusion))
    return DesignScores(name, heads.kind, set_name, tuple(scores), predictions)


def table(results: Sequence[DesignScores], markdown: bool = False) -> str:
    """One row per (set, field): each heads file's set accuracy (image accuracy), then
    the majority and best-constant baselines."""
    if not results:
        return ""
    heads = list(dict.fromkeys(r.heads for r in results))
    head = ["set", "field", "generators", *[f"{h} set (image)" for h in heads],
            "majority", "best constant"]
    lines = [head]
    keys = list(dict.fromkeys((r.set_name, s.field) for r in results for s in r.fields))
    for set_name, f in keys:
        cells = {r.heads: s for r in results if r.set_name == set_name
                 for s in r.fields if s.field == f}
        any_score = next(iter(cells.values()))
        row = [set_name, f, str(any_score.generators)
               + (f" (+{len(any_score.left_out)} unnameable)" if any_score.left_out else "")]
        row += [f"{cells[h].accuracy:.3f} ({cells[h].image_accuracy:.3f})" if h in cells
                else "-" for h in heads]
        row += [f"{any_score.majority:.3f}", f"{any_score.best_constant:.3f}"]
        lines.append(row)
    if markdown:
        out = ["| " + " | ".join(lines[0]) + " |",
               "|" + "|".join("---" if i < 2 else "---:" for i in range(len(head))) + "|"]
        return "\n".join(out + ["| " + " | ".join(r) + " |" for r in lines[1:]])
    widths = [max(len(r[i]) for r in lines) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in lines)


def confusion_text(score: FieldScore) -> str:
    """``true -> predicted (count), ...`` one line per true value."""
    return "\n".join(f"  {t} -> " + ", ".join(f"{p} ({n})" for p, n in
                                               sorted(row.items(), key=lambda kv: -kv[1]))
                     for t, row in sorted(score.confusion.items()))
