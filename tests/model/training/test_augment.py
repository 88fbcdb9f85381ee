import random

from cmr_search.model.training.augment import augment_impression, pooled_augment, split_sentences

TEXT = "Severe LV dilation with EF 25%. Mid-wall septal LGE. No pericardial effusion; normal RV."


def test_split_sentences():
    assert split_sentences(TEXT) == ["Severe LV dilation with EF 25%.", "Mid-wall septal LGE.",
                                     "No pericardial effusion;", "normal RV."]


def test_augment_keeps_only_whole_sentences_and_at_least_one():
    rng = random.Random(0)
    whole = set(split_sentences(TEXT))
    outs = [augment_impression(TEXT, rng) for _ in range(300)]
    for out in outs:
        parts = split_sentences(out)
        assert parts and set(parts) <= whole and len(parts) == len(set(parts))
    assert len(set(outs)) > 10                       # it varies
    assert TEXT in outs                              # and the original order still occurs


def test_augment_drops_everything_keeps_one():
    out = augment_impression(TEXT, random.Random(1), drop=1.0, shuffle=0.0)
    assert out in split_sentences(TEXT)


def test_single_sentence_unchanged_and_deterministic():
    assert augment_impression("Normal study", random.Random(0)) == "Normal study"
    a = [augment_impression(TEXT, random.Random(5)) for _ in range(3)]
    assert len(set(a)) == 1


def test_pooled_augment_draws_from_a_fixed_pool_per_text():
    """At most variants + 1 distinct strings per impression over any number of draws, the original
    among them, each a valid augmentation; the pool depends on the text, not on the draw's RNG."""
    outs = [pooled_augment(TEXT, random.Random(i), drop=0.4, variants=4) for i in range(400)]
    whole = set(split_sentences(TEXT))
    assert TEXT in outs and 2 <= len(set(outs)) <= 5
    assert all(set(split_sentences(o)) <= whole for o in outs)
    again = {pooled_augment(TEXT, random.Random(1000 + i), drop=0.4, variants=4) for i in range(400)}
    assert again == set(outs)
    other = "Normal LV size. Normal RV. No LGE. Small effusion."
    assert {pooled_augment(other, random.Random(i), 0.4, 4) for i in range(50)} != set(outs)


def test_frozen_text_tower_encodes_each_variant_once():
    """With pooled variants a frozen tower's feature cache holds at most variants + 1 strings per report."""
    from cmr_search.model.factory import create_model
    model = create_model("cmr-tiny")
    reports = [TEXT, "Normal LV size. Normal RV. No LGE. Small effusion."]
    for step in range(60):
        texts = [pooled_augment(t, random.Random(f"{step}:{i}"), 0.4, 4) for i, t in enumerate(reports)]
        model.encode_text(texts)
    assert 4 <= len(model._text_cache) <= 10
