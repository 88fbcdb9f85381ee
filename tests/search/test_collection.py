import uuid

import numpy as np
import pytest

from cmr_search.search.collection import (PAYLOAD_INDEXES, VECTORS, canonical_vendor, iso_date, model_id, point_id,
                               study_point)
from cmr_search.search.errors import EmbedSizeMismatchError, PayloadError


def test_point_id_is_a_stable_uuid5_of_the_key():
    a = point_id("abc")
    assert uuid.UUID(a).version == 5 and a == point_id("abc") and a != point_id("abd")


@pytest.mark.parametrize("raw,start,end", [
    ("20200102", "2020-01-02", "2020-01-02"), ("2020-01-02", "2020-01-02", "2020-01-02"),
    ("2020-02", "2020-02-01", "2020-02-29"), ("2021", "2021-01-01", "2021-12-31"), ("2019-12", "2019-12-01", "2019-12-31")])
def test_iso_date_partial_dates_cover_their_period(raw, start, end):
    assert iso_date(raw) == start and iso_date(raw, end=True) == end


def test_iso_date_refuses_garbage():
    with pytest.raises(PayloadError, match="YYYY"):
        iso_date("02/01/2020")


def test_vendor_names_are_canonical():
    assert canonical_vendor("SIEMENS Healthineers") == "Siemens"
    assert canonical_vendor("GE MEDICAL SYSTEMS") == "GE"
    assert canonical_vendor("Philips Medical Systems") == "Philips"
    assert canonical_vendor("Acme MR") == "Acme MR" and canonical_vendor("") is None


def test_contract_names():
    assert VECTORS == ("study", "cine", "lge", "report")
    assert {"study_key", "age", "sex", "study_date", "views", "labels"} <= set(PAYLOAD_INDEXES)


def _row(**kw):
    return {"study_key": "k1", "vectors": {"study": np.ones(4)}, **kw}


def test_study_point_fills_defaults_and_drops_absent_vectors():
    pid, vecs, payload = study_point(_row(study_date="20200102", manufacturer="GE HEALTHCARE",
                                          vectors={"study": np.ones(4), "lge": None}), 4, "now")
    assert pid == point_id("k1") and set(vecs) == {"study"}
    assert payload["study_date"] == "2020-01-02" and payload["manufacturer"] == "GE"
    assert payload["labels"] == [] and payload["label_scores"] == {} and payload["indexed_at"] == "now"
    assert "vectors" not in payload


@pytest.mark.parametrize("row,match", [
    ({"vectors": {"study": np.ones(4)}}, "study_key"),
    (_row(accession_number="A1"), "raw identifiers"),
    (_row(vectors={"report": np.ones(4)}), "no 'study' vector"),
    (_row(vectors={"study": np.ones(4), "t1map": np.ones(4)}), "unknown vector"),
    (_row(vectors={"study": np.zeros(4)}), "zero or not finite"),
])
def test_study_point_refuses_contract_breaks(row, match):
    with pytest.raises(PayloadError, match=match):
        study_point(row, 4, "now")


def test_study_point_refuses_a_wrong_vector_size():
    with pytest.raises(EmbedSizeMismatchError, match="holds 4-d .* 5-d"):
        study_point(_row(vectors={"study": np.ones(5)}), 4, "now")


def test_model_id_names_config_and_heads(tiny_model):
    mid = model_id(tiny_model)
    assert mid.startswith("cmr-tiny:") and len(mid.split(":")[1]) == 12 and mid == model_id(tiny_model)


def test_model_id_tells_a_negation_dropping_text_pipeline_apart(tiny_model):
    import dataclasses
    from types import SimpleNamespace

    from cmr_search.search.collection import model_id
    cfg = tiny_model.cfg
    dropping = dataclasses.replace(cfg, text=dataclasses.replace(cfg.text, negation="drop"))
    same = SimpleNamespace(cfg=cfg, state_dict=tiny_model.state_dict)
    other = SimpleNamespace(cfg=dropping, state_dict=tiny_model.state_dict)
    assert model_id(same) == model_id(tiny_model) != model_id(other)
