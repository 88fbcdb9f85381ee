"""Series typing: which view each series of a study shows (phantom.md §3.5, "recommended classifier").

    types = type_study(study)        # SeriesInstanceUID -> SeriesType(view, confidence, reason)

Three stages, tags and geometry first, names only as a hint:
  1. sequence: IR (ScanningSequence or InversionTime) -> LGE, or TI scout when one series holds many
     inversion times; gated GR with many trigger times -> cine; spin echo -> other (T2 dark blood);
     phase-contrast hints -> other (flow); several plane orientations or ungated -> localizer.
  2. SAX vs LAX: the study's SAX axis is the normal of the largest group of parallel cine (else LGE)
     planes with >= 5 distinct positions, pooled over series (one-series-per-slice layouts included).
     Planes parallel to it are SAX; planes containing it (|cos| < 0.3) are long-axis.
  3. 2/3/4CH: the in-plane direction w of a LAX plane about the long axis, as an angle from the
     anterior direction toward the septum in the SAX frame: 2CH ~0°, 3CH ~60°, 4CH ~105°.
The SAX frame comes from the SAX images' row/column directions (row = lateral, column = inferior,
the usual display) when they agree with anatomy, else from anatomy alone (apex left-anterior-inferior,
anterior = anterior-superior projected onto the SAX plane). Names decide only when geometry cannot.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass

import numpy as np

from cmr_search.indexer.records import SeriesRecord, SeriesType, StudyRecord
from cmr_search.indexer.scan import scan_archive

VIEWS = ("cine_sax", "cine_2ch", "cine_3ch", "cine_4ch", "lge_sax", "lge_2ch", "lge_3ch", "lge_4ch",
         "ti_scout", "localizer", "other")
LAX_ANGLES = {"2ch": 0.0, "3ch": 60.0, "4ch": 105.0}    # degrees, anterior -> septum about the axis
MIN_SAX_SLICES = 5
APEX_DIR = np.array([1.0, -1.0, -1.0]) / np.sqrt(3)      # LPS: the LV apex points left-anterior-inferior
ANT_SUP = np.array([0.0, -1.0, 1.0]) / np.sqrt(2)

_B = r"(?<![a-z0-9])"          # token start
NAME_SEQ = {
    "ti_scout": re.compile(r"ti[ _-]?scout|look-?locker|cine_?ir|_ll\b|ti_?scout"),
    "localizer": re.compile(_B + r"(loc|localizer|localiser|survey|3-?pl(ane)?|tri-?pilot|scout)"),
    "flow": re.compile(r"flow|venc|fastpc|q-?flow|" + _B + r"pc" + r"(?![a-z])|_v=?\d{2,3}"),
    "t2": re.compile(r"t2|dirfse|tse|haste_db|" + _B + r"bb" + r"(?![a-z])|dark.?blood"),
    "lge": re.compile(r"psir|mde|" + _B + r"de(?![a-z])|delay|lge|irp-?fgre|ps:|mag:|ti=|ti_\d|tfl"),
    "cine": re.compile(r"cine|fiesta|tfi|trufi|b-?tfe|btfe|ssfp|segmented"),
}
NAME_VIEW = {
    "2ch": re.compile(r"(?<![0-9])2c(h)?(?![a-z])|" + _B + r"vla(?!x)"),
    "3ch": re.compile(r"(?<![0-9])3c(h)?(?![a-z])|lvot"),
    "4ch": re.compile(r"(?<![0-9])4c(h)?(?![a-z])|" + _B + r"hla"),
    "sax": re.compile(_B + r"(sax?|short)(?![a-z])|" + _B + r"sa(x)?_|_sa(x)?(?![a-z])"),
}
FLOW_SEQ = re.compile(r"_v\d|fastpc|ffe_pc|(?<![a-z])pc(?![a-z])|venc|flow")


@dataclass
class Features:
    """What typing needs from one series (geometry as unit vectors, LPS)."""
    uid: str
    n: int
    normals: list[np.ndarray]      # distinct plane normals in the series (sign-free clusters)
    normal: np.ndarray | None      # the main normal
    row: np.ndarray | None         # row/column direction of the first instance
    col: np.ndarray | None
    positions: set[float]          # distinct positions along the main normal (mm, rounded)
    n_phases: int                  # distinct trigger times
    n_tis: int                     # distinct inversion times
    ir: bool
    gated: bool
    spin_echo: bool
    flow_tags: bool
    name: str                      # description + protocol, lower case


def _unit(v) -> np.ndarray | None:
    v = np.asarray(v, float)
    n = np.linalg.norm(v)
    return v / n if n > 1e-6 else None


def _cluster_normals(normals: list[np.ndarray], cos_tol: float = 0.98) -> list[list[np.ndarray]]:
    clusters: list[list[np.ndarray]] = []
    for n in normals:
        for c in clusters:
            if abs(float(c[0] @ n)) > cos_tol:
                c.append(n)
                break
        else:
            clusters.append([n])
    return sorted(clusters, key=len, reverse=True)


def series_features(s: SeriesRecord, use_names: bool = True) -> Features:
    normals, row, col = [], None, None
    for inst in s.instances:
        if inst.iop is None:
            continue
        r, c = np.asarray(inst.iop[:3], float), np.asarray(inst.iop[3:], float)
        n = _unit(np.cross(r, c))
        if n is not None:
            normals.append(n)
            if row is None:
                row, col = _unit(r), _unit(c)
    clusters = _cluster_normals(normals)
    normal = _unit(np.mean([n * np.sign(n @ clusters[0][0]) for n in clusters[0]], axis=0)) \
        if clusters else None
    positions = {round(float(np.asarray(i.ipp) @ normal), 0) for i in s.instances
                 if normal is not None and i.ipp is not None and i.iop is not None
                 and abs(float(_unit(np.cross(i.iop[:3], i.iop[3:])) @ normal)) > 0.98}
    seq = s.scanning_sequence.upper()
    tis = {round(i.inversion_time, 1) for i in s.instances   # TI 0 is written on some non-IR cines
           if i.inversion_time is not None and i.inversion_time > 0}
    per_pos: dict[float, set] = {}        # position -> trigger times (phases counted per slice)
    for i in s.instances:
        if i.trigger_time is not None:
            key = round(float(np.asarray(i.ipp) @ normal), 0) if i.ipp and normal is not None else 0.0
            per_pos.setdefault(key, set()).add(round(i.trigger_time, 1))
    opts = s.scan_options.upper()
    flow = bool(FLOW_SEQ.search(s.sequence_name.lower()) or
                re.search(r"(?<![A-Z])(PCA|PHASE|VELOCITY|P)(?![A-Z_])", s.image_type.upper()))
    return Features(
        uid=s.series_instance_uid, n=len(s.instances), normals=[c[0] for c in clusters],
        normal=normal, row=row, col=col,
        positions=positions, n_phases=max((len(t) for t in per_pos.values()), default=0), n_tis=len(tis), ir="IR" in seq.split("\\") or bool(tis),
        gated="CG" in opts.split("\\") or s.cardiac_number_of_images is not None, spin_echo="SE" in seq and "GR" not in seq,
        flow_tags=flow, name=f"{s.description} {s.protocol}".lower() if use_names else "")


def _name_seq(f: Features) -> str | None:
    for kind, rx in NAME_SEQ.items():
        if f.name.strip() and rx.search(f.name):
            return kind
    return None


def _name_view(f: Features) -> str | None:
    hits = [v for v, rx in NAME_VIEW.items() if rx.search(f.name)]
    return hits[0] if len(hits) == 1 else None


def sequence_class(f: Features) -> tuple[str, float, str]:
    """Stage 1 -> (cine | lge | ti_scout | localizer | t2 | flow | unknown, confidence, reason)."""
    if len(f.normals) >= 2 and not f.ir and f.n_phases <= 2:
        return "localizer", 0.95, f"{len(f.normals)} plane orientations in one series"
    if f.spin_echo:
        return "t2", 0.9, "spin-echo sequence (T2 / dark blood)"
    if f.ir:
        if f.n_tis >= 3:
            return "ti_scout", 0.95, f"IR with {f.n_tis} inversion times"
        return "lge", 0.95, "IR, " + (f"{f.n_tis} TI" if f.n_tis else "no TI listed")
    if f.flow_tags:
        return "flow", 0.9, "phase-contrast tags (sequence name / image type)"
    if not f.gated:
        return "localizer", 0.8, "not cardiac gated (no CG, no CardiacNumberOfImages), no IR"
    if f.n_phases >= 5:
        return "cine", 0.95, f"gated GR, {f.n_phases} phases, no IR"
    hint = _name_seq(f)
    if hint:
        return hint, 0.6, f"{f.n_phases} phases; name suggests {hint}"
    return "unknown", 0.3, f"gated, {f.n_phases} phases, no IR, no telling name"


def _sax_axis(feats: list[Features], classes: dict[str, str]) -> tuple[np.ndarray, Features] | None:
    """Normal of the largest parallel group (>= MIN_SAX_SLICES positions) of cine, else LGE planes."""
    for kind in ("cine", "lge"):
        groups: list[tuple[np.ndarray, set, list[Features]]] = []
        for f in feats:
            if classes[f.uid] != kind or f.normal is None:
                continue
            for g in groups:
                if abs(float(g[0] @ f.normal)) > 0.98:
                    g[1].update(round(float(p), 0) for p in f.positions)
                    g[2].append(f)
                    break
            else:
                groups.append((f.normal, set(f.positions), [f]))
        groups = [g for g in groups if len(g[1]) >= MIN_SAX_SLICES]
        if groups:
            n, _, members = max(groups, key=lambda g: len(g[1]))
            ref = max(members, key=lambda f: len(f.positions))
            return n, ref
    return None


def _axis_from_lax(feats: list[Features]) -> np.ndarray | None:
    """No SAX stack: LAX planes all contain the long axis, so two of them give it by a cross product."""
    ns = [f.normal for f in feats if f.normal is not None]
    for i in range(len(ns)):
        for j in range(i + 1, len(ns)):
            u = _unit(np.cross(ns[i], ns[j]))
            if u is not None and abs(float(ns[i] @ ns[j])) < 0.9:
                return u
    return None


def sax_frame(u: np.ndarray, ref: Features | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """(u base->apex, e_ant, e_lat, how) for the LAX angle. Uses the SAX display directions when they
    agree with anatomy (row ~ lateral, column ~ inferior), else anatomy alone."""
    u = u if u @ APEX_DIR > 0 else -u
    ant = _unit(ANT_SUP - (ANT_SUP @ u) * u)
    if ref is not None and ref.row is not None:
        e_lat, e_ant = ref.row, -ref.col
        if float(e_ant @ ant) > 0.5 and float(np.cross(e_lat, e_ant) @ u) > 0.9:
            return u, e_ant, e_lat, "SAX image axes"
    return u, ant, np.cross(ant, u), "anatomical axes"


def lax_angle(normal: np.ndarray, u, e_ant, e_lat) -> float:
    """Angle (deg, 0..180) of the LAX plane's in-plane direction about u, anterior -> septum."""
    w = _unit(np.cross(normal, u))
    return float(np.degrees(np.arctan2(w @ -e_lat, w @ e_ant)) % 180.0)


def _nearest_lax(angle: float) -> tuple[str, float]:
    """(view, margin deg between the best and second-best expected angle)."""
    d = {v: min(abs(angle - a) % 180, 180 - abs(angle - a) % 180) for v, a in LAX_ANGLES.items()}
    order = sorted(d, key=d.get)
    return order[0], d[order[1]] - d[order[0]]


def _geometry_view(f: Features, axis) -> tuple[str | None, float, str]:
    """Stage 2-3 for one cine/LGE series -> (sax | 2ch | 3ch | 4ch | None, confidence, reason)."""
    if axis is None or f.normal is None:
        return None, 0.0, "no long axis (no SAX stack, no LAX pair)" if f.normal is not None \
            else "no usable geometry"
    u, e_ant, e_lat, how, n_sax = axis
    c = abs(float(f.normal @ u))
    if c > 0.9:
        return "sax", 0.95, f"parallel to the SAX axis ({n_sax} positions)"
    if c < 0.3:
        ang = lax_angle(f.normal, u, e_ant, e_lat)
        view, margin = _nearest_lax(ang)
        conf = 0.55 + 0.4 * min(margin, 30.0) / 30.0
        return view, conf, f"LAX at {ang:.0f}° from anterior ({how}) -> {view}"
    return None, 0.0, f"oblique to the SAX axis (|cos| {c:.2f})"


def _combine(seq: str, seq_conf: float, seq_reason: str, f: Features, axis) -> SeriesType:
    if seq in ("t2", "flow"):
        return SeriesType("other", seq_conf, f"{seq}: {seq_reason}")
    if seq in ("ti_scout", "localizer"):
        return SeriesType(seq, seq_conf, seq_reason)
    if seq == "unknown":
        return SeriesType("other", seq_conf, seq_reason)
    geo, geo_conf, geo_reason = _geometry_view(f, axis)
    hint = _name_view(f)
    if geo is None and hint is not None:
        return SeriesType(f"{seq}_{hint}", seq_conf * 0.6, f"{seq_reason}; {geo_reason}; "
                          f"view from name '{f.name.strip()}'")
    if geo is None:
        return SeriesType(f"{seq}_sax" if len(f.positions) >= MIN_SAX_SLICES else "other",
                          seq_conf * 0.3, f"{seq_reason}; {geo_reason}")
    conf = seq_conf * geo_conf
    if hint == geo:
        conf, geo_reason = min(1.0, conf + 0.1), geo_reason + "; name agrees"
    elif hint is not None and geo_conf < 0.7:
        conf, geo_reason = conf * 0.8, geo_reason + f"; name says {hint}"
    return SeriesType(f"{seq}_{geo}", round(conf, 3), f"{seq_reason}; {geo_reason}")


def type_study(study: StudyRecord, use_names: bool = True) -> dict[str, SeriesType]:
    """Every series of a study -> SeriesType, keyed by SeriesInstanceUID."""
    feats = [series_features(s, use_names) for s in study.series]
    seqs = {f.uid: sequence_class(f) for f in feats}
    classes = {uid: v[0] for uid, v in seqs.items()}
    found = _sax_axis(feats, classes)
    axis = None
    if found is not None:
        n, ref = found
        u, e_ant, e_lat, how = sax_frame(n, ref)
        n_pos = len({p for f in feats if f.normal is not None and abs(float(f.normal @ n)) > 0.98
                     and classes[f.uid] == classes[ref.uid] for p in f.positions})
        axis = (u, e_ant, e_lat, how, n_pos)
    else:
        lax = [f for f in feats if classes[f.uid] in ("cine", "lge") and len(f.positions) <= 2]
        u = _axis_from_lax(lax)
        if u is not None:
            axis = (*sax_frame(u, None), 0)
    return {f.uid: _combine(*seqs[f.uid], f, axis) for f in feats}


def type_series(series: SeriesRecord, study: StudyRecord) -> SeriesType:
    """One series' type; the whole study is looked at (geometry is relative to its SAX stack)."""
    return type_study(study)[series.series_instance_uid]


# --- evaluation against a phantom archive's ground truth ---------------------------------------------
TRUTH_MAP = {"t2": "other", "flow": "other"}     # phantom kinds that typing calls "other"


def _truth(study_json) -> dict[str, str]:
    rec = json.loads(open(study_json).read())
    return {s["series_instance_uid"]: TRUTH_MAP.get(s["kind"], s["kind"]) for s in rec["series"]}


def evaluate_typing(archive_root, blank_names: bool = False, workers: int = 1) -> dict:
    """Type every series of a phantom archive and compare with study.json's "series" kinds.

    blank_names=True empties SeriesDescription and ProtocolName first (tags + geometry only).
    Returns {"accuracy", "n", "per_class": {view: accuracy}, "confusion": {truth: {pred: count}},
    "errors": [(folder, truth, predicted, reason), ...] (at most 50), "scan_errors": count}.
    """
    studies, scan_errors = scan_archive(archive_root, workers=workers)
    confusion: dict[str, dict[str, int]] = {}
    wrong = []
    for st in studies:
        truth_file = os.path.join(st.source_dir, "study.json")
        if not os.path.isfile(truth_file):
            continue
        truth = _truth(truth_file)
        if blank_names:
            for s in st.series:
                s.description, s.protocol = "", ""
        for uid, t in type_study(st, use_names=not blank_names).items():
            if uid not in truth:
                continue
            confusion.setdefault(truth[uid], {}).setdefault(t.view, 0)
            confusion[truth[uid]][t.view] += 1
            if t.view != truth[uid]:
                wrong.append((os.path.basename(st.source_dir), truth[uid], t.view, t.reason))
    n = sum(sum(r.values()) for r in confusion.values())
    correct = sum(r.get(k, 0) for k, r in confusion.items())
    return {"accuracy": correct / n if n else float("nan"), "n": n,
            "per_class": {k: r.get(k, 0) / sum(r.values()) for k, r in sorted(confusion.items())},
            "confusion": confusion, "errors": wrong[:50], "scan_errors": len(scan_errors)}
