"""The baseline bench/negation.py scores: model/negation.py as it was until issue #20 (a NegEx-style regex),
replaced in the product by model/report_context.py (medspaCy ConText), which measured better.

Negated scopes out of report text (NegEx-style), before a report is embedded.

A mean-pooled sentence embedding does not see "no" or "without": "No features of hypertrophic
cardiomyopathy" lands next to "hypertrophic cardiomyopathy". Radiology reports are full of such pertinent
negatives, so a report is embedded from what it affirms:

    affirmed_clauses("1. Concentric LV wall thickening, without features of HCM.\n2. No LGE.")
    -> ["Concentric LV wall thickening"]

Rules (after Chapman et al., NegEx, J Biomed Inform 2001): a report is split into clauses at sentence ends,
semicolons, line breaks and list marks; in each clause a negation cue ("no", "without", "absence of",
"nothing to suggest", "negative for", ...) opens a scope that runs to the end of the clause or to a scope
terminator ("but", "however", "except", ...), after which the text is affirmed again. Clauses left empty
are dropped; a text with nothing affirmed is kept as it is (an empty text embeds to nothing useful).
"""
from __future__ import annotations

import re

CUES = re.compile(
    r"\b(no|not|without|absence of|absent|nothing to (?:suggest|indicate)|negative for|free of|"
    r"rules? out|ruled out|never|neither|nor|lack of|lacks?|no evidence of)\b", re.I)
TERMINATORS = re.compile(r"\b(but|however|although|though|except|apart from)\b", re.I)
CLAUSE_BREAK = re.compile(r"(?<=[.;!?])\s+|\n+|;\s*")
LIST_MARK = re.compile(r"^\s*(\d+[.)]|[-*\u2022])\s*")
FILLER = {"specifically", "also", "and", "with", "there is", "there are", "and there is", "in particular"}


def clauses(text: str) -> list[str]:
    """Report text -> clauses without list marks or trailing punctuation."""
    out = []
    for part in CLAUSE_BREAK.split(text or ""):
        part = LIST_MARK.sub("", part.strip()).strip(" .;")
        if part:
            out.append(part)
    return out


def affirmed(clause: str) -> str:
    """One clause with its negated scopes removed ('' when all of it is negated)."""
    cue = CUES.search(clause)
    if cue is None:
        return clause
    head = clause[:cue.start()].rstrip(" ,:-(")
    if head.lower() in FILLER:
        head = ""
    end = TERMINATORS.search(clause, cue.end())
    tail = affirmed(clause[end.end():].strip(" ,")) if end else ""
    return " ".join(part for part in (head, tail) if part)


def affirmed_clauses(text: str) -> list[str]:
    """The clauses of `text` with negated scopes removed; empty ones dropped."""
    return [a for a in (affirmed(c) for c in clauses(text)) if a]


def affirmed_text(text: str) -> str:
    """`text` with negated scopes removed, clauses joined by '. '; `text` itself if nothing is affirmed."""
    return joined(affirmed_clauses(text), text)


def joined(kept: list[str], text: str) -> str:
    """Affirmed clauses of `text` as one text ('. ' between them); `text` itself when there are none."""
    return ". ".join(kept) + "." if kept else text
