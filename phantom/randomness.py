"""Shared random helpers of the phantom: seeded random streams and small bounded draws.

Every random number the phantom draws comes from a numpy Generator seeded by a short list of integers
(the archive seed, the study index, a stream or salt number, ...), so each study, and each part of a
study, is reproducible on its own, in any order and in any worker process. The seed words go to numpy
exactly as given: changing a word, or the order of the words, changes every archive, so callers keep
their stream and salt constants fixed.
"""
from __future__ import annotations

import numpy as np


def seeded_rng(*words: int) -> np.random.Generator:
    """Generator seeded by the integer words, in order (e.g. study index and a per-module salt)."""
    return np.random.default_rng(list(words))


def study_rng(seed: int, index: int, *stream: int) -> np.random.Generator:
    """Independent stream of one study of an archive: seed words [seed, index, *stream]."""
    return np.random.default_rng([seed, index, *stream])


def patient_rng(study_index: int, height_cm: float, weight_kg: float, salt: int) -> np.random.Generator:
    """Stream seeded by the study index and the patient's height and weight only (class-independent
    draws such as body habitus and organ texture); salt tells the users apart."""
    return np.random.default_rng([int(study_index), int(round(height_cm * 10)), int(round(weight_kg * 10)),
                                  salt])


def uniform(rng: np.random.Generator, lo: float, hi: float, nd: int | None = None) -> float:
    """One uniform draw in [lo, hi) as a float, rounded to nd decimals when nd is given."""
    x = float(rng.uniform(lo, hi))
    return x if nd is None else round(x, nd)


def truncated_normal(rng: np.random.Generator, mean, sd, lo, hi) -> float:
    """Normal draw truncated to [lo, hi] (rejection, then clip as a last resort)."""
    for _ in range(20):
        x = rng.normal(mean, sd)
        if lo <= x <= hi:
            return float(x)
    return float(np.clip(x, lo, hi))


def mvn_clipped(rng: np.random.Generator, mean, sd, rho, lo, hi) -> np.ndarray:
    """(2,) correlated pair: bivariate normal with correlation rho, each value truncated/clipped."""
    cov = np.array([[1.0, rho], [rho, 1.0]])
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    for _ in range(20):
        x = np.asarray(mean) + np.asarray(sd) * rng.multivariate_normal([0.0, 0.0], cov)
        if np.all(x >= lo) and np.all(x <= hi):
            return x
    return np.clip(x, lo, hi)
