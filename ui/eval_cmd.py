"""`cmr eval --cache DIR --checkpoint CKPT`: retrieval, zero-shot, few-shot and linear-probe metrics.

    cmr eval --cache cmr-data/cache --checkpoint runs/tiny [--out DIR] [--keys FILE] [--update-card]

Evaluated studies: those in `--keys FILE`, else the checkpoint's study-level hold-out plus the keys it
excluded; the run is model.evaluation.run. Writes OUT/eval.json (card style) and OUT/eval.md (default
OUT = CKPT/eval); `--update-card` also merges the metrics into CKPT/card.json under "eval". This command
parses the flags, prints the headline and turns the run's errors into exit codes (2 bad usage, 1 failure).
"""
from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path

from cmr_search.model.errors import ModelError, RunUsageError
from cmr_search.model.evaluation import run as evaluation
from cmr_search.model.evaluation.report import headline
from cmr_search.ui.cli import fail


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cmr eval", description="Evaluate a checkpoint on a study cache.")
    p.add_argument("--cache", required=True, help="study cache folder (from `cmr prepare`)")
    p.add_argument("--checkpoint", required=True, help="checkpoint folder (or a config name: untrained model)")
    p.add_argument("--out", help="output folder for eval.json and eval.md (default CKPT/eval)")
    p.add_argument("--keys", help="file of study keys to evaluate (default: the checkpoint's hold-out)")
    p.add_argument("--update-card", action="store_true", help="merge the metrics into CKPT/card.json")
    p.add_argument("--episodes", type=int, default=100, help="few-shot episodes per shot count (default 100)")
    p.add_argument("--folds", type=int, default=5, help="linear-probe CV folds (default 5)")
    p.add_argument("--seed", type=int, default=0, help="seed of few-shot episodes and CV folds")
    p.add_argument("--batch", type=int, default=64, help="embedding batch size")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


_fail = partial(fail, "eval")   # (msg, code=1) -> code


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    if not Path(args.cache).is_dir():
        return _fail(f"cache folder {args.cache} not found; build it with `cmr prepare`", 2)
    opts = evaluation.EvalOptions(cache=args.cache, checkpoint=args.checkpoint, out=args.out, keys=args.keys,
                                  update_card=args.update_card, episodes=args.episodes, folds=args.folds,
                                  seed=args.seed, batch=args.batch, device=args.device,
                                  progress=not args.no_progress)
    try:
        res = evaluation.run(opts)
    except RunUsageError as exc:
        return _fail(str(exc), 2)
    except ModelError as exc:
        return _fail(str(exc))
    print(headline(res.report))
    print(f"wrote {res.json_path} and {res.md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
