"""BM25 term vectors of report text (search/terms.py)."""
import math

from cmr_search.search.terms import AVG_WORDS, B, K1, _index, query_terms, report_terms, words


def test_words_are_lowercase_alphanumerics_without_stop_words():
    assert words("The LV is dilated; LVEF 31%, with HOCM.") == ["lv", "dilated", "lvef", "31", "hocm"]


def test_hyphens_split_except_after_a_negating_prefix():
    assert words("Non-dilated LV, mid-wall LGE") == ["non-dilated", "lv", "mid", "wall", "lge"]
    assert _index("dilated") not in report_terms("Non-dilated LV.").indices


def test_report_weights_follow_bm25_term_frequency():
    t = report_terms("septal hypertrophy, septal SAM")
    w = dict(zip(t.indices, t.values))
    norm = K1 * (1 - B + B * 4 / AVG_WORDS)
    assert math.isclose(w[_index("septal")], 2 * (K1 + 1) / (2 + norm))
    assert math.isclose(w[_index("sam")], (K1 + 1) / (1 + norm))
    assert t.indices == sorted(t.indices) and len(t.indices) == 3


def test_negated_words_are_not_indexed():
    t = report_terms("Normal LV. No evidence of previous MI.")
    assert _index("mi") not in t.indices and _index("normal") in t.indices


def test_queries_weigh_each_distinct_affirmed_word_once():
    q = query_terms("HOCM hocm, no LGE")
    assert q.indices == [_index("hocm")] and q.values == [1.0]
    assert query_terms("the of and") is None and report_terms("") is None
