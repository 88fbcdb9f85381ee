"""Zero-shot prompts are not report sentences a training-wording template can produce."""
import re

from cmr_search.model.prompts import DIAGNOSES, DIAGNOSIS_PROMPTS, FINDING_PROMPTS, REFERENCE_FINDING_PROMPTS, all_prompts


def _norm(s: str) -> str:
    return re.sub(r"[^a-z0-9%]+", " ", s.lower()).strip()


def test_prompt_sets_have_three_to_five_prompts():
    assert tuple(DIAGNOSIS_PROMPTS) == DIAGNOSES
    assert all(3 <= len(p) <= 5 for p in DIAGNOSIS_PROMPTS.values())
    assert all(3 <= len(d["pos"]) <= 5 and d["neg"] for d in FINDING_PROMPTS.values())
    assert len(all_prompts()) == len(set(all_prompts()))


def test_reference_finding_prompts_are_the_published_sets():
    assert set(REFERENCE_FINDING_PROMPTS) < set(FINDING_PROMPTS)        # 7 of our 8 (no effusion set)
    assert len(REFERENCE_FINDING_PROMPTS) == 7
    assert sum(map(len, REFERENCE_FINDING_PROMPTS.values())) == 15      # reference §5.1 table
    assert "LV is thickened" in REFERENCE_FINDING_PROMPTS["lv_hypertrophy"]


def _template_regex(text: str, forms: dict) -> re.Pattern | None:
    """A skeleton as a regex over normalised text: concept holes -> their train forms, context holes
    (numbers, diagnosis terms, ...) -> anything. None for skeletons with no literal words of their own."""
    pieces, literal = [], False
    for i, chunk in enumerate(re.split(r"\{([A-Z_]+)\}", text)):
        if i % 2 == 0:
            n = _norm(chunk)
            literal |= bool(n)
            pieces.append(re.escape(n))
        else:
            opts = [_norm(re.sub(r"\{[A-Z_]+\}", " ", f)) for f in forms.get(chunk.lower(), ())]
            pieces.append("(?:" + "|".join(re.escape(o) for o in opts) + ")" if opts else ".*")
    if not literal:
        return None
    return re.compile(r"\s*".join(p for p in pieces if p))


def test_prompts_are_not_training_templates():
    from cmr_search.phantom.reports.lexicon import FORMS, SKELETONS, lexicon_forms
    train_forms = {k: [f for f, t in v if t != "test"] for k, v in FORMS.items()}
    whole_forms = {_norm(f) for f in lexicon_forms("train") if "{" not in f}
    patterns = [_template_regex(text, train_forms) for key in SKELETONS for _, text, tag in SKELETONS[key]
                if tag != "test"]
    patterns = [p for p in patterns if p is not None]
    assert len(patterns) > 50
    ours = set(all_prompts()) - {p for ps in REFERENCE_FINDING_PROMPTS.values() for p in ps}
    for p in ours:                                  # the reference's sets are taken as published
        n = _norm(p)
        assert n not in whole_forms, p
        assert not any(pat.fullmatch(n) for pat in patterns), p
    assert any(pat.fullmatch(_norm("No late gadolinium enhancement.")) for pat in patterns)   # the check bites
