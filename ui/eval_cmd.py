"""`cmr eval --cache DIR --checkpoint CKPT`: retrieval, zero-shot, few-shot and linear-probe metrics.

    cmr eval --cache cmr-data/cache --checkpoint runs/tiny [--out DIR] [--keys FILE] [--update-card]
    cmr eval --acdc ../shared/data/acdc-dev --checkpoint CKPT [--repeats 10] [--folds 4] [--update-card]

`--acdc FOLDER` evaluates on real labelled studies instead (model.evaluation.real): the folder, in the
ACDC layout (patientNNN/Info.cfg names the Group), is prepared into a temporary cache (NIfTI imports in
seconds; nothing is written beside the checkpoint but the results) and the frozen study vectors get a repeated-CV group probe (and its raw-pixel floor),
zero-shot AUC per group and same-group precision@3 -> OUT/eval_real.json and eval_real.md.

Evaluated studies: those in `--keys FILE`, else the checkpoint's study-level hold-out plus the keys it
excluded; the run is model.evaluation.run. Writes OUT/eval.json (card style) and OUT/eval.md (default
OUT = CKPT/eval); `--update-card` also merges the metrics into CKPT/card.json under "eval". This command
parses the flags, prints the headline and turns the run's errors into exit codes (2 bad usage, 1 failure).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from functools import partial
from pathlib import Path

from cmr_search.model.errors import ModelError, RunUsageError
from cmr_search.model.evaluation import run as evaluation
from cmr_search.model.evaluation.report import headline
from cmr_search.indexer.errors import IndexerError
from cmr_search.indexer.nifti import is_acdc
from cmr_search.indexer.prepare import prepare
from cmr_search.ui.cli import fail


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cmr eval", description="Evaluate a checkpoint on a study cache.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--cache", help="study cache folder (from `cmr prepare`)")
    src.add_argument("--acdc", help="real labelled studies: a folder in the ACDC layout (Info.cfg Group)")
    p.add_argument("--checkpoint", required=True, help="checkpoint folder (or a config name: untrained model)")
    p.add_argument("--out", help="output folder for eval.json and eval.md (default CKPT/eval)")
    p.add_argument("--keys", help="file of study keys to evaluate (default: the checkpoint's hold-out)")
    p.add_argument("--update-card", action="store_true", help="merge the metrics into CKPT/card.json")
    p.add_argument("--episodes", type=int, default=100, help="few-shot episodes per shot count (default 100)")
    p.add_argument("--folds", type=int, help="linear-probe CV folds (default 5; with --acdc 4)")
    p.add_argument("--repeats", type=int, default=10, help="with --acdc: CV repeats (default 10)")
    p.add_argument("--salt-file", help="with --acdc: salt of the cache's study keys (as `cmr prepare`)")
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
    if args.acdc:
        return _real(args)
    if not Path(args.cache).is_dir():
        return _fail(f"cache folder {args.cache} not found; build it with `cmr prepare`", 2)
    opts = evaluation.EvalOptions(cache=args.cache, checkpoint=args.checkpoint, out=args.out, keys=args.keys,
                                  update_card=args.update_card, episodes=args.episodes, folds=args.folds or 5,
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


def _real(args) -> int:
    """--acdc: prepare the folder into a temporary cache, then evaluate the study vectors on its groups."""
    if not is_acdc(args.acdc):
        return _fail(f"{args.acdc} is not an ACDC-layout folder (patientNNN/Info.cfg); nothing evaluated", 2)
    try:
        with tempfile.TemporaryDirectory(prefix="cmr-eval-") as tmp:
            res = _prepare_and_run(args, Path(tmp) / "cache")
    except RunUsageError as exc:
        return _fail(str(exc), 2)
    except (ModelError, IndexerError) as exc:
        return _fail(str(exc))
    r = res.report
    zs = ", ".join(f"{g} {z['auc']:.2f}" for g, z in r["zero_shot"].items())
    print(f"real studies (n={r['n']}): group probe {r['probe']['accuracy']['mean']:.2f} "
          f"+- {r['probe']['accuracy']['sd']:.2f} (raw pixels {r['probe_raw_pixels']['accuracy']['mean']:.2f}), "
          f"precision@3 {r['study_to_study']['mean']:.2f}; zero-shot AUC {zs}")
    print(f"wrote {res.json_path} and {res.md_path}")
    return 0


def _prepare_and_run(args, cache: Path) -> evaluation.EvalResult:
    prepare(args.acdc, out=cache, salt_file=args.salt_file, progress=not args.no_progress)   # measured too
    opts = evaluation.RealEvalOptions(cache=str(cache), checkpoint=args.checkpoint, out=args.out,
                                      update_card=args.update_card, folds=args.folds or 4, repeats=args.repeats,
                                      seed=args.seed, batch=args.batch, device=args.device,
                                      source=str(Path(args.acdc).resolve()))
    return evaluation.run_real(opts)


if __name__ == "__main__":
    sys.exit(main())
