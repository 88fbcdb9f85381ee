"""Benchmark of the cine SAX segmenter on real hearts (and on the phantom's): Dice, EF error, group probe, speed.

    python -m bench.real_measure [--checkpoint CKPT | --untrained] [--synthetic 3] [--threads 2]

- ACDC dev (../shared/data/acdc-dev, 20 patients, ED and ES, all slices): Dice of LV cavity, myocardium
  and RV cavity per phase (mean +- std, per group means); LVEF and RVEF absolute error against EF from the
  experts' masks (both through model.segmentation.measure.measure_cine, ED/ES = the given frames); the
  5-group probe (logistic regression, stratified 4-fold, 10 seeds) on measurements from the segmenter and
  from the experts' masks (the ceiling).
- Sunnybrook (../shared/data/sunnybrook-cine, 5 studies, whole cine): Dice of LV cavity and myocardium on
  every contoured image; LVEF from the contours (slices contoured at ED and ES) against the segmenter on
  the same slices and phases, and against its own whole-cine measure_cine LVEF.
- Speed (this machine, `--threads` torch threads): seconds to segment one whole Sunnybrook cine stack, as a
  ratio to the seconds to decode the same study's DICOM (scan + typing + pixels, indexer.segment_study
  .load_input), both measured in this run.
- `--synthetic N`: N phantom studies (`--profile`, default demo-fast) generated into a temporary folder
  (or `--synthetic-dir`), their cine SAX segmented through the same indexer path as `cmr segment`; median
  |LVEF error| against study.json's measured truth (measured.lv_ef, rv_ef).
The segmenter: `--checkpoint` (default: $CMR_SEG_CHECKPOINT, then the shipped one); `--untrained` runs the
whole bench with random weights (a smoke run; the numbers are the floor of nothing). Results: printed and
written to bench/results/real_measure.json (`--out`).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"

import numpy as np  # noqa: E402
import torch  # noqa: E402

from cmr_search.indexer.reference_sets import (acdc_patients, read_acdc_patient, read_sunnybrook,  # noqa: E402
                                               sunnybrook_studies)
from cmr_search.indexer.segment_study import load_input, measure_input  # noqa: E402
from cmr_search.model.evaluation.segmentation import evaluate_acdc, evaluate_sunnybrook, summary  # noqa: E402
from cmr_search.model.segmentation import Segmenter  # noqa: E402


def load_segmenter(args) -> Segmenter:
    return Segmenter.untrained() if args.untrained else Segmenter.load(args.checkpoint)


def run_acdc(seg: Segmenter, root: Path) -> dict:
    t0 = time.perf_counter()
    cases = [read_acdc_patient(p) for p in acdc_patients(root)]
    out = evaluate_acdc(cases, lambda imgs, sp: seg.segment_cine(imgs, sp))
    out.pop("per_image")
    out["seconds"] = time.perf_counter() - t0
    return out


def run_sunnybrook(seg: Segmenter, root: Path, whole_cine: bool) -> dict:
    t0 = time.perf_counter()
    cases = [read_sunnybrook(f, root) for f in sunnybrook_studies(root)]
    out = evaluate_sunnybrook(cases, lambda imgs, sp: seg.segment_cine(imgs, sp), whole_cine=whole_cine)
    out.pop("per_image")
    out["seconds"] = time.perf_counter() - t0
    return out


def run_speed(seg: Segmenter, study: Path) -> dict:
    """Decode vs segment of one study, measured here (the decode twice: the first warms the file cache)."""
    load_input(study)
    t0 = time.perf_counter()
    inp = load_input(study)
    decode = time.perf_counter() - t0
    seg.segment_cine(inp.stack[:1, :2], inp.spacing)                      # warm-up
    t0 = time.perf_counter()
    seg.segment_cine(inp.stack, inp.spacing)
    segment = time.perf_counter() - t0
    s, t = inp.stack.shape[:2]
    return {"study": study.name, "images": s * t, "decode_s": decode, "segment_s": segment,
            "segment_per_image_ms": 1000 * segment / (s * t), "ratio_segment_to_decode": segment / decode}


def run_synthetic(seg: Segmenter, n: int, profile: str, folder: Path | None, seed: int) -> dict:
    from cmr_search.phantom.generate import generate_archive     # the phantom only when asked for
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="synth-seg-") as tmp:
        root = folder or Path(tmp)
        if not any(root.glob("*/study.json")):
            generate_archive(root, n, profile, seed=seed, labels=False)
        gen = time.perf_counter() - t0
        rows = []
        for study_json in sorted(root.glob("*/study.json"))[:n]:
            truth = json.loads(study_json.read_text())["measured"]
            inp = load_input(study_json.parent)
            m = measure_input(inp, seg.segment_cine(inp.stack, inp.spacing))
            rows.append({"study": study_json.parent.name, "lvef": m["lvef"], "lvef_truth": truth.get("lv_ef"),
                         "rvef": m["rvef"], "rvef_truth": truth.get("rv_ef"), "lvedv": m["lvedv"],
                         "lvedv_truth": truth.get("lv_edv_ml"), "seg_quality": m["seg_quality"],
                         "seg_flags": m["seg_flags"]})
    err = lambda k: [None if r[k] is None or r[k + "_truth"] is None else abs(r[k] - r[k + "_truth"])  # noqa: E731
                     for r in rows]
    return {"n": len(rows), "profile": profile, "lvef_abs_error": summary(err("lvef")),
            "rvef_abs_error": summary(err("rvef")), "per_study": rows,
            "generate_s": gen, "seconds": time.perf_counter() - t0}


def _pm(s: dict, scale: float = 1.0, digits: int = 3) -> str:
    return "n/a" if s.get("mean") is None else f"{s['mean'] * scale:.{digits}f} +- {s['std'] * scale:.{digits}f}"


def table(r: dict) -> str:
    lines = [f"segmenter {r['segmenter']['model']} ({r['segmenter']['fingerprint']}, "
             f"{'trained' if r['segmenter']['trained'] else 'UNTRAINED'}), {r['threads']} threads"]
    if "acdc" in r:
        a = r["acdc"]
        lines.append("ACDC Dice        all              ED               ES")
        for k in ("lv_cavity", "lv_myocardium", "rv_cavity"):
            d = a["dice"][k]
            lines.append(f"  {k:<14} {_pm(d['all']):<16} {_pm(d['ED']):<16} {_pm(d['ES'])}")
        lines.append(f"  |LVEF err| {_pm(a['ef_abs_error']['lvef'], digits=1)}   |RVEF err| "
                     f"{_pm(a['ef_abs_error']['rvef'], digits=1)}")
        lines.append(f"  5-group probe: segmenter {_pm(a['probe_segmenter']['accuracy'], digits=2)}, "
                     f"experts' masks {_pm(a['probe_expert_masks']['accuracy'], digits=2)} (chance 0.20)")
    if "sunnybrook" in r:
        s = r["sunnybrook"]
        lines.append(f"Sunnybrook Dice ({s['n_images']} images): LV cavity {_pm(s['dice']['lv_cavity'])}, "
                     f"myocardium {_pm(s['dice']['lv_myocardium'])}")
        lines.append(f"  |LVEF err| same slices {_pm(s['lvef_abs_error_same_slices'], digits=1)}, whole cine "
                     f"{_pm(s['lvef_abs_error_whole_cine'], digits=1)}")
    if "speed" in r:
        sp = r["speed"]
        lines.append(f"speed ({sp['study']}, {sp['images']} images): segment {sp['segment_s']:.1f} s, decode "
                     f"{sp['decode_s']:.2f} s, ratio {sp['ratio_segment_to_decode']:.1f}x")
    if "synthetic" in r:
        y = r["synthetic"]
        lines.append(f"synthetic ({y['n']} {y['profile']}): median |LVEF err| {y['lvef_abs_error']['median']}, "
                     f"median |RVEF err| {y['rvef_abs_error']['median']}")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", help="segmenter checkpoint folder (default: $CMR_SEG_CHECKPOINT, the shipped one)")
    p.add_argument("--untrained", action="store_true", help="random weights (smoke run)")
    p.add_argument("--acdc", type=Path, default=SHARED / "acdc-dev")
    p.add_argument("--sunnybrook", type=Path, default=SHARED / "sunnybrook-cine")
    p.add_argument("--contoured-only", action="store_true", help="Sunnybrook: segment contoured images only")
    p.add_argument("--synthetic", type=int, default=3, help="phantom studies to measure (0: none)")
    p.add_argument("--profile", default="demo-fast", help="phantom profile of the synthetic studies")
    p.add_argument("--synthetic-dir", type=Path, help="reuse (or fill) this folder of phantom studies")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "real_measure.json")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    seg = load_segmenter(args)
    r = {"segmenter": {"model": seg.cfg.name, "fingerprint": seg.fingerprint, "checkpoint": seg.card.get("path"),
                       "trained": seg.card.get("trained", True)},
         "threads": args.threads, "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count()}
    if args.acdc.is_dir():
        r["acdc"] = run_acdc(seg, args.acdc)
    if args.sunnybrook.is_dir():
        r["sunnybrook"] = run_sunnybrook(seg, args.sunnybrook, not args.contoured_only)
        r["speed"] = run_speed(seg, sunnybrook_studies(args.sunnybrook)[0])
    if args.synthetic:
        r["synthetic"] = run_synthetic(seg, args.synthetic, args.profile, args.synthetic_dir, args.seed)
    r["seconds"] = time.perf_counter() - t0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(r, indent=2, default=lambda o: o.item() if isinstance(o, np.generic) else str(o)))
    print(table(r))
    print(f"-> {args.out} ({r['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
