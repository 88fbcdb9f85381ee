"""Few-shot prototypes, stratified folds and the linear probe on toy clusters and noise."""
import numpy as np

from cmr_search.model.evaluation import probes as ev


def _clusters(n_per, classes, seed=0, dim=16, spread=0.05):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((len(classes), dim)) * 3
    x = np.concatenate([c + spread * rng.standard_normal((n_per, dim)) for c in centres])
    y = np.repeat(np.asarray(classes, object), n_per)
    return x, y


def test_few_shot_separates_clusters():
    x, y = _clusters(40, ["a", "b", "c"])
    xt, yt = _clusters(10, ["a", "b", "c"], seed=0)                    # same centres, fresh draws
    res = ev.few_shot(x, y, xt, yt, ["a", "b", "c"], shots=(1, 4), episodes=10)
    assert res["1"]["accuracy"]["mean"] == 1.0 and res["4"]["auc"]["mean"] == 1.0
    assert res["4"]["accuracy"]["sd"] == 0.0
    b = ev.few_shot(x[:80], y[:80], xt[:20], yt[:20], ["a", "b"], shots=(2,), episodes=5)
    assert b["2"]["f1"]["mean"] == 1.0 and b["2"]["auc"]["mean"] == 1.0
    assert "skipped" in ev.few_shot(x[:40], y[:40], xt, yt, ["a", "b"], shots=(1,), episodes=2)


def test_few_shot_is_chance_on_noise():
    rng = np.random.default_rng(1)
    x, xt = rng.standard_normal((200, 8)), rng.standard_normal((400, 8))
    y, yt = rng.integers(0, 2, 200).astype(str), rng.integers(0, 2, 400).astype(str)
    res = ev.few_shot(x, y, xt, yt, ["0", "1"], shots=(8,), episodes=50)
    assert 0.4 < res["8"]["auc"]["mean"] < 0.6


def test_stratified_folds_and_linear_probe():
    y = np.array(["a"] * 10 + ["b"] * 5)
    f = ev.stratified_folds(y, 5)
    for k in range(5):
        assert (y[f == k] == "a").sum() == 2 and (y[f == k] == "b").sum() == 1
    x, y = _clusters(20, ["a", "b", "c"], spread=0.5)
    res = ev.linear_probe(x, y, ["a", "b", "c"])
    assert res["accuracy"] == 1.0 and res["auc"] == 1.0 and res["n"] == 60
    rng = np.random.default_rng(0)
    noise = ev.linear_probe(rng.standard_normal((100, 4)), rng.integers(0, 2, 100).astype(str), ["0", "1"])
    assert 0.3 < noise["auc"] < 0.7
