"""Generation profiles: how big the synthetic studies are (phantom.md §7.2).

A profile fixes the ranges that `params.sample_acquisition` draws from and how finely `render` samples
the analytic heart. Everything else (physiology, nuisance factors, naming) is the same in all profiles.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    matrices: tuple[int, ...]            # recon matrix sizes (rows = cols) to draw from
    pixel_spacing: tuple[float, float]   # mm, uniform range
    phases: tuple[int, ...]              # cine frame counts to draw from (weights: last is commonest)
    n_sax: tuple[int, int]               # cine SAX slice count range (inclusive)
    n_lge_sax: tuple[int, int]           # LGE SAX slice count range (inclusive)
    cine_lax: tuple[str, ...]            # cine long-axis views
    lge_lax: tuple[str, ...]             # LGE long-axis views
    distractors: tuple[str, ...]         # distractor series that may be added (each drawn)
    oversample: int                      # in-plane sub-pixels per pixel per axis (partial volume)
    slab_samples: int                    # samples across the slice profile (through-plane PV)
    kspace: bool                         # zero-filled k-space truncation (Gibbs ringing, blur)
    compress: bool                       # write RLE Lossless instead of Explicit VR Little Endian


PROFILES = {
    # unit tests: well under 1 s per study
    "tiny": Profile("tiny", (64,), (2.4, 3.0), (12,), (6, 6), (6, 6), ("2CH", "3CH", "4CH"),
                    ("2CH", "4CH"), ("localizer", "ti_scout"), 1, 2, False, False),
    # realistic sizes (phantom.md §2.3): what a PACS export looks like
    "demo": Profile("demo", (192, 208, 224, 256), (1.3, 1.8), (25, 30, 30, 30), (8, 13), (10, 15),
                    ("2CH", "3CH", "4CH"), ("2CH", "3CH", "4CH"),
                    ("localizer", "ti_scout", "t2", "flow"), 2, 3, True, False),
    # `make demo`: the demo's realistic matrices and vendor DICOM, with the lower end of clinical cine
    # phase counts (20-25), 8-11 SAX slices, 1x in-plane oversampling and RLE files: rendering 2.5x
    # cheaper (about 4.5 instead of 7 CPU-s a study with the writing), about 21 MB a study on disk
    "demo-fast": Profile("demo-fast", (192, 208, 224, 256), (1.3, 1.8), (20, 25, 25), (8, 11), (9, 12),
                         ("2CH", "3CH", "4CH"), ("2CH", "3CH", "4CH"),
                         ("localizer", "ti_scout", "t2", "flow"), 1, 2, True, True),
    # thousands of studies for training: small matrices, compressed files
    "bench": Profile("bench", (96,), (2.2, 2.8), (20, 25), (7, 9), (8, 10), ("2CH", "3CH", "4CH"),
                     ("2CH", "4CH"), ("localizer", "ti_scout"), 1, 2, False, True),
}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}") from None
