import random

from model.augment import augment_impression, split_sentences

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
