"""Label maps of the phantom in the conventions of the masks a segmenter is scored against.

The renderer knows every pixel's tissue (cases.latent.TISSUE, 24 codes: the heart's structures and the
body's tissues as several background classes). `seg_labels` folds them into the ACDC convention
(Bernard et al., IEEE TMI 2018): 1 RV cavity, 2 LV myocardium, 3 LV cavity, 0 everything else;
papillary muscles, LV trabeculations and an LV thrombus belong to the LV cavity (ACDC's LV cavity
masks have no holes), RV trabeculae and the moderator band to the RV cavity; atria and aortic root are background. With `scar=True`, myocardium whose LGE
fibrosis fraction reaches SCAR_FRACTION gets its own label 4 (LGE scar within myocardium).
"""
from __future__ import annotations

import numpy as np

from cmr_search.phantom.cases.latent import TISSUE

BACKGROUND, RV_CAVITY, LV_MYOCARDIUM, LV_CAVITY, SCAR = 0, 1, 2, 3, 4
SEG_NAMES = {BACKGROUND: "background", RV_CAVITY: "rv_cavity", LV_MYOCARDIUM: "lv_myocardium",
             LV_CAVITY: "lv_cavity", SCAR: "scar"}
SCAR_FRACTION = 0.5

_LUT = np.zeros(256, np.uint8)
_LUT[[TISSUE["lv_blood"], TISSUE["papillary"], TISSUE["thrombus"], TISSUE["valve"]]] = LV_CAVITY
_LUT[TISSUE["lv_myo"]] = LV_MYOCARDIUM
_LUT[[TISSUE["rv_blood"], TISSUE["rv_trabecula"]]] = RV_CAVITY


def seg_labels(tissue: np.ndarray, lge: np.ndarray | None = None, scar: bool = False) -> np.ndarray:
    """Tissue codes (any shape, uint8) -> ACDC labels (same shape, uint8); label 4 for scar when asked."""
    out = _LUT[np.asarray(tissue, np.uint8)]
    if scar and lge is not None:
        out = np.where((out == LV_MYOCARDIUM) & (np.asarray(lge) >= SCAR_FRACTION), SCAR, out).astype(np.uint8)
    return out
