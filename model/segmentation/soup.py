"""A weight average of segmenter checkpoints of one config (a "model soup", Wortsman et al., ICML 2022):
fine-tuned stages of one network average into a model that keeps what each learned, with no training.

    python -m cmr_search.model.segmentation.soup STAGE_A STAGE_B --out runs/seg-soup [--weights 0.5,0.5]

Every floating-point tensor (weights and batch-norm running statistics) is the weighted mean of the
ingredients'; integer buffers (batch-norm step counts) come from the last. The ingredients must share the
config (same names and shapes). The card records the ingredients' cards and weights.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from ..errors import CheckpointError
from .segmenter import Segmenter


def average(folders: list[str | Path], weights: list[float] | None = None) -> tuple[Segmenter, dict]:
    """Checkpoint folders -> (the averaged Segmenter, its card)."""
    if len(folders) < 2:
        raise CheckpointError("a soup needs at least two checkpoint folders")
    weights = [1.0 / len(folders)] * len(folders) if weights is None else [float(w) for w in weights]
    if len(weights) != len(folders) or min(weights) < 0 or abs(sum(weights) - 1.0) > 1e-6:
        raise CheckpointError(f"--weights must be {len(folders)} non-negative numbers summing to 1; got {weights}")
    segs = [Segmenter.load(f) for f in folders]
    names = {s.cfg.name for s in segs}
    if len(names) > 1 or len({tuple(s.cfg.channels) for s in segs}) > 1:
        raise CheckpointError(f"checkpoints of different configs cannot be averaged: {sorted(names)}")
    states = [s.net.state_dict() for s in segs]
    soup = {}
    for key, last in states[-1].items():
        if last.is_floating_point():
            soup[key] = sum(w * st[key].double() for w, st in zip(weights, states)).to(last.dtype)
        else:
            soup[key] = last.clone()
    out = segs[-1]
    out.net.load_state_dict(soup)
    out.__dict__.pop("fingerprint", None)                       # new weights, new fingerprint
    out.use_runtime()
    card = {"trained_on": segs[-1].card.get("trained_on", "synthetic only"),
            "recipe": {"soup": [str(f) for f in folders], "weights": weights},
            "ingredients": [{k: v for k, v in s.card.items() if k != "path"} for s in segs]}
    return out, card


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("folders", nargs="+", help="segmenter checkpoint folders of one config")
    p.add_argument("--out", required=True, help="checkpoint folder to write")
    p.add_argument("--weights", help="comma-separated weights summing to 1 (default: equal)")
    args = p.parse_args(argv)
    try:
        weights = [float(w) for w in args.weights.split(",")] if args.weights else None
        seg, card = average(args.folders, weights)
    except (CheckpointError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"segmenter soup ({seg.fingerprint}): {seg.save(args.out, card)}")
    return 0


if __name__ == "__main__":
    torch.set_num_threads(1)
    sys.exit(main())
