"""search/labeling.py: zero-shot label probabilities are calibrated (fitted temperature, per-label
thresholds), and Client.label writes to the index only when asked."""
import json
import shutil

import numpy as np
import pytest

from cmr_search.search.labeling import Calibration, fit_temperature, fit_thresholds, nll, softmax


def _toy(n=4000, labels=5, t_true=0.05, seed=0):
    """Cosines of n studies to `labels` prompts, and true labels drawn from softmax(cos / t_true): the
    temperature that fits them is t_true, and at 0.01 the scores are over-confident."""
    rng = np.random.default_rng(seed)
    sims = rng.uniform(-0.1, 0.3, size=(n, labels))
    y = np.array([rng.choice(labels, p=p) for p in softmax(sims, t_true)])
    return sims, y


def test_fit_temperature_recovers_the_known_temperature():
    sims, y = _toy()
    t = fit_temperature(sims, y)
    assert 0.04 < t < 0.06
    assert nll(sims, y, t) < nll(sims, y, 0.01) - 0.5          # 0.01: confidently wrong, much worse
    assert nll(sims, y, t) <= min(nll(sims, y, 0.8 * t), nll(sims, y, 1.25 * t))


def test_calibrated_probabilities_are_not_all_one_and_match_accuracy():
    sims, y = _toy(seed=1)
    raw, cal = softmax(sims, 0.01), softmax(sims, fit_temperature(sims, y))
    acc = (cal.argmax(1) == y).mean()
    assert (raw.max(1) > 0.9).mean() > 0.5                      # the old 1.0-vs-5e-30 behaviour
    assert (cal.max(1) > 0.99).mean() < 0.01                    # no longer
    assert abs(cal.max(1).mean() - acc) < 0.05                  # confidence ~ accuracy
    assert abs(raw.max(1).mean() - acc) > 0.2


def test_thresholds_keep_the_confident_and_drop_the_rest():
    # label 0: right when its probability is >= 0.6, wrong below; label 1 is always wrong
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4], [0.55, 0.45], [0.52, 0.48],
                      [0.51, 0.49], [0.3, 0.7], [0.2, 0.8]])
    y = np.array([0, 0, 0, 0, 1, 1, 1, 0, 0])
    th = fit_thresholds(probs, y, ["a", "b"], precision=0.9, min_support=2)
    assert th == {"a": 0.6, "b": None}
    cal = Calibration(0.05, th)
    assert cal.keep("a", 0.65) and not cal.keep("a", 0.55) and not cal.keep("b", 0.99) and cal.keep("c", 0.1)


def test_a_card_calibration_applies_only_to_its_model():
    card = {"label_calibration": {"temperature": 0.07, "thresholds": {"HCM": 0.4}, "model_id": "cmr-tiny:abc"}}
    assert Calibration.from_card(card, "cmr-tiny:abc").temperature == 0.07
    assert Calibration.from_card(card, "cmr-tiny:other") == Calibration()
    assert Calibration.from_card({}, "cmr-tiny:abc").temperature == 0.01


def test_the_shipped_checkpoint_records_its_calibration():
    from pathlib import Path

    import cmr_search.model as m
    card = json.loads((Path(m.__file__).parent / "checkpoints" / "cmr-tiny-measured" / "card.json").read_text())
    cal = card["label_calibration"]
    assert cal["nll_after"] < cal["nll_before"] and 0.01 < cal["temperature"] < 1
    assert cal["model_id"].startswith("cmr-tiny:") and cal["fitted_on"]["n_studies"] > 100


def _payloads(store):
    return {h.key: (h.payload.get("labels"), h.payload.get("label_scores")) for h in store.scroll(None)}


def test_label_does_not_write_unless_asked(aligned_client):
    from tests.helpers.search_helpers import CLASSES
    prompts = {c: [t] for c, t in CLASSES.items()}
    before = _payloads(aligned_client.store)
    out = aligned_client.label(prompts)
    assert out.height == 30 and _payloads(aligned_client.store) == before
    aligned_client.label(prompts, write=True)
    after = _payloads(aligned_client.store)
    assert after != before and all(labels and scores for labels, scores in after.values())


def test_label_uses_the_checkpoint_card_calibration(tmp_path, aligned_template, tiny_model):
    """DATA/model's card says T and thresholds for these weights: scores follow T, and a label whose
    threshold is None is never given."""
    from cmr_search.model.checkpoint import save_checkpoint
    from cmr_search.search import connect
    from cmr_search.search.collection import model_id
    from tests.helpers.search_helpers import CLASSES
    shutil.copytree(aligned_template, tmp_path / "data")
    cal = {"temperature": 0.2, "thresholds": {"HCM": None}, "model_id": model_id(tiny_model)}
    save_checkpoint(tiny_model, tmp_path / "data" / "model", card={"label_calibration": cal})
    prompts = {c: [t] for c, t in CLASSES.items()}
    with connect(tmp_path / "data") as c:
        assert c.label_calibration.temperature == 0.2
        out = c.label(prompts)
        sharp = c.label(prompts, temperature=0.01, thresholds={})
    assert "HCM" not in set(out["label"].drop_nulls()) and out["label"].null_count() >= 1
    assert out["score"].max() < 0.9 and sharp["score"].median() > out["score"].median()
    assert "HCM" in set(sharp["label"])


@pytest.mark.parametrize("bad", [{}, {"a": []}, {"a": [""]}])
def test_label_refuses_empty_prompt_sets(aligned_client, bad):
    from cmr_search.search.errors import QueryError
    with pytest.raises(QueryError):
        aligned_client.label(bad)
