"""`cmr synth seg`: SYNTHETIC training slices for the segmenter (phantom.randomized), as .npz shards.

    cmr synth seg --hearts 1200 --per-heart 12 --seed 0 --out runs/seg-data [--workers 2]

Every slice is a random cut through a freshly drawn synthetic heart with randomized contrast and
acquisition, and its exact label map (ACDC convention). Resumable: finished shards are kept.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from cmr_search.phantom.randomized import write_shards
from cmr_search.phantom.randomized.scene import SceneConfig


# flag -> (SceneConfig field, metavar, help): every one a share or a fraction in 0..1; defaults
# are SceneConfig's
SCENE_OPTIONS = {
    "--random-contrast": ("random_contrast_p", "P", "chance of a fully random contrast per image, else bSSFP-like"),
    "--rv-variety": ("rv_variety", "P", "chance a heart's RV shape and size are redrawn (wider arc, wide base, dilated)"),
    "--lv-variety": ("lv_variety", "P", "chance a heart's LV wall, size and EF are redrawn (massive hypertrophy, "
                     "tiny ES cavities)"),
    "--es-share": ("es_share", "P", "chance a cut is taken near end-systole rather than at any phase"),
    "--trab-variety": ("trab_variety", "P", "chance a heart's LV gets a dense trabecular fringe, labelled cavity"),
    "--trab-cap": ("trab_cap", "F", "with --trab-variety: the dense fringe and the papillary bellies reach at most "
                   "this fraction of the local cavity radius, so a small systolic cavity keeps a blood core (0: no cap)"),
    "--blood-variety": ("blood_variety", "P", "chance an image's RV, atrial and aortic blood each get their own "
                        "brightness (real RV blood is often darker than the LV's)"),
    "--min-blood-contrast": ("min_blood_contrast", "C", "blood and heart muscle at least C apart in mean intensity "
                             "(0..1 scale), fully random contrasts included: a wall that does not differ from its "
                             "blood has no border to learn (0: any)"),
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cmr synth seg", description=(
        "Write SYNTHETIC domain-randomized short-axis slices with label maps, for `cmr train --task seg`."))
    p.add_argument("--hearts", type=int, default=1200, help="synthetic hearts to draw (default 1200)")
    p.add_argument("--per-heart", type=int, default=12, help="random cuts per heart (default 12)")
    p.add_argument("--seed", type=int, default=0, help="random seed; same seed => identical shards")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    defaults = SceneConfig()
    for flag, (field, meta, text) in SCENE_OPTIONS.items():
        default = getattr(defaults, field)
        p.add_argument(flag, dest=field, type=float, default=default, metavar=meta, help=f"{text} (default {default:g})")
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    values = {field: getattr(args, field) for field, *_ in SCENE_OPTIONS.values()}
    if args.hearts < 1 or args.per_heart < 1 or not all(0 <= v <= 1 for v in values.values()):
        print(f"cmr synth seg: --hearts and --per-heart must be at least 1; {', '.join(SCENE_OPTIONS)} in 0..1",
              file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    cfg = SceneConfig(**values)
    write_shards(args.out, args.hearts, args.seed, args.workers, args.per_heart,
                 progress=lambda name: print(f"  {name}", file=sys.stderr), cfg=cfg)
    print(f"wrote {args.hearts * args.per_heart} SYNTHETIC slices ({args.hearts} hearts, seed {args.seed}) "
          f"to {args.out} in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
