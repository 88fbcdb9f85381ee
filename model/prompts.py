"""Zero-shot prompt sets (docs/cmrclip-reference.md §5.1 style: a few short prompts per class, averaged).

Ours are written for evaluation, not copied from the report generator: none is a sentence that a
training-wording report template can produce (tests/model/test_prompts.py checks this against the
phantom lexicon); the reference's finding sets, at the end, are kept as published. A class score is the mean cosine over its prompts (= cosine with the mean prompt
embedding, encoded once); a finding with `neg` prompts scores mean(pos) - mean(neg).
"""
from __future__ import annotations

DIAGNOSES = ("NICM", "ICM", "HCM", "AMYLOID", "RV", "NORMAL")

DIAGNOSIS_PROMPTS: dict[str, tuple[str, ...]] = {
    "NICM": ("enlarged poorly contracting left ventricle from a non-ischemic dilated cardiomyopathy",
             "dilated cardiomyopathy without a coronary pattern of scar",
             "globally hypokinetic dilated left ventricle, nonischemic cause",
             "mid-wall septal fibrosis in a dilated, weak left ventricle"),
    # An infarct is named by its coronary territory: these prompts were chosen on a separate validation
    # archive (seed 11), not the test set (model/checkpoints/README.md gives both sets' numbers).
    "ICM": ("scar in the LAD territory from an old myocardial infarction",
            "infarct in the right coronary artery territory with akinesis",
            "circumflex territory infarction with thinned akinetic wall",
            "ischemic cardiomyopathy with a coronary pattern of scar"),
    "HCM": ("hypertrophic cardiomyopathy with a markedly thickened interventricular septum",
            "asymmetric thickening of the septum typical of hypertrophic cardiomyopathy",
            "thick-walled left ventricle with patchy mid-wall enhancement in the hypertrophied segments",
            "septal hypertrophy with obstruction of the outflow tract"),
    "AMYLOID": ("cardiac amyloid infiltration with diffuse subendocardial enhancement",
                "thickened ventricles and atria with global enhancement from amyloidosis",
                "infiltrative cardiomyopathy with difficult myocardial nulling, amyloid",
                "amyloidosis of the heart with biventricular wall thickening"),
    "RV": ("dilated right ventricle with reduced right ventricular function",
           "right heart enlargement with a flattened interventricular septum",
           "pressure or volume loaded right ventricle, enlarged",
           "right ventricular cardiomyopathy with a large dysfunctional right ventricle"),
    "NORMAL": ("a normal heart on cardiac magnetic resonance",
               "normal ventricular sizes, wall thickness and contraction, no scar",
               "healthy heart without enhancement or dilation",
               "cardiac MR within normal limits"),
}

# finding -> {"pos": prompts for present, "neg": prompts for absent}
FINDING_PROMPTS: dict[str, dict[str, tuple[str, ...]]] = {
    "lv_dilation": {"pos": ("the left ventricle is enlarged", "a large left ventricular cavity",
                            "left ventricular dilatation"),
                    "neg": ("the left ventricle is not enlarged", "a left ventricle of normal volume")},
    "lv_dysfunction": {"pos": ("poor left ventricular contraction", "left ventricle with low ejection fraction",
                               "weak, hypokinetic left ventricle"),
                       "neg": ("good left ventricular contraction", "left ventricular ejection fraction is normal")},
    "rv_dilation": {"pos": ("the right ventricle is enlarged", "a large right ventricular cavity",
                            "right ventricular dilatation"),
                    "neg": ("the right ventricle is not enlarged", "a right ventricle of normal volume")},
    "rv_dysfunction": {"pos": ("poor right ventricular contraction", "right ventricle with low ejection fraction",
                               "weak, hypokinetic right ventricle"),
                       "neg": ("good right ventricular contraction",
                               "right ventricular ejection fraction is normal")},
    "lv_hypertrophy": {"pos": ("thickened left ventricular walls", "the left ventricular myocardium is thick",
                               "increased left ventricular wall thickness and mass"),
                       "neg": ("thin, normal left ventricular walls", "left ventricular mass is not increased")},
    "lge_present": {"pos": ("scar on late gadolinium images", "bright myocardial enhancement after contrast",
                            "myocardial fibrosis seen on delayed images"),
                    "neg": ("no scar on late gadolinium images", "no myocardial enhancement after contrast")},
    "aortic_dilation": {"pos": ("the ascending aorta is enlarged", "aortic root and ascending aorta dilated",
                                "aneurysmal ascending aorta"),
                        "neg": ("the ascending aorta has a normal diameter", "no aortic enlargement")},
    "pericardial_effusion": {"pos": ("fluid around the heart in the pericardial sac",
                                     "a pericardial effusion surrounds the heart",
                                     "effusion in the pericardium"),
                             "neg": ("no fluid around the heart", "no pericardial effusion is present")},
}


# The reference's finding prompt sets, verbatim (docs/cmrclip-reference.md §5.1, its comparison/prompt.py),
# keyed by our finding names: scored as the reference does, mean raw cosine over the prompts (no `neg`).
# Reported next to ours so a card can be read against the published zero-shot table. Three of them
# ("There is left ventricular hypertrophy", "There is septal hypertrophy", "There is a large area of LAD
# scar") are sentences the phantom's training wording can produce, so on phantom data they flatter.
REFERENCE_FINDING_PROMPTS: dict[str, tuple[str, ...]] = {
    "lv_dysfunction": ("Left ventricle with systolic dysfunction",),
    "rv_dysfunction": ("Right ventricle with systolic dysfunction",),
    "lv_dilation": ("Left ventricle is dilated", "Left ventricle is enlarged in size"),
    "rv_dilation": ("Right ventricle is dilated", "Right ventricle is enlarged in size"),
    "lv_hypertrophy": ("There is left ventricular hypertrophy", "There is septal hypertrophy", "LV is thickened"),
    "lge_present": ("Delayed-enhancement imaging reveals transmural enhancement",
                    "Delayed-enhancement imaging reveals patchy enhancement", "There is a large area of LAD scar"),
    "aortic_dilation": ("Aortic root is ectatic", "Ascending aortic is dilated", "Descending aorta is dilated"),
}


def all_prompts() -> list[str]:
    """Every prompt once (encode these in one batch)."""
    out = [p for ps in DIAGNOSIS_PROMPTS.values() for p in ps]
    out += [p for d in FINDING_PROMPTS.values() for ps in d.values() for p in ps]
    out += [p for ps in REFERENCE_FINDING_PROMPTS.values() for p in ps]
    return list(dict.fromkeys(out))


def prompt_sets() -> dict:
    """The three sets as plain lists (recorded in an evaluation's result and card)."""
    return {"diagnosis": {c: list(ps) for c, ps in DIAGNOSIS_PROMPTS.items()},
            "findings": {f: {k: list(ps) for k, ps in d.items()} for f, d in FINDING_PROMPTS.items()},
            "findings_reference": {f: list(ps) for f, ps in REFERENCE_FINDING_PROMPTS.items()}}
