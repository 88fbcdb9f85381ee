"""The report-text encoder (model/report_text.py): sentence-encoder vectors of what a report affirms."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest

from cmr_search.model.report_text import ReportTextEncoder


@pytest.fixture(scope="module")
def enc():
    return ReportTextEncoder()


def test_reports_give_a_whole_vector_and_one_per_affirmed_clause(enc):
    (whole, cl), (w2, c2) = enc.encode_reports(["1. LV dilated. 2. No LGE. 3. RV normal.", "No LGE."])
    assert whole.shape == (enc.dim,) == (384,) and cl.shape == (2, 384)
    assert c2.shape == (1, 384)                              # nothing affirmed: the text itself
    np.testing.assert_allclose(np.linalg.norm(cl, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(cl[0], enc.encode(["LV dilated"])[0], atol=1e-5)


def test_a_negated_disease_does_not_match_the_disease(enc):
    q = enc.encode_query("hypertrophic cardiomyopathy")
    (neg, neg_cl), (pos, pos_cl) = enc.encode_reports([
        "Normal LV size and function, without features of hypertrophic cardiomyopathy.",
        "Asymmetric septal hypertrophy, maximal wall thickness 21 mm, typical of HCM."])
    assert pos @ q > neg @ q + 0.1
    assert (pos_cl @ q).max() > (neg_cl @ q).max() + 0.1


def test_a_query_is_encoded_from_what_it_affirms(enc):
    np.testing.assert_allclose(enc.encode_query("dilated LV, no LGE"), enc.encode(["dilated LV."])[0], atol=1e-5)


def test_a_folder_that_is_not_a_sentence_model_is_refused(tmp_path):
    from cmr_search.model.errors import ConfigError
    with pytest.raises(ConfigError, match="not a sentence-transformers folder"):
        ReportTextEncoder(tmp_path)
