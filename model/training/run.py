"""A training run: contrastive training of a CMR-CLIP model on the study cache (what `cmr train` runs).

    cmr train --cache cmr-data/cache --config cmr-tiny --out runs/tiny --epochs 20 --batch 64 --seed 0
    torchrun --nproc_per_node 2 -m cmr_search.model.training.run --cache ... --out ...   # DDP (gloo on CPU, nccl on GPU)

Trains on the studies of the cache that have a report, minus a deterministic study-level hold-out
(`--holdout 0.2`: salted hash of study_key, see training.data.holdout_mask) and minus `--exclude-keys FILE`.
`--batch` is the global batch: under torchrun each of the N processes takes batch/N studies of the same
global batch, so a run gives the same losses (up to float reduction order and view-dropout draws) with
any N. Writes OUT/ (config.json, model.safetensors, preprocess.json, card.json) and OUT/train/
(metrics.jsonl, args.json, last/ resumable state). Problems are raised as model.errors exceptions
(RunUsageError: bad usage); the command layer (ui/train_cmd.py, or `main` here under torchrun) turns
them into `cmr train: ...` messages and exit codes.
"""
from __future__ import annotations

import json
import shutil
import sys
import time
from functools import partial
from pathlib import Path

import torch

from ..atomic import atomic_write
from ..checkpoint import save_checkpoint
from ..config import load_config
from ..errors import CheckpointError, DataError, ModelError, RunUsageError
from ..factory import create_model
from ..model import CMRClip
from .augment import augment_impression, pooled_augment
from .card import training_card, weights_record
from .data import BatchStream, CacheDataset, holdout_mask, read_keys
from .distributed import cleanup_distributed, init_distributed
from .options import check_options, parse_options, recorded_args
from .progress import ProgressTrainer
from .trainer import TrainConfig, seed_everything


def load_init(model, source: str) -> dict:
    """Copy the weights of `source` into `model` (strict: same keys and shapes) -> a record for the card.
    `source`: a checkpoint folder, or for cmr-clip-b16 the published pytorch_model.bin (or its folder).
    The frame layout and size come from --config, so a checkpoint trained at 64 px can be fine-tuned
    at 96 px (the per-frame CNN pools to a fixed size)."""
    src = create_model(model.cfg.name, checkpoint=source)
    try:
        model.load_state_dict(src.state_dict())
    except RuntimeError as exc:                   # strict: names the missing, unexpected and mis-shaped keys
        raise CheckpointError(f"--init {source}: its weights ({src.cfg.name}) do not fit --config "
                              f"{model.cfg.name}; pass --config {source} or a config of the same "
                              f"architecture. {exc}") from exc
    return weights_record(source)


def text_augmentation(opts):
    """The text augmentation of --text-augment / --text-variants (None = off)."""
    if opts.text_augment > 0 and opts.text_variants > 0:
        return partial(pooled_augment, drop=opts.text_augment, variants=opts.text_variants)
    if opts.text_augment > 0:
        return partial(augment_impression, drop=opts.text_augment)
    return None


def run(opts) -> int:
    """Run (or resume) the training of `opts` (parse_options); returns 0. Raises RunUsageError for options
    that cannot work and other ModelErrors (DataError, CheckpointError, ...) for what stops the run."""
    check_options(opts)
    if opts.threads:
        torch.set_num_threads(opts.threads)
    out = Path(opts.out)
    rank, world = init_distributed()
    cfg = load_config(opts.config)
    spec = cfg.clip_spec()
    exclude = read_keys(opts.exclude_keys) if opts.exclude_keys else []
    full = CacheDataset(opts.cache, spec, require_text=True, exclude=exclude)
    held = holdout_mask(full.keys, opts.holdout)
    keep = [k for k, h, s in zip(full.keys, held, full.splits) if not h and (opts.wording == "all" or s in (None, "train"))]
    ds = CacheDataset(opts.cache, spec, keys=keep, require_text=True)
    if len(ds) == 0:
        raise DataError(f"no training studies with a report in {' '.join(opts.cache)} (after the hold-out and "
                        "exclusions)")
    batch = min(opts.batch, len(ds) - len(ds) % world)
    if batch != opts.batch and rank == 0:
        print(f"cmr train: only {len(ds)} training studies; batch lowered to {batch}", file=sys.stderr)
    if opts.load_workers > 0:
        t_load = time.perf_counter()
        n_mem = ds.preload(opts.load_workers)
        if rank == 0:
            print(f"cmr train: {n_mem} of {len(ds)} clips decoded into memory in "
                  f"{time.perf_counter() - t_load:.0f} s", file=sys.stderr)
    stream = BatchStream(ds, batch, seed=opts.seed, epochs=opts.epochs, world=world, rank=rank)
    total = stream.total_steps if opts.max_steps is None else min(stream.total_steps, opts.max_steps)
    run_args = recorded_args(opts)
    args_file = out / "train" / "args.json"
    if opts.resume and args_file.exists():
        old = json.loads(args_file.read_text())
        changed = {k for k in set(old) | set(run_args) if old.get(k) != run_args.get(k)}
        if changed:
            raise RunUsageError(f"--resume with changed arguments {sorted(changed)}; use the original ones")
    seed_everything(opts.seed)                      # the same initial weights on every rank
    model = CMRClip(cfg)
    init = load_init(model, opts.init) if opts.init else None
    tc = TrainConfig(out_dir=str(out / "train"), total_steps=total, lr=opts.lr, seed=opts.seed,
                     warmup_steps=opts.warmup if opts.warmup is not None else max(1, total // 20),
                     view_dropout=opts.view_dropout, ema_decay=opts.ema, log_every=opts.log_every,
                     ckpt_every=opts.ckpt_every or max(50, total // 10))
    trainer = ProgressTrainer(model, tc, text_augment=text_augmentation(opts), device=opts.device)
    if rank == 0:
        args_file.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(args_file, json.dumps(run_args, indent=2))    # a kill never leaves half a file
        print(f"training {cfg.name} on {len(ds)} studies ({int(held.sum())} held out, {len(exclude)} excluded): "
              f"{total} steps of batch {batch} ({world} process{'es' if world > 1 else ''}, "
              f"{trainer.device}), from step {trainer.step}", file=sys.stderr)
    trainer.progress = not opts.no_progress and rank == 0
    t0 = time.perf_counter()
    res = trainer.fit(stream)
    wall = time.perf_counter() - t0
    if rank == 0:
        schedule = {"epochs": opts.epochs, "steps": res["step"], "total_steps": total, "global_batch": batch,
                    "world_size": world, "steps_per_epoch": stream.steps_per_epoch}
        card = training_card(opts, ds, exclude, int(held.sum()), schedule, str(trainer.device),
                             torch.get_num_threads(), wall, init, out / "train" / "metrics.jsonl")
        if res["step"] >= total:
            sd = trainer.ema.state_dict_for(trainer.model) if trainer.ema else None
            save_checkpoint(trainer.model, out, card={"train": vars(tc) | {"betas": list(tc.betas)},
                                                      "ema": trainer.ema is not None, **card}, state_dict=sd)
            shutil.rmtree(out / "train" / "final", ignore_errors=True)   # the same weights as OUT/
            print(f"wrote {out} ({res['step']} steps, loss {card['final_loss']}, {wall:.0f} s)")
        else:
            print(f"stopped at step {res['step']} of {total}; continue with --resume", file=sys.stderr)
    cleanup_distributed()
    return 0


def main(argv: list[str] | None = None) -> int:
    """The torchrun entry point: `cmr train`'s flags, messages and exit codes (2 bad usage, 1 failure)."""
    try:
        opts = parse_options(argv)
    except SystemExit as e:
        return int(e.code or 0)
    try:
        return run(opts)
    except RunUsageError as exc:
        print(f"cmr train: {exc}", file=sys.stderr)
        return 2
    except ModelError as exc:
        print(f"cmr train: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
