"""The options of a training run: the `cmr train` flags (one parser, shared by `cmr train` and the
torchrun entry point `python -m cmr_search.model.training.run`) and their checks.

    opts = parse_options(["--cache", "cmr-data/cache", "--out", "runs/tiny"])   # argparse.Namespace
    check_options(opts)          # RunUsageError (exit 2) for values that cannot work
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import RunUsageError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cmr train", description="Train a CMR-CLIP model on a study cache.")
    p.add_argument("--cache", required=True, nargs="+", metavar="DIR",
                   help="study cache folder (from `cmr prepare`), or several: one per archive, trained on together")
    p.add_argument("--config", default="cmr-tiny", help="model config name or JSON file (default cmr-tiny)")
    p.add_argument("--out", required=True, help="checkpoint folder to write (training state in OUT/train)")
    p.add_argument("--epochs", type=int, default=20, help="passes over the training studies (default 20)")
    p.add_argument("--max-steps", type=int, default=None, help="stop the schedule after this many steps")
    p.add_argument("--batch", type=int, default=64, help="global batch size (default 64)")
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (default 1e-3)")
    p.add_argument("--warmup", type=int, default=None, help="warmup steps (default: 5%% of the schedule)")
    p.add_argument("--seed", type=int, default=0, help="seed of init, shuffling and dropout (default 0)")
    p.add_argument("--view-dropout", type=float, default=0.3, help="probability of dropping cine or LGE")
    p.add_argument("--text-augment", type=float, default=0.15, metavar="P",
                   help="drop each impression sentence with probability P and shuffle the order half of "
                        "the time (model.training.augment; default 0.15, 0 = off)")
    p.add_argument("--text-variants", type=int, default=0, metavar="N",
                   help="draw the augmentation from N fixed variants per impression (plus the impression "
                        "itself) instead of afresh each time: a frozen text tower then encodes each "
                        "variant once (about as fast as no augmentation on CPU; default 0 = afresh)")
    p.add_argument("--ema", type=float, default=0.0, help="EMA decay of the weights (0 = off)")
    p.add_argument("--holdout", type=float, default=0.2, help="fraction of studies held out (default 0.2)")
    p.add_argument("--exclude-keys", help="file of study keys to leave out (a held-out test set)")
    p.add_argument("--wording", choices=("all", "train"), default="train",
                   help="synthetic caches: train only on reports of the 'train' wording split, keeping "
                        "the held-out wording unseen for `cmr eval` (default), or on all of them")
    p.add_argument("--init", default=None, metavar="CKPT",
                   help="start from the weights of CKPT (fine-tuning on your archive): a checkpoint folder, or "
                        "for --config cmr-clip-b16 the published pytorch_model.bin; the architecture must "
                        "match --config, the frame size may differ")
    p.add_argument("--resume", action="store_true", help="continue the run in OUT/train")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default auto)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads per process")
    p.add_argument("--load-workers", type=int, default=0,
                   help="decode all training clips into memory first with N threads (GPU runs: keeps the "
                        "first epoch from waiting on npz decode; default 0 = decode as batches come)")
    p.add_argument("--log-every", type=int, default=10, help="steps between metrics lines")
    p.add_argument("--ckpt-every", type=int, default=None, metavar="N",
                   help="save the resumable state every N steps (default: a tenth of the run, at least 50); "
                        "a kill loses at most N steps")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def parse_options(argv: list[str] | None = None) -> argparse.Namespace:
    """argv -> the run's options (argparse exits 2 with its usage message on unknown or missing flags)."""
    return build_parser().parse_args(argv)


def check_options(opts: argparse.Namespace) -> None:
    """Raise RunUsageError for options that cannot work: bad values, a missing cache folder, or an OUT
    that holds a run in progress without --resume."""
    if opts.batch < 1 or opts.epochs < 1 or not 0 <= opts.holdout < 1:
        raise RunUsageError("--batch and --epochs must be >= 1 and --holdout in [0, 1)")
    if opts.text_variants < 0 or not 0 <= opts.text_augment <= 1:
        raise RunUsageError("--text-variants must be >= 0 and --text-augment in [0, 1]")
    if opts.ckpt_every is not None and opts.ckpt_every < 1:
        raise RunUsageError("--ckpt-every must be >= 1")
    missing = [c for c in opts.cache if not Path(c).is_dir()]
    if missing:
        raise RunUsageError(f"cache folder {missing[0]} not found; build it with `cmr prepare`")
    out = Path(opts.out)
    if (out / "train" / "last" / "state.pt").exists() and not opts.resume:
        raise RunUsageError(f"{out} holds a run in progress; pass --resume to continue it or choose another --out")


def recorded_args(opts: argparse.Namespace) -> dict:
    """The options that define the run (OUT/train/args.json; --resume must repeat them)."""
    run_args = {k: v for k, v in vars(opts).items() if k not in ("resume", "no_progress", "device", "threads",
                                                                   "load_workers", "ckpt_every")}
    if len(opts.cache) == 1:                        # one cache: recorded as before (runs resume across versions)
        run_args["cache"] = opts.cache[0]
    return run_args
