"""Tests of phantom.reports: report / lexicon: validity rules (phantom.md §4.5), held-out wording (§5.1),
label noise (§5.3), determinism, variety and speed."""
import json
import re
import time

import numpy as np
import pytest

from cmr_search.phantom.cases import params
from cmr_search.phantom.cases.latent import CLASSES, MEASURED_FIELDS, TERRITORY_SEGMENTS
from cmr_search.phantom.reports import lexicon, report
from cmr_search.phantom.reports.parts import LV_EF_GRADES, RV_EF_GRADES, ef_grade

N_PER_CLASS = 60


def fake_measured(lat, rng) -> dict:
    """Stand-in for measure.measure_study: the targets plus a little measurement scatter."""
    w = np.array(lat.wall_ed_mm)
    m = dict.fromkeys(MEASURED_FIELDS, 0.0)
    m.update(lv_ef=lat.lv_ef + rng.normal(0, 1.5), lv_edvi=lat.lv_edvi * (1 + rng.normal(0, 0.03)),
             max_wall_mm=w.max() + rng.normal(0, 0.4),
             septal_lateral_ratio=w[[1, 2, 7, 8, 13]].mean() / w[[4, 5, 10, 11, 15]].mean(),
             rv_edvi=lat.rv_edvi * (1 + rng.normal(0, 0.03)), rv_ef=lat.rv_ef + rng.normal(0, 1.5),
             lge_percent=float(rng.uniform(2, 20)) if lat.lge else 0.0,
             pericardial_effusion_mm=lat.pericardial_effusion_mm)
    return m


def _corpus(split: str, seed: int):
    rng = np.random.default_rng(seed)
    out = []
    for cls in CLASSES:
        for i in range(N_PER_CLASS):
            lat = params.sample_latent(rng, i, cls)
            m = fake_measured(lat, rng)
            rep, used = report.compose(lat, m, split, rng)
            out.append((lat, m, rep, used))
    return out


@pytest.fixture(scope="module")
def train():
    return _corpus("train", 1)


@pytest.fixture(scope="module")
def test_split():
    return _corpus("test", 2)


def _word_re(phrases) -> re.Pattern:
    alts = sorted({re.escape(p) for p in phrases}, key=len, reverse=True)
    return re.compile(r"(?<![\w-])(" + "|".join(alts) + r")(?![\w-])", re.IGNORECASE)


def _all_forms(*concepts):
    return [f for c in concepts for f, _ in lexicon.FORMS[c]]


# --- text parsing for the validity rules ------------------------------------------------------------
FUNC_GRADE = {f.lower(): g for c, g in (("func_hyper", "hyperdynamic"), ("func_normal", "normal"),
                                         ("func_mild", "mildly_reduced"), ("func_moderate", "moderately_reduced"),
                                         ("func_severe", "severely_reduced")) for f in _all_forms(c)}
FUNC_RE = _word_re(FUNC_GRADE)
LV_EF_NOUNS, RV_EF_NOUNS = _all_forms("lvef_n"), _all_forms("rvef_n")
EF_NUM_RE = re.compile(r"\b(" + "|".join(sorted(map(re.escape, LV_EF_NOUNS + RV_EF_NOUNS), key=len, reverse=True))
                       + r")\s+(?:of\s+)?(\d+)%")
NOUN_RE = re.compile(r"systolic function|\bfunction\b|ejection fraction|\bLVEF\b|\bRVEF\b|\bEF\b")
RV_WORD = re.compile(r"\bRV\b|right[- ]ventric|\bRVEF\b", re.IGNORECASE)
BOTH_WORD = re.compile(r"biventricular|both ventricles", re.IGNORECASE)
TERR_WORDS = {"LAD": re.compile(r"\bLAD\b|left anterior descending", re.I),
              "RCA": re.compile(r"\bRCA\b|right coronary", re.I),
              "LCx": re.compile(r"\bLCx\b|circumflex", re.I)}
NO_LGE_RE = re.compile(r"\b(no|without|absence of)\s+(abnormal\s+)?(" + "|".join(
    sorted(map(re.escape, _all_forms("lge", "scar")), key=len, reverse=True)) + r")\b", re.IGNORECASE)
DOT_HEDGE_RE = re.compile(r"nonspecific|doubtful|uncertain significance|likely incidental", re.I)


def _clauses(text: str) -> list[str]:
    body = re.sub(r"^(\d+[.)]|-)\s+", "", text, flags=re.M)
    return [c for c in re.split(r"(?<=[a-z%)])\.(?=\s|$)|;|\n", body) if c.strip()]


def _func_words_checked(clause: str, lv: str, rv: str) -> list[str]:
    """Errors: a function word next to a function noun disagreeing with the measured grade."""
    errors, funcs = [], list(FUNC_RE.finditer(clause))
    for noun in NOUN_RE.finditer(clause):
        before = [m for m in funcs if m.end() <= noun.start()]
        after = [m for m in funcs if m.start() >= noun.end()]
        word = (before[-1] if before else after[0] if after else None)
        if word is None:
            continue
        grade = FUNC_GRADE[word.group(1).lower()]
        n = noun.group(0)
        sides = ["lv"] if n in ("LVEF",) else ["rv"] if n == "RVEF" else (
            ["lv", "rv"] if BOTH_WORD.search(clause) else ["rv"] if RV_WORD.search(clause) else ["lv"])
        for side in sides:
            truth = lv if side == "lv" else rv
            if grade != truth:
                errors.append(f"{side} says {word.group(1)!r} but measured grade {truth}: {clause!r}")
    return errors


def _validity_errors(lat, m, rep) -> list[str]:
    text, errors = rep["impression"], []
    lv, rv = ef_grade(m["lv_ef"]), ef_grade(m["rv_ef"], RV_EF_GRADES)
    for clause in _clauses(text):
        errors += _func_words_checked(clause, lv, rv)
    for noun, num in EF_NUM_RE.findall(text):
        is_rv = noun in RV_EF_NOUNS
        grade = ef_grade(float(num), RV_EF_GRADES if is_rv else LV_EF_GRADES)
        if grade != (rv if is_rv else lv):
            errors.append(f"printed {noun} {num}% is {grade}, measured grade {rv if is_rv else lv}")
    for terr, word in TERR_WORDS.items():
        if word.search(text) and not any(set(p.segments) & set(TERRITORY_SEGMENTS[terr]) for p in lat.lge):
            errors.append(f"names {terr} without LGE there")
    if NO_LGE_RE.search(text) and lat.lge:
        errors.append(f"says no LGE but latent has {[p.pattern for p in lat.lge]}")
    if lat.lge and all(p.pattern == "dot" for p in lat.lge) and not DOT_HEDGE_RE.search(text):
        errors.append("nonspecific dot described without hedging")
    return errors


# --- lexicon structure --------------------------------------------------------------------------------
def test_every_concept_has_four_forms_and_a_held_out_share():
    for concept, forms in lexicon.FORMS.items():
        tags = [t for _, t in forms]
        assert len(forms) >= 4, concept
        assert lexicon.forms_for(concept, "train") and lexicon.forms_for(concept, "test"), concept
        assert 0.15 <= tags.count("test") / len(tags) <= 0.5, concept
    sk_tags = [t for sks in lexicon.SKELETONS.values() for _, _, t in sks]
    assert 0.2 <= sk_tags.count("test") / len(sk_tags) <= 0.4
    for key in lexicon.SKELETONS:
        assert lexicon.skeletons_for(key, "train") and lexicon.skeletons_for(key, "test"), key


def _train_literals() -> list[str]:
    texts = [f for fs in lexicon.FORMS.values() for f, t in fs if t != "test"]
    return texts + [s for sks in lexicon.SKELETONS.values() for _, s, t in sks if t != "test"]


def test_held_out_forms_never_occur_inside_train_wording():
    literals = " | ".join(_train_literals())
    for form in lexicon.HELD_OUT_FORMS:
        for chunk in lexicon.literal_chunks(form):
            assert not _word_re([chunk]).search(literals), (form, chunk)
    assert lexicon.HELD_OUT_FORMS == lexicon.lexicon_forms("test") - lexicon.lexicon_forms("train")


def _skeleton_signatures() -> dict[str, str]:
    """Per test-only skeleton: its longest literal run that no train/both wording contains."""
    literals = " | ".join(_train_literals())
    sigs = {}
    for sid in lexicon.HELD_OUT_SKELETONS:
        chunks = [c for c in lexicon.literal_chunks(lexicon.SKELETON_TEXT[sid])
                  if not _word_re([c]).search(literals)]
        assert chunks, f"test-only skeleton {sid} has no distinctive literal text"
        sigs[sid] = max(chunks, key=len)
    return sigs


# --- the generated corpus -------------------------------------------------------------------------------
def test_validity_rules_hold_over_all_classes(train, test_split):
    bad = []
    for lat, m, rep, _ in train + test_split:
        bad += [f"{lat.label}: {e}\n{rep['impression']}" for e in _validity_errors(lat, m, rep)]
    assert not bad, "\n\n".join(bad[:5])


def test_parser_catches_a_contradiction(train):
    lat, m, rep, _ = next(r for r in train if r[0].label == "NICM" and ef_grade(r[1]["lv_ef"]) != "normal")
    forged = dict(rep, impression="Normal LV size and systolic function, LVEF 62%. No LGE.")
    assert len(_validity_errors(lat, m, forged)) >= 2


def test_train_reports_never_use_held_out_language(train):
    held = _word_re([c for f in lexicon.HELD_OUT_FORMS for c in lexicon.literal_chunks(f)])
    sigs = _skeleton_signatures()
    sig_re = _word_re(sigs.values())
    for lat, m, rep, used in train:
        text = rep["impression"]
        assert not held.search(text), (held.search(text).group(0), text)
        assert not sig_re.search(text), (sig_re.search(text).group(0), text)
        assert not set(used) & lexicon.HELD_OUT_SKELETONS
        assert not re.search(r"\b(NICM|HOCM|MDE|ATTR|circumflex)\b", text, re.I), text


def test_test_reports_use_held_out_language(test_split):
    held = _word_re([c for f in lexicon.HELD_OUT_FORMS for c in lexicon.literal_chunks(f)])
    hits = [bool(held.search(r["impression"])) for _, _, r, _ in test_split]
    assert np.mean(hits) > 0.8
    used = {sid for *_, u in test_split for sid in u}
    assert len(used & lexicon.HELD_OUT_SKELETONS) > 0.7 * len(lexicon.HELD_OUT_SKELETONS)
    assert any(re.search(r"\bNICM\b", r["impression"]) for _, _, r, _ in test_split)


def test_item_count_and_numbering(train):
    for _, _, rep, _ in train:
        text = rep["impression"]
        numbered = re.findall(r"^(?:\d+[.)]|-) ", text, re.M)
        assert len(numbered) <= 6
        assert 1 <= len(_clauses(text))
    styles = {("1." if "1. " in r["impression"] else "-" if r["impression"].startswith("- ") else "other")
              for _, _, r, _ in train}
    assert styles == {"1.", "-", "other"}


def test_every_class_reads_varied(train):
    for cls in CLASSES:
        texts = [r["impression"] for lat, _, r, _ in train if lat.label == cls]
        assert len(set(texts)) > 0.5 * len(texts) + 5, cls


def test_diagnosis_words_follow_the_class(train):
    for lat, _, rep, _ in train:
        if rep["noise_kind"] is None and rep["reported_dx"] is not None:
            assert rep["reported_dx"] == lat.label
        if rep["noise_kind"] == "swap":
            assert rep["reported_dx"] not in (None, lat.label)
        if rep["noise_kind"] == "drop":
            assert rep["reported_dx"] is None
    abnormal = [r["reported_dx"] is not None for lat, _, r, _ in train
                if lat.label not in ("NORMAL", "ATHLETE") and r["noise_kind"] is None]
    normal = [r["reported_dx"] is not None for lat, _, r, _ in train if lat.label == "NORMAL"]
    assert 0.75 < np.mean(abnormal) < 0.95 and 0.15 < np.mean(normal) < 0.45


def test_label_noise_rates_from_the_class_prior():
    rng = np.random.default_rng(7)
    kinds = []
    for i in range(2000):
        lat = params.sample_latent(rng, i)
        rep = report.make_report(lat, fake_measured(lat, rng), "train", rng)
        assert rep["label_noise"] == (rep["noise_kind"] is not None)
        kinds.append(rep["noise_kind"])
    assert 0.035 < kinds.count("drop") / len(kinds) < 0.065
    assert 0.025 < kinds.count("swap") / len(kinds) < 0.055


def test_findings_are_json_ready_and_graded_from_measured(train):
    lat, m, rep, _ = next(r for r in train if r[0].label == "ICM" and r[2]["findings"]["lge"]["territories"])
    f = report.findings_from(lat, m)
    assert json.loads(json.dumps(f)) == f
    assert set(f["labels"]) == {"lv_dilation", "lv_dysfunction", "rv_dilation", "rv_dysfunction",
                                "lv_hypertrophy", "lge_present", "aortic_dilation", "pericardial_effusion"}
    assert f["labels"]["lge_present"] and f["lge"]["territories"][0] in lat.territories
    assert report.findings_from(lat, dict(m, lv_ef=62.0))["lv_func"] == "normal"
    assert report.findings_from(lat, dict(m, lv_ef=30.0))["labels"]["lv_dysfunction"]
    with pytest.raises(ValueError, match="measure_study"):
        report.findings_from(lat, {"lv_ef": 50.0})


def test_deterministic_and_seed_sensitive():
    lat = params.sample_latent(np.random.default_rng(3), 0, "HCM")
    m = fake_measured(lat, np.random.default_rng(4))
    a = report.make_report(lat, m, "test", np.random.default_rng(11))
    b = report.make_report(lat, m, "test", np.random.default_rng(11))
    assert a == b
    others = {report.make_report(lat, m, "test", np.random.default_rng(s))["impression"] for s in range(20)}
    assert len(others) > 10
    with pytest.raises(ValueError, match="train"):
        report.make_report(lat, m, "validation", np.random.default_rng(0))


def test_make_report_is_fast(train):
    rng = np.random.default_rng(0)
    cases = [(lat, m) for lat, m, _, _ in train[::6]]
    t0 = time.perf_counter()
    for lat, m in cases:
        report.make_report(lat, m, "train", rng)
    per = (time.perf_counter() - t0) / len(cases)
    assert per < 0.005, f"{per * 1e3:.2f} ms per report"
