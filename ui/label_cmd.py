"""`cmr label`: zero-shot labels for every study in the index; written to the payload (labels,
label_scores) only with --write.

    cmr label                          # score with the built-in prompt sets below (the phantom's classes)
    cmr label --write                  # ... and store labels + label_scores in the index
    cmr label --prompts prompts.json   # {"amyloid": ["cardiac amyloidosis", ...], "hcm": [...]}

Probabilities use the temperature fitted for the checkpoint (its card's label_calibration); a study whose
top probability is under its label's threshold stays unlabelled (search/labeling.py).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cmr_search.search.errors import QueryError
from cmr_search.ui.search_cmd import add_connection_args, open_client, parse_filters, run

# A small default ensemble per class; model/prompts.py (training/eval prompts) may replace it.
DEFAULT_PROMPTS = {
    "NORMAL": ["normal cardiac MRI", "normal biventricular size and function, no late enhancement"],
    "ATHLETE": ["athlete's heart", "mild balanced biventricular dilatation with normal function"],
    "NICM": ["dilated non-ischemic cardiomyopathy", "dilated LV with reduced ejection fraction, midwall LGE"],
    "ICM": ["ischemic cardiomyopathy", "subendocardial or transmural infarct scar in a coronary territory"],
    "HCM": ["hypertrophic cardiomyopathy", "asymmetric septal hypertrophy with patchy LGE"],
    "AMYLOID": ["cardiac amyloidosis", "diffuse subendocardial late gadolinium enhancement, thick walls"],
    "RV": ["right ventricular cardiomyopathy", "dilated right ventricle with reduced RV function"],
    "HTN_LVH": ["hypertensive heart disease", "concentric left ventricular hypertrophy"],
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cmr label", description=(
        "Score every study against prompt sets (zero-shot); with --write, store labels + label_scores in the index."))
    p.add_argument("--prompts", type=Path, default=None,
                   help="JSON file {label: [prompt, ...]} (default: built-in sets for the phantom's classes)")
    p.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE", help="label only these studies")
    p.add_argument("--write", action="store_true", help="store labels + label_scores in the index "
                   "(default: score and print counts, write nothing)")
    p.add_argument("--dry-run", action="store_true", help=argparse.SUPPRESS)   # the old spelling of the default
    add_connection_args(p)
    return p


def _load_prompts(path: Path | None) -> dict:
    if path is None:
        return DEFAULT_PROMPTS
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise QueryError(f"cannot read prompts from {path}: {e}. Expected JSON {{label: [prompt, ...]}}.") from None


def _label(args) -> int:
    prompts = _load_prompts(args.prompts)
    with open_client(args) as client:
        frame = client.label(prompts, filters=parse_filters(args.filter), write=args.write and not args.dry_run)
    counts = frame.group_by("label").len().sort("len", descending=True)
    verb = "labeled" if args.write and not args.dry_run else "scored"
    print(f"{verb} {frame.height} studies: " + ", ".join(
        f"{r['label'] or 'unlabelled'} {r['len']}" for r in counts.iter_rows(named=True)))
    if verb == "scored":
        print("nothing written: add --write to store the labels in the index", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run("cmr label", sys.argv[1:] if argv is None else argv, build_parser, _label)
