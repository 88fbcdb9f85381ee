"""Report lexicon: concept -> surface forms and slot -> template skeletons, each tagged by split.

Design: phantom.md §4.2-4.3 (grammar, lexicon) and §5.1 (held-out language). Every form and every
skeleton is tagged
  "both"  usable by train- and test-split reports (no prefix in the tables below),
  "train" usable only by train-split reports (prefix "tr: "),
  "test"  usable only by test-split reports (prefix "te: "): the held-out language.
About 30 % of the forms of each clinical concept and of the skeletons of each slot are test-only, so
a model that memorised the train wording meets unseen synonyms ("NICM", "HOCM", "MDE", "ATTR",
"circumflex") and unseen sentence frames at test time.

Templates hold typed holes `{NAME}`: an upper-cased concept name (`{LGE}` -> a form of concept "lge")
or a value the report writer puts in its context (`{EF}`, `{SEG_LIST}`, `{DX_TERM}`, ...). Forms may
hold holes themselves (`ef_tail`). `fill` resolves holes recursively, drawing forms from the rng.
Rule kept by construction and checked in tests: no test-only form occurs inside a train or both form.
"""
from __future__ import annotations

import re
from functools import lru_cache

SPLITS = ("train", "test")
_TAGS = {"tr: ": "train", "te: ": "test"}

# --- concepts --------------------------------------------------------------------------------------
_RAW_FORMS: dict[str, tuple[str, ...]] = {
    # anatomy and measurements
    "lv_n": ("left ventricle", "LV", "tr: left ventricular cavity", "te: LV chamber"),
    "lv_adj": ("left ventricular", "LV", "tr: left ventricle", "te: left-ventricular"),
    "rv_n": ("right ventricle", "RV", "tr: right ventricular cavity", "te: RV chamber"),
    "rv_adj": ("right ventricular", "RV", "tr: right ventricle", "te: right-ventricular"),
    "lvef_n": ("LVEF", "LV ejection fraction", "tr: left ventricular ejection fraction", "tr: EF",
               "te: LV EF"),
    "rvef_n": ("RVEF", "RV ejection fraction", "tr: right ventricular ejection fraction", "te: RV EF"),
    "ef_tail": (", {LVEF_N} {EF}%", " ({LVEF_N} {EF}%)", "tr: , with {LVEF_N} of {EF}%",
                "te:  (calculated {LVEF_N} {EF}%)", "te: , measured {LVEF_N} {EF}%"),
    "rvef_tail": (", {RVEF_N} {RVEF}%", " ({RVEF_N} {RVEF}%)", "tr: , with {RVEF_N} of {RVEF}%",
                  "te:  (calculated {RVEF_N} {RVEF}%)"),
    "ef_both": (" ({LVEF_N} {EF}%, {RVEF_N} {RVEF}%)", ", {LVEF_N} {EF}% and {RVEF_N} {RVEF}%",
                "tr: ; {LVEF_N} {EF}%, {RVEF_N} {RVEF}%", "te:  (calculated {LVEF_N} {EF}%, {RVEF_N} {RVEF}%)"),
    # size and function grades (the validity rules of §4.5 read these)
    "size_small": ("small", "small-volume", "tr: small-cavity", "te: reduced-volume"),
    "size_normal": ("normal-sized", "non-dilated", "tr: normal size", "te: normal-volume"),
    "size_mild": ("mildly dilated", "mildly enlarged", "tr: slightly dilated", "te: minimally dilated"),
    "size_moderate": ("moderately dilated", "moderately enlarged", "tr: moderately dilatated",
                      "te: substantially dilated"),
    "size_severe": ("severely dilated", "severely enlarged", "tr: markedly dilated",
                    "te: massively dilated"),
    "func_hyper": ("hyperdynamic", "tr: vigorous", "te: hypercontractile", "te: supranormal"),
    "func_normal": ("normal", "preserved", "tr: intact", "te: unimpaired"),
    "func_mild": ("mildly reduced", "mildly impaired", "tr: mildly depressed", "te: mildly diminished"),
    "func_moderate": ("moderately reduced", "moderately impaired", "tr: moderately depressed",
                      "te: moderately diminished"),
    "func_severe": ("severely reduced", "severely impaired", "tr: severely depressed",
                    "te: markedly reduced"),
    # morphology
    "lvh": ("left ventricular hypertrophy", "LVH", "tr: LV hypertrophy", "te: LV wall thickening"),
    "asym": ("asymmetric septal hypertrophy", "asymmetric septal thickening",
             "tr: asymmetric hypertrophy of the septum", "te: septal-predominant hypertrophy",
             "te: disproportionate septal hypertrophy"),
    "apical_hyp": ("apical hypertrophy", "apical wall thickening", "tr: hypertrophy confined to the apex",
                   "te: apical-predominant hypertrophy"),
    "ratio_tail": (" (septal-to-lateral ratio {RATIO})", ", septal:lateral ratio {RATIO}",
                   "tr: , septal to lateral wall ratio {RATIO}", "te: , septal/lateral thickness ratio {RATIO}"),
    "global_hypo": ("global hypokinesis", "diffuse hypokinesis", "tr: globally reduced wall motion",
                    "te: generalized hypokinesis"),
    "sam": ("systolic anterior motion of the mitral valve", "SAM of the mitral valve",
            "tr: systolic anterior motion (SAM)", "te: anterior mitral leaflet SAM"),
    "lvoto": ("LVOT flow acceleration", "dynamic LVOT obstruction",
              "tr: left ventricular outflow tract flow acceleration", "te: LVOT gradient"),
    "aneurysm": ("apical aneurysm", "apical LV aneurysm", "tr: aneurysmal apex",
                 "te: thin-walled apical aneurysm"),
    "thrombus": ("apical thrombus", "apical LV thrombus", "tr: LV apical thrombus",
                 "te: laminated apical thrombus"),
    "la_dil": ("left atrial enlargement", "left atrial dilation", "tr: enlargement of the left atrium",
               "te: LA dilation"),
    "ra_dil": ("right atrial enlargement", "right atrial dilation", "tr: enlargement of the right atrium",
               "te: RA dilation"),
    "biatrial": ("biatrial enlargement", "biatrial dilation", "tr: enlargement of both atria",
                 "te: bilateral atrial dilation"),
    "septal_flat": ("septal flattening", "flattening of the interventricular septum",
                    "tr: D-shaped left ventricle", "te: D-shaped LV"),
    "rv_bulge": ("regional RV free-wall dyskinesia", "an RV free-wall aneurysm", "tr: focal RV wall bulging",
                 "te: regional RV dyskinesia"),
    "rv_hyp": ("RV hypertrophy", "RV free-wall thickening", "tr: right ventricular hypertrophy",
               "te: RV wall thickening"),
    "peri": ("pericardial effusion", "circumferential pericardial effusion", "tr: pericardial fluid collection",
             "te: pericardial fluid accumulation"),
    "pleural": ("pleural effusion", "pleural fluid", "tr: pleural fluid collection", "te: hydrothorax"),
    # late enhancement
    "lge": ("late gadolinium enhancement", "LGE", "late enhancement", "tr: delayed enhancement",
            "tr: DE", "te: myocardial delayed enhancement", "te: MDE", "te: delayed hyperenhancement"),
    "scar": ("scar", "fibrosis", "tr: myocardial scar", "te: replacement fibrosis"),
    "pat_subendo": ("subendocardial", "tr: endocardial-based", "tr: predominantly subendocardial",
                    "te: subendocardial-based"),
    "pat_transmural": ("transmural", "full-thickness", "tr: fully transmural", "te: full-wall"),
    "pat_midwall": ("mid-wall", "mid-myocardial", "tr: midwall", "te: intramural"),
    "pat_subepi": ("subepicardial", "tr: epicardial", "tr: subepicardial-predominant",
                   "te: epicardial-based"),
    "pat_diffuse": ("diffuse subendocardial", "global subendocardial", "tr: circumferential subendocardial",
                    "te: diffuse endocardial-predominant"),
    "pat_diffuse_tm": ("diffuse transmural", "global transmural", "tr: diffuse full-thickness",
                       "te: diffuse heterogeneous"),
    "patchy": ("patchy", "tr: multifocal", "tr: blotchy", "te: heterogeneous patchy"),
    "rvips": ("RV insertion points", "right ventricular insertion points", "tr: RV-septal insertions",
              "te: RV-LV junctions"),
    "rvip": ("RV insertion point", "right ventricular insertion point", "tr: RV-septal insertion",
             "te: RV-LV junction"),
    "dot_hedge": ("a nonspecific finding", "of doubtful clinical significance",
                  "tr: of uncertain significance", "te: likely incidental and nonspecific"),
    "tm_low": ("less than 50% transmural", "tr: <50% transmural, suggesting viability",
               "te: involving under half of the wall thickness", "with viable outer myocardium"),
    "tm_high": ("greater than 50% transmural", "tr: >50% transmural, non-viable",
                "te: involving most of the wall thickness", "without viable myocardium"),
    "nulling": ("abnormal myocardial nulling", "tr: difficulty nulling the myocardium",
                "abnormal gadolinium kinetics with the myocardium nulling before the blood pool",
                "te: inverted nulling order of myocardium and blood"),
    "amy_extent": ("including the RV and atrial walls", "with RV and atrial wall involvement",
                   "tr: extending to the RV and atria", "te: also involving the right ventricle and atria"),
    # coronary territories (the validity rules of §4.5 read these)
    "terr_lad": ("LAD territory", "LAD distribution", "tr: left anterior descending territory",
                 "te: left anterior descending artery territory"),
    "terr_rca": ("RCA territory", "RCA distribution", "tr: right coronary artery territory",
                 "te: right coronary distribution"),
    "terr_lcx": ("LCx territory", "LCx distribution", "tr: LCx coronary territory",
                 "te: circumflex distribution", "te: left circumflex territory"),
    # diagnoses
    "dx_nicm": ("non-ischemic cardiomyopathy", "dilated cardiomyopathy", "tr: DCM",
                "tr: nonischemic dilated cardiomyopathy", "te: NICM", "te: idiopathic dilated cardiomyopathy"),
    "dx_icm": ("ischemic cardiomyopathy", "ICM", "prior myocardial infarction", "tr: chronic infarction",
               "tr: old MI", "te: healed infarction", "te: CAD-related cardiomyopathy"),
    "mi": ("myocardial infarction", "prior infarction", "tr: prior MI", "tr: infarct",
           "te: previous MI", "te: remote infarction"),
    "dx_hcm": ("hypertrophic cardiomyopathy", "HCM", "tr: sarcomeric hypertrophic cardiomyopathy",
               "te: sarcomeric HCM", "te: hypertrophic cardiomyopathy phenotype"),
    "dx_hocm": ("obstructive hypertrophic cardiomyopathy", "tr: obstructive HCM", "te: HOCM",
                "te: hypertrophic obstructive cardiomyopathy"),
    "dx_hcm_apical": ("apical hypertrophic cardiomyopathy", "apical HCM",
                      "tr: apical variant hypertrophic cardiomyopathy", "te: Yamaguchi-type apical HCM"),
    "dx_hcm_end": ("end-stage hypertrophic cardiomyopathy", "end-stage HCM",
                   "tr: burned-out hypertrophic cardiomyopathy", "te: dilated-hypokinetic phase of HCM"),
    "dx_amyloid": ("cardiac amyloidosis", "amyloid cardiomyopathy", "tr: cardiac amyloid",
                   "tr: infiltrative cardiomyopathy due to amyloid", "te: ATTR or AL cardiac amyloidosis",
                   "te: amyloid infiltration"),
    "dx_htn": ("hypertensive heart disease", "hypertensive LVH", "tr: hypertensive left ventricular hypertrophy",
               "te: pressure-overload hypertrophy", "te: hypertensive remodeling"),
    "dx_athlete": ("physiologic remodeling", "athletic heart", "tr: athlete's heart",
                   "tr: physiologic adaptation to exercise", "te: exercise-induced cardiac remodeling"),
    "dx_rv_volume": ("RV volume overload", "right ventricular volume overload", "tr: a volume-loaded RV",
                     "te: right heart volume overload"),
    "dx_rv_pressure": ("RV pressure overload", "pulmonary hypertension",
                       "tr: right ventricular pressure overload", "te: elevated pulmonary pressures"),
    "dx_arvc": ("ARVC", "arrhythmogenic right ventricular cardiomyopathy", "tr: ARVC/D",
                "te: arrhythmogenic cardiomyopathy", "te: ARVD"),
    "dx_myocarditis": ("prior myocarditis", "myocarditis", "tr: sequelae of myocarditis",
                       "te: healed myocarditis", "te: post-myocarditis scar"),
    "dx_effusion": ("pericardial effusion", "isolated pericardial effusion",
                    "tr: pericardial effusion without tamponade", "te: effusive pericardial disease"),
    "dx_aorta": ("ascending aortic dilation", "dilated ascending aorta", "tr: aortic root dilation",
                 "te: ectatic ascending aorta", "te: aortopathy"),
    "dx_valve": ("mitral regurgitation", "mitral valve regurgitation", "tr: mitral valve insufficiency",
                 "te: mitral insufficiency"),
    "dx_sarcoid": ("cardiac sarcoidosis", "sarcoidosis", "tr: cardiac sarcoid", "te: granulomatous myocardial disease"),
    "dx_as": ("aortic stenosis", "aortic valve stenosis", "tr: calcific aortic stenosis", "te: stenotic aortic valve"),
    "normal_study": ("normal cardiac MRI", "structurally normal heart", "normal study",
                     "tr: normal cardiac MR examination", "te: unremarkable cardiac MRI"),
    "cm_neg": ("cardiomyopathy", "structural heart disease", "tr: a cardiomyopathy", "te: myocardial disease"),
    # pertinent negatives name diseases under negation (§4.2)
    "neg_infiltrative": ("infiltrative disease such as amyloid", "amyloidosis", "tr: infiltrative cardiomyopathy",
                         "te: an infiltrative process"),
    "neg_myocarditis": ("myocarditis", "prior myocarditis", "tr: inflammatory cardiomyopathy",
                        "te: myocardial inflammation"),
    "neg_hcm": ("hypertrophic cardiomyopathy", "HCM", "tr: asymmetric septal hypertrophy",
                "te: hypertrophic phenotype"),
    # hedging scale (§4.2), tied to dx_confidence
    "hedge_definite": ("consistent with", "compatible with", "tr: diagnostic of", "tr: characteristic of",
                       "te: in keeping with", "te: typical of"),
    "hedge_probable": ("suggestive of", "concerning for", "tr: favoring", "tr: most likely representing",
                       "te: suspicious for", "te: probably reflecting"),
    "hedge_possible": ("may represent", "possibly representing", "tr: raising the possibility of",
                       "tr: could reflect", "te: equivocal for", "te: not excluding"),
    # incidentals and recommendations
    "inc_hepatic_cyst": ("simple hepatic cyst", "hepatic cyst", "tr: simple liver cyst",
                         "te: benign-appearing hepatic cyst"),
    "inc_hiatal_hernia": ("small hiatal hernia", "hiatal hernia", "tr: small hiatus hernia",
                          "te: sliding hiatal hernia"),
    "inc_bicuspid_aortic_valve": ("bicuspid aortic valve", "bicuspid aortic valve morphology", "tr: BAV",
                                  "te: bicommissural aortic valve"),
    "inc_trace_pericardial_fluid": ("trace pericardial fluid", "trace physiologic pericardial fluid",
                                    "tr: physiologic amount of pericardial fluid", "te: minimal pericardial fluid"),
    "quality": ("limited study due to arrhythmia", "mildly limited image quality due to breath-holding",
                "tr: image quality degraded by irregular rhythm", "te: suboptimal breath-holds limit assessment"),
    "reco_nicm": ("correlation with genetic testing may be considered", "consider genetic counseling",
                  "tr: recommend family screening as appropriate", "te: consider genetic evaluation"),
    "reco_icm": ("recommend correlation with coronary angiography", "viability as described above",
                 "tr: transmurally scarred segments are unlikely to recover", "te: suggest ischemia evaluation"),
    "reco_hcm": ("family screening recommended", "recommend screening of first-degree relatives",
                 "tr: consider genetic testing", "te: suggest cascade screening of relatives"),
    "reco_amyloid": ("recommend correlation with serum free light chains and nuclear scintigraphy",
                     "further evaluation for amyloid subtype recommended",
                     "tr: consider pyrophosphate scintigraphy", "te: scintigraphy may distinguish ATTR from AL"),
    "reco_rv": ("right heart catheterization may be considered", "assess for intracardiac shunt",
                "tr: correlation with task force criteria recommended", "te: consider shunt evaluation"),
    "reco_generic": ("clinical correlation recommended", "correlate clinically",
                     "tr: follow-up CMR as clinically indicated", "te: consider follow-up imaging"),
}

# --- skeletons per slot (typed holes filled by report.py's context) -------------------------------
_RAW_SKELETONS: dict[str, tuple[str, ...]] = {
    # LV size and function; {EF_TAIL} is "" when the item carries no measurement
    "sf.normal": ("Normal {LV_ADJ} size and systolic function{EF_TAIL}.",
                  "{LV_N} normal in size with {FUNC} systolic function{EF_TAIL}.",
                  "tr: Normal {LV_ADJ} dimensions and {FUNC} global systolic function{EF_TAIL}.",
                  "te: Unremarkable {LV_ADJ} size with {FUNC} systolic function{EF_TAIL}."),
    "sf.gen": ("{SIZE} {LV_N} with {FUNC} systolic function{EF_TAIL}.",
               "{SIZE} {LV_N}; {FUNC} {LV_ADJ} systolic function{EF_TAIL}.",
               "tr: {FUNC} {LV_ADJ} systolic function{EF_TAIL} in a {SIZE} {LV_N}.",
               "tr: {SIZE} {LV_N} and {FUNC} systolic function{EF_TAIL}.",
               "te: {SIZE} {LV_N} demonstrating {FUNC} systolic function{EF_TAIL}.",
               "te: The {LV_N} is {SIZE}, with {FUNC} overall systolic function{EF_TAIL}."),
    "sf.biv": ("Normal biventricular size and systolic function{EF_BOTH}.",
               "Normal biventricular volumes and function{EF_BOTH}.",
               "tr: Normal size and systolic function of both ventricles{EF_BOTH}.",
               "te: Biventricular size and systolic function are normal{EF_BOTH}."),
    # morphology
    "morph.normal": ("Normal {LV_ADJ} wall thickness; no evidence of {NEG_HCM}.",
                     "Normal {LV_ADJ} wall thickness and mass.",
                     "tr: No {LVH} or asymmetric thickening to suggest {NEG_HCM}.",
                     "te: {LV_ADJ} wall thickness within normal limits, without features of {NEG_HCM}."),
    "morph.concentric": ("Concentric {LVH}, maximal wall thickness {WALLMM} mm.",
                         "Concentric {LVH} (maximal wall thickness {WALLMM} mm).",
                         "Concentric {LVH}.",
                         "tr: Concentrically thickened {LV_N} with wall thickness up to {WALLMM} mm.",
                         "te: Symmetric increase in {LV_ADJ} wall thickness to {WALLMM} mm."),
    "morph.asym": ("{ASYM} with maximal wall thickness of {WALLMM} mm{RATIO_TAIL}.",
                   "{ASYM}{RATIO_TAIL}.",
                   "tr: Maximal septal thickness {WALLMM} mm; {ASYM}.",
                   "te: {ASYM}, thickest segment {WALLMM} mm{RATIO_TAIL}."),
    "morph.apical": ("{APICAL_HYP} with maximal wall thickness of {WALLMM} mm.",
                     "{APICAL_HYP}, up to {WALLMM} mm.",
                     "tr: {APICAL_HYP} with a spade-shaped {LV_ADJ} cavity.",
                     "te: {APICAL_HYP} producing a spade-shaped cavity in diastole."),
    "find": ("{FINDING}.", "There is {FINDING}.", "tr: Additional finding of {FINDING}.",
             "te: Note is made of {FINDING}."),
    # late enhancement
    "lge.none": ("No {LGE} to suggest {NEG_LIST}.", "No {LGE}.",
                 "No abnormal {LGE}; specifically no evidence of {NEG_LIST}.",
                 "tr: No {LGE} or {SCAR} to indicate {NEG_LIST}.",
                 "te: Absence of {LGE}; nothing to suggest {NEG_LIST}."),
    "lge.desc": ("{LGE_DESC}.", "There is {LGE_DESC}.", "tr: {LGE} imaging demonstrates {LGE_DESC}.",
                 "te: Post-contrast imaging shows {LGE_DESC}."),
    "lge.dot": ("Tiny focus of {LGE} at the {DOT_LOC}, {DOT_HEDGE}.",
                "Minimal {LGE} at the {DOT_LOC}, {DOT_HEDGE}.",
                "tr: Small nonspecific focus of enhancement at the {DOT_LOC}.",
                "te: Punctate {LGE} at the {DOT_LOC}, {DOT_HEDGE}."),
    # right ventricle
    "rv.normal": ("Normal {RV_ADJ} size and systolic function{RVEF_TAIL}.",
                  "{RV_N} normal in size with {RVFUNC} systolic function{RVEF_TAIL}.",
                  "tr: Normal {RV_ADJ} size and function.",
                  "te: Unremarkable {RV_ADJ} size and {RVFUNC} systolic function{RVEF_TAIL}."),
    "rv.gen": ("{RVSIZE} {RV_N} with {RVFUNC} systolic function{RVEF_TAIL}.",
               "{RVSIZE} {RV_N}; {RVFUNC} {RV_ADJ} systolic function{RVEF_TAIL}.",
               "tr: {RVSIZE} {RV_N} (EDVi {RVEDVI} mL/m²) with {RVFUNC} systolic function{RVEF_TAIL}.",
               "te: The {RV_N} is {RVSIZE} and shows {RVFUNC} systolic function{RVEF_TAIL}."),
    # diagnosis: prefix hedges (all confidences) and post-posed hedges per confidence
    "dx.pre": ("Findings {HEDGE} {DX_TERM}.", "Overall appearance {HEDGE} {DX_TERM}.",
               "tr: CMR findings {HEDGE} {DX_TERM}.", "te: Imaging features {HEDGE} {DX_TERM}."),
    "dx.post.definite": ("{DX_TERM}.", "Diagnosis: {DX_TERM}.", "te: Appearance typical for {DX_TERM}."),
    "dx.post.probable": ("{DX_TERM} is favored.", "Likely {DX_TERM}.", "tr: {DX_TERM}, most likely.",
                         "te: Favor {DX_TERM}."),
    "dx.post.possible": ("{DX_TERM} cannot be excluded.", "Differential includes {DX_TERM}.",
                         "tr: {DX_TERM} is not excluded.", "te: {DX_TERM} remains a consideration."),
    "dx.normal": ("{NORMAL_STUDY}.", "No CMR evidence of {CM_NEG}.",
                  "tr: {NORMAL_STUDY}; no evidence of {CM_NEG}.", "te: Overall impression: {NORMAL_STUDY}."),
    # incidental and recommendation
    "inc": ("{INC}.", "Incidental {INC}.", "tr: Incidentally noted {INC}.", "te: Extracardiac finding: {INC}."),
    "reco": ("{RECO}.", "Recommendation: {RECO}.", "te: Suggestion: {RECO}."),
}


def _parse(raw: str) -> tuple[str, str]:
    """'tr: text' -> ('text', 'train'); untagged text is 'both'."""
    for prefix, tag in _TAGS.items():
        if raw.startswith(prefix):
            return raw[len(prefix):], tag
    return raw, "both"


FORMS: dict[str, tuple[tuple[str, str], ...]] = {  # concept -> ((form, tag), ...)
    c: tuple(_parse(r) for r in raws) for c, raws in _RAW_FORMS.items()}
SKELETONS: dict[str, tuple[tuple[str, str, str], ...]] = {  # slot key -> ((id, text, tag), ...)
    k: tuple((f"{k}#{i}",) + _parse(r) for i, r in enumerate(raws)) for k, raws in _RAW_SKELETONS.items()}
HELD_OUT_FORMS: frozenset[str] = frozenset(f for fs in FORMS.values() for f, t in fs if t == "test")
HELD_OUT_SKELETONS: frozenset[str] = frozenset(i for sk in SKELETONS.values() for i, _, t in sk if t == "test")
SKELETON_TEXT: dict[str, str] = {i: s for sk in SKELETONS.values() for i, s, _ in sk}


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown wording split {split!r}; use 'train' or 'test'")


def _allowed(tag: str, split: str) -> bool:
    return tag == "both" or tag == split


@lru_cache(maxsize=None)
def forms_for(concept: str, split: str) -> tuple[str, ...]:
    """The forms of `concept` that a `split` report may use."""
    _check_split(split)
    if concept not in FORMS:
        raise KeyError(f"unknown lexicon concept {concept!r}; add it to phantom.reports.lexicon._RAW_FORMS")
    return tuple(f for f, t in FORMS[concept] if _allowed(t, split))


@lru_cache(maxsize=None)
def skeletons_for(key: str, split: str) -> tuple[tuple[str, str], ...]:
    """((id, text), ...) of the skeletons of slot `key` that a `split` report may use."""
    _check_split(split)
    return tuple((i, s) for i, s, t in SKELETONS[key] if _allowed(t, split))


def lexicon_forms(split: str) -> set[str]:
    """Every surface form allowed in `split` (holes left in place for forms that carry them)."""
    _check_split(split)
    return {f for fs in FORMS.values() for f, t in fs if _allowed(t, split)}


def literal_chunks(text: str) -> list[str]:
    """The literal word runs of a form or skeleton (holes removed), for phrase searches."""
    parts = re.split(r"\{[A-Z_]+\}", text)
    chunks = [re.sub(r"^[^\w]+|[^\w]+$", "", p) for p in parts]
    return [c for c in chunks if re.search(r"[A-Za-z]", c)]


_HOLE = re.compile(r"\{([A-Z_]+)\}")


def pick(options, rng):
    """One element of a non-empty sequence, drawn from rng."""
    return options[int(rng.integers(len(options)))]


def fill(template: str, ctx: dict, split: str, rng, depth: int = 0) -> str:
    """Resolve every {HOLE}: context values first, else a form of the lower-cased concept."""
    if depth > 6:
        raise RecursionError(f"template holes nest too deep (cycle?) in {template!r}")

    def one(m):
        name = m.group(1)
        value = ctx[name] if name in ctx else pick(forms_for(name.lower(), split), rng)
        return fill(str(value), ctx, split, rng, depth + 1)
    return _HOLE.sub(one, template)
