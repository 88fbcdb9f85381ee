"""Feature extractors of the shortcut audit (phantom.md §5.5): DICOM headers, pixel statistics, and a
keyword (naive Bayes) classifier on report text. Used by phantom.audit.archive.
"""
from __future__ import annotations

import math
import re
import zlib
from pathlib import Path

import numpy as np
import pydicom

# Heart-rate-derived tags are physiology (athletes beat slowly), not acquisition: left out on purpose.
PHYSIOLOGY_TAGS = ("HeartRate", "NominalInterval", "TriggerTime", "LowRRValue", "HighRRValue")
NUMERIC_TAGS = ("Rows", "Columns", "SliceThickness", "SpacingBetweenSlices", "MagneticFieldStrength",
                "RepetitionTime", "EchoTime", "FlipAngle", "CardiacNumberOfImages", "PatientSize",
                "PatientWeight", "ImagingFrequency", "PixelBandwidth", "NumberOfAverages")
N_TOKEN_BUCKETS = 16              # hashed SeriesDescription tokens
N_HIST_BINS = 8


def _bucket(text: str, n: int) -> int:
    return zlib.crc32(text.encode()) % n


def _num(v) -> float:
    """A DICOM value (number, string, multi-value) as one float; nan if not numeric."""
    try:
        if isinstance(v, (list, tuple, pydicom.multival.MultiValue)):
            return float(np.mean([float(x) for x in v])) if len(v) else math.nan
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _series_dirs(study_dir: Path) -> list[Path]:
    return sorted({p.parent for p in study_dir.rglob("*.dcm")})


def _header_of_series(files: list[Path]) -> tuple[list[pydicom.Dataset], np.ndarray]:
    """First and last header of a series (no pixels) and (n_files,) byte sizes."""
    sizes = np.array([f.stat().st_size for f in files], dtype=float)
    pick = [files[0]] if len(files) == 1 else [files[0], files[-1]]
    return [pydicom.dcmread(f, stop_before_pixels=True) for f in pick], sizes


def header_features(study_dir: str | Path) -> np.ndarray:
    """(n_features,) numbers from the DICOM headers of one study (pixels never read)."""
    dirs = _series_dirs(Path(study_dir))
    tokens = np.zeros(N_TOKEN_BUCKETS)
    vals, tis, wins, sizes, counts = {k: [] for k in NUMERIC_TAGS}, [], [], [], []
    first = None
    for d in dirs:
        files = sorted(d.glob("*.dcm"))
        headers, sz = _header_of_series(files)
        sizes.append(sz)
        counts.append(len(files))
        for ds in headers:
            first = first or ds
            for tok in re.split(r"[^a-z0-9]+", str(ds.get("SeriesDescription", "")).lower()):
                if tok:
                    tokens[_bucket(tok, N_TOKEN_BUCKETS)] += 1
            for k in NUMERIC_TAGS:
                vals[k].append(_num(ds.get(k)))
            if "InversionTime" in ds:
                tis.append(_num(ds.InversionTime))
            wins.append((_num(ds.get("WindowCenter")), _num(ds.get("WindowWidth"))))
    return np.concatenate([tokens, _study_level(first, counts, sizes, tis, wins),
                           [_safe_mean(v) for v in vals.values()]])


def _study_level(ds, counts, sizes, tis, wins) -> np.ndarray:
    """Counts, byte sizes, TI, window, date/time, UID digits, manufacturer, patient age/sex."""
    allsz = np.concatenate(sizes) if sizes else np.zeros(1)
    w = np.array(wins, dtype=float) if wins else np.zeros((1, 2))
    date = str(ds.get("StudyDate", "20000101")) if ds else "20000101"
    time = str(ds.get("StudyTime", "000000")) if ds else "000000"
    uid = str(ds.get("StudyInstanceUID", "0")) if ds else "0"
    age = str(ds.get("PatientAge", "000Y")) if ds else "000Y"
    feats = [len(counts), sum(counts), np.mean(counts) if counts else 0, max(counts, default=0),
             np.log1p(allsz.mean()), np.log1p(allsz.sum()),
             np.mean(tis) if tis else 0.0, np.std(tis) if tis else 0.0, len(tis),
             _safe_mean(w[:, 0]), _safe_mean(w[:, 1]),
             int(date[:4]) + int(date[4:6]) / 12, int(time[:2] or 0) + int(time[2:4] or 0) / 60,
             int(re.sub(r"\D", "", uid.split(".")[-1]) or 0) % 1000003 / 1000003,
             float(_digits(age)), float(str(ds.get("PatientSex", "")) == "M") if ds else 0.0]
    man = np.zeros(4)
    man[_bucket(str(ds.get("Manufacturer", "")).upper() if ds else "", 4)] = 1
    return np.nan_to_num(np.concatenate([feats, man]))


def _safe_mean(v) -> float:
    """Mean of the finite values; 0 when there are none (tag absent everywhere)."""
    v = np.asarray(v, dtype=float)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else 0.0


def _digits(s: str) -> int:
    d = re.sub(r"\D", "", s)
    return int(d) if d else 0


def intensity_features(study_dir: str | Path, max_files: int = 24) -> np.ndarray:
    """(2 * (N_HIST_BINS + 9),) global pixel statistics of the cine and the LGE series."""
    study_dir = Path(study_dir)
    out = []
    for kind in ("cine", "lge"):
        files = []
        for d in _series_dirs(study_dir):
            if _is_kind(d, kind):
                files += sorted(d.glob("*.dcm"))
        step = max(1, len(files) // max_files)
        px = [pydicom.dcmread(f).pixel_array.astype(np.float64).ravel() for f in files[::step]]
        out.append(_pixel_stats(np.concatenate(px) if px else np.zeros(1)))
    return np.concatenate(out)


def _is_kind(series_dir: Path, kind: str) -> bool:
    """Series type from the first header: LGE = has InversionTime and 1 cardiac image; cine = >1."""
    ds = pydicom.dcmread(next(iter(sorted(series_dir.glob("*.dcm")))), stop_before_pixels=True)
    n_phase = int(_num(ds.get("CardiacNumberOfImages", 1)) or 1)
    has_ti = "InversionTime" in ds
    return (has_ti and n_phase <= 1) if kind == "lge" else (not has_ti and n_phase > 1)


def _pixel_stats(v: np.ndarray) -> np.ndarray:
    """Mean, sd, 7 percentiles and a histogram normalised to the 99th percentile."""
    pct = np.percentile(v, [1, 5, 25, 50, 75, 95, 99])
    top = pct[-1] if pct[-1] > 0 else 1.0
    hist = np.histogram(np.clip(v / top, 0, 1), bins=N_HIST_BINS, range=(0, 1))[0] / max(len(v), 1)
    return np.concatenate([[v.mean(), v.std()], pct, hist])


# --- report keywords -----------------------------------------------------------------------------
def _tokens(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def fit_keywords(texts: list[str], labels: list[str]) -> dict:
    """Multinomial naive Bayes keyword -> class log-weights (Laplace smoothing)."""
    classes = sorted(set(labels))
    vocab = sorted({t for x in texts for t in _tokens(x)})
    pos = {t: i for i, t in enumerate(vocab)}
    counts = np.ones((len(classes), len(vocab)))                        # (C, V)
    for x, y in zip(texts, labels):
        for t in _tokens(x):
            counts[classes.index(y), pos[t]] += 1
    prior = np.log(np.array([labels.count(c) for c in classes]) / len(labels))
    return dict(classes=classes, pos=pos, logw=np.log(counts / counts.sum(1, keepdims=True)),
                prior=prior)


def predict_keywords(model: dict, text: str) -> str:
    s = model["prior"].copy()
    for t in _tokens(text):
        if t in model["pos"]:
            s += model["logw"][:, model["pos"][t]]
    return model["classes"][int(np.argmax(s))]


def keyword_accuracy(studies: list[dict]) -> tuple[float, float, int, int]:
    """(train accuracy, test accuracy, n_train, n_test) of keywords fitted on the train split."""
    train = [s for s in studies if s.get("split") == "train"]
    test = [s for s in studies if s.get("split") == "test"]
    if not train:
        return math.nan, math.nan, 0, len(test)
    model = fit_keywords([s.get("report", "") for s in train], [s["label"] for s in train])
    acc = lambda ss: float(np.mean([predict_keywords(model, s.get("report", "")) == s["label"]  # noqa: E731
                                    for s in ss])) if ss else math.nan
    return acc(train), acc(test), len(train), len(test)
