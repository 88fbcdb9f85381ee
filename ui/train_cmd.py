"""`cmr train --cache DIR --config cmr-tiny --out CKPT`: contrastive training on the study cache.

    cmr train --cache cmr-data/cache --config cmr-tiny --out runs/tiny --epochs 20 --batch 64 --seed 0
    cmr train ... --resume                       # continue an interrupted run (same arguments)
    cmr train --cache site-a/cache site-b/cache ...   # several archives' caches, trained on together
    torchrun --nproc_per_node 2 -m cmr_search.ui.train_cmd --cache ... --out ...   # DDP (gloo on CPU, nccl on GPU)

Trains on the studies of the cache that have a report, minus a deterministic study-level hold-out
(`--holdout 0.2`: salted hash of study_key, see model.data.holdout_mask) and minus `--exclude-keys FILE`.
`--batch` is the global batch: under torchrun each of the N processes takes batch/N studies of the same
global batch, so a run gives the same losses (up to float reduction order and view-dropout draws) with
any N. Writes CKPT/ (config.json, model.safetensors, preprocess.json, card.json) and CKPT/train/
(metrics.jsonl, args.json, last/ resumable state).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from functools import partial
from pathlib import Path

from cmr_search.ui.cli import fail


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
                        "the time (model.augment; default 0.15, 0 = off)")
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


def code_version() -> dict:
    """Package version and a hash of the model package sources (no git needed)."""
    import cmr_search.model as model
    try:
        from importlib.metadata import version
        pkg = version("cmr-search")
    except Exception:                               # not installed: running from a checkout
        pkg = None
    h = hashlib.sha256()
    root = Path(model.__file__).parent
    for f in sorted(root.rglob("*.py")) + sorted(root.glob("configs/*.json")):
        h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes())
    return {"package": pkg, "model_sources_sha256_16": h.hexdigest()[:16]}


_fail = partial(fail, "train")   # (msg, code=1) -> code


def _load_init(model, source: str) -> dict:
    """Copy the weights of `source` into `model` (strict: same keys and shapes) -> a record for the card.
    `source`: a checkpoint folder, or for cmr-clip-b16 the published pytorch_model.bin (or its folder).
    The frame layout and size come from --config, so a checkpoint trained at 64 px can be fine-tuned
    at 96 px (the per-frame CNN pools to a fixed size)."""
    from cmr_search.model import create_model
    from cmr_search.model.errors import CheckpointError
    src = create_model(model.cfg.name, checkpoint=source)
    try:
        model.load_state_dict(src.state_dict())
    except RuntimeError as exc:                   # strict: names the missing, unexpected and mis-shaped keys
        raise CheckpointError(f"--init {source}: its weights ({src.cfg.name}) do not fit --config "
                              f"{model.cfg.name}; pass --config {source} or a config of the same "
                              f"architecture. {exc}") from exc
    path = Path(source)
    if path.is_dir():
        path = next(f for f in (path / "model.safetensors", path / "pytorch_model.bin") if f.exists())
    return {"checkpoint": str(Path(source).resolve()),
            "weights_sha256_16": hashlib.sha256(path.read_bytes()).hexdigest()[:16]}


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    if args.batch < 1 or args.epochs < 1 or not 0 <= args.holdout < 1:
        return _fail("--batch and --epochs must be >= 1 and --holdout in [0, 1)", 2)
    if args.text_variants < 0 or not 0 <= args.text_augment <= 1:
        return _fail("--text-variants must be >= 0 and --text-augment in [0, 1]", 2)
    if args.ckpt_every is not None and args.ckpt_every < 1:
        return _fail("--ckpt-every must be >= 1", 2)
    missing = [c for c in args.cache if not Path(c).is_dir()]
    if missing:
        return _fail(f"cache folder {missing[0]} not found; build it with `cmr prepare`", 2)
    out = Path(args.out)
    state = out / "train" / "last" / "state.pt"
    if state.exists() and not args.resume:
        return _fail(f"{out} holds a run in progress; pass --resume to continue it or choose another --out", 2)
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    from cmr_search.model.errors import ModelError
    try:
        return _train(args, out)
    except ModelError as exc:
        return _fail(str(exc))


def _train(args, out: Path) -> int:
    import torch

    from cmr_search.model.config import load_config
    from cmr_search.model.augment import augment_impression, pooled_augment
    from cmr_search.model.data import CacheDataset, BatchStream, holdout_mask, holdout_spec, keys_digest, read_keys
    from cmr_search.model.model import CMRClip
    from cmr_search.model.train import TrainConfig, Trainer, cleanup_distributed, init_distributed, seed_everything

    rank, world = init_distributed()
    cfg = load_config(args.config)
    spec = cfg.clip_spec()
    exclude = read_keys(args.exclude_keys) if args.exclude_keys else []
    full = CacheDataset(args.cache, spec, require_text=True, exclude=exclude)
    held = holdout_mask(full.keys, args.holdout)
    keep = [k for k, h, s in zip(full.keys, held, full.splits) if not h and (args.wording == "all" or s in (None, "train"))]
    ds = CacheDataset(args.cache, spec, keys=keep, require_text=True)
    if len(ds) == 0:
        return _fail(f"no training studies with a report in {' '.join(args.cache)} (after the hold-out and "
                     "exclusions)")
    batch = min(args.batch, len(ds) - len(ds) % world)
    if batch != args.batch and rank == 0:
        print(f"cmr train: only {len(ds)} training studies; batch lowered to {batch}", file=sys.stderr)
    if args.load_workers > 0:
        t_load = time.perf_counter()
        n_mem = ds.preload(args.load_workers)
        if rank == 0:
            print(f"cmr train: {n_mem} of {len(ds)} clips decoded into memory in "
                  f"{time.perf_counter() - t_load:.0f} s", file=sys.stderr)
    stream = BatchStream(ds, batch, seed=args.seed, epochs=args.epochs, world=world, rank=rank)
    total = stream.total_steps if args.max_steps is None else min(stream.total_steps, args.max_steps)
    run_args = {k: v for k, v in vars(args).items() if k not in ("resume", "no_progress", "device", "threads",
                                                                   "load_workers", "ckpt_every")}
    if len(args.cache) == 1:                        # one cache: recorded as before (runs resume across versions)
        run_args["cache"] = args.cache[0]
    args_file = out / "train" / "args.json"
    if args.resume and args_file.exists():
        old = json.loads(args_file.read_text())
        changed = {k for k in set(old) | set(run_args) if old.get(k) != run_args.get(k)}
        if changed:
            return _fail(f"--resume with changed arguments {sorted(changed)}; use the original ones", 2)
    device = None if args.device == "auto" else args.device
    seed_everything(args.seed)                      # the same initial weights on every rank
    model = CMRClip(cfg)
    init = _load_init(model, args.init) if args.init else None
    tc = TrainConfig(out_dir=str(out / "train"), total_steps=total, lr=args.lr, seed=args.seed,
                     warmup_steps=args.warmup if args.warmup is not None else max(1, total // 20),
                     view_dropout=args.view_dropout, ema_decay=args.ema, log_every=args.log_every,
                     ckpt_every=args.ckpt_every or max(50, total // 10))
    augment = None
    if args.text_augment > 0 and args.text_variants > 0:
        augment = partial(pooled_augment, drop=args.text_augment, variants=args.text_variants)
    elif args.text_augment > 0:
        augment = partial(augment_impression, drop=args.text_augment)
    trainer = _ProgressTrainer(model, tc, text_augment=augment, device=device)
    if rank == 0:
        args_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = args_file.with_suffix(".tmp")               # atomic: a kill never leaves half a file
        tmp.write_text(json.dumps(run_args, indent=2))
        os.replace(tmp, args_file)
        print(f"training {cfg.name} on {len(ds)} studies ({int(held.sum())} held out, {len(exclude)} excluded): "
              f"{total} steps of batch {batch} ({world} process{'es' if world > 1 else ''}, "
              f"{trainer.device}), from step {trainer.step}", file=sys.stderr)
    trainer.progress = not args.no_progress and rank == 0
    t0 = time.perf_counter()
    res = trainer.fit(stream)
    wall = time.perf_counter() - t0
    if rank == 0:
        epoch_losses = _epoch_losses(out / "train" / "metrics.jsonl")
        card = {"kind": "training", "demonstration_only": _is_synthetic(ds),
                "data": {**ds.summary(), "wording": args.wording, "excluded_keys": len(exclude),
                         "exclude_keys_file": str(Path(args.exclude_keys).resolve()) if args.exclude_keys else None,
                         "excluded_keys_sha256_16": keys_digest(exclude) if exclude else None,
                         "holdout": {**holdout_spec(args.holdout), "n_held_out": int(held.sum())}},
                "schedule": {"epochs": args.epochs, "steps": res["step"], "total_steps": total,
                             "global_batch": batch, "world_size": world, "steps_per_epoch": stream.steps_per_epoch},
                "device": str(trainer.device), "torch_threads": torch.get_num_threads(),
                "wall_seconds_this_run": round(wall, 1), "seed": args.seed,
                "init": init, "final_loss": _last_loss(out / "train" / "metrics.jsonl"),
                "epoch_losses": epoch_losses, "code_version": code_version(), "command": sys.argv}
        if res["step"] >= total:
            sd = trainer.ema.state_dict_for(trainer.model) if trainer.ema else None
            from cmr_search.model.checkpoint import save_checkpoint
            save_checkpoint(trainer.model, out, card={"train": vars(tc) | {"betas": list(tc.betas)},
                                                      "ema": trainer.ema is not None, **card}, state_dict=sd)
            shutil.rmtree(out / "train" / "final", ignore_errors=True)   # the same weights as OUT/
            print(f"wrote {out} ({res['step']} steps, loss {card['final_loss']}, {wall:.0f} s)")
        else:
            print(f"stopped at step {res['step']} of {total}; continue with --resume", file=sys.stderr)
    cleanup_distributed()
    return 0


def _is_synthetic(ds) -> bool:
    return any(x is not None for x in ds.labels)


def _last_loss(path: Path) -> float | None:
    rows = [json.loads(x) for x in path.read_text().splitlines() if '"loss"' in x] if path.exists() else []
    return round(rows[-1]["loss"], 4) if rows else None


def _epoch_losses(path: Path) -> list:
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if '"epoch_loss"' in x]


# ---- a Trainer with a progress bar and per-epoch loss lines ---------------------------------------
from cmr_search.model.train import Trainer as _Trainer  # noqa: E402


class _ProgressTrainer(_Trainer):
    progress = False
    steps_per_epoch = None
    _bar = None
    _epoch: list

    def fit(self, batches, max_steps=None):
        self.steps_per_epoch = getattr(batches, "steps_per_epoch", None)
        self._epoch = []
        if self.progress:
            from tqdm import tqdm
            self._bar = tqdm(total=self.cfg.total_steps, initial=self.step, unit="step", desc="training",
                             file=sys.stderr, dynamic_ncols=True)
        try:
            return super().fit(batches, max_steps)
        finally:
            if self._bar is not None:
                self._bar.close()

    def train_step(self, batch) -> float:
        loss = super().train_step(batch)
        self._epoch.append(loss)
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(loss=f"{loss:.3f}")
        spe = self.steps_per_epoch
        if spe and self.step % spe == 0:
            self.log({"step": self.step, "epoch": self.step // spe, "epoch_loss": float(sum(self._epoch) / len(self._epoch))})
            self._epoch = []
        return loss


if __name__ == "__main__":
    sys.exit(main())
