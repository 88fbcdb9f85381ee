"""Tests of phantom.cases.rules: the ACDC-style cuts, and that generated studies obey their class
rule (>= 95 % per ACDC class, every violator flagged borderline) on sampled latents (fast) and on a
real generated tiny archive (slow)."""
import dataclasses
import json

import numpy as np
import pytest

from cmr_search.phantom.audit.archive import measured_from_latent
from cmr_search.phantom.cases.latent import latent_from_dict
from cmr_search.phantom.cases.params import sample_latent
from cmr_search.phantom.cases.rules import ACDC_CLASSES, class_rule_holds, rule_slack, targets_as_measured
from tests.helpers.phantom_archive import tiny_archive


def _lat(label, **kw):
    """A sampled latent of `label` with fields overridden (the rule reads contractility, LGE...)."""
    lat = sample_latent(np.random.default_rng(3), 0, label)
    return dataclasses.replace(lat, **kw)


def _meas(**kw):
    m = dict(lv_edvi=75.0, lv_ef=62.0, max_wall_mm=9.0, septal_lateral_ratio=1.05, rv_edvi=78.0,
             rv_ef=58.0, pericardial_effusion_mm=0.0, lge_percent=0.0)
    m.update(kw)
    return m


def test_normal_cuts_are_sex_specific():
    lat = _lat("NORMAL", lge=())
    assert class_rule_holds("NORMAL", "M", _meas(lv_edvi=95), lat)
    assert not class_rule_holds("NORMAL", "F", _meas(lv_edvi=95), lat)        # F limit 90
    assert not class_rule_holds("NORMAL", "M", _meas(lv_ef=49), lat)
    assert not class_rule_holds("NORMAL", "M", _meas(max_wall_mm=12.5), lat)
    assert not class_rule_holds("NORMAL", "F", _meas(rv_edvi=104), lat)       # RV dilated (F)


def test_nicm_needs_dilation_and_low_ef():
    lat = _lat("NICM")
    assert class_rule_holds("NICM", "M", _meas(lv_edvi=130, lv_ef=30), lat)
    assert not class_rule_holds("NICM", "M", _meas(lv_edvi=95, lv_ef=30), lat)
    assert not class_rule_holds("NICM", "M", _meas(lv_edvi=130, lv_ef=41), lat)


def test_icm_needs_regional_abnormality():
    flat = _lat("ICM", contractility=(1.0,) * 17, lge=())
    assert not class_rule_holds("ICM", "M", _meas(lv_ef=30), flat)
    two = _lat("ICM", contractility=(0.3, 0.3) + (1.0,) * 15, lge=())
    assert class_rule_holds("ICM", "M", _meas(lv_ef=30), two)
    assert not class_rule_holds("ICM", "M", _meas(lv_ef=45), two)
    scar = _lat("ICM", contractility=(1.0,) * 17)
    assert scar.lge and class_rule_holds("ICM", "M", _meas(lv_ef=30), scar)


def test_hcm_subtypes():
    classic = _lat("HCM", subtype="classic")
    assert class_rule_holds("HCM", "F", _meas(max_wall_mm=18, lv_ef=66), classic)
    assert not class_rule_holds("HCM", "F", _meas(max_wall_mm=14, lv_ef=66), classic)
    assert not class_rule_holds("HCM", "F", _meas(max_wall_mm=18, lv_ef=52), classic)
    apical = _lat("HCM", subtype="apical", wall_ed_mm=(9.0,) * 12 + (17.0,) * 5)
    assert class_rule_holds("HCM", "F", _meas(max_wall_mm=9.5, lv_ef=66), apical)   # apex, not base
    burnt = _lat("HCM", subtype="end_stage")
    assert burnt.lge and class_rule_holds("HCM", "M", _meas(max_wall_mm=14, lv_ef=40), burnt)


def test_rv_either_size_or_function():
    lat = _lat("RV")
    assert class_rule_holds("RV", "M", _meas(rv_edvi=120), lat)
    assert class_rule_holds("RV", "M", _meas(rv_ef=35), lat)
    assert class_rule_holds("RV", "F", _meas(rv_edvi=105), lat)
    assert not class_rule_holds("RV", "M", _meas(rv_edvi=105), lat)


def test_slack_is_stricter_and_unknown_label_explained():
    lat = _lat("NICM")
    m = _meas(lv_edvi=130, lv_ef=38)
    assert class_rule_holds("NICM", "M", m, lat) and not rule_slack("NICM", "M", m, lat)
    with pytest.raises(ValueError, match="choose one of"):
        class_rule_holds("DCM", "M", m, lat)


def _violations(lats, measured):
    bad = [(lt, m) for lt, m in zip(lats, measured) if not class_rule_holds(lt.label, lt.sex, m, lt)]
    return bad


@pytest.mark.parametrize("label", ACDC_CLASSES)
def test_sampled_latents_obey_rule(label):
    """400 latents per ACDC class, measured with measure.py-like errors: >= 95 % hold the rule and
    every violator is a deliberate borderline case."""
    rng = np.random.default_rng(21)
    lats = [sample_latent(rng, i, label) for i in range(400)]
    measured = [measured_from_latent(lt, rng) for lt in lats]
    bad = _violations(lats, measured)
    assert len(bad) / len(lats) <= 0.05, (label, len(bad))
    assert all(lt.borderline for lt, _ in bad)
    assert 0.01 < np.mean([lt.borderline for lt in lats]) < 0.10          # ~5 % borderline cases


def test_clear_latents_hold_on_their_targets():
    rng = np.random.default_rng(4)
    for i in range(300):
        lt = sample_latent(rng, i)
        if not lt.borderline:
            assert class_rule_holds(lt.label, lt.sex, targets_as_measured(lt), lt), lt.label


@pytest.mark.slow
def test_real_archive_obeys_rules():
    """300 real tiny studies (measured from the rendered heart): every ACDC class holds its rule for
    >= 95 % of its studies (RV and HCM have ~10-25 studies here, so one violator is tolerated
    there), and every violator of any class is flagged borderline."""
    studies = [json.loads(p.read_text()) for p in sorted(tiny_archive().glob("*/study.json"))]
    assert len(studies) == 300
    lats = [latent_from_dict(s["latent"]) for s in studies]
    bad = _violations(lats, [s["measured"] for s in studies])
    assert all(lt.borderline for lt, _ in bad), [(lt.label, lt.subtype) for lt, _ in bad]
    for label in ACDC_CLASSES:
        n = sum(lt.label == label for lt in lats)
        k = sum(lt.label == label for lt, _ in bad)
        assert k <= max(1, 0.05 * n), (label, k, n)
