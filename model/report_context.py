"""Report text read the way clinical NLP reads it: medspaCy's ConText (negated, uncertain, historical, family)
with CMR rules, before a report is embedded or searched.

A mean-pooled sentence embedding does not see "no" or "family history of": "No features of HCM" and
"family history of HCM" land next to "HCM". So a report is embedded without what it negates or gives to a
relative, and each CMR finding it names is kept with its status (negated, uncertain, historical, family,
affirmed) for criteria, where "possible HCM" and "HCM" differ:

    affirmed_clauses("There is no LGE, mild LV dilatation. Family history of HCM. Likely amyloid.")
    -> ["mild LV dilatation", "Likely amyloid"]
    read_findings("Impression: possible apical HCM. No LGE.")
    -> [Finding(concept="HCM", text="apical HCM", status="uncertain", section="impression", ...),
        Finding(concept="LGE", text="LGE", status="negated", ...)]
    assertion("Previous MI.", "MI") -> "historical"

How (Harkema et al., ConText, J Biomed Inform 2009; medspaCy, Eyre et al., AMIA 2021): a report is split
into clauses at sentence ends, semicolons, line breaks and list marks (one spaCy sentence each); medspaCy's
ConText finds modifier cues (its default English rules plus the CMR rules in rules/cmr_context.json, where
the defaults that misread CMR phrasing are dropped: "free" would negate "RV free wall"); each cue governs a
scope that runs to the clause end or to a terminator ("but", ", mild ...", "with moderate ..."). Statuses,
when several apply, in this order: negated > family > uncertain > historical (a hypothetical reads as
uncertain). Under an Indication heading a finding is a question (uncertain), under History historical.
The text kept for search drops the negation and family cues with their scopes; it keeps hedged and
historical ones ("likely amyloid", "prior MI"): dropping them too (affirmed-and-certain text only) lowered
report-mode precision@10 on both synthetic archives and both query sets (docs/search.md), because reports
hedge their diagnoses. Clauses left empty are dropped; a text with nothing kept stays as it is.

medspaCy's import costs ~3 s; a text with no cue word of a negation or family rule is read without it (exactly the
same result: `needs_context`), which keeps a plain query like "amyloid LGE pattern" fast.
Replaces model/negation.py (NegEx-style regex), which bench/negation.py measured worse.
"""
from __future__ import annotations

import importlib.util
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

RULES = Path(__file__).with_name("rules") / "cmr_context.json"
STATUSES = ("affirmed", "negated", "uncertain", "historical", "family")
PRIORITY = ("negated", "family", "uncertain", "historical")
CATEGORY_STATUS = {"NEGATED_EXISTENCE": "negated", "FAMILY": "family", "POSSIBLE_EXISTENCE": "uncertain",
                   "HYPOTHETICAL": "uncertain", "HISTORICAL": "historical"}
DIRECTED = ("FORWARD", "BACKWARD", "BIDIRECTIONAL")      # cues with a scope (not TERMINATE, PSEUDO)
SEARCH_DROPS = ("negated", "family")    # what the search text leaves out (bench/precision.py measured: hedged
                                         # and historical diagnoses, "likely amyloid", "prior MI", carry the search)
SECTION_STATUS = {"indication": "uncertain", "history": "historical"}
READING = "context-v1"         # what the index records of this reading (a change here means re-embed reports)

CLAUSE_BREAK = re.compile(r"(?<=[.;!?])\s+|\n+|;\s*")
LIST_MARK = re.compile(r"^\s*(\d+[.)]|[-*\u2022])\s*")
FILLER = {"specifically", "also", "and", "with", "there is", "there are", "and there is", "in particular",
          "there", "is", "are", "the", "this", "it", "but", "however", "recommendation", "suggestion",
          "comment", "note", "impression", "overall impression", "conclusion", "summary"}
STRIP = " ,.;:-("
CONNECTIVE = re.compile(r"^(?:but|however|although|though|whereas|while|yet|and|with)\b[\s,]*", re.I)


@dataclass(frozen=True)
class Finding:
    concept: str        # the concept set it belongs to (rules file target category: LGE, HCM, AMYLOID, ...)
    text: str           # the words of the report that named it
    status: str         # affirmed | negated | uncertain | historical | family
    section: str        # the report heading it sits under (impression, findings, indication, ...; '' if none)


# ---- clauses: where a scope can end at the latest ----------------------------------------------------------

def clause_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the clauses of `text` (list marks and trailing punctuation left out)."""
    spans, at = [], 0
    for part in CLAUSE_BREAK.split(text or ""):
        start = text.index(part, at) if part else at
        at = start + len(part)
        mark = LIST_MARK.match(part)
        lead = mark.end() if mark else len(part) - len(part.lstrip())
        body = part[lead:].rstrip().rstrip(" .;")
        if body.strip(STRIP):
            spans.append((start + lead, start + lead + len(body)))
    return spans


def clauses(text: str) -> list[str]:
    """Report text -> clauses without list marks or trailing punctuation."""
    return [text[a:b].strip(STRIP) for a, b in clause_spans(text) if text[a:b].strip(STRIP)]


def _clean(piece: str) -> str:
    """A kept piece without edge punctuation, a leading connective ('but patchy LGE'), or filler alone."""
    piece = CONNECTIVE.sub("", piece.strip(STRIP)).strip(STRIP)
    return "" if piece.lower() in FILLER else piece


def joined(kept: list[str], text: str) -> str:
    """Kept clauses of `text` as one text ('. ' between them); `text` itself when there are none."""
    return ". ".join(kept) + "." if kept else text


# ---- the medspaCy reader (built once) ---------------------------------------------------------------------

def _rules() -> dict:
    return json.loads(RULES.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def reader():
    """The spaCy pipeline: medspaCy tokenizer, clause sentences, CMR targets, sections, ConText."""
    try:
        from loguru import logger
        import medspacy  # noqa: F401  (registers the components)
        import spacy
        from medspacy.context import ConTextRule
        from medspacy.custom_tokenizer import create_medspacy_tokenizer
        from medspacy.section_detection import SectionRule
        from medspacy.target_matcher import TargetRule
        from spacy.language import Language
    except ImportError as exc:
        raise ImportError(f"reading report text needs medspaCy ({exc}); run `make install`, or on Python < 3.12 "
                          "`pip install --no-deps medspacy==1.3.1 PyRuSH==1.0.13` (pyproject.toml says why)") from exc
    logger.disable("PyRuSH")          # its sentence splitter logs every token at DEBUG level
    logger.disable("medspacy")
    if "cmr_clauses" not in Language.factories:
        Language.component("cmr_clauses", func=_set_clause_starts)
    rules = _rules()
    nlp = spacy.blank("en")
    nlp.tokenizer = create_medspacy_tokenizer(nlp)
    nlp.add_pipe("cmr_clauses")
    nlp.add_pipe("medspacy_target_matcher").add([TargetRule(**r) for r in rules["target_rules"]])
    nlp.add_pipe("medspacy_sectionizer", config={"rules": None, "require_start_line": True}).add(
        [SectionRule(**r) for r in rules["section_rules"]])
    context = nlp.add_pipe("medspacy_context", config={"rules": None})
    context.add([ConTextRule(**r) for r in _default_context_rules(rules["drop_default"])])
    context.add([ConTextRule(**r) for r in rules["context_rules"]])
    return nlp


def _default_context_rules(drop: list[str]) -> list[dict]:
    """medspaCy's default English ConText rules without those the CMR rules file drops (found without
    importing medspaCy: the rules ship in site-packages/resources/en/ beside the package)."""
    spec = importlib.util.find_spec("medspacy")
    if spec is None or spec.origin is None:
        raise ImportError("medspacy is not installed; run `make install`")
    path = Path(spec.origin).resolve().parents[1] / "resources" / "en" / "context_rules.json"
    rows = json.loads(path.read_text(encoding="utf-8"))["context_rules"]
    return [r for r in rows if r["literal"] not in set(drop)]


def _set_clause_starts(doc):
    """spaCy component: one sentence per clause (clause_spans), so no scope crosses a clause."""
    doc.user_data["clause_spans"] = spans = clause_spans(doc.text)
    starts = sorted(a for a, _ in spans)
    for i, token in enumerate(doc):
        if i == 0:
            token.is_sent_start = True
            continue
        gap_start = doc[i - 1].idx + len(doc[i - 1])
        token.is_sent_start = any(gap_start <= s <= token.idx for s in starts)
    return doc


# ---- cues: which texts need the reader at all -------------------------------------------------------------

@lru_cache(maxsize=1)
def _cue_words() -> re.Pattern:
    """A regex of one required word of every rule that drops text (a text with none of them keeps all)."""
    rules = _rules()
    rows = rules["context_rules"]
    try:
        rows = rows + _default_context_rules(rules["drop_default"])
    except ImportError:
        pass
    words: set[str] = set()
    for row in (r for r in rows if CATEGORY_STATUS.get(r["category"]) in SEARCH_DROPS
                and r["direction"].upper() in DIRECTED):
        words |= _required_words(row)
    alternatives = "|".join(sorted((re.escape(w) for w in words), key=len, reverse=True))
    return re.compile(rf"(?<![a-z0-9])(?:{alternatives})(?![a-z0-9])")


def _required_words(row: dict) -> set[str]:
    """The alternatives of ONE token every match of the rule must contain: the most specific (longest
    shortest alternative), so that a common word ("with" of "inconsistent with") does not send every query
    through the reader (a cold `cmr search "dilated LV with reduced EF"` loaded medspaCy: 4.1 s against 0.8)."""
    pattern = row.get("pattern")
    if not pattern:
        words = [w.strip(":") for w in row["literal"].lower().split()]
        words = [w for w in words if w]
        return {max(words, key=len)} if words else {":"}
    options = []
    for spec in pattern:
        if spec.get("OP") in ("?", "*"):
            continue
        value = spec.get("LOWER", spec.get("TEXT"))
        if isinstance(value, dict) and "IN" in value:
            options.append({str(v).lower() for v in value["IN"]})
        elif isinstance(value, str):
            options.append({value.lower()})
    if not options:
        return {row["literal"].lower().split()[-1]}
    return max(options, key=lambda alts: min(len(a) for a in alts))


def needs_context(text: str) -> bool:
    """False when no rule that drops text can match `text` (then nothing but clause splitting applies)."""
    return bool(_cue_words().search((text or "").lower()))


# ---- reading ----------------------------------------------------------------------------------------------

def _status(categories: set[str], section: str) -> str:
    statuses = {CATEGORY_STATUS[c] for c in categories if c in CATEGORY_STATUS}
    if section in SECTION_STATUS and not statuses & {"negated", "family"}:
        statuses.add(SECTION_STATUS[section])
    return next((s for s in PRIORITY if s in statuses), "affirmed")


def _coverage(doc) -> dict[int, set[str]]:
    """Token index -> the categories of the scoped cues (negated, uncertain, ...) covering it, cue included."""
    cats: dict[int, set[str]] = {}
    for mod in doc._.context_graph.modifiers:
        if mod.category in CATEGORY_STATUS and mod.direction.upper() in DIRECTED:
            (s, e), (a, b) = mod.modifier_span, mod.scope_span
            for i in range(min(s, a), max(e, b)):
                cats.setdefault(i, set()).add(mod.category)
    return cats


def _spans(doc) -> list[tuple[int, int]]:
    """The clause spans the cmr_clauses component cut the doc at (computed there once)."""
    return doc.user_data.get("clause_spans") or clause_spans(doc.text)


def _dropped(doc) -> set[int]:
    """Token indices of every dropping cue and its scope."""
    return {i for i, cats in _coverage(doc).items() if any(CATEGORY_STATUS[c] in SEARCH_DROPS for c in cats)}


def _kept(doc) -> list[str]:
    dropped, kept = _dropped(doc), []
    inside = _spans(doc)
    for sent in doc.sents:
        pieces, run = [], []
        for token in sent:
            if not any(a <= token.idx < b for a, b in inside):
                continue                          # a list mark or the punctuation between clauses
            if token.i in dropped:
                pieces.append(run)
                run = []
            else:
                run.append(token)
        pieces.append(run)
        text = " ".join(p for p in (_clean(doc[r[0].i:r[-1].i + 1].text) for r in pieces if r) if p)
        if text.strip(STRIP):
            kept.append(text.strip(STRIP))
    return kept


def affirmed_clauses(text: str) -> list[str]:
    """The clauses of `text` without negated and family scopes (SEARCH_DROPS); empty ones dropped."""
    if not needs_context(text):
        return [c for c in (_clean(c) for c in clauses(text)) if c]
    return _kept(reader()(text or ""))


def affirmed_text(text: str) -> str:
    """`text`'s kept clauses joined by '. '; `text` itself if nothing is kept."""
    return joined(affirmed_clauses(text), text)


def segments(text: str) -> list[tuple[str, str]]:
    """`text` cut into consecutive (piece, status) runs that join back to `text` exactly: each token takes
    the status of the cues whose scope covers it (PRIORITY), cue words their own, 'affirmed' elsewhere
    (punctuation closing a run too). What a display strikes through (negated), greys (uncertain) or tags
    (historical, family).
    >>> segments("LV dilated, no LGE.") -> [("LV dilated, ", "affirmed"), ("no LGE", "negated"), (".", "affirmed")]"""
    if not (text or "").strip():
        return [(text, "affirmed")] if text else []
    doc = reader()(text)
    statuses = _token_statuses(doc)
    runs: list[list[str]] = []
    at = 0
    for token, status in zip(doc, statuses):
        gap, body = text[at:token.idx], text[token.idx:token.idx + len(token)]
        if runs and runs[-1][1] == status:
            runs[-1][0] += gap + body
        else:
            if runs:
                runs[-1][0] += gap                    # whitespace stays with the run it closes
            else:
                body = gap + body
            runs.append([body, status])
        at = token.idx + len(token)
    runs[-1][0] += text[at:]
    return [(piece, status) for piece, status in runs]


def _token_statuses(doc) -> list[str]:
    cats = _coverage(doc)
    inside = _spans(doc)                           # list marks and the breaks between clauses: affirmed
    out = [_status(cats[t.i], "") if t.i in cats and any(a <= t.idx < b for a, b in inside) else "affirmed"
           for t in doc]
    for i in range(len(out) - 1, -1, -1):          # punctuation that ends a run is not part of it
        if (doc[i].is_punct or doc[i].is_space) and out[i] != "affirmed" and (i == len(out) - 1 or out[i + 1] != out[i]):
            out[i] = "affirmed"
    return out


def read_findings(text: str) -> list[Finding]:
    """Every CMR finding `text` names (rules file targets), with its status and section."""
    if not (text or "").strip():
        return []
    doc = reader()(text)
    out = []
    for ent in doc.ents:
        section = ent[0]._.section_category or ""
        cats = {m.category for m in ent._.modifiers}
        out.append(Finding(ent.label_, ent.text, _status(cats, section), section))
    return out


def finding_keys(text: str) -> list[str]:
    """Findings as sorted 'CONCEPT:status' keys ('LGE:affirmed', 'HCM:family'): what criteria filter on."""
    return sorted({f"{f.concept}:{f.status}" for f in read_findings(text)})


def assertion(sentence: str, target: str) -> str:
    """The status of `target` (a substring of `sentence`) as the reader sees it: one of STATUSES."""
    start = sentence.lower().find(target.lower())
    if start < 0:
        raise ValueError(f"target {target!r} is not in the sentence {sentence!r}")
    nlp = reader()
    doc = nlp.get_pipe("cmr_clauses")(nlp.make_doc(sentence))
    doc = nlp.get_pipe("medspacy_sectionizer")(doc)
    doc.ents = [doc.char_span(start, start + len(target), label="TARGET", alignment_mode="expand")]
    doc = nlp.get_pipe("medspacy_context")(doc)
    ent = doc.ents[0]
    return _status({m.category for m in ent._.modifiers}, ent[0]._.section_category or "")
