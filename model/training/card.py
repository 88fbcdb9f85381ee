"""The card of a training run: what card.json records beside the weights (data, hold-out, schedule,
device, losses, code version), and the init weights' record for a fine-tuning run."""
from __future__ import annotations

import hashlib
import json
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from .data import holdout_spec, keys_digest

MODEL_ROOT = Path(__file__).resolve().parents[1]        # the model package's folder (model/)


def code_version() -> dict:
    """Package version and a hash of the model package sources (no git needed)."""
    try:
        pkg = version("cmr-search")
    except PackageNotFoundError:                    # not installed: running from a checkout
        pkg = None
    h = hashlib.sha256()
    for f in sorted(MODEL_ROOT.rglob("*.py")) + sorted(MODEL_ROOT.glob("configs/*.json")):
        h.update(f.relative_to(MODEL_ROOT).as_posix().encode() + b"\0" + f.read_bytes())
    return {"package": pkg, "model_sources_sha256_16": h.hexdigest()[:16]}


def weights_record(source: str) -> dict:
    """Where --init weights came from: the checkpoint (folder or .bin) and a hash of its weights file."""
    path = Path(source)
    if path.is_dir():
        path = next(f for f in (path / "model.safetensors", path / "pytorch_model.bin") if f.exists())
    return {"checkpoint": str(Path(source).resolve()),
            "weights_sha256_16": hashlib.sha256(path.read_bytes()).hexdigest()[:16]}


def is_synthetic(ds) -> bool:
    """A synthetic (phantom) cache carries ground-truth labels: its model is for demonstration only."""
    return any(x is not None for x in ds.labels)


def last_loss(path: Path) -> float | None:
    """The last logged training loss of metrics.jsonl (4 decimals)."""
    rows = [json.loads(x) for x in path.read_text().splitlines() if '"loss"' in x] if path.exists() else []
    return round(rows[-1]["loss"], 4) if rows else None


def epoch_losses(path: Path) -> list:
    """The per-epoch mean loss lines of metrics.jsonl."""
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if '"epoch_loss"' in x]


def training_card(opts, ds, exclude: list[str], n_held_out: int, schedule: dict, device: str,
                  torch_threads: int, wall: float, init: dict | None, metrics: Path) -> dict:
    """card.json of a training run (before save_checkpoint adds the trainer config and format fields)."""
    return {"kind": "training", "demonstration_only": is_synthetic(ds),
            "data": {**ds.summary(), "wording": opts.wording, "excluded_keys": len(exclude),
                     "exclude_keys_file": str(Path(opts.exclude_keys).resolve()) if opts.exclude_keys else None,
                     "excluded_keys_sha256_16": keys_digest(exclude) if exclude else None,
                     "holdout": {**holdout_spec(opts.holdout), "n_held_out": n_held_out}},
            "schedule": schedule, "device": device, "torch_threads": torch_threads,
            "wall_seconds_this_run": round(wall, 1), "seed": opts.seed,
            "init": init, "final_loss": last_loss(metrics),
            "epoch_losses": epoch_losses(metrics), "code_version": code_version(), "command": sys.argv}
