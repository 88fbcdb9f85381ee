"""A small fake study cache (studies.parquet + arrays/*.npz + masks/*.npz) whose images, reports and
measurements depend on the label (every 6th study unmeasured)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy import ndimage

from cmr_search.indexer.cache import write_masks

LABELS = ("NICM", "ICM", "HCM", "AMYLOID", "RV", "NORMAL", "ATHLETE", "HTN_LVH")
PHRASES = {"NICM": "dilated left ventricle with reduced function", "ICM": "inferior infarct scar",
           "HCM": "septal hypertrophy", "AMYLOID": "diffuse enhancement, amyloid", "RV": "dilated right ventricle",
           "NORMAL": "normal study", "ATHLETE": "athletic remodeling", "HTN_LVH": "concentric hypertrophy"}
FINDINGS = ("lv_dilation", "lv_dysfunction", "rv_dilation", "rv_dysfunction", "lv_hypertrophy",
            "lge_present", "aortic_dilation", "pericardial_effusion")


def _views(label_idx: int, rng: np.random.Generator, size: int = 24, phases: int = 6) -> dict:
    yy, xx = np.mgrid[:size, :size] / size - 0.5
    r = 0.12 + 0.03 * label_idx
    cine = np.stack([(np.hypot(yy, xx) < r * (1 + 0.2 * np.sin(2 * np.pi * t / phases))).astype(np.float32)
                     for t in range(phases)])
    cine = cine + 0.05 * rng.standard_normal(cine.shape)
    lge = np.stack([np.full((size, size), 0.1 * label_idx, np.float32)] * 4) + 0.05 * rng.standard_normal((4, size, size))
    v = {"cine_sax": cine, "cine_2ch": cine[:, ::-1], "cine_4ch": cine.transpose(0, 2, 1), "lge_sax": lge,
         "lge_2ch": lge[:1]}
    return {k: np.clip(a, 0, 1).astype(np.float16) for k, a in v.items()}


def _measured(folder: Path, key: str, li: int, cine: np.ndarray) -> dict:
    """Measurement columns as indexer/measurements.py writes them, with display masks drawn from the fake
    cine's disc (cavity) and a ring around it (myocardium) at its largest and smallest frame."""
    area = (cine.astype(np.float32) > 0.5).sum(axis=(1, 2))
    frames = [int(np.argmax(area)), int(np.argmin(area))]
    masks = []
    for f in frames:
        cav = cine[f].astype(np.float32) > 0.5
        ring = ndimage.binary_dilation(cav, iterations=2) & ~cav
        masks.append(np.where(cav, 3, np.where(ring, 2, 0)).astype(np.uint8))
    lvedv, lvef = 100.0 + 20 * li, 65.0 - 6 * li
    return {"lvedv": lvedv, "lvesv": round(lvedv * (1 - lvef / 100), 1), "lvef": lvef, "lv_mass": 90.0 + 15 * li,
            "max_wall": 8.0 + li, "rvedv": 120.0, "rvesv": 60.0, "rvef": 50.0, "bsa": 1.9,
            "lvedvi": round(lvedv / 1.9, 1), "lvesvi": None, "lv_massi": None, "rvedvi": None, "rvesvi": None,
            "ed_phase": frames[0], "es_phase": frames[1], "seg_quality": ("good", "check")[li % 2],
            "seg_flags": [] if li % 2 == 0 else ["apex not covered"], "seg_fingerprint": "fake00000000",
            "mask_path": write_masks(folder, key, np.stack(masks), frames)}


def make_fake_cache(folder: str | Path, n: int = 24, seed: int = 0, with_truth: bool = True) -> Path:
    import polars as pl
    folder = Path(folder)
    (folder / "arrays").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        li = i % len(LABELS)
        label = LABELS[li]
        key = f"k{seed}_{i:04d}"
        views = _views(li, rng)
        np.savez_compressed(folder / "arrays" / f"{key}.npz", **views)
        findings = {f: bool((li + j) % 3 == 0) for j, f in enumerate(FINDINGS)}
        rows.append({"study_key": key, "patient_key": f"p{i}", "age": 50 + i % 30, "sex": "FM"[i % 2],
                     "study_date": "2024-01", "manufacturer": "SIEMENS", "model_name": "Aera",
                     "field_strength": 1.5, "views": sorted(views), "n_frames": 30,
                     "impression": f"1. {PHRASES[label]}. Case {i}.",
                     "label": label if with_truth else None,
                     "split": ("test" if i % 4 == 3 else "train") if with_truth else None,
                     "finding_labels": json.dumps(findings) if with_truth else None,
                     "qa": "{}", "array_path": f"arrays/{key}.npz",
                     **(_measured(folder, key, li, views["cine_sax"]) if i % 6 != 5 else {})})
    pl.DataFrame(rows).write_parquet(folder / "studies.parquet")
    return folder


def write_small_config(path: str | Path) -> Path:
    """The tests' 16-frame 32-px cmr-tiny as a JSON config file (for `cmr train --config FILE`)."""
    from tests.helpers.model_helpers import small_config
    small_config().save(path)
    return Path(path)
