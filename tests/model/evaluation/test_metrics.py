"""Metric functions on toy inputs with known answers."""
import math

import numpy as np
import pytest

from cmr_search.model.evaluation import metrics as ev


def test_ranks_recall_and_median():
    sim = np.array([[0.9, 0.1, 0.0],      # true item 0 first            -> rank 1
                    [0.8, 0.5, 0.1],      # true item 1 second           -> rank 2
                    [0.7, 0.6, 0.1]])     # true item 2 last             -> rank 3
    r = ev.ranks_of_targets(sim, np.eye(3, dtype=bool))
    assert r.tolist() == [1, 2, 3]
    assert ev.recall_at_k(r, 1) == pytest.approx(1 / 3) and ev.recall_at_k(r, 2) == pytest.approx(2 / 3)
    assert ev.median_rank(r) == 2
    tie = ev.ranks_of_targets(np.array([[0.5, 0.5]]), np.array([[True, False]]))
    assert tie.tolist() == [2]                                        # ties count against the query
    m = ev.retrieval_metrics(sim, ["a", "b", "a"])
    assert m["exact"]["R@1"] == pytest.approx(1 / 3) and m["exact"]["median_rank"] == 2
    # same label: query 2 ("a") finds item 0 ("a") first -> rank 1; query 1 ("b") only itself -> rank 2
    assert m["same_label"]["R@1"] == pytest.approx(2 / 3) and m["same_label"]["median_rank"] == 1


def test_auc_f1_accuracy_threshold():
    y = np.array([0, 0, 1, 1])
    assert ev.roc_auc(y, [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert ev.roc_auc(y, [1, 2, 3, 4]) == 1.0 and ev.roc_auc(y, [4, 3, 2, 1]) == 0.0
    assert ev.roc_auc(y, [1, 1, 1, 1]) == 0.5                         # ties -> mid-ranks
    assert math.isnan(ev.roc_auc([1, 1], [0.2, 0.3]))
    assert ev.f1_score([1, 1, 0, 0], [1, 0, 1, 0]) == pytest.approx(0.5)
    assert ev.f1_score([0, 0], [0, 0]) == 0.0
    assert ev.accuracy(np.array([1, 0, 1]), np.array([1, 1, 1])) == pytest.approx(2 / 3)
    assert ev.macro_f1(np.array(["a", "b"]), np.array(["a", "a"]), ["a", "b"]) == pytest.approx((2 / 3 + 0) / 2)
    t = ev.youden_threshold(y, [0.1, 0.2, 0.7, 0.9])
    assert 0.2 < t < 0.7
    m = ev.binary_metrics(y, np.array([0.1, 0.2, 0.7, 0.9]), t)
    assert m["f1"] == 1.0 and m["accuracy"] == 1.0 and m["auc"] == 1.0 and m["positives"] == 2
