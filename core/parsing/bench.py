"""``fpx bench design``: design heads named by what they read, on the shipped zoo (whose
designs are recorded) and on synthetic architectures no head nor extractor saw, beside
the majority baseline, in one run.

    results = bench_design(load_heads("runs/heads"), "core/assets/extractor")
    print(table(results))
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from core.errors import InvalidInputError
from core.parsing.evaluate import DesignScores, score_heads
from core.parsing.fit import check_extractor, heldout_scores, readers
from core.parsing.heads import DesignHeads

SETS = ("zoo", "architectures")


def zoo_truth(test_set) -> dict[str, dict[str, str]]:
    """Generator -> field -> value from a zoo test set's recorded designs (an entry
    without up-stages has period ``none``)."""
    out = {}
    for name, d in test_set.designs.items():
        period = d.get("period")
        out[name] = {"upsampling": d.get("upsampling"), "normalization": d.get("normalization"),
                     "activation": d.get("activation"),
                     "period": "none" if period in (None, "None") else str(period)}
    return out


def bench_design(heads: dict[str, DesignHeads], extractor: str | Path | None, *,
                 sets: Sequence[str] = SETS, zoo: str | Path | None = None,
                 heldout: int = 32, images: int = 12, device: str | torch.device = "cpu",
                 progress: Callable[[str], None] | None = None) -> list[DesignScores]:
    """Score every heads file (kind -> heads) on each set named."""
    unknown = sorted(set(sets) - set(SETS))
    if unknown or not sets:
        raise InvalidInputError(f"sets {list(sets)}; valid: {', '.join(SETS)}")
    if not heads:
        raise InvalidInputError("no design heads to evaluate")
    for h in heads.values():
        if h.kind == "extractor":
            if extractor is None:
                raise InvalidInputError("extractor heads need --extractor")
            check_extractor(h, extractor)
    reads = readers(list(heads), extractor, device)
    results: list[DesignScores] = []
    if "zoo" in sets:
        from core.bench.sets import zoo_set

        if progress:
            progress("reading the zoo")
        z = zoo_set(zoo)
        truth = zoo_truth(z)
        rows = [z.models[int(i)] for i in z.labels]
        for kind, h in heads.items():
            if progress:
                progress(f"{kind} features of {len(rows)} zoo images")
            results.append(score_heads(h, reads[kind](z.images), rows, truth,
                                       name=f"{kind} heads", set_name="zoo"))
    if "architectures" in sets:
        groups: dict[str, dict[str, DesignHeads]] = {}
        for kind, h in heads.items():
            key = json.dumps([h.made_by.get("spaces"), h.made_by.get("sizes")], sort_keys=True)
            groups.setdefault(key, {})[kind] = h
        for group in groups.values():
            first = next(iter(group.values()))
            configs, sizes = _fitting_data(first)
            results.extend(heldout_scores(group, configs, {k: reads[k] for k in group},
                                          models=heldout, images=images, sizes=sizes,
                                          device=device, progress=progress))
    return results


def _fitting_data(h: DesignHeads):
    from core.synthetic import BankConfig

    try:
        configs = [BankConfig(**c) for c in h.made_by["spaces"]]
        sizes = [int(s) for s in h.made_by["sizes"]]
    except (KeyError, TypeError, ValueError) as err:
        raise InvalidInputError(f"{h.kind} heads do not record their fitting data "
                                f"({str(err)[:60]}); held-out architectures unknown") from None
    return configs, sizes
