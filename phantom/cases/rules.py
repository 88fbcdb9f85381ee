"""ACDC-style class rules on MEASURED values (phantom.md §1.1, §1.2): does a study look like its label?

`class_rule_holds(label, sex, measured, latent)` checks the measured values of one study (keys of
latent.MEASURED_FIELDS, e.g. from measure.measure_study) against the definition of its class. The
latent supplies what a reader sees but measure.py does not return: regional contractility, the LGE
patches, the subtype and (for apical HCM) the apical wall, which the basal/mid wall measurement
misses. Volumes are indexed (mL/m²), EF in %, walls in mm.

| Class   | Rule (all of a row must hold)                                                            |
|---------|-------------------------------------------------------------------------------------------|
| NORMAL  | LVEF > 50; LV EDVi < 100 M / 90 F (*); max wall < 12; RV EDVi < 110 M / 100 F; RVEF > 40 |
| ATHLETE | LV EDVi > 85; LVEF > 45; max wall < 14; RV EDVi > 90; no LGE (§1.2, §5.4: the upper-    |
|         | normal tail meets NORMAL on purpose)                                                     |
| NICM    | LV EDVi > 100 and LVEF < 40 (ACDC DCM)                                                   |
| ICM     | LVEF < 40 and (contractility < 0.5 in >= 2 segments, or subendo/transmural LGE inside a   |
|         | coronary territory) (ACDC MINF: "several abnormally contracting segments")               |
| HCM     | classic/concentric: max wall >= 15 and LVEF >= 55 (ACDC HCM + CREATIS tie-break);         |
|         | apical: latent apical wall (segments 13-17) >= 15 and LVEF >= 55;                        |
|         | end_stage: max wall >= 13, LVEF < 55 and LGE present (Soler: burnt-out HCM)              |
| RV      | RV EDVi > 110 M / 100 F, or RVEF < 40 (ACDC ARV)                                         |
| AMYLOID | max wall >= 12, septal:lateral < 1.5 (concentric) and (LGE or abnormal nulling)          |
| HTN_LVH | 11 <= max wall <= 16.5, septal:lateral < 1.55, LVEF >= 50, LGE none or a tiny dot (§1.2) |
| OTHER   | the subtype's own finding is present (subepicardial/patchy LGE for myocarditis/sarcoid,  |
|         | effusion >= 3 mm, aortic root >= 40 mm, wall >= 11 mm for aortic stenosis, EDVi >= 85     |
|         | for the volume-loaded valve subtype, RV EDVi >= 90 for tricuspid regurgitation)          |

(*) ACDC's NOR limit (EDVi < 90 M / 80 F) was a selection rule for a balanced 150-exam set; the
population upper limits of normal SSFP EDVi (Kawel-Boehm 2020: about 100-105 M / 90-96 F) and the
design brief's own NORMAL sampling range (§1.2: M 60-100, F 55-90) are wider. We use the brief's
range so that the NORMAL tail keeps meeting ATHLETE (an intended hard negative, §5.4).

`rule_slack(...)` is the same test with every cut moved TOWARD the class by a margin (EF 4.5
points, volumes 7 %, walls 0.6 mm): the sampler (params.sample_latent) flags a latent as
borderline when its targets fail the slack test, so that a measured value that crosses a cut
through measurement error (EF sd ~1.7 points, volumes ~2.5 %, walls ~0.15 mm) is always flagged.
"""
from __future__ import annotations

from cmr_search.phantom.cases.latent import TERRITORY_SEGMENTS, Latent

ISCHEMIC_PATTERNS = ("subendo", "transmural")
EF_MARGIN, VOL_MARGIN, WALL_MARGIN = 4.5, 0.07, 0.6     # slack used by params for `borderline`
BASAL_MID = range(12)                                    # segments 1-12: what measure.py sees


class _Cuts:
    """Comparisons that move every cut toward the class by the slack (0 = the plain rule)."""

    def __init__(self, slack: bool):
        self.ef, self.vol, self.wall = (EF_MARGIN, VOL_MARGIN, WALL_MARGIN) if slack else (0, 0, 0)

    def ef_above(self, ef, cut): return ef > cut + self.ef                            # noqa: E704
    def ef_below(self, ef, cut): return ef < cut - self.ef                            # noqa: E704
    def vol_above(self, v, cut): return v > cut * (1 + self.vol)                      # noqa: E704
    def vol_below(self, v, cut): return v < cut * (1 - self.vol)                      # noqa: E704
    def wall_above(self, w, cut): return w >= cut + self.wall                         # noqa: E704
    def wall_below(self, w, cut): return w < cut - self.wall                          # noqa: E704


def _rv_abnormal(c: _Cuts, sex: str, m: dict) -> bool:
    return c.vol_above(m["rv_edvi"], 110 if sex == "M" else 100) or c.ef_below(m["rv_ef"], 40)


def _normal(c, sex, m, lat) -> bool:
    rv_ok = c.vol_below(m["rv_edvi"], 110 if sex == "M" else 100) and c.ef_above(m["rv_ef"], 40)
    return (c.ef_above(m["lv_ef"], 50) and c.vol_below(m["lv_edvi"], 100 if sex == "M" else 90)
            and c.wall_below(m["max_wall_mm"], 12) and rv_ok)


def _athlete(c, sex, m, lat) -> bool:
    return (c.vol_above(m["lv_edvi"], 85) and c.ef_above(m["lv_ef"], 45) and not lat.lge
            and c.wall_below(m["max_wall_mm"], 14) and c.vol_above(m["rv_edvi"], 90))


def _nicm(c, sex, m, lat) -> bool:
    return c.vol_above(m["lv_edvi"], 100) and c.ef_below(m["lv_ef"], 40)


def _territorial_lge(lat: Latent) -> bool:
    terr = set().union(*(TERRITORY_SEGMENTS[t] for t in TERRITORY_SEGMENTS))
    return any(p.pattern in ISCHEMIC_PATTERNS and set(p.segments) & terr for p in lat.lge)


def _icm(c, sex, m, lat) -> bool:
    abnormal = sum(x < 0.5 for x in lat.contractility) >= 2
    return c.ef_below(m["lv_ef"], 40) and (abnormal or _territorial_lge(lat))


def _hcm(c, sex, m, lat) -> bool:
    if lat.subtype == "end_stage":
        return c.wall_above(m["max_wall_mm"], 13) and c.ef_below(m["lv_ef"], 55) and bool(lat.lge)
    wall = max(lat.wall_ed_mm[12:]) if lat.subtype == "apical" else m["max_wall_mm"]
    return c.wall_above(wall, 15) and c.ef_above(m["lv_ef"], 55 - 1e-9)


def _rv(c, sex, m, lat) -> bool:
    return _rv_abnormal(c, sex, m)


def _amyloid(c, sex, m, lat) -> bool:
    return (c.wall_above(m["max_wall_mm"], 12) and m["septal_lateral_ratio"] < 1.5
            and (bool(lat.lge) or lat.nulling_abnormal))


def _htn_lvh(c, sex, m, lat) -> bool:
    wall = m["max_wall_mm"]
    return (c.wall_above(wall, 11) and c.wall_below(wall, 16.5) and m["septal_lateral_ratio"] < 1.55
            and c.ef_above(m["lv_ef"], 50) and all(p.pattern == "dot" for p in lat.lge))


def _other(c, sex, m, lat) -> bool:
    sub = lat.subtype
    if sub in ("myocarditis", "sarcoid"):
        return bool(lat.lge)
    if sub == "effusion":
        return m["pericardial_effusion_mm"] >= 3.0
    if sub == "aortic_dilation":
        return lat.aortic_root_mm >= 40.0
    if sub == "aortic_stenosis":
        return c.wall_above(m["max_wall_mm"], 11)
    if sub == "valve_tr":
        return c.vol_above(m["rv_edvi"], 90)                   # tricuspid regurgitation: big RV
    return c.vol_above(m["lv_edvi"], 85)                       # valve: volume-loaded LV


RULES = {"NORMAL": _normal, "ATHLETE": _athlete, "NICM": _nicm, "ICM": _icm, "HCM": _hcm,
         "RV": _rv, "AMYLOID": _amyloid, "HTN_LVH": _htn_lvh, "OTHER": _other}
ACDC_CLASSES = ("NORMAL", "NICM", "ICM", "HCM", "RV")


def _check(label: str, sex: str, measured: dict, latent: Latent, slack: bool) -> bool:
    if label not in RULES:
        raise ValueError(f"no class rule for {label!r}; choose one of {', '.join(RULES)}")
    return bool(RULES[label](_Cuts(slack), sex, measured, latent))


def class_rule_holds(label: str, sex: str, measured: dict, latent: Latent) -> bool:
    """True when the measured values (latent.MEASURED_FIELDS keys) meet the class rule (table above)."""
    return _check(label, sex, measured, latent, slack=False)


def rule_slack(label: str, sex: str, measured: dict, latent: Latent) -> bool:
    """True when the rule still holds with every cut moved toward the class by the margins."""
    return _check(label, sex, measured, latent, slack=True)


def targets_as_measured(lat: Latent) -> dict:
    """The latent's TARGET values under the measured-field names the rules read (no noise):
    max wall over the basal/mid segments, as measure.py sees it."""
    w = lat.wall_ed_mm
    sept = max(w[s - 1] for s in (2, 3, 8, 9))
    latw = max(w[s - 1] for s in (5, 6, 11, 12))
    return {"lv_edvi": lat.lv_edvi, "lv_ef": lat.lv_ef, "max_wall_mm": max(w[i] for i in BASAL_MID),
            "septal_lateral_ratio": sept / max(latw, 1.0), "rv_edvi": lat.rv_edvi,
            "rv_ef": lat.rv_ef, "pericardial_effusion_mm": lat.pericardial_effusion_mm}
