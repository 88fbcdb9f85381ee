"""The philter pass (indexer/deid_philter.py): philter loaded once with our tagger (never NLTK's, which is
a download), typed spans, protected clinical words, long text in pieces; and the bench's generator
(bench/deid.py) meets its counts."""
import importlib
import types

import pytest

from cmr_search.indexer import deid_philter
from cmr_search.indexer.deid_philter import find_identifiers, redact_free_text, tag_tokens


def test_philter_is_loaded_once_and_tags_with_our_tagger_not_nltk(monkeypatch):
    import nltk
    import philter_lite.philter as module

    def no_download(*a, **k):
        raise AssertionError("nltk.pos_tag called: its tagger is a data download")
    monkeypatch.setattr(nltk, "pos_tag", no_download)
    assert deid_philter.philter() is deid_philter.philter()
    assert module._get_pos is tag_tokens
    assert redact_free_text("Discussed with Jane Doe (wife).") == "Discussed with [NAME] (wife)."


def test_a_philter_without_the_tagging_hook_is_a_clear_error(monkeypatch):
    bare = types.SimpleNamespace(detect_phi=lambda *a, **k: None)
    with pytest.raises(RuntimeError, match="_get_pos.*NLTK"):
        deid_philter._install_tagger(bare)


def test_an_untested_philter_version_warns(monkeypatch):
    hooks = types.SimpleNamespace(detect_phi=lambda: 0, _get_pos=lambda t: [], _get_clean=lambda t: [])
    monkeypatch.setattr(deid_philter.metadata, "version", lambda name: "9.9.9")
    with pytest.warns(UserWarning, match="untested"):
        deid_philter._install_tagger(hooks)
    assert hooks._get_pos is tag_tokens


def test_tags_numbers_proper_nouns_and_protected_words():
    tags = dict((w, t) for w, t in tag_tokens("Jane saw LGE in Fabry at 3 T with Mary") if w.strip())
    assert tags["Jane"] == tags["Mary"] == "NNP" and tags["3"] == "CD"
    assert tags["LGE"] == tags["Fabry"] == tags["saw"] == "NN"


def test_spans_are_typed_sorted_and_disjoint():
    text = "Seen at St Mary Hospital, Leeds by Dr Smith on 3 Mar 2019; tel 0113 243 2799; a 93-year-old."
    spans = find_identifiers(text)
    assert [k for _, _, k in spans] == ["PLACE", "PLACE", "NAME", "DATE", "PHONE", "AGE"]
    assert all(a < b <= c for (a, b, _), (c, _, _) in zip(spans, spans[1:]))
    assert text[spans[0][0]:spans[0][1]] == "St Mary Hospital"


def test_placeholders_are_left_alone_and_the_pass_is_idempotent():
    once = redact_free_text("Jane Doe [NAME] seen at [PLACE], Leeds on [DATE].")
    assert once == "[NAME] [NAME] seen at [PLACE], [PLACE] on [DATE]."
    assert redact_free_text(once) == once


def test_long_text_goes_in_pieces_with_the_same_result():
    sentence = "Discussed with Jane Doe (wife). LVEF 35%, no LGE. "
    text = sentence * 200                                   # ~10,000 characters: several pieces
    assert redact_free_text(text) == redact_free_text(sentence).rstrip() + " " + \
        (redact_free_text(sentence).rstrip() + " ") * 199
    assert "x" * 5000 in redact_free_text("LVEF 35%. " + "x" * 5000 + " Dr Zzrefdoc")   # no slow backtracking


def test_the_bench_generator_meets_its_counts():
    bench = importlib.import_module("bench.deid")
    data = bench.generate(n_per_kind=30, seed=1)
    assert set(data["counts"]) == set(bench.KINDS) and min(data["counts"].values()) >= 30
    assert len(data["clean"]) >= len(data["planted"])
    for sentence, ids in data["planted"][:50]:
        assert ids and all(ident in sentence for ident, _ in ids)
    assert bench.caught("Jane Doe", "[NAME] (wife)") and not bench.caught("Jane Doe", "[NAME] Doe")
    assert bench.removed_words(["LVEF", "35", "wife"], "[NAME] (wife) LVEF") == ["35"]
