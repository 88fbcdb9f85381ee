"""`cmr segment INPUT --out DIR [--checkpoint CKPT] [--format auto|nifti|seg]`: cine SAX masks and measurements.

INPUT: a study folder, a DICOM series folder, or a NIfTI volume ((x, y, z) one phase or (x, y, z, t) cine).
Writes DIR/masks.nii.gz (NIfTI input, or --format nifti) or DIR/seg/phase_NN.dcm (DICOM SEG, the default
for DICOM input), and DIR/measurements.json. Exit codes: 0 done, 2 bad usage (or INPUT missing), 1 the
input cannot be segmented or the segmenter cannot be loaded (one line naming the file and the reason).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cmr_search.indexer.errors import IndexerError
from cmr_search.indexer.segment_output import FORMATS
from cmr_search.indexer.segment_study import load_input, segment_input
from cmr_search.model.errors import CheckpointError
from cmr_search.model.segmentation import Segmenter

SHOWN = (("lvedv", "LVEDV", "ml"), ("lvesv", "LVESV", "ml"), ("lvef", "LVEF", "%"), ("lv_mass", "LV mass", "g"),
         ("max_wall", "max wall", "mm"), ("rvedv", "RVEDV", "ml"), ("rvesv", "RVESV", "ml"), ("rvef", "RVEF", "%"))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cmr segment", description=(
        "Segment a cine short-axis stack (LV cavity, LV myocardium, RV cavity) and measure it: volumes, "
        "ejection fractions, LV mass, maximum wall thickness, with a quality flag."))
    p.add_argument("input", help="study folder, DICOM series folder, or NIfTI file (.nii/.nii.gz)")
    p.add_argument("--out", required=True, type=Path, help="output folder (created)")
    p.add_argument("--checkpoint", help="segmenter checkpoint folder (default $CMR_SEG_CHECKPOINT, then the "
                   "shipped one)")
    p.add_argument("--format", choices=FORMATS, default="auto", help="masks as NIfTI or DICOM SEG (auto: NIfTI "
                   "for NIfTI input, SEG for DICOM input)")
    p.add_argument("--batch", type=int, default=16, help="images per forward pass (default 16)")
    return p


def _summary(result: dict) -> str:
    m = result["measurements"]
    parts = [f"{label} {m[k]:.1f} {unit}" for k, label, unit in SHOWN if m.get(k) is not None]
    flags = f" ({'; '.join(m['seg_flags'])})" if m["seg_flags"] else ""
    return f"{', '.join(parts) or 'no measurements'}\nquality: {m['seg_quality']}{flags}"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)          # exits 2 on bad usage
    if not Path(args.input).exists():
        print(f"cmr segment: {args.input}: no such file or folder", file=sys.stderr)
        return 2
    if args.batch < 1:
        print("cmr segment: --batch must be at least 1", file=sys.stderr)
        return 2
    try:
        inp = load_input(args.input)
        seg = Segmenter.load(args.checkpoint)
        result = segment_input(inp, seg, args.out, args.format, batch=args.batch)
    except (IndexerError, CheckpointError, OSError) as exc:
        print(f"cmr segment: {exc}", file=sys.stderr)
        return 1
    s, t, h, w = result["input"]["shape_stcw"]
    print(f"segmented {s} slices x {t} phases ({h}x{w}) of {args.input} -> {args.out}: "
          f"{', '.join(result['outputs'][:2])}{' ...' if len(result['outputs']) > 2 else ''}, measurements.json")
    print(_summary(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
