"""`cmr eval --cache DIR --checkpoint CKPT`: retrieval, zero-shot, few-shot and linear-probe metrics.

    cmr eval --cache cmr-data/cache --checkpoint runs/tiny [--out DIR] [--keys FILE] [--update-card]

Evaluated studies: those in `--keys FILE`, else the checkpoint's study-level hold-out (card.json
data.holdout, the same salted hash of study_key) plus the keys it excluded (when the file is still
there). The other studies of the cache are the reference part: they fit the zero-shot thresholds and
supply the few-shot support. Writes OUT/eval.json (card style) and OUT/eval.md (default OUT = CKPT/eval);
`--update-card` also merges the metrics into CKPT/card.json under "eval".
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
from functools import partial
from pathlib import Path

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
    from cmr_search.model.errors import ModelError
    try:
        return _eval(args)
    except ModelError as exc:
        return _fail(str(exc))


def eval_mask_for(ds, card: dict, keys_file: str | None) -> tuple["np.ndarray", dict]:  # noqa: F821
    """Which studies of `ds` to evaluate, and how they were chosen (for eval.json)."""
    import numpy as np
    from cmr_search.model.data import HOLDOUT_FRACTION, HOLDOUT_SALT, holdout_mask, read_keys
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


def _eval(args) -> int:
    from cmr_search.model.checkpoint import is_checkpoint_folder
    from cmr_search.model.data import CacheDataset
    from cmr_search.model.evaluate import evaluate, format_markdown
    from cmr_search.model.factory import create_model
    import torch

    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    ckpt = Path(args.checkpoint)
    is_folder = is_checkpoint_folder(ckpt)
    model = create_model(str(ckpt), device=device).eval()
    card = json.loads((ckpt / "card.json").read_text()) if is_folder and (ckpt / "card.json").exists() else {}
    ds = CacheDataset(args.cache, model.clip_spec)
    if len(ds) == 0:
        return _fail(f"no studies in {args.cache}")
    mask, how = eval_mask_for(ds, card, args.keys)
    if not mask.any():
        return _fail("no study of the cache is in the evaluated set; check --keys or the cache")
    print(f"evaluating {ckpt} on {int(mask.sum())} of {len(ds)} studies ({how['method']})", file=sys.stderr)
    res = evaluate(model, ds, mask, episodes=args.episodes, folds=args.folds, seed=args.seed,
                   batch_size=args.batch, progress=not args.no_progress)
    report = {"kind": "evaluation", "checkpoint": str(ckpt.resolve()) if is_folder else str(ckpt),
              "trained": is_folder, "cache": str(Path(args.cache).resolve()), "selection": how,
              "trained_wording": card.get("data", {}).get("wording"),
              "created": _dt.datetime.now(_dt.timezone.utc).isoformat(), "device": device, **res}
    out = Path(args.out) if args.out else (ckpt / "eval" if is_folder else Path("eval"))
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval.json").write_text(json.dumps(_clean(report), indent=2))
    md = format_markdown(res, title=f"Evaluation of {ckpt.name} on {Path(args.cache).name}")
    if report["trained_wording"] == "all":
        md += ("\nNote: this model trained on reports of both wording splits, so the 'test' wording was seen "
               "in training (train with `--wording train` to keep it unseen).\n")
    (out / "eval.md").write_text(md)
    if args.update_card:
        if not is_folder:
            return _fail("--update-card needs a checkpoint folder", 2)
        card["eval"] = {k: report[k] for k in ("created", "cache", "selection", "n_evaluated", "groups", "prompts")}
        (ckpt / "card.json").write_text(json.dumps(_clean(card), indent=2))
    print(_headline(res))
    print(f"wrote {out / 'eval.json'} and {out / 'eval.md'}")
    return 0


def _clean(x):
    """JSON-safe: NaN / inf -> None, numpy scalars -> Python."""
    import math
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if hasattr(x, "item") and not isinstance(x, (str, bytes)):
        x = x.item()
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        return None
    return x


def _headline(res: dict) -> str:
    parts = []
    for w, g in res["groups"].items():
        r = g.get("retrieval", {}).get("study_to_report", {})
        zs = g.get("zero_shot", {}).get("diagnosis", {})
        s = f"{w} wording (n={g['n']}):"
        if r:
            s += f" study->report R@1 {r['exact']['R@1']:.2f} R@10 {r['exact']['R@10']:.2f}"
        if "top1_accuracy_6way" in zs:
            s += f", zero-shot 6-way acc {zs['top1_accuracy_6way']:.2f}"
        parts.append(s)
    return "\n".join(parts)


if __name__ == "__main__":
    sys.exit(main())
