"""`cmr train --cache DIR --config cmr-tiny --out CKPT`: contrastive training on the study cache.

    cmr train --cache cmr-data/cache --config cmr-tiny --out runs/tiny --epochs 20 --batch 64 --seed 0
    cmr train ... --resume                       # continue an interrupted run (same arguments)
    cmr train --cache site-a/cache site-b/cache ...   # several archives' caches, trained on together
    cmr train --task seg --data seg-data --out runs/seg --steps 4000   # the segmenter (synthetic slices)
    cmr train --task measure-head --cache CACHE --init CKPT --out runs/measured   # model.training.measure_head
    torchrun --nproc_per_node 2 -m cmr_search.model.training.run --cache ... --out ...   # DDP (gloo on CPU, nccl on GPU)

The run itself (hold-out, schedule, card, DDP) is model.training.run; this command parses the flags
(model.training.options) and turns the run's errors into messages and exit codes (2 bad usage, 1 failure).
"""
from __future__ import annotations

import argparse
import sys
from functools import partial

from cmr_search.model.errors import ModelError, RunUsageError
from cmr_search.model.segmentation import train as seg_train
from cmr_search.model.training import run as training
from cmr_search.model.training.measure_head import MeasureHeadRecipe, train_measure_head
from cmr_search.model.training.options import build_parser
from cmr_search.ui.cli import fail

__all__ = ["build_parser", "main"]

_fail = partial(fail, "train")   # (msg, code=1) -> code


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--task" in argv and argv[argv.index("--task") + 1:argv.index("--task") + 2] == ["seg"]:
        return _train_segmenter(argv)
    if "--task" in argv and argv[argv.index("--task") + 1:argv.index("--task") + 2] == ["measure-head"]:
        return _train_measure_head(argv)
    try:
        opts = build_parser().parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    return _guarded(lambda: training.run(opts))


def _train_segmenter(argv: list[str]) -> int:
    """`cmr train --task seg`: model.segmentation.train (its own flags: `cmr train --task seg --help`)."""
    def run() -> int:
        print(f"segmenter checkpoint: {seg_train.train(seg_train.recipe_from_args(argv))}")
        return 0
    try:
        return _guarded(run)
    except SystemExit as e:              # argparse: --help, or bad flags (its usage message is printed)
        return int(e.code or 0)


def _measure_head_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cmr train --task measure-head",
                                description="Train the measure head on a frozen checkpoint (model/measures.py).")
    p.add_argument("--task", choices=["measure-head"], required=True)
    p.add_argument("--cache", nargs="+", required=True, help="caches prepared with the segmenter (measurements)")
    p.add_argument("--init", required=True, help="the frozen checkpoint folder the head is added to")
    p.add_argument("--out", required=True, help="the new checkpoint folder")
    d = MeasureHeadRecipe()
    for name in ("steps", "batch", "seed"):
        p.add_argument(f"--{name}", type=int, default=getattr(d, name))
    for name in ("lr", "weight_decay", "swap", "noise", "drop", "scale"):
        p.add_argument(f"--{name.replace('_', '-')}", type=float, default=getattr(d, name), dest=name)
    return p


def _train_measure_head(argv: list[str]) -> int:
    """`cmr train --task measure-head`: model.training.measure_head."""
    try:
        a = _measure_head_parser().parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    recipe = MeasureHeadRecipe(steps=a.steps, batch=a.batch, lr=a.lr, weight_decay=a.weight_decay, swap=a.swap,
                               noise=a.noise, drop=a.drop, scale=a.scale, seed=a.seed)

    def run() -> int:
        print(f"checkpoint with a measure head: {train_measure_head(a.cache, a.init, a.out, recipe, ['cmr', 'train', *argv])}")
        return 0
    return _guarded(run)


def _guarded(run) -> int:
    """A run's typed errors -> message and exit code (2 bad usage, 1 failure)."""
    try:
        return run()
    except RunUsageError as exc:
        return _fail(str(exc), 2)
    except ModelError as exc:
        return _fail(str(exc))


if __name__ == "__main__":
    sys.exit(main())
