"""Report impressions: a structured finding vector and a numbered impression text per study.

Design: phantom.md §4 (grammar, slot policies, hedging, validity rules), §5.1 (held-out wording via
phantom.reports.lexicon) and §5.3 (label noise). `findings_from` grades the *measured* values (never the
targets) into the §4.2 finding vector; `make_report` writes 1-6 items from slot templates:
size_function, morphology (+ extra findings), lge, rv, diagnosis, incidental, recommendation.
Printed numbers are measured values plus reader noise (σ_EF 3 points, σ_vol 5 %), clipped so the
printed number stays inside the grade that the words state. Only the label-noise step (3-5 % swap,
5 % drop of the diagnosis) may make the text disagree with the latent class, and it is recorded.
"""
from __future__ import annotations

from cmr_search.phantom.cases.latent import MEASURED_FIELDS, Latent
from cmr_search.phantom.reports import parts as rp
from cmr_search.phantom.reports.lexicon import fill, pick, skeletons_for

# Diagnosis inclusion (§4.2) and label noise (§5.3).
P_DX_ABNORMAL, P_DX_NORMAL = 0.85, 0.30
P_DROP = 0.05                      # of all reports: diagnosis slot dropped (noise_kind "drop")
P_SWAP = 0.075                     # of reports of a SWAP_PARTNERS class: diagnosis swapped (~4 % overall)
SWAP_PARTNERS = {                  # true class -> classes its diagnosis may be swapped to
    "NICM": ("ICM",), "ICM": ("NICM",), "HCM": ("HTN_LVH", "HTN_LVH", "AMYLOID"),
    "HTN_LVH": ("HCM",), "AMYLOID": ("HCM",), "ATHLETE": ("NICM",),
}
NORMAL_READ = ("NORMAL", "ATHLETE")  # classes whose report reads normal (diagnosis in 30 %)
P_MEASURE = 0.7                    # size/function items carrying a number (§4.2: 60-80 %)
MAX_ITEMS = 6
NUMBERING = (("dot", 0.45), ("paren", 0.1), ("dash", 0.2), ("lines", 0.1), ("para", 0.15))


def findings_from(latent: Latent, measured: dict) -> dict:
    """The §4.2 finding vector (JSON-ready) graded from the measured values; see reports.parts."""
    _check_measured(measured)
    return rp.findings(latent, measured)


def _check_measured(measured: dict) -> None:
    missing = [k for k in MEASURED_FIELDS if k not in measured]
    if missing:
        raise ValueError(f"measured lacks {missing}; pass the dict of phantom.heart.measure.measure_study() "
                         f"(keys latent.MEASURED_FIELDS)")


def make_report(latent: Latent, measured: dict, split: str, rng) -> dict:
    """Impression text + findings + label-noise record; split 'train'|'test' picks the wording."""
    report, _ = compose(latent, measured, split, rng)
    return report


class _Writer:
    """Fills skeletons for one report and records which skeletons were used."""

    def __init__(self, split: str, rng, ctx: dict):
        self.split, self.rng, self.ctx, self.used = split, rng, ctx, []

    def item(self, key: str, need_number: bool = True, **holes) -> str:
        options = skeletons_for(key, self.split)
        if not need_number:  # measurement-free items may not use skeletons with a bare number hole
            options = tuple(o for o in options if not any(h in o[1] for h in rp.NUMBER_HOLES)) or options
        sid, text = pick(options, self.rng)
        self.used.append(sid)
        holes = {k: v for k, v in holes.items() if v is not None}  # None: the lexicon concept fills it
        return fill(text, {**self.ctx, **holes}, self.split, self.rng)

    def phrase(self, template: str, **holes) -> str:
        return fill(template, {**self.ctx, **holes}, self.split, self.rng)


def compose(latent: Latent, measured: dict, split: str, rng) -> tuple[dict, list[str]]:
    """make_report plus the ids of the skeletons used (for tests and audits)."""
    f = findings_from(latent, measured)
    noise_kind, dx_class = _label_noise(latent, rng)
    w = _Writer(split, rng, rp.printed_numbers(latent, measured, f, rng))
    items = _size_function(w, f) + _morphology(w, latent, f) + _lge(w, latent, f)
    items += _rv(w, latent, f, items) + _extras(w, latent, f)
    dx_item = _diagnosis(w, latent, f, dx_class, noise_kind)
    items = _merge_dx(w, items, dx_item)
    items += _incidental(w, latent, f) + _recommendation(w, latent)
    items = _order(_trim(items), rng)
    reported = dx_class if any(p == "dx" or p == "lge+dx" for p, _, _ in items) else None
    text = _number(rng, [t for _, _, t in items])
    return {"impression": text, "findings": f, "label_noise": noise_kind is not None,
            "noise_kind": noise_kind, "reported_dx": reported}, w.used


# --- label noise -----------------------------------------------------------------------------------
def _label_noise(latent: Latent, rng) -> tuple[str | None, str]:
    """(noise_kind, class the diagnosis slot names): None/true class, 'drop', or 'swap'/partner."""
    u = rng.random()
    if u < P_DROP:
        return "drop", latent.label
    partners = SWAP_PARTNERS.get(latent.label)
    if partners and u < P_DROP + P_SWAP:
        return "swap", pick(partners, rng)
    return None, latent.label


# --- slots: each returns [(slot, priority, text)]; priority 0 is never trimmed --------------------
def _size_function(w: _Writer, f: dict) -> list:
    measure = w.rng.random() < P_MEASURE
    normal_lv = f["lv_size"] == "normal" and f["lv_func"] == "normal"
    if normal_lv and f["rv_size"] == "normal" and f["rv_func"] == "normal" and w.rng.random() < 0.3:
        tail = None if measure else ""  # None: the hole takes a lexicon form
        return [("sf.biv", 0, w.item("sf.biv", EF_BOTH=tail))]
    tail = None if measure else ""
    holes = dict(EF_TAIL=tail, FUNC=rp.func_concept(f["lv_func"]), SIZE=rp.size_concept(f["lv_size"]))
    key = "sf.normal" if normal_lv and w.rng.random() < 0.5 else "sf.gen"
    return [("sf", 0, w.item(key, **holes))]


def _morphology(w: _Writer, latent: Latent, f: dict) -> list:
    wall, measure = f["wall"], w.rng.random() < P_MEASURE
    if wall == "normal":
        return [("morph", 4, w.item("morph.normal"))] if w.rng.random() < 0.25 else []
    key = {"concentric": "morph.concentric", "asymmetric_septal": "morph.asym", "apical": "morph.apical"}[wall]
    ratio = None if measure and w.rng.random() < 0.5 else ""
    return [("morph", 1, w.item(key, need_number=measure, RATIO_TAIL=ratio))]


def _lge(w: _Writer, latent: Latent, f: dict) -> list:
    real = [p for p in latent.lge if p.pattern != "dot"]
    if real:
        desc = rp.lge_description(w, latent, real, f)
        return [("lge", 0, w.item("lge.desc", LGE_DESC=desc))]
    if latent.lge:  # only the deliberate nonspecific dot: hedged wording, never "no LGE"
        side = "inferior" if 3 in latent.lge[0].segments else "anterior"
        return [("lge.neg", 0, w.item("lge.dot", DOT_LOC=f"{side} {{RVIP}}"))]
    return [("lge.neg", 0, w.item("lge.none", NEG_LIST=rp.neg_list(w, latent)))]


def _rv(w: _Writer, latent: Latent, f: dict, items: list) -> list:
    if any(slot == "sf.biv" for slot, _, _ in items):
        return []
    measure = w.rng.random() < P_MEASURE
    tail = None if measure else ""
    holes = dict(RVEF_TAIL=tail, RVFUNC=rp.func_concept(f["rv_func"]),
                 RVSIZE=rp.size_concept(f["rv_size"]))
    if f["rv_size"] == "normal" and f["rv_func"] == "normal":
        return [("rv", 3, w.item("rv.normal", need_number=measure, **holes))] if w.rng.random() < 0.4 else []
    return [("rv", 1, w.item("rv.gen", need_number=measure, **holes))]


def _extras(w: _Writer, latent: Latent, f: dict) -> list:
    """Other findings (wall motion, SAM, aneurysm, RV shape, atria, effusions, nulling), one item each."""
    return [("find", prio, w.item("find", FINDING=phrase)) for prio, phrase in rp.extra_findings(w, latent, f)]


def _diagnosis(w: _Writer, latent: Latent, f: dict, dx_class: str, noise_kind) -> tuple | None:
    """(slot, hedge+term suffix or None, standalone text) or None when no diagnosis is written."""
    if noise_kind == "drop":
        return None
    p_dx = P_DX_NORMAL if latent.label in NORMAL_READ else P_DX_ABNORMAL
    if noise_kind != "swap" and w.rng.random() >= p_dx:
        return None
    if dx_class == "NORMAL":
        return ("dx", None, w.item("dx.normal"))
    term = rp.dx_term(w, latent, f, dx_class, swapped=noise_kind == "swap")
    conf = rp.confidence(latent)
    hedge = "{HEDGE_" + conf.upper() + "}"
    if w.rng.random() < 0.55:
        return ("dx", w.phrase(f"{hedge} {term}"), w.item("dx.pre", HEDGE=hedge, DX_TERM=term))
    return ("dx", w.phrase(f"{hedge} {term}"), w.item(f"dx.post.{conf}", DX_TERM=term))


def _merge_dx(w: _Writer, items: list, dx_item) -> list:
    """Append the diagnosis as its own item or, in 25 %, merged into the LGE description."""
    if dx_item is None:
        return items
    slot, suffix, text = dx_item
    lge_i = next((i for i, it in enumerate(items) if it[0] == "lge"), None)
    if suffix and lge_i is not None and w.rng.random() < 0.25:
        merged = items[lge_i][2].rstrip(".") + ", " + suffix + "."
        return items[:lge_i] + [("lge+dx", 0, merged)] + items[lge_i + 1:]
    return items + [(slot, 0, text)]


def _incidental(w: _Writer, latent: Latent, f: dict) -> list:
    phrases = rp.incidental_phrases(w, latent)
    if not phrases and w.rng.random() < 0.04:
        phrases = ["{QUALITY}"]
    return [("inc", 3, w.item("inc", INC=p)) for p in phrases[:1]]


def _recommendation(w: _Writer, latent: Latent) -> list:
    p = 0.05 if latent.label in NORMAL_READ else 0.2
    if w.rng.random() >= p:
        return []
    concept = rp.RECO.get(latent.label, "reco_generic")
    return [("reco", 5, w.item("reco", RECO="{" + concept.upper() + "}"))]


# --- surface variation -----------------------------------------------------------------------------
def _trim(items: list) -> list:
    """At most MAX_ITEMS: drop the least important (highest priority number, latest first)."""
    items = list(items)
    while len(items) > MAX_ITEMS:
        worst = max(range(len(items)), key=lambda i: (items[i][1], i))
        items.pop(worst)
    return items


def _order(items: list, rng) -> list:
    """Canonical order with shuffles that keep clinical sense; then sentence merging of sf+morph."""
    if rng.random() < 0.2:
        items = _swap_slots(items, "sf", "morph")
    if rng.random() < 0.25:
        items = _swap_slots(items, "lge", "rv")
    dx = [it for it in items if it[0] == "dx"]
    if dx and rng.random() < 0.15:
        items = dx + [it for it in items if it[0] != "dx"]
    return _merge_adjacent(items, rng)


def _swap_slots(items: list, a: str, b: str) -> list:
    ia = next((i for i, it in enumerate(items) if it[0].startswith(a)), None)
    ib = next((i for i, it in enumerate(items) if it[0].startswith(b)), None)
    if ia is None or ib is None:
        return items
    items = list(items)
    items[ia], items[ib] = items[ib], items[ia]
    return items


def _merge_adjacent(items: list, rng) -> list:
    """In 20 % join a size/function item and the morphology item that follows it with '; '."""
    for i in range(len(items) - 1):
        if items[i][0] == "sf" and items[i + 1][0] == "morph" and rng.random() < 0.2:
            text = items[i][2].rstrip(".") + "; " + rp.lower_first(items[i + 1][2])
            return items[:i] + [("sf", 0, text)] + items[i + 2:]
    return items


def _number(rng, texts: list[str]) -> str:
    """Numbering style: '1.', '1)', '-', one item per line without marks, or one paragraph."""
    styles, weights = zip(*NUMBERING)
    style = styles[int(rng.choice(len(styles), p=weights))]
    texts = [rp.upper_first(t) for t in texts]
    if style == "dot":
        return "\n".join(f"{i}. {t}" for i, t in enumerate(texts, 1))
    if style == "paren":
        return "\n".join(f"{i}) {t}" for i, t in enumerate(texts, 1))
    if style == "dash":
        return "\n".join(f"- {t}" for t in texts)
    return ("\n" if style == "lines" else " ").join(texts)
