"""MR signal models of the phantom: tissue properties (phantom.md §2.1) and the sequences (§2.2).

Every function maps tissue codes (latent.TISSUE) to a signal in arbitrary units proportional to the
equilibrium magnetisation, so PD = 1 tissue at full recovery gives 1.0:
  bSSFP cine / localizer   S = PD·sinα / (1 + cosα + (1 - cosα)·T1/T2), times blood inflow gain;
  IR-GRE LGE / TI scout    Mz = PD·(1 - 2·exp(-TI/T1)), post-contrast T1 (signed; |Mz| = magnitude);
  dark-blood T2 FSE        S = PD·(1 - exp(-TR/T1))·exp(-TE/T2), flowing blood suppressed;
  phase-contrast magnitude spoiled GRE with through-plane inflow enhancement of blood.
Tables are indexed by tissue code: `table[tissue]` turns a (...,) uint8 code array into signal.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cmr_search.phantom.cases.acquisition import T1_POST_3T_FACTOR
from cmr_search.phantom.cases.latent import TISSUE, Latent

N_CODES = max(TISSUE.values()) + 1
BLOOD = ("lv_blood", "rv_blood", "la_blood", "ra_blood", "aorta_blood")
MYO = ("lv_myo", "rv_myo", "atrial_wall", "papillary", "rv_trabecula")
BLOOD_CODES = np.array([TISSUE[n] for n in BLOOD])
LV_BLOOD = TISSUE["lv_blood"]

# name: (PD, native T1 ms at 1.5 T, T2 ms, post-contrast T1 ms, native-T1 multiplier at 3 T).
# Blood and myocardium post-contrast T1 come from the latent (None here). [phantom.md §2.1]
PROPS = {
    "air": (0.0, 1000.0, 50.0, 1000.0, 1.0),
    "lung": (0.10, 1200.0, 30.0, 800.0, 1.0),
    "muscle": (0.75, 900.0, 35.0, 500.0, 1.2),
    "fat": (0.90, 260.0, 80.0, 250.0, 1.1),
    "liver": (0.75, 580.0, 45.0, 300.0, 1.2),
    **{n: (0.95, 1550.0, 250.0, None, 1.15) for n in BLOOD},
    **{n: (0.80, 1000.0, 50.0, None, 1.2) for n in MYO},
    "pericardial_fluid": (1.0, 2500.0, 400.0, 1000.0, 1.0),
    "pleural_fluid": (1.0, 2500.0, 400.0, 1000.0, 1.0),
    "thrombus": (0.80, 1000.0, 45.0, 900.0, 1.1),   # avascular: no gadolinium uptake, dark in PSIR
    "bone": (0.30, 400.0, 50.0, 350.0, 1.1),        # marrow-like
    "pericardium": (0.40, 900.0, 20.0, 500.0, 1.1),  # fibrous: dark line on every sequence
    "valve": (0.50, 900.0, 25.0, 450.0, 1.1),        # leaflets: thin dark lines in the blood
    "csf": (1.0, 4000.0, 2000.0, 3500.0, 1.0),       # bright on bSSFP
    "gastric": (1.0, 2500.0, 400.0, 1000.0, 1.0),    # stomach fluid
    "cortex": (0.05, 1000.0, 5.0, 1000.0, 1.0),      # cortical bone: no signal
}
# Relative inflow brightness of flowing blood on bSSFP (§2.2: ×1.0-1.2); LV blood gets a z profile.
CINE_INFLOW = {"rv_blood": 1.08, "la_blood": 1.05, "ra_blood": 1.05, "aorta_blood": 1.2}
NOMINAL_INFLOW = 1.1         # inflow gain assumed by the cine SNR reference
LGE_REF_FRACTION = 0.25      # LGE SNR refers to PD_blood·0.25 (blood near the myocardial null)


@dataclass(frozen=True)
class TissueTable:
    """MR properties per tissue code for one study (field strength and latent T1s applied)."""
    pd: np.ndarray        # (N_CODES,) proton density
    t1: np.ndarray        # (N_CODES,) native T1, ms
    t2: np.ndarray        # (N_CODES,) T2, ms
    t1_post: np.ndarray   # (N_CODES,) post-contrast T1, ms
    t1_scar_post: float   # ms, post-contrast T1 of dense scar (lge = 1)


def tissue_table(latent: Latent, field_strength: float) -> TissueTable:
    """The §2.1 table for this study: 3 T multipliers on native T1, latent post-contrast T1s."""
    is3t = field_strength >= 2.0
    post_f = T1_POST_3T_FACTOR if is3t else 1.0
    t1_blood, t1_myo = latent.t1_blood_post, latent.t1_myo_post
    if latent.nulling_abnormal:                  # amyloid: myocardium nulls with/before blood
        t1_blood = max(t1_blood, t1_myo + 5.0)
    arr = {k: np.zeros(N_CODES, np.float64) for k in ("pd", "t1", "t2", "post")}
    for name, (pd, t1, t2, post, m3t) in PROPS.items():
        code = TISSUE[name]
        if post is None:
            post = t1_blood if name in BLOOD else t1_myo
        arr["pd"][code], arr["t1"][code] = pd, t1 * (m3t if is3t else 1.0)
        arr["t2"][code], arr["post"][code] = t2, post * post_f
    return TissueTable(arr["pd"], arr["t1"], arr["t2"], arr["post"],
                       float(latent.t1_scar_post * post_f))


def bssfp(pd, t1, t2, flip_deg: float):
    """Balanced SSFP steady state for TR << T2 (§2.2)."""
    a = np.deg2rad(flip_deg)
    return pd * np.sin(a) / (1.0 + np.cos(a) + (1.0 - np.cos(a)) * t1 / t2)


def ir_mz(pd, t1, ti_ms: float):
    """Signed longitudinal magnetisation at TI after a perfect inversion from equilibrium."""
    return pd * (1.0 - 2.0 * np.exp(-ti_ms / t1))


def cine_table(tab: TissueTable, flip_deg: float) -> np.ndarray:
    """(N_CODES,) bSSFP signal per tissue, with the constant inflow factors of non-LV blood."""
    s = bssfp(tab.pd, tab.t1, tab.t2, flip_deg)
    for name, f in CINE_INFLOW.items():
        s[TISSUE[name]] *= f
    return s.astype(np.float32)


def cine_reference(tab: TissueTable, flip_deg: float) -> float:
    """Nominal blood-pool bSSFP signal with a fixed mid-range inflow gain (×1.1; the actual gain
    depends on EF): the class-independent SNR reference."""
    c = LV_BLOOD
    return float(NOMINAL_INFLOW * bssfp(tab.pd[c], tab.t1[c], tab.t2[c], flip_deg))


def lv_inflow(z_local, lv_length: float, lv_ef: float):
    """LV blood inflow gain: ×1.15 at the base fading toward the apex, faster when EF is low
    (stagnant apical blood in DCM, less blood-myocardium contrast there, §2.2)."""
    ef_w = float(np.clip((lv_ef - 20.0) / 40.0, 0.0, 1.0))
    lam = 0.3 + 0.9 * ef_w
    zf = np.clip(z_local / max(lv_length, 1.0), 0.0, 1.0)
    return (1.0 + 0.15 * np.exp(-zf / lam)).astype(np.float32)


def cine_signal(table: np.ndarray, tissue, z_local, lv_length: float, lv_ef: float):
    """bSSFP signal of sampled tissue (...,): table lookup, LV blood scaled by its inflow gain."""
    s = table[tissue]
    lv = tissue == LV_BLOOD
    if np.any(lv):
        s[lv] *= lv_inflow(z_local[lv], lv_length, lv_ef)
    return s


def post_t1(tab: TissueTable, tissue, lge):
    """(...,) post-contrast T1: the tissue's value moved toward dense scar by the fibrosis."""
    t1 = tab.t1_post[tissue]
    if lge is not None and np.any(lge > 0):
        f = np.clip(lge, 0.0, 1.0)
        t1 = (1.0 - f) * t1 + f * tab.t1_scar_post
    return t1


def lge_signal(tab: TissueTable, tissue, lge, ti_ms: float):
    """(...,) signed IR-GRE signal (PSIR-like Mz) at TI; magnitude images take |.| after noise."""
    return ir_mz(tab.pd[tissue], post_t1(tab, tissue, lge), ti_ms).astype(np.float32)


def lge_reference(tab: TissueTable) -> float:
    """Class-independent LGE SNR reference: a fixed fraction of blood PD (not the blood's Mz, which
    is darker in amyloid and would make the noise level class-dependent)."""
    return float(LGE_REF_FRACTION * tab.pd[LV_BLOOD])


def t2_table(tab: TissueTable, rr_ms: float, te_ms: float = 70.0) -> np.ndarray:
    """(N_CODES,) dark-blood T2-weighted FSE (TR = 2 RR): blood nulled, fat partly saturated."""
    s = tab.pd * (1.0 - np.exp(-2.0 * rr_ms / tab.t1)) * np.exp(-te_ms / tab.t2)
    s[BLOOD_CODES] *= 0.05
    s[TISSUE["fat"]] *= 0.35
    return s.astype(np.float32)


def t2_reference(tab: TissueTable, rr_ms: float, te_ms: float = 70.0) -> float:
    """Nominal skeletal-muscle signal on the T2 series (class-independent SNR reference)."""
    c = TISSUE["muscle"]
    return float(tab.pd[c] * (1.0 - np.exp(-2.0 * rr_ms / tab.t1[c])) * np.exp(-te_ms / tab.t2[c]))


def flow_table(tab: TissueTable, flip_deg: float = 20.0, tr_ms: float = 5.0) -> np.ndarray:
    """(N_CODES,) phase-contrast magnitude: spoiled GRE, through-plane blood inflow-enhanced."""
    a, e1 = np.deg2rad(flip_deg), np.exp(-tr_ms / tab.t1)
    s = tab.pd * np.sin(a) * (1.0 - e1) / (1.0 - np.cos(a) * e1)
    s[BLOOD_CODES] *= 2.0
    s[TISSUE["aorta_blood"]] *= 1.5
    return s.astype(np.float32)

