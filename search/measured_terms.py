"""Measurements a text query names: "reduced ejection fraction", "dilated LV", "thick wall", "LVEF < 35".

    intents = measured_intents("dilated left ventricle with reduced ejection fraction")
    # -> [Intent('lvedvi', high=True, cut=105, ...), Intent('lvef', high=False, cut=50, ...)]
    ranked = rank_by_intents(hits, intents)      # the hits meeting every intent, most extreme first

Words find the wrong finding easily ("mildly dilated LV, normal function" matches "dilated" and misses
"reduced"); a measured number settles it. Each phrase maps to one measurement of the study payload
(search.collection.MEASUREMENTS, from the segmenter at `cmr prepare`), a direction and a cut at an adult
CMR reference limit (Kawel-Turkbey et al., JCMR 2020; Petersen et al., JCMR 2017 for UK Biobank):
- LVEF: reduced < 50 % (the heart-failure cut), preserved or normal >= 55 %;
- a number written after a named measure wins: "LVEF < 35", "RVEDVi above 150", "EF under 40";
- LV end-diastolic volume index: dilated / enlarged > 105 ml/m^2 (the upper limit for men; 96 for women),
  or, without height and weight, LVEDV > 200 ml;
- maximum end-diastolic wall thickness: thick / thickened / hypertrophy > 12 mm (15 mm defines HCM);
- RV end-diastolic volume index: dilated / enlarged RV > 115 ml/m^2 (or RVEDV > 220 ml);
- RVEF: reduced RV function < 45 %.
A phrase that is negated ("no dilation", "not dilated") names nothing. Hand-written regular
expressions: the vocabulary is a few dozen phrases; medspaCy's ConText would be the tool for more.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_NEG = re.compile(r"\b(no|not|without|non)\b[\s-]*(\w+\s+){0,2}$")


@dataclass(frozen=True)
class Intent:
    """One measured criterion of a query: `field` above (high) or below `cut`; `fallback` (field, cut)
    is used where the study has no `field` (an index needs height and weight)."""
    field: str
    high: bool
    cut: float
    scale: float                      # one unit of "how far past the cut" for ordering (the field's spread)
    phrase: str
    fallback: tuple[str, float] | None = None

    def value(self, payload: dict) -> tuple[float | None, float]:
        """-> (the study's value, the cut it is compared with), from `field` or the fallback."""
        v, cut = payload.get(self.field), self.cut
        if v is None and self.fallback:
            name, cut = self.fallback
            v = payload.get(name)
        return (None if v is None else float(v)), cut

    def degree(self, payload: dict) -> float | None:
        """How far past the cut, in `scale` units (> 0: the study meets the intent); None: not measured."""
        v, cut = self.value(payload)
        if v is None:
            return None
        d = (v - cut) if self.high else (cut - v)
        return d / self.scale * (self.cut / cut)


_LV = r"(?:left ventricle|left ventricular(?: cavity| size)?|lv|lv cavity|ventricle)"
_RV = r"(?:right ventricle|right ventricular(?: cavity| size)?|rv)"
_EF = r"(?:ejection fraction|ef|lvef|systolic function|function|contractility|contraction)"
_LOW = r"(?:reduced|low|lowered|impaired|poor|depressed|decreased|diminished|severely reduced|hypokinetic)"
_BIG = r"(?:dilated|enlarged|large|dilatation of the|dilation of the|enlargement of the)"

# (pattern, intent); the first group of a pattern with one is a number written in the query
PATTERNS: list[tuple[re.Pattern, Intent]] = [
    (re.compile(rf"\b{_LOW}\s+(?:lv\s+|left ventricular\s+|lv systolic\s+)?{_EF}\b"),
     Intent("lvef", False, 50.0, 10.0, "reduced LVEF")),
    (re.compile(r"\b(?:hfref|heart failure with reduced ejection fraction|systolic dysfunction|"
                r"systolic heart failure|poorly contracting|poor lv|globally hypokinetic)\b"),
     Intent("lvef", False, 50.0, 10.0, "reduced LVEF")),
    (re.compile(rf"\b(?:preserved|normal)\s+(?:lv\s+|left ventricular\s+)?{_EF}\b"),
     Intent("lvef", True, 55.0, 10.0, "preserved LVEF")),
    (re.compile(rf"\b{_BIG}\s+{_LV}\b|\b{_LV}\s+(?:is\s+)?(?:dilated|dilatation|dilation|enlarged|enlargement)\b"
                r"|\bdilated cardiomyopathy\b|\bdcm\b|\blv dilat"),
     Intent("lvedvi", True, 105.0, 20.0, "dilated LV", ("lvedv", 200.0))),
    (re.compile(r"\b(?:thick|thickened|thickening of the|hypertrophied|hypertrophic)\s+(?:\w+\s+)?"
                r"(?:walls?|septum|myocardium|ventricle|cardiomyopathy)\b|\b(?:lv |left ventricular |septal )?"
                r"hypertrophy\b|\blvh\b|\bhcm\b|\bwall thickening\b"),
     Intent("max_wall", True, 12.0, 3.0, "thick LV wall")),
    (re.compile(rf"\b{_BIG}\s+{_RV}\b|\b{_RV}\s+(?:is\s+)?(?:dilated|dilatation|dilation|enlarged|enlargement)\b"),
     Intent("rvedvi", True, 115.0, 20.0, "dilated RV", ("rvedv", 220.0))),
    (re.compile(rf"\b{_LOW}\s+(?:rv|right ventricular)\s+{_EF}\b|\b{_LOW}\s+rvef\b|\brv (?:systolic )?dysfunction\b"),
     Intent("rvef", False, 45.0, 10.0, "reduced RVEF")),
]
# a number written after a named measure: "LVEF < 35", "RVEDVi above 150 ml/m2", "EF under 40 %"
_NUMBER = re.compile(r"\b(lvef|rvef|ef|lvedvi|rvedvi|lvedv|rvedv)\s*(<=|>=|<|>|under|below|less than|above|over|"
                     r"more than|greater than)\s*(\d{1,3}(?:\.\d+)?)")
_NUMBER_FIELD = {"ef": "lvef"}
_SCALE = {"lvef": 10.0, "rvef": 10.0, "lvedvi": 20.0, "rvedvi": 20.0, "lvedv": 40.0, "rvedv": 40.0}


def _negated(text: str, start: int) -> bool:
    return bool(_NEG.search(text[max(0, start - 24):start]))


def measured_intents(text: str) -> list[Intent]:
    """The measured criteria a query names (at most one per field; a number written wins)."""
    t = " ".join(text.lower().split())
    out: dict[str, Intent] = {}
    for m in _NUMBER.finditer(t):
        name = _NUMBER_FIELD.get(m.group(1), m.group(1))
        high = m.group(2) in (">", ">=", "above", "over", "more than", "greater than")
        out.setdefault(name, Intent(name, high, float(m.group(3)), _SCALE[name], m.group(0)))
    for pattern, intent in PATTERNS:
        for m in pattern.finditer(t):
            if not _negated(t, m.start()) and intent.field not in out:
                out[intent.field] = intent
                break
    return list(out.values())


def intent_fields(intents: list[Intent]) -> list[str]:
    """The payload fields rank_by_intents reads for these intents (study_key comes with any selection)."""
    if not intents:
        return ["study_key"]
    return sorted({"seg_quality", *(i.field for i in intents), *(i.fallback[0] for i in intents if i.fallback)})


def rank_by_intents(hits: list, intents: list[Intent], exclude_quality: tuple[str, ...] = ("poor",)) -> list:
    """The hits (with payload) that meet every intent, ordered by the smallest margin past a cut
    (the study that meets all of them best first); measurements of `poor` quality do not count."""
    scored = []
    for h in hits:
        if h.payload.get("seg_quality") in exclude_quality:
            continue
        degrees = [i.degree(h.payload) for i in intents]
        if any(d is None or d <= 0 for d in degrees):
            continue
        scored.append((min(degrees), h))
    scored.sort(key=lambda dh: (-dh[0], dh[1].key))
    return [h for _, h in scored]
