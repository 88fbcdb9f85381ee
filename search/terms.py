"""Report words as a sparse BM25 vector (`report_terms`): the lexical half of text -> report search.

Dense sentence vectors carry synonyms; exact words carry what they miss, above all acronyms and rare terms
("HOCM", "ATTR", "MDE", "LVOT"). Each report's affirmed text (model/report_context.py: a ruled-out "MI" is not
indexed) becomes a sparse vector of BM25 term weights, and Qdrant's IDF modifier supplies the inverse
document frequency from the collection at query time, so the score of a query is BM25 (Robertson et al.;
k1 = 1.2, b = 0.75):

    terms = report_terms("Asymmetric septal hypertrophy. No LGE.")    # Sparse(indices, values)
    q = query_terms("septal hypertrophy")                             # weight 1 per distinct word

Words are lower-case letters and digits, minus a short stop list ("non-dilated" is one word); a word's
index is its CRC-32, so the vectors need no vocabulary file and every indexer process agrees. The
document length is normalised by AVG_WORDS, a fixed mean (measured on synthetic reports; a fixed value
keeps incremental indexing stable).
"""
from __future__ import annotations

import re
import zlib
from collections import Counter

from cmr_search.model.report_context import affirmed_text

from .collection import Sparse

K1, B = 1.2, 0.75
AVG_WORDS = 35.0           # mean words of an affirmed impression (650 synthetic reports: 35.2)
WORD = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
NEGATING_PREFIXES = frozenset({"non", "un", "not"})
STOP = frozenset("a an and are as at be by for from in is it of on or that the this to was were with".split())


def words(text: str) -> list[str]:
    """Lower-case words without stop words; a hyphenated word is split into its parts ("mid-wall" ->
    "mid", "wall") unless it starts with a negating prefix ("non-dilated" stays one word: it must not
    match "dilated")."""
    out = []
    for w in WORD.findall((text or "").lower()):
        parts = w.split("-")
        out += [w] if parts[0] in NEGATING_PREFIXES and len(parts) > 1 else parts
    return [w for w in out if w and w not in STOP]


def _index(word: str) -> int:
    return zlib.crc32(word.encode())


def report_terms(text: str) -> Sparse | None:
    """A report -> its BM25 term weights (None when it has no words)."""
    counts = Counter(words(affirmed_text(text)))
    if not counts:
        return None
    n = sum(counts.values())
    norm = K1 * (1 - B + B * n / AVG_WORDS)
    return _sparse({_index(w): tf * (K1 + 1) / (tf + norm) for w, tf in counts.items()})


def query_terms(text: str) -> Sparse | None:
    """A query -> weight 1 per distinct affirmed word (None when it has none)."""
    return _sparse({_index(w): 1.0 for w in words(affirmed_text(text))}) or None


def _sparse(weights: dict[int, float]) -> Sparse | None:
    if not weights:
        return None
    idx = sorted(weights)
    return Sparse(idx, [float(weights[i]) for i in idx])
