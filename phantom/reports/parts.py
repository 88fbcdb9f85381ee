"""Building blocks of phantom.reports.report: grading measured values, printed numbers, and phrase builders.

Grades follow phantom.md §4.2 (LVEF >= 70 hyperdynamic, 55-69 normal, 45-54 mildly, 35-44 moderately,
< 35 severely reduced; RVEF >= 45 normal, 40-44 mild, 35-39 moderate, < 35 severe). Phrases are
templates with lexicon holes (`{LGE}`, `{TERR_LAD}`, ...) that report._Writer fills for one split.
Territory words are only ever produced for territories whose segments carry LGE (§4.5).
"""
from __future__ import annotations

import numpy as np

from cmr_search.phantom.cases.latent import SEGMENT_NAMES, TERRITORY_SEGMENTS, Latent
from cmr_search.phantom.reports.lexicon import FORMS

# (grade, lowest printable, highest printable); a measured value takes the first grade whose
# upper bound (next grade's lowest) it stays below.
LV_EF_GRADES = (("severely_reduced", 0, 34), ("moderately_reduced", 35, 44), ("mildly_reduced", 45, 54),
                ("normal", 55, 69), ("hyperdynamic", 70, 95))
RV_EF_GRADES = (("severely_reduced", 0, 34), ("moderately_reduced", 35, 39), ("mildly_reduced", 40, 44),
                ("normal", 45, 90))
# EDVi (mL/m²) upper bounds of small / normal / mild / moderate dilation, by sex
LV_SIZE_CUTS = {"M": (50, 100, 115, 135), "F": (45, 92, 105, 125)}
RV_SIZE_CUTS = {"M": (0, 110, 130, 150), "F": (0, 100, 120, 140)}
SIZE_GRADES = ("small", "normal", "mildly_dilated", "moderately_dilated", "severely_dilated")
HYPERTROPHY_MM = 12.0              # measured max wall >= this: hypertrophy of some kind
ASYM_RATIO = 1.3                   # septal:lateral ratio of asymmetric septal hypertrophy
ATRIUM_DILATED = 1.25              # latent la/ra scale above which the atrium reads dilated
NUMBER_HOLES = ("{WALLMM}", "{RVEDVI}")
TERR_CONCEPT = {"LAD": "{TERR_LAD}", "RCA": "{TERR_RCA}", "LCx": "{TERR_LCX}"}
RECO = {"NICM": "reco_nicm", "ICM": "reco_icm", "HCM": "reco_hcm", "AMYLOID": "reco_amyloid",
        "RV": "reco_rv"}
_FUNC = {"hyperdynamic": "{FUNC_HYPER}", "normal": "{FUNC_NORMAL}", "mildly_reduced": "{FUNC_MILD}",
         "moderately_reduced": "{FUNC_MODERATE}", "severely_reduced": "{FUNC_SEVERE}"}
_SIZE = {"small": "{SIZE_SMALL}", "normal": "{SIZE_NORMAL}", "mildly_dilated": "{SIZE_MILD}",
         "moderately_dilated": "{SIZE_MODERATE}", "severely_dilated": "{SIZE_SEVERE}"}
OTHER_DX = {"myocarditis": "{DX_MYOCARDITIS}", "sarcoid": "{DX_SARCOID}", "effusion": "{DX_EFFUSION}",
            "aortic_dilation": "{DX_AORTA}", "valve": "{DX_VALVE}", "aortic_stenosis": "{DX_AS}"}
MAX_LISTED_SEGMENTS = 8            # more LGE segments than this read "multiple segments"
_MOTION_NOUN = {"hypokinetic": "hypokinesis", "akinetic": "akinesis", "dyskinetic": "dyskinesis"}
_WALL = ("anterior", "anteroseptal", "inferoseptal", "inferior", "inferolateral", "anterolateral")
_APICAL_WALL = ("anterior", "septal", "inferior", "lateral")
_LEVELS = ("basal", "mid", "apical")


def func_concept(grade: str) -> str:
    return _FUNC[grade]


def size_concept(grade: str) -> str:
    return _SIZE[grade]


def ef_grade(ef: float, grades=LV_EF_GRADES) -> str:
    for (name, _, _), (_, nxt, _) in zip(grades, grades[1:]):
        if ef < nxt:
            return name
    return grades[-1][0]


def size_grade(edvi: float, sex: str, cuts) -> str:
    c = cuts.get(sex, cuts["M"])
    return SIZE_GRADES[int(np.searchsorted(c, edvi, side="right"))]


def _clip_to_grade(value: float, grade: str, grades) -> int:
    lo, hi = next((lo, hi) for name, lo, hi in grades if name == grade)
    return int(np.clip(round(value), lo, hi))


# --- the finding vector ----------------------------------------------------------------------------
def findings(latent: Latent, m: dict) -> dict:
    terr = lge_territories(latent)
    lv_func = ef_grade(m["lv_ef"])
    peri = _peri_grade(m["pericardial_effusion_mm"])
    f = {
        "lv_size": size_grade(m["lv_edvi"], latent.sex, LV_SIZE_CUTS), "lv_func": lv_func,
        "lvef": int(round(m["lv_ef"])), "lv_edvi": round(float(m["lv_edvi"]), 1),
        "wall": wall_category(latent, m), "max_wall_mm": round(float(m["max_wall_mm"]), 1),
        "rwma": rwma(latent, terr, lv_func), "lge": _lge_record(latent, m, terr),
        "rv_size": size_grade(m["rv_edvi"], latent.sex, RV_SIZE_CUTS),
        "rv_func": ef_grade(m["rv_ef"], RV_EF_GRADES), "rvef": int(round(m["rv_ef"])),
        "atria": _atria(latent), "effusion": {"pericardial": peri, "pleural": _pleural(latent)},
        "nulling_abnormal": bool(latent.nulling_abnormal), "sam": bool(latent.sam),
        "aneurysm": bool(latent.aneurysm), "thrombus": bool(latent.thrombus),
        "incidentals": list(latent.incidentals), "dx": latent.label, "dx_confidence": confidence(latent),
    }
    f["labels"] = _labels(latent, f)
    return f


def _labels(latent: Latent, f: dict) -> dict:
    """Binary finding labels for zero-shot evaluation (CMR-CLIP finding prompts, phantom.md §5.6)."""
    return {
        "lv_dilation": f["lv_size"].endswith("dilated"), "lv_dysfunction": f["lv_func"].endswith("reduced"),
        "rv_dilation": f["rv_size"].endswith("dilated"), "rv_dysfunction": f["rv_func"].endswith("reduced"),
        "lv_hypertrophy": f["wall"] != "normal", "lge_present": f["lge"]["present"],
        "aortic_dilation": "aortic_dilation" in latent.incidentals or latent.aortic_root_mm >= 40.0,
        "pericardial_effusion": f["effusion"]["pericardial"] in ("small", "moderate", "large"),
    }


def confidence(latent: Latent) -> str:
    """dx_confidence, never 'definite' for a borderline latent (§5.3)."""
    if latent.borderline and latent.dx_confidence == "definite":
        return "probable"
    return latent.dx_confidence


def wall_category(latent: Latent, m: dict) -> str:
    """normal | concentric | asymmetric_septal | apical, from measured max wall and ratio."""
    if m["max_wall_mm"] < HYPERTROPHY_MM:
        return "normal"
    w = latent.wall_ed_mm
    if max(w[12:17]) > max(w[:12]) + 2.0:
        return "apical"
    if m["max_wall_mm"] >= 13.0 and m["septal_lateral_ratio"] >= ASYM_RATIO:
        return "asymmetric_septal"
    return "concentric"


def lge_territories(latent: Latent) -> list[str]:
    """Infarct territories whose segments carry ischemic-pattern LGE (the only ones ever named)."""
    return [t for t in latent.territories
            if any(p.pattern in ("subendo", "transmural") and set(p.segments) & set(TERRITORY_SEGMENTS[t])
                   for p in latent.lge)]


def rwma(latent: Latent, terr: list[str], lv_func: str) -> list[list[str]]:
    """[[territory | 'global' | segment name, hypokinetic|akinetic|dyskinetic], ...]."""
    sev = {s: _motion(c) for s, c in enumerate(latent.contractility, 1) if c < 0.75}
    out = []
    for t in terr:
        segs = [s for s in TERRITORY_SEGMENTS[t] if s in sev]
        if segs:
            out.append([t, _worst([sev.pop(s) for s in segs])])
    if not latent.territories and _globally_hypokinetic(latent, lv_func):
        return out + [["global", "hypokinetic"]]
    return out + [[SEGMENT_NAMES[s - 1], v] for s, v in sorted(sev.items())]


def _globally_hypokinetic(latent: Latent, lv_func: str) -> bool:
    """Global hypokinesis: moderately/severely reduced EF, or mildly in a cardiomyopathy class."""
    if lv_func in ("moderately_reduced", "severely_reduced"):
        return True
    return lv_func == "mildly_reduced" and latent.label in ("NICM", "ICM", "AMYLOID", "HCM")


def _motion(c: float) -> str:
    return "dyskinetic" if c < 0 else ("akinetic" if c < 0.25 else "hypokinetic")


def _worst(sevs: list[str]) -> str:
    order = ("hypokinetic", "akinetic", "dyskinetic")
    return max(sevs, key=order.index)


def _lge_record(latent: Latent, m: dict, terr: list[str]) -> dict:
    real = [p for p in latent.lge if p.pattern != "dot"]
    pats = []
    for p in latent.lge:
        name = p.pattern if p.pattern != "diffuse" else (
            "diffuse_transmural" if p.depth[1] >= 0.9 else "diffuse_subendo")
        if name not in pats:
            pats.append(name)
    isch = [p for p in real if p.pattern in ("subendo", "transmural")]
    tm = int(round(100 * max(p.depth[1] - p.depth[0] for p in isch))) if isch else None
    return {"present": bool(real), "patterns": pats, "territories": list(terr),
            "segments": sorted({s for p in real for s in p.segments}), "transmurality": tm,
            "percent": round(float(m["lge_percent"]), 1)}


def _atria(latent: Latent) -> str:
    la, ra = latent.la_scale >= ATRIUM_DILATED, latent.ra_scale >= ATRIUM_DILATED
    return {(True, True): "biatrial_dilated", (True, False): "la_dilated",
            (False, True): "ra_dilated"}.get((la, ra), "normal")


def _peri_grade(mm: float) -> str:
    for name, hi in (("none", 1.0), ("trace", 3.5), ("small", 10.0), ("moderate", 20.0)):
        if mm < hi:
            return name
    return "large"


def _pleural(latent: Latent) -> str:
    r, l = (x >= 3.0 for x in latent.pleural_effusion_mm)
    return {(True, True): "bilateral", (True, False): "right", (False, True): "left"}.get((r, l), "none")


# --- printed numbers (reader noise, kept inside the stated grade) ----------------------------------
def printed_numbers(latent: Latent, m: dict, f: dict, rng) -> dict:
    ef = _clip_to_grade(m["lv_ef"] + rng.normal(0, 3), f["lv_func"], LV_EF_GRADES)
    rvef = _clip_to_grade(m["rv_ef"] + rng.normal(0, 3), f["rv_func"], RV_EF_GRADES)
    wall = m["max_wall_mm"] * (1 + rng.normal(0, 0.05))
    wall = int(np.clip(round(wall), HYPERTROPHY_MM, 40)) if f["wall"] != "normal" else int(round(wall))
    ratio = max(round(m["septal_lateral_ratio"] * (1 + rng.normal(0, 0.05)), 1),
                ASYM_RATIO if f["wall"] == "asymmetric_septal" else 0.0)
    rv_lo, rv_hi = _size_bounds(f["rv_size"], latent.sex)
    rvedvi = int(np.clip(round(m["rv_edvi"] * (1 + rng.normal(0, 0.05))), rv_lo, rv_hi))
    lgepct = max(1, int(round(m["lge_percent"] * (1 + rng.normal(0, 0.1)))))
    return {"EF": ef, "RVEF": rvef, "WALLMM": wall, "RATIO": f"{ratio:.1f}", "RVEDVI": rvedvi,
            "LGEPCT": lgepct, "AO": f"{latent.aortic_root_mm / 10:.1f}"}


def _size_bounds(grade: str, sex: str) -> tuple[float, float]:
    c = (0,) + tuple(RV_SIZE_CUTS.get(sex, RV_SIZE_CUTS["M"])) + (400,)
    i = SIZE_GRADES.index(grade)
    return c[i], c[i + 1] - 1


# --- phrase builders --------------------------------------------------------------------------------
def seg_phrase(segments) -> str:
    """AHA segments as words: (2, 3, 8, 9) -> 'basal to mid anteroseptal and inferoseptal walls'."""
    levels: dict[str, list[str]] = {}
    for s in sorted(set(segments) - {17}):
        wall = _WALL[(s - 1) % 6] if s <= 12 else _APICAL_WALL[s - 13]
        levels.setdefault(wall, []).append(_LEVELS[(s - 1) // 6] if s <= 12 else "apical")
    by_range: dict[str, list[str]] = {}
    for wall, lv in levels.items():
        by_range.setdefault(_level_range(lv), []).append(wall)
    pieces = [f"{rng_} {' and '.join(ws)} wall{'s' if len(ws) > 1 else ''}" for rng_, ws in by_range.items()]
    if 17 in segments:
        pieces.append("apex")
    return pieces[0] if len(pieces) == 1 else ", ".join(pieces[:-1]) + " and " + pieces[-1]


def _level_range(lv: list[str]) -> str:
    idx = sorted({_LEVELS.index(x) for x in lv})
    if len(idx) == 1:
        return _LEVELS[idx[0]]
    if idx == [0, 2]:
        return "basal and apical"
    return f"{_LEVELS[idx[0]]} to {_LEVELS[idx[-1]]}"


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _patch_territory(p, terr: list[str]) -> str | None:
    overlap = [(len(set(p.segments) & set(TERRITORY_SEGMENTS[t])), t) for t in terr]
    best = max(overlap, default=(0, None))
    return best[1] if best[0] > 0 else None


def lge_description(w, latent: Latent, patches, f: dict) -> str:
    """One LGE_DESC for all non-dot patches (pattern, location, transmurality)."""
    terr = f["lge"]["territories"]
    parts = [_patch_phrase(w, latent, p, terr) for p in patches]
    desc = _join(list(dict.fromkeys(parts)))
    if latent.label == "HCM" and f["lge"]["percent"] >= 15:
        desc = "extensive " + desc
    if latent.label == "HCM" and f["lge"]["percent"] > 0 and w.rng.random() < 0.3:
        desc += " (about {LGEPCT}% of {LV_ADJ} mass)"
    if {p.pattern for p in patches} <= {"midwall", "subepi", "rv_insertion"} and w.rng.random() < 0.35:
        desc += "; no {PAT_SUBENDO} {LGE} to suggest {MI}"
    return desc


def _patch_phrase(w, latent: Latent, p, terr: list[str]) -> str:
    patchy = "{PATCHY} " if p.patchiness >= 0.5 and w.rng.random() < 0.6 else ""
    seg = seg_phrase(p.segments)
    where = "in the " + seg if len(p.segments) <= MAX_LISTED_SEGMENTS else "in multiple segments"
    if p.pattern in ("subendo", "transmural"):
        return _ischemic_phrase(w, p, where, _patch_territory(p, terr))
    if p.pattern == "midwall":
        return patchy + "{PAT_MIDWALL} {LGE} " + where
    if p.pattern == "rv_insertion":
        return patchy + "{LGE} at the {RVIPS}"
    if p.pattern == "subepi":
        return "{PAT_SUBEPI} {LGE} " + where
    if p.pattern == "diffuse":
        base = "{PAT_DIFFUSE_TM} {LGE}" if p.depth[1] >= 0.9 else "{PAT_DIFFUSE} {LGE}"
        return base + (" {AMY_EXTENT}" if p.rv and p.atria else "")
    return "{LGE} " + where


def _ischemic_phrase(w, p, where: str, terr: str | None) -> str:
    pat = "{PAT_SUBENDO}" if p.pattern == "subendo" else "{PAT_TRANSMURAL}"
    if terr is None:
        lead = "a small focus of " if len(p.segments) == 1 else ""
        return f"{lead}{pat} {{LGE}} {where}"
    t = TERR_CONCEPT[terr]
    text = pick_str(w, (f"{pat} {{LGE}} in the {t}", f"{pat} {{LGE}} {where} ({t})"))
    if p.pattern == "subendo" and w.rng.random() < 0.5:
        text += ", {TM_LOW}" if p.depth[1] - p.depth[0] <= 0.5 else ", {TM_HIGH}"
    return text


def pick_str(w, options) -> str:
    return options[int(w.rng.integers(len(options)))]


def neg_list(w, latent: Latent) -> str:
    """Diseases named under negation when there is no LGE (pertinent negatives, §4.2)."""
    pool = {"ICM": ("{NEG_INFILTRATIVE}", "{NEG_MYOCARDITIS}"),
            "AMYLOID": ("{MI}", "{NEG_MYOCARDITIS}"),
            "NICM": ("{MI}", "{NEG_INFILTRATIVE}")}.get(
        latent.label, ("{MI}", "{NEG_INFILTRATIVE}", "{NEG_MYOCARDITIS}"))
    k = int(w.rng.integers(1, len(pool) + 1))
    chosen = sorted(w.rng.choice(len(pool), size=k, replace=False).tolist())
    return " or ".join(pool[i] for i in chosen) if k <= 2 else _join([pool[i] for i in chosen]).replace(
        " and ", " or ")


def dx_term(w, latent: Latent, f: dict, cls: str, swapped: bool) -> str:
    """The {DX_TERM} of class `cls` (subtype-specific for the true class)."""
    if swapped or cls != latent.label:
        return {"ICM": "{DX_ICM}", "NICM": "{DX_NICM}", "HCM": "{DX_HCM}", "HTN_LVH": "{DX_HTN}",
                "AMYLOID": "{DX_AMYLOID}"}.get(cls, "{DX_NICM}")
    if cls == "ICM" and f["lge"]["territories"] and w.rng.random() < 0.4:
        return "{MI} in the " + " and ".join(TERR_CONCEPT[t] for t in f["lge"]["territories"])
    if cls == "HCM":
        sub = {"apical": "{DX_HCM_APICAL}", "end_stage": "{DX_HCM_END}"}.get(latent.subtype)
        return sub or ("{DX_HOCM}" if latent.sam and w.rng.random() < 0.6 else "{DX_HCM}")
    if cls == "RV":
        return "{DX_ARVC}" if latent.rv_bulge else (
            "{DX_RV_PRESSURE}" if latent.septal_flattening >= 0.3 else "{DX_RV_VOLUME}")
    if cls == "OTHER":
        return OTHER_DX.get(latent.subtype, "{DX_MYOCARDITIS}" if any(
            p.pattern == "subepi" for p in latent.lge) else "{DX_VALVE}")
    return {"NICM": "{DX_NICM}", "ICM": "{DX_ICM}", "AMYLOID": "{DX_AMYLOID}", "HTN_LVH": "{DX_HTN}",
            "ATHLETE": "{DX_ATHLETE}"}[cls]


def extra_findings(w, latent: Latent, f: dict) -> list[tuple[int, str]]:
    """(priority, FINDING phrase) for findings beyond size/function, wall, LGE and RV grades."""
    out = [(1, p) for p in (_motion_phrase(f["rwma"]),) if p]
    if latent.sam:
        out.append((1, pick_str(w, ("{SAM}", "{SAM} with {LVOTO}"))))
    if latent.aneurysm:
        out.append((1, "{ANEURYSM}" + (" with {THROMBUS}" if latent.thrombus else "")))
    elif latent.thrombus:
        out.append((1, "{THROMBUS}"))
    out += [(1, c) for c, on in (("{SEPTAL_FLAT}", latent.septal_flattening >= 0.3),
                                 ("{RV_BULGE}", latent.rv_bulge), ("{NULLING}", latent.nulling_abnormal)) if on]
    if latent.rv_wall_mm >= 5.0:
        out.append((2, "{RV_HYP}"))
    atria = {"biatrial_dilated": "{BIATRIAL}", "la_dilated": "{LA_DIL}", "ra_dilated": "{RA_DIL}"}
    if f["atria"] in atria:
        out.append((2, atria[f["atria"]]))
    return out + _other_findings(latent, f)


def _other_findings(latent: Latent, f: dict) -> list[tuple[int, str]]:
    out = []
    if f["effusion"]["pericardial"] in ("small", "moderate", "large"):
        out.append((1, f["effusion"]["pericardial"] + " {PERI}"))
    side = f["effusion"]["pleural"]
    if side != "none" and "pleural_effusion" not in latent.incidentals:
        out.append((2, side + " {PLEURAL}"))
    if latent.label == "OTHER" and latent.subtype == "aortic_dilation":
        out.append((1, "{DX_AORTA}, {AO} cm"))
    if latent.label == "OTHER" and latent.subtype == "valve":
        out.append((1, "moderate {DX_VALVE}"))
    if latent.label == "OTHER" and latent.subtype == "aortic_stenosis":
        out.append((1, "{DX_AS}"))
    return out


def _motion_phrase(entries: list[list[str]]) -> str:
    parts = []
    for where, sev in entries:
        if where == "global":
            parts.append("{GLOBAL_HYPO}")
        elif where in TERR_CONCEPT:
            parts.append(f"{_MOTION_NOUN[sev]} in the {TERR_CONCEPT[where]}")
    segs: dict[str, list[int]] = {}
    for where, sev in entries:
        if where in SEGMENT_NAMES:
            segs.setdefault(sev, []).append(SEGMENT_NAMES.index(where) + 1)
    parts += [f"{_MOTION_NOUN[sev]} of the {seg_phrase(s)}" for sev, s in segs.items()]
    return _join(parts) if parts else ""


def incidental_phrases(w, latent: Latent) -> list[str]:
    out = []
    for name in latent.incidentals:
        if name == "aortic_dilation":
            if not (latent.label == "OTHER" and latent.subtype == "aortic_dilation"):
                out.append("{DX_AORTA}, {AO} cm")
        elif name == "mitral_regurgitation":
            out.append("mild {DX_VALVE}")
        elif name == "pleural_effusion":
            out.append("small right {PLEURAL}")
        elif f"inc_{name}" in FORMS:
            out.append("{INC_" + name.upper() + "}")
        else:
            out.append(name.replace("_", " "))
    return out


def lower_first(s: str) -> str:
    """Lower-case the first letter unless the first word is an abbreviation (LV, LGE, ...)."""
    word = s.split(" ", 1)[0]
    return s if word[:2].isupper() else s[:1].lower() + s[1:]


def upper_first(s: str) -> str:
    return s[:1].upper() + s[1:]
