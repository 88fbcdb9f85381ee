"""An evaluation run: a checkpoint on a study cache -> eval.json and eval.md (what `cmr eval` runs).

Evaluated studies: those in a keys file, else the checkpoint's study-level hold-out (card.json
data.holdout, the same salted hash of study_key) plus the keys it excluded (when the file is still
there). The other studies of the cache are the reference part: they fit the zero-shot thresholds and
supply the few-shot support. Writes OUT/eval.json (card style) and OUT/eval.md (default OUT = CKPT/eval);
`update_card` also merges the metrics into CKPT/card.json under "eval". Problems are raised as
model.errors exceptions (RunUsageError: bad usage) for the command layer to report.
"""
from __future__ import annotations

import datetime as _dt
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_write
from ..checkpoint import is_checkpoint_folder
from ..device import pick_device
from ..errors import DataError, RunUsageError
from ..factory import create_model
from ..training.data import HOLDOUT_FRACTION, HOLDOUT_SALT, CacheDataset, holdout_mask, read_keys
from ..embed import embed_texts
from .evaluate import embed_dataset, evaluate
from .real import ACDC_GROUP_PROMPTS, format_real_markdown, real_group_metrics
from .report import format_markdown, json_safe

WORDING_NOTE = ("\nNote: this model trained on reports of both wording splits, so the 'test' wording was seen "
                "in training (train with `--wording train` to keep it unseen).\n")


@dataclass
class EvalOptions:
    """What `cmr eval` asks for (its flags)."""
    cache: str
    checkpoint: str                       # checkpoint folder, or a config name (an untrained model)
    out: str | None = None                # default CKPT/eval (./eval for a config name)
    keys: str | None = None               # file of study keys to evaluate (default: the checkpoint's hold-out)
    update_card: bool = False
    episodes: int = 100
    folds: int = 5
    seed: int = 0
    batch: int = 64
    device: str = "auto"
    progress: bool = True


@dataclass
class EvalResult:
    """The report written to eval.json, and where eval.json and eval.md are."""
    report: dict
    json_path: Path
    md_path: Path


def eval_mask_for(ds, card: dict, keys_file: str | None) -> tuple[np.ndarray, dict]:
    """Which studies of `ds` to evaluate, and how they were chosen (for eval.json)."""
    if keys_file:
        keys = set(read_keys(keys_file))
        return np.array([k in keys for k in ds.keys]), {"method": "keys file", "file": str(keys_file)}
    h = card.get("data", {}).get("holdout", {})
    frac, salt = float(h.get("fraction", HOLDOUT_FRACTION)), h.get("salt", HOLDOUT_SALT)
    mask = holdout_mask(ds.keys, frac, salt)
    how = {"method": "checkpoint hold-out" if h else "default hold-out (no card)", "fraction": frac, "salt": salt}
    ex = card.get("data", {}).get("exclude_keys_file")
    if ex and Path(ex).exists():
        excluded = set(read_keys(ex))
        mask |= np.array([k in excluded for k in ds.keys])
        how["plus_excluded_keys_file"] = ex
    return mask, how


def run(opts: EvalOptions) -> EvalResult:
    """Evaluate `opts.checkpoint` on `opts.cache`; writes eval.json and eval.md (and the card's "eval"
    when `update_card`). Raises RunUsageError / DataError / other ModelErrors."""
    if not Path(opts.cache).is_dir():
        raise RunUsageError(f"cache folder {opts.cache} not found; build it with `cmr prepare`")
    device = str(pick_device(opts.device))
    ckpt = Path(opts.checkpoint)
    is_folder = is_checkpoint_folder(ckpt)
    model = create_model(str(ckpt), device=device).eval()
    card = json.loads((ckpt / "card.json").read_text()) if is_folder and (ckpt / "card.json").exists() else {}
    ds = CacheDataset(opts.cache, model.clip_spec)
    if len(ds) == 0:
        raise DataError(f"no studies in {opts.cache}")
    mask, how = eval_mask_for(ds, card, opts.keys)
    if not mask.any():
        raise DataError("no study of the cache is in the evaluated set; check --keys or the cache")
    print(f"evaluating {ckpt} on {int(mask.sum())} of {len(ds)} studies ({how['method']})", file=sys.stderr)
    res = evaluate(model, ds, mask, episodes=opts.episodes, folds=opts.folds, seed=opts.seed,
                   batch_size=opts.batch, progress=opts.progress)
    report = {"kind": "evaluation", "checkpoint": str(ckpt.resolve()) if is_folder else str(ckpt),
              "trained": is_folder, "cache": str(Path(opts.cache).resolve()), "selection": how,
              "trained_wording": card.get("data", {}).get("wording"),
              "created": _dt.datetime.now(_dt.timezone.utc).isoformat(), "device": device, **res}
    out = Path(opts.out) if opts.out else (ckpt / "eval" if is_folder else Path("eval"))
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "eval.json", json.dumps(json_safe(report), indent=2))
    md = format_markdown(res, title=f"Evaluation of {ckpt.name} on {Path(opts.cache).name}")
    if report["trained_wording"] == "all":
        md += WORDING_NOTE
    atomic_write(out / "eval.md", md)
    if opts.update_card:
        if not is_folder:
            raise RunUsageError("--update-card needs a checkpoint folder")
        card["eval"] = {k: report[k] for k in ("created", "cache", "selection", "n_evaluated", "groups", "prompts")}
        atomic_write(ckpt / "card.json", json.dumps(json_safe(card), indent=2))
    return EvalResult(report, out / "eval.json", out / "eval.md")


@dataclass
class RealEvalOptions:
    """What `cmr eval --acdc` asks for, once the labelled real studies are in a cache."""
    cache: str                            # a cache of labelled real studies (prepare of an ACDC folder)
    checkpoint: str
    out: str | None = None                # default CKPT/eval
    update_card: bool = False             # merge the result into CKPT/card.json under "eval_real"
    folds: int = 4
    repeats: int = 10
    seed: int = 0
    batch: int = 64
    device: str = "auto"
    source: str | None = None             # the folder the cache was prepared from (recorded)


def raw_pixels(ds, pool: int = 4) -> np.ndarray:
    """(N, F * (S / pool)^2) the clip frames average-pooled `pool` x `pool`: the probe's raw-pixel floor."""
    rows = []
    for i in range(len(ds)):
        frames, _, mask = ds.clip(i)
        f = frames * mask[:, None, None]
        n, s = f.shape[0], f.shape[1] // pool * pool
        rows.append(f[:, :s, :s].reshape(n, s // pool, pool, s // pool, pool).mean((2, 4)).ravel())
    return np.stack(rows)


def run_real(opts: RealEvalOptions) -> EvalResult:
    """Evaluate `opts.checkpoint`'s study vectors on a labelled real cache (model.evaluation.real);
    writes OUT/eval_real.json and OUT/eval_real.md (and the card's "eval_real" when `update_card`)."""
    device = str(pick_device(opts.device))
    ckpt = Path(opts.checkpoint)
    is_folder = is_checkpoint_folder(ckpt)
    model = create_model(str(ckpt), device=device).eval()
    ds = CacheDataset(opts.cache, model.clip_spec)
    known = [i for i, lab in enumerate(ds.labels) if lab]
    if len(known) < 4 or len({ds.labels[i] for i in known}) < 2:
        raise DataError(f"{opts.cache}: fewer than 4 labelled studies in 2 groups; an ACDC folder's "
                        "Info.cfg must name each patient's Group")
    video = embed_dataset(model, ds, opts.batch)[0][known]
    labels = [ds.labels[i] for i in known]
    prompts = {g: embed_texts(model, list(ps)) for g, ps in ACDC_GROUP_PROMPTS.items()}
    res = real_group_metrics(video, labels, prompts, raw=raw_pixels(ds)[known], folds=opts.folds,
                             repeats=opts.repeats, seed=opts.seed)
    report = {"kind": "real-data evaluation", "checkpoint": str(ckpt.resolve()) if is_folder else str(ckpt),
              "source": opts.source, "created": _dt.datetime.now(_dt.timezone.utc).isoformat(),
              "device": device, "prompts": {g: list(p) for g, p in ACDC_GROUP_PROMPTS.items()}, **res}
    out = Path(opts.out) if opts.out else (ckpt / "eval" if is_folder else Path("eval"))
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "eval_real.json", json.dumps(json_safe(report), indent=2))
    name = Path(opts.source).name if opts.source else Path(opts.cache).name
    atomic_write(out / "eval_real.md", format_real_markdown(res, f"{ckpt.name} on real studies: {name}"))
    if opts.update_card:
        if not is_folder:
            raise RunUsageError("--update-card needs a checkpoint folder")
        card = json.loads((ckpt / "card.json").read_text()) if (ckpt / "card.json").exists() else {}
        card["eval_real"] = {k: report[k] for k in ("created", "source", "n", "groups", "probe",
                                                      "probe_raw_pixels", "zero_shot", "study_to_study")}
        atomic_write(ckpt / "card.json", json.dumps(json_safe(card), indent=2))
    return EvalResult(report, out / "eval_real.json", out / "eval_real.md")
