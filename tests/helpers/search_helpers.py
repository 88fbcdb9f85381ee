"""Study rows for the search tests (tests.helpers.search_helpers).

The text tower of a fresh cmr-tiny is the real MiniLM, so text embeddings are meaningful before any
training; `aligned_rows` fakes a trained model by placing each study's vectors near the embedding of its
class phrase (study/cine/lge) and its impression (report).
"""
from __future__ import annotations

import numpy as np

CLASSES = {
    "AMYLOID": "cardiac amyloidosis with diffuse subendocardial late gadolinium enhancement",
    "HCM": "hypertrophic cardiomyopathy with asymmetric septal hypertrophy",
    "ICM": "ischemic cardiomyopathy with transmural infarct scar in the LAD territory",
    "NORMAL": "normal cardiac MRI with normal biventricular size and function",
    "NICM": "dilated non-ischemic cardiomyopathy with severely reduced ejection fraction",
}
VENDORS = ("SIEMENS", "GE MEDICAL SYSTEMS", "Philips Medical Systems")


def _unit(a):
    a = np.asarray(a, np.float32)
    return a / np.linalg.norm(a, axis=-1, keepdims=True)

def _terms(rng):
    """Sparse BM25-like weights over a 50-word vocabulary (indices 7, 14, ...)."""
    from cmr_search.search.collection import Sparse
    idx = sorted(rng.choice(50, size=int(rng.integers(2, 8)), replace=False) * 7)
    return Sparse([int(i) for i in idx], rng.uniform(0.2, 1.5, size=len(idx)).tolist())


def make_rows(n: int = 60, dim: int = 32, seed: int = 0, text_dim: int = 384) -> list[dict]:
    """Random unit vectors (continuous: no score ties) with a varied payload. Every 3rd study has no LGE,
    every 4th no report; a report has report-text vectors (1-3 clauses) of size text_dim."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        has_report = i % 4 != 0
        vecs = {"study": _unit(rng.normal(size=dim)), "cine": _unit(rng.normal(size=dim)),
                "lge": None if i % 3 == 0 else _unit(rng.normal(size=dim)),
                "report": _unit(rng.normal(size=dim)) if has_report else None,
                "report_text": _unit(rng.normal(size=text_dim)) if has_report else None,
                "report_clauses": _unit(rng.normal(size=(1 + i % 3, text_dim))) if has_report else None,
                "report_terms": _terms(rng) if has_report else None}
        rows.append({
            "study_key": f"s{i:04d}", "patient_key": f"p{i // 2:04d}", "vectors": vecs,
            "age": float(20 + (i * 7) % 60), "sex": "F" if i % 2 else "M",
            "study_date": f"{2015 + i % 8}{1 + i % 12:02d}{1 + i % 27:02d}",
            "manufacturer": VENDORS[i % 3], "model_name": "Avanto", "field_strength": (1.5, 3.0)[i % 2],
            "views": ["cine_sax", "cine_4ch"] + ([] if i % 3 == 0 else ["lge_sax"]),
            "n_frames": 32, "impression": f"impression {i}", "labels": [("A", "B", "C")[i % 3]],
            "report_findings": findings(i), "model_id": "test:000000000000", **measurements(i)})
    return rows


def findings(i: int) -> list[str]:
    """'CONCEPT:status' keys of study i's report (none without a report): LGE affirmed in two of three, HCM in
    the family of every 5th."""
    if i % 4 == 0:
        return []
    return [f"LGE:{'negated' if i % 3 == 0 else 'affirmed'}"] + (["HCM:family"] if i % 5 == 1 else [])


def measurements(i: int) -> dict:
    """Measurement payload of study i: every 5th has none (not measured: the fields are absent), every 7th
    was measured without an RV (rvef etc. null); the values are spread so that ranges cut them."""
    if i % 5 == 0:
        return {}
    lvef = float(15 + (i * 11) % 60)
    rv = i % 7 != 0
    return {"lvef": lvef, "lvedv": float(90 + (i * 17) % 200), "lvesv": float(40 + (i * 5) % 100),
            "lv_mass": float(70 + (i * 13) % 150), "max_wall": float(6 + (i * 3) % 16),
            "rvef": float(30 + (i * 7) % 40) if rv else None, "rvedv": float(100 + i) if rv else None,
            "rvesv": float(50 + i) if rv else None, "lvedvi": float(50 + (i * 9) % 80),
            "seg_quality": ("good", "check", "poor")[i % 3], "seg_flags": [] if i % 3 == 0 else ["check me"],
            "seg_fingerprint": "seg000000000"}

def aligned_rows(model, per_class: int = 6, seed: int = 1) -> list[dict]:
    """Studies whose vectors sit near their class phrase / impression in the model's text space."""
    from cmr_search.model import embed_texts
    from cmr_search.model.report_text import ReportTextEncoder
    from cmr_search.search.terms import report_terms
    rng = np.random.default_rng(seed)
    names = list(CLASSES)
    class_emb = embed_texts(model, [CLASSES[c] for c in names])
    impressions = [f"{CLASSES[c]}, study {j}" for c in names for j in range(per_class)]
    report_emb = embed_texts(model, impressions)
    report_text = ReportTextEncoder().encode_reports(impressions)
    rows, dim = [], model.embed_dim
    for i, text in enumerate(impressions):
        c = i // per_class
        noisy = lambda s: _unit(class_emb[c] + s * rng.normal(size=dim) / np.sqrt(dim))  # noqa: E731
        rows.append({"study_key": f"{names[c].lower()}-{i % per_class}", "vectors": {
            "study": noisy(0.6), "cine": noisy(0.9), "lge": noisy(0.9) if names[c] != "NORMAL" else None,
            "report": report_emb[i], "report_text": report_text[i][0], "report_clauses": report_text[i][1],
            "report_terms": report_terms(text)},
            "age": float(30 + i), "sex": "F" if i % 2 else "M",
            "study_date": f"20{10 + i % 10}-06-01", "manufacturer": VENDORS[i % 3],
            "field_strength": 1.5, "views": ["cine_sax", "lge_sax"], "impression": text,
            "labels": [], "truth": names[c], **class_measurements(names[c], i % per_class, per_class)})
    return rows


LVEF_BY_CLASS = {"AMYLOID": 50.0, "HCM": 70.0, "ICM": 38.0, "NORMAL": 62.0, "NICM": 22.0}


def class_measurements(name: str, j: int, per_class: int) -> dict:
    """Measurements of study j of a class (its LVEF around the class's); the last of each class unmeasured."""
    if j == per_class - 1:
        return {}
    lvef = LVEF_BY_CLASS[name] + j
    return {"lvef": lvef, "lvedv": 150.0 + (50 if name == "NICM" else 0) + j,
            "lv_mass": 180.0 if name == "HCM" else 110.0, "max_wall": 18.0 if name == "HCM" else 9.0, "rvef": 55.0, "seg_quality": "good", "seg_flags": [],
            "seg_fingerprint": "seg000000000"}


def cli_store(d, name: str = "data") -> tuple[list[str], list[dict]]:
    """A tiny untrained cmr-tiny checkpoint in d/ckpt and an embedded index of its aligned_rows in d/name:
    (the `--data D --checkpoint C` arguments of a `cmr` verb, the rows)."""
    import torch

    from cmr_search.model import create_model, save_checkpoint
    from cmr_search.search import Store
    torch.manual_seed(0)
    model = create_model("cmr-tiny").eval()
    ckpt = save_checkpoint(model, d / "ckpt")
    rows = aligned_rows(model)
    with Store.open(d / name, dim=model.embed_dim) as s:
        s.upsert_studies(rows)
    return ["--data", str(d / name), "--checkpoint", str(ckpt)], rows


def report_row(key: str, report: str, dim: int, seed: int = 3, **payload) -> dict:
    """One study whose report-text vectors, BM25 words and findings are its report's (the real sentence
    encoder and reader), with random unit image vectors of size dim."""
    from cmr_search.model.report_context import finding_keys
    from cmr_search.model.report_text import ReportTextEncoder
    from cmr_search.search.terms import report_terms
    whole, clauses = ReportTextEncoder().encode_reports([report])[0]
    rng = np.random.default_rng(seed)
    vecs = {v: _unit(rng.normal(size=dim)) for v in ("study", "report", *payload.pop("views_vectors", ()))}
    return {"study_key": key, "impression": report, "views": ["cine_sax"], "labels": [],
            "report_findings": finding_keys(report), **payload,
            "vectors": {**vecs, "report_text": whole, "report_clauses": clauses, "report_terms": report_terms(report)}}
