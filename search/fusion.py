"""Weighted reciprocal rank fusion: each ranking counts as much as it has been measured to be worth.

    w = ranking_weights(card)                   # {"image": 0.15} for a model weak on real studies
    hits = weighted_rrf({"study": img_hits, "report_text": txt_hits, ...}, {"study": 0.15}, limit=10)

Plain RRF (what the engines run, Store.fuse) gives every ranking one vote, so a model whose image vectors
are noise on real hearts drags every hybrid result by as much as the report text lifts it. Here a
ranking's vote is its weight: score(study) = sum over rankings of w / (RRF_K + rank), rank 1-based
(Cormack et al., SIGIR 2009), computed here on each ranking's prefetch because neither engine takes
weights.

The image ranking's weight comes from the checkpoint's own card: its zero-shot AUCs on real labelled
studies (`cmr eval --acdc`, card "eval_real") give w = max(0, 2 x mean AUC - 1) (the Gini coefficient:
0 for a ranking no better than chance, 1 for a perfect one); a checkpoint never measured on real
studies keeps w = 1. The report rankings keep 1; a ranking by the measurements a query names
(search/measured_terms.py) gets MEASURED_WEIGHT.
"""
from __future__ import annotations

import math

from .backends.base import RRF_K, Hit

IMAGE_VECTORS = ("study", "cine", "lge")
# The measurements' vote when a query names one: as much as the three report rankings together, because
# a measured number is the definition of "LVEF < 50 %", where words only describe it. Checked on the
# phantom's validation archive (seed 11) before the test archive (seed 7): docs/search.md.
MEASURED_WEIGHT = 3.0


def image_weight(card: dict | None) -> float:
    """The image ranking's vote from the card's real-data zero-shot AUCs; 1.0 when never measured."""
    zs = ((card or {}).get("eval_real") or {}).get("zero_shot") or {}
    aucs = [z["auc"] for z in zs.values() if isinstance(z, dict) and z.get("auc") is not None
            and not math.isnan(z["auc"])]
    if not aucs:
        return 1.0
    return round(max(0.0, 2.0 * sum(aucs) / len(aucs) - 1.0), 3)


def weighted_rrf(rankings: dict[str, list[Hit]], weights: dict[str, float], limit: int,
                 k: int = RRF_K) -> list[Hit]:
    """Fuse best-first rankings (name -> hits); a name missing from `weights` counts 1, weight 0 drops it.
    Ties are broken by study key, as Store's rankings are."""
    score: dict[str, float] = {}
    first: dict[str, Hit] = {}
    for name, ranked in rankings.items():
        w = weights.get(name, 1.0)
        if w <= 0:
            continue
        for rank, hit in enumerate(ranked, 1):
            score[hit.key] = score.get(hit.key, 0.0) + w / (k + rank)
            first.setdefault(hit.key, hit)
    order = sorted(score, key=lambda key: (-round(score[key], 9), key))[:limit]
    return [Hit(first[key].id, score[key], first[key].payload) for key in order]
