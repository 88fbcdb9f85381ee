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
- Speed (this machine, `--threads` threads): seconds to segment one whole Sunnybrook cine stack on the
  default runtime (ONNX Runtime on the CPU) and on torch, as a ratio to the seconds to decode the same
  study's DICOM (scan + typing + pixels, indexer.segment_study.load_input), all measured in this run.
- `--synthetic N`: N phantom studies (`--profile`, default demo-fast) generated into a temporary folder
  (or `--synthetic-dir`), their cine SAX segmented through the same indexer path as `cmr segment`; median
  |LVEF error| against study.json's measured truth (measured.lv_ef, rv_ef); and the same measurements on
  the phantom's exact label maps (labels/*_cine_sax.npz), the error of the measurement maths alone.
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
from cmr_search.model.segmentation.measure import measure_cine  # noqa: E402


def load_segmenter(args) -> Segmenter:
    seg = Segmenter.untrained() if args.untrained else Segmenter.load(args.checkpoint)
    if args.tta is not None:                         # views averaged at inference (SegConfig.tta)
        seg.cfg.tta = args.tta
    return seg


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
    seconds = {}
    for name in ("torch", "auto"):                   # torch's CPU forward, then the default (ONNX Runtime)
        seg.use_runtime(name)
        seg.segment_cine(inp.stack[:1, :2], inp.spacing)                  # warm-up (and the ONNX export)
        t0 = time.perf_counter()
        seg.segment_cine(inp.stack, inp.spacing)
        seconds[name] = time.perf_counter() - t0
    runtime = type(seg.forward).__name__                                  # what auto built here
    seg.use_runtime()
    segment = seconds["auto"]
    s, t = inp.stack.shape[:2]
    return {"study": study.name, "images": s * t, "decode_s": decode, "segment_s": segment,
            "segment_torch_s": seconds["torch"], "runtime": runtime,
            "segment_per_image_ms": 1000 * segment / (s * t), "ratio_segment_to_decode": segment / decode}


def label_measure(study: Path, truth_latent: dict) -> dict | None:
    """measure_cine of the phantom's exact cine SAX label maps (labels/*_cine_sax.npz; scar counted as
    myocardium): how close the measurement maths alone come to the phantom's truth."""
    files = [np.load(f) for f in sorted(study.glob("labels/*_cine_sax.npz"))]      # one per series
    if not files:
        return None
    cat = {k: np.concatenate([z[k] for z in files]) for k in ("seg", "slice_index", "frame_index",
                                                            "image_position_patient")}
    seg = np.where(cat["seg"] == 4, 2, cat["seg"]).astype(np.uint8)
    si, fi = cat["slice_index"], cat["frame_index"]
    present = np.unique(si)                                       # rendered slices, base -> apex
    masks = np.zeros((len(present), fi.max() + 1, *seg.shape[1:]), np.uint8)
    masks[np.searchsorted(present, si), fi] = seg
    pos = np.array([cat["image_position_patient"][si == s][0] for s in present])
    step = float(np.median(np.linalg.norm(np.diff(pos, axis=0), axis=1)))
    px = np.atleast_1d(files[0]["pixel_spacing_mm"]).astype(float)
    spacing = (float(px[0]), float(px[-1]))
    return measure_cine(masks, spacing, step, height_cm=truth_latent.get("height_cm"),
                        weight_kg=truth_latent.get("weight_kg"))


def run_synthetic(seg: Segmenter, n: int, profile: str, folder: Path | None, seed: int) -> dict:
    from cmr_search.phantom.generate import generate_archive     # the phantom only when asked for
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="synth-seg-") as tmp:
        root = folder or Path(tmp)
        if not any(root.glob("*/study.json")):
            generate_archive(root, n, profile, seed=seed, labels=True)
        gen = time.perf_counter() - t0
        rows = []
        for study_json in sorted(root.glob("*/study.json"))[:n]:
            record = json.loads(study_json.read_text())
            truth = record["measured"]
            inp = load_input(study_json.parent)
            m = measure_input(inp, seg.segment_cine(inp.stack, inp.spacing))
            exact = label_measure(study_json.parent, record.get("latent", {})) or {}
            rows.append({"study": study_json.parent.name, "label": record.get("label"),
                         "lvef_labels": exact.get("lvef"), "rvef_labels": exact.get("rvef"),
                         "lv_mass_labels": exact.get("lv_mass"), "lv_mass_truth": truth.get("lv_mass_g"),
                         "max_wall_labels": exact.get("max_wall"), "max_wall_truth": truth.get("max_wall_mm"),
                         "lvef": m["lvef"], "lvef_truth": truth.get("lv_ef"),
                         "rvef": m["rvef"], "rvef_truth": truth.get("rv_ef"), "lvedv": m["lvedv"],
                         "lvedv_truth": truth.get("lv_edv_ml"), "seg_quality": m["seg_quality"],
                         "seg_flags": m["seg_flags"]})
    err = lambda k, t: [None if r.get(k) is None or r.get(t) is None else abs(r[k] - r[t]) for r in rows]  # noqa: E731
    return {"n": len(rows), "profile": profile, "lvef_abs_error": summary(err("lvef", "lvef_truth")),
            "rvef_abs_error": summary(err("rvef", "rvef_truth")),
            "exact_labels": {"lvef_abs_error": summary(err("lvef_labels", "lvef_truth")),
                             "rvef_abs_error": summary(err("rvef_labels", "rvef_truth")),
                             "lv_mass_abs_error_g": summary(err("lv_mass_labels", "lv_mass_truth")),
                             "max_wall_abs_error_mm": summary(err("max_wall_labels", "max_wall_truth"))},
            "per_study": rows,
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
        lines.append(f"speed ({sp['study']}, {sp['images']} images): segment {sp['segment_s']:.1f} s "
                     f"({sp['runtime']}; torch {sp['segment_torch_s']:.1f} s), decode {sp['decode_s']:.2f} s, "
                     f"ratio {sp['ratio_segment_to_decode']:.1f}x")
    if "synthetic" in r:
        y = r["synthetic"]
        med = lambda k: "n/a" if y[k]["median"] is None else f"{y[k]['median']:.1f}"  # noqa: E731
        lines.append(f"synthetic ({y['n']} {y['profile']}): median |LVEF err| {med('lvef_abs_error')}, "
                     f"median |RVEF err| {med('rvef_abs_error')} (points)")
        x = y["exact_labels"]
        lab = lambda k: "n/a" if x[k]["median"] is None else f"{x[k]['median']:.1f}"  # noqa: E731
        lines.append(f"  the maths on the phantom's exact labels: median |LVEF err| {lab('lvef_abs_error')}, "
                     f"|RVEF err| {lab('rvef_abs_error')}, |mass err| {lab('lv_mass_abs_error_g')} g, "
                     f"|max wall err| {lab('max_wall_abs_error_mm')} mm")
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
    p.add_argument("--tta", type=int, default=None, help="dihedral views averaged (1, 2, 4, 8; default: the checkpoint's)")
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
