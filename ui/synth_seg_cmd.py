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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cmr synth seg", description=(
        "Write SYNTHETIC domain-randomized short-axis slices with label maps, for `cmr train --task seg`."))
    p.add_argument("--hearts", type=int, default=1200, help="synthetic hearts to draw (default 1200)")
    p.add_argument("--per-heart", type=int, default=12, help="random cuts per heart (default 12)")
    p.add_argument("--seed", type=int, default=0, help="random seed; same seed => identical shards")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--random-contrast", type=float, default=0.5, metavar="P",
                   help="chance of a fully random contrast per image, else bSSFP-like (default 0.5)")
    p.add_argument("--rv-variety", type=float, default=0.0, metavar="P",
                   help="chance a heart's RV shape and size are redrawn (wider arc, wide base, dilated; default 0)")
    p.add_argument("--lv-variety", type=float, default=0.0, metavar="P",
                   help="chance a heart's LV wall, size and EF are redrawn (massive hypertrophy, tiny ES cavities; default 0)")
    p.add_argument("--es-share", type=float, default=0.0, metavar="P",
                   help="chance a cut is taken near end-systole rather than at any phase (default 0)")
    p.add_argument("--trab-variety", type=float, default=0.0, metavar="P",
                   help="chance a heart's LV gets a dense trabecular fringe, labelled cavity (default 0)")
    p.add_argument("--trab-cap", type=float, default=0.0, metavar="F",
                   help="with --trab-variety: the dense fringe reaches at most this fraction of the local "
                        "cavity radius, so a small systolic cavity keeps a blood core (default 0: no cap)")
    p.add_argument("--min-blood-contrast", type=float, default=0.0, metavar="C",
                   help="blood and heart muscle at least C apart in mean intensity (0..1 scale), fully random "
                        "contrasts included: a wall that does not differ from its blood has no border to learn "
                        "(default 0: any)")
    p.add_argument("--blood-variety", type=float, default=0.0, metavar="P",
                   help="chance an image's RV, atrial and aortic blood each get their own brightness "
                        "(real RV blood is often darker than the LV's; default 0)")
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    shares = (args.random_contrast, args.rv_variety, args.lv_variety, args.es_share, args.trab_variety,
              args.blood_variety, args.trab_cap, args.min_blood_contrast)
    if args.hearts < 1 or args.per_heart < 1 or not all(0 <= p <= 1 for p in shares):
        print("cmr synth seg: --hearts and --per-heart must be at least 1; --random-contrast, --rv-variety, "
              "--lv-variety, --es-share, --trab-variety, --blood-variety, --trab-cap and --min-blood-contrast in 0..1",
              file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    cfg = SceneConfig(random_contrast_p=args.random_contrast, rv_variety=args.rv_variety,
                      lv_variety=args.lv_variety, es_share=args.es_share,
                      trab_variety=args.trab_variety, blood_variety=args.blood_variety,
                      trab_cap=args.trab_cap, min_blood_contrast=args.min_blood_contrast)
    write_shards(args.out, args.hearts, args.seed, args.workers, args.per_heart,
                 progress=lambda name: print(f"  {name}", file=sys.stderr), cfg=cfg)
    print(f"wrote {args.hearts * args.per_heart} SYNTHETIC slices ({args.hearts} hearts, seed {args.seed}) "
          f"to {args.out} in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
