"""The assertion benchmark (bench/negation.py) and its hand-written data (bench/data/assertion/).

The data parse and follow their README (labels, categories, targets, the mix of categories); dev and test
share nothing and are the documented seeded split of their union; the required regression rows sit in dev;
the scorer's precision / recall / F1 are right on a tiny hand-made example. Nothing here scores a system
on the test split.
"""
from __future__ import annotations

import json
import random
import re
from collections import Counter

import pytest

from bench import negation
from bench.negation import DATA, LABELS, label_scores, load_rows, main, mentions, old_assertion, old_clauses_assertion

CATEGORIES = ("negation", "uncertainty", "history", "family", "cmr", "pseudo", "affirmed")
MIN_ROWS = {"negation": 110, "uncertainty": 90, "history": 70, "family": 60, "cmr": 90, "pseudo": 50, "affirmed": 50}
MIN_TOTAL = 520
SEED = 20250611                 # bench/data/assertion/README.md: the split
REQUIRED = {                    # sentence -> {target: label}; must be in dev
    "There is no LGE, mild LV dilatation.": {"LGE": "negated", "mild LV dilatation": "affirmed"},
    "No significant change in LV size.": {"LV size": "affirmed"},
    "Not only dilated but also severely impaired.": {"dilated": "affirmed", "severely impaired": "affirmed"},
    "Possible apical HCM.": {"apical HCM": "uncertain"},
    "Cannot exclude cardiac sarcoidosis.": {"cardiac sarcoidosis": "uncertain"},
    "Previous MI.": {"MI": "historical"},
    "Known HCM.": {"HCM": "historical"},
    "Family history of HCM.": {"HCM": "family"},
    "Mild LV dilatation, unchanged since 2019.": {"LV dilatation": "affirmed"},
}


def stratified_split(rows: list[dict], seed: int = SEED) -> tuple[list[dict], list[dict]]:
    """The split of bench/data/assertion (README): rows grouped by sentence (a sentence's rows stay
    together); per category, in sorted order, one random.Random(seed) shuffles the groups (taken in id
    order), the required sentences move to the front (stable sort) and go to dev; every other group goes to
    dev while dev has no more of the category's rows than test, else to test. Both parts sorted by id."""
    groups: dict[str, list[dict]] = {}
    for r in sorted(rows, key=lambda r: r["id"]):
        groups.setdefault(r["sentence"], []).append(r)
    rng = random.Random(seed)
    dev, test = [], []
    for cat in sorted({g[0]["category"] for g in groups.values()}):
        pool = [g for g in groups.values() if g[0]["category"] == cat]
        rng.shuffle(pool)
        pool.sort(key=lambda g: g[0]["sentence"] not in REQUIRED)
        n_dev = n_test = 0
        for g in pool:
            if g[0]["sentence"] in REQUIRED or n_dev <= n_test:
                dev, n_dev = dev + g, n_dev + len(g)
            else:
                test, n_test = test + g, n_test + len(g)
    return sorted(dev, key=lambda r: r["id"]), sorted(test, key=lambda r: r["id"])


@pytest.fixture(scope="module")
def parts() -> dict[str, list[dict]]:
    return {name: load_rows(name) for name in ("dev", "test")}


@pytest.fixture(scope="module")
def rows(parts) -> list[dict]:
    return parts["dev"] + parts["test"]


def test_every_line_is_one_json_row_with_the_five_fields():
    for name in ("dev", "test"):
        for line in (DATA / f"{name}.jsonl").read_text().splitlines():
            assert set(json.loads(line)) == {"id", "sentence", "target", "label", "category"}, line


def test_labels_categories_and_ids_are_valid(rows):
    assert {r["label"] for r in rows} <= set(LABELS)
    assert {r["category"] for r in rows} <= set(CATEGORIES)
    assert len({r["id"] for r in rows}) == len(rows)
    categories_of = {}
    for r in rows:
        categories_of.setdefault(r["sentence"], set()).add(r["category"])
    assert all(len(c) == 1 for c in categories_of.values())       # a sentence's rows share a category


def test_every_target_is_in_its_sentence_once_as_a_whole_term(rows):
    for r in rows:
        assert r["target"] in r["sentence"], r
        found = re.findall(r"(?<!\w)" + re.escape(r["target"]) + r"(?!\w)", r["sentence"], re.I)
        assert len(found) == 1, r


def test_the_mix_of_categories_and_labels(rows):
    per_category = Counter(r["category"] for r in rows)
    assert len(rows) >= MIN_TOTAL
    assert all(per_category[c] >= n for c, n in MIN_ROWS.items()), per_category
    assert all(n >= 50 for n in Counter(r["label"] for r in rows).values())


def test_no_pair_and_no_sentence_in_both_splits(parts, rows):
    pairs = [{(r["sentence"], r["target"]) for r in parts[name]} for name in ("dev", "test")]
    assert not pairs[0] & pairs[1]
    assert len(pairs[0] | pairs[1]) == len(rows)                # no pair twice anywhere
    sentences = [{r["sentence"] for r in parts[name]} for name in ("dev", "test")]
    assert not sentences[0] & sentences[1]


def test_the_split_is_the_documented_one(parts, rows):
    dev, test = stratified_split(rows)
    assert [r["id"] for r in dev] == [r["id"] for r in parts["dev"]]
    assert [r["id"] for r in test] == [r["id"] for r in parts["test"]]


def test_the_required_regression_rows_are_in_dev(parts):
    dev = {(r["sentence"], r["target"]): r["label"] for r in parts["dev"]}
    for sentence, targets in REQUIRED.items():
        for target, label in targets.items():
            assert dev.get((sentence, target)) == label, (sentence, target)


def test_label_scores_on_a_hand_made_example():
    gold = ["negated", "negated", "negated", "affirmed", "affirmed", "uncertain"]
    pred = ["negated", "negated", "affirmed", "affirmed", "negated", "negated"]
    s = label_scores(gold, pred)
    # negated: tp 2, predicted 4, gold 3 -> P 0.5, R 2/3, F1 2*0.5*(2/3)/(0.5+2/3) = 4/7
    assert (s["negated"]["precision"], s["negated"]["recall"]) == (0.5, round(2 / 3, 4))
    assert s["negated"]["f1"] == round(4 / 7, 4) and s["negated"]["support"] == 3
    # affirmed: tp 1, predicted 2, gold 2 -> P = R = F1 = 0.5
    assert (s["affirmed"]["precision"], s["affirmed"]["recall"], s["affirmed"]["f1"]) == (0.5, 0.5, 0.5)
    # uncertain: never predicted -> P 0, R 0, F1 0; family: absent everywhere -> all 0, support 0
    assert s["uncertain"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1, "predicted": 0}
    assert s["family"]["support"] == 0 and s["family"]["f1"] == 0.0


def test_a_target_is_matched_as_a_whole_term():
    assert mentions("Previous MI", "mi") and not mentions("mild LV dilatation", "MI")


@pytest.mark.skipif(negation.old_negation is None, reason="bench/negex_baseline.py is gone")
def test_the_old_systems_read_affirmed_text_and_affirmed_clauses():
    assert old_assertion("Mild LV dilatation; no LGE.", "LGE") == "negated"
    assert old_assertion("Mild LV dilatation; no LGE.", "mild LV dilatation") == "affirmed"
    assert old_assertion("No LGE.", "LGE") == "affirmed"          # affirmed_text keeps an all-negated text whole
    assert old_clauses_assertion("No LGE.", "LGE") == "negated"


def test_show_errors_refuses_the_held_out_split(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--split", "test", "--show-errors"])
    assert exc.value.code == 2 and "held out" in capsys.readouterr().err
