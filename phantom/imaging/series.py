"""What the renderer hands the DICOM writer: one acquired series, pixels plus geometry and timing, and
its exact label maps (the tissue code of every pixel of every frame; phantom/dicom/labelmaps.py writes
them beside the DICOM)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cmr_search.phantom.heart.geometry import Plane

# Series kinds. The writer names them per vendor; the indexer's series typing must recover them
# from tags and geometry (the kind itself is never written to DICOM; study.json lists it per series).
SERIES_KINDS = (
    "cine_sax", "cine_2ch", "cine_3ch", "cine_4ch",
    "lge_sax", "lge_2ch", "lge_3ch", "lge_4ch",
    "ti_scout", "localizer", "t2", "flow",
)


@dataclass
class RenderedSeries:
    kind: str                     # one of SERIES_KINDS
    planes: list[Plane]           # one per slice, in acquisition order (SAX: base -> apex)
    images: np.ndarray            # (n_slices, n_frames, rows, cols) float32, arbitrary units;
                                  # magnitude >= 0; signed values only when `signed`
    trigger_times: list[float]    # (n_frames,) ms after the R wave
    inversion_times: list[float] | None = None  # (n_frames,) ms for LGE / TI scout, else None
    signed: bool = False          # PSIR reconstruction (phase-sensitive, signed)
    recon: str = "magnitude"      # magnitude | psir (the LGE pair shares one acquisition)
    tissue: np.ndarray | None = None  # (n_slices, n_frames, rows, cols) uint8 cases.latent.TISSUE code
                                  # of each pixel at its centre on the slab's mid plane at the frame's
                                  # trigger time (the anatomy as imaged: misregistration included,
                                  # image artifacts not); None when rendered without labels
    lge_pct: np.ndarray | None = None  # same shape, uint8 LGE fibrosis % (0..100) at the same points;
                                  # None without labels or where the series shows no fibrosis
