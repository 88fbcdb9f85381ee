"""Randomized appearance: tissue codes -> an MR-like image whose contrast is drawn at random
(SynthSeg, Billot et al., Medical Image Analysis 2023; for CMR: sim2real, Amirrajab et al. 2022).

Per image: a mean and a spread per tissue class, either bSSFP-like (bright blood and fat, dark
myocardium, black lungs; every value jittered) or fully random (any order, non-physical contrasts
included; probability `random_p`, scene.SceneConfig.random_contrast_p). Classes that a reader cannot tell apart share their draw: all blood
pools (LV, RV, atria, aorta) one, all muscle of the heart (LV, RV, atrial wall, papillary muscles,
trabeculae) another, so that papillary muscles look like myocardium yet are labelled cavity (the
ACDC convention). With probability `blood_p` (scene.SceneConfig.blood_variety) the blood pools other
than the LV's each get their own factor on the shared blood intensity (log-uniform BLOOD_FACTOR): in real
bSSFP cines the RV blood is usually darker than the LV's (through-plane flow, slower flow in a dilated
RV, distance from the coil; ACDC dev, experts' masks: median RV/LV blood ratio 0.79, range 0.61-1.27 over
40 volumes), while one shared draw teaches a segmenter that an RV is exactly as bright as the LV.
`min_contrast` keeps blood and heart muscle apart. LGE scar (fibrosis fraction) brightens myocardium in
some images. Then, in order:
smooth multiplicative texture inside tissues, through-plane partial volume (mean over the slab samples)
and in-plane partial volume (mean over the oversampled grid), random smooth blobs in the background
(bowel, vessels), blur, a lower acquired resolution in one direction, a smooth bias field, Rician
noise, a random gamma, and an intensity scale. Output float32 (H, W), about 0..1 (not normalised:
the segmenter normalises by percentiles, as it does real images).
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from cmr_search.phantom.cases.latent import TISSUE

N_CODES = 256
GROUPS = {              # classes that share one intensity draw
    "blood": ("lv_blood", "rv_blood", "la_blood", "ra_blood", "aorta_blood"),
    "heart_muscle": ("lv_myo", "rv_myo", "atrial_wall", "papillary", "rv_trabecula"),
}
BLOOD_POOLS = ("rv_blood", "la_blood", "ra_blood", "aorta_blood")   # each its own factor under blood_p
BLOOD_FACTOR = (0.5, 1.3)    # range of that factor (log-uniform), a broad prior around the real 0.6-1.3
# bSSFP-like prior: (low, high) of the mean intensity per tissue (others: uniform 0.1..0.7)
BSSFP = {"air": (0.0, 0.05), "lung": (0.0, 0.12), "muscle": (0.15, 0.4), "fat": (0.55, 1.0),
         "liver": (0.2, 0.5), "blood": (0.55, 1.0), "heart_muscle": (0.1, 0.35), "pericardial_fluid": (0.5, 1.0),
         "pleural_fluid": (0.4, 0.9), "thrombus": (0.1, 0.35), "bone": (0.2, 0.6), "pericardium": (0.0, 0.2),
         "valve": (0.1, 0.4), "csf": (0.5, 1.0), "cortex": (0.2, 0.6), "gastric": (0.1, 0.9)}


def _group_of() -> dict[int, str]:
    out = {code: name for name, code in TISSUE.items()}
    for group, names in GROUPS.items():
        for n in names:
            out[TISSUE[n]] = group
    return out


GROUP_OF = _group_of()


def draw_contrast(rng, random_p: float = 0.5, blood_p: float = 0.0,
                  min_contrast: float = 0.0) -> tuple[np.ndarray, np.ndarray, float]:
    """(means (256,), spreads (256,), scar gain): one image's intensity table. `min_contrast` > 0 keeps
    blood and heart muscle at least that far apart (SceneConfig.min_blood_contrast). `blood_p` and
    `min_contrast` 0 draw nothing extra, so older seeds reproduce."""
    random = rng.random() < random_p
    drawn: dict[str, tuple[float, float]] = {}
    for group in sorted(set(GROUP_OF.values())):
        lo, hi = (0.0, 1.0) if random else BSSFP.get(group, (0.1, 0.7))
        drawn[group] = (rng.uniform(lo, hi), rng.uniform(0.0, 0.08))
    if min_contrast:
        drawn["blood"] = (_apart(rng, drawn["blood"][0], drawn["heart_muscle"][0], min_contrast), drawn["blood"][1])
    means, spreads = np.full(N_CODES, 0.3, np.float32), np.zeros(N_CODES, np.float32)
    for code, group in GROUP_OF.items():
        m, s = drawn[group]
        jitter = rng.normal(0, 0.03) if group in GROUPS else 0.0
        means[code], spreads[code] = np.clip(m + jitter, 0, 1), s
    scar = rng.uniform(0.0, 0.8) if rng.random() < 0.3 else 0.0
    if blood_p and rng.random() < blood_p:
        for name in BLOOD_POOLS:
            code = TISSUE[name]
            means[code] = np.clip(means[code] * np.exp(rng.uniform(*np.log(BLOOD_FACTOR))), 0, 1)
    return means, spreads, scar


def _apart(rng, value: float, other: float, gap: float) -> float:
    """`value`, or where it lies within `gap` of `other`, other +- gap (side drawn, kept inside 0..1): a
    wall with no contrast against its blood has no border a reader could draw, so nothing to learn from."""
    if abs(value - other) >= gap:
        return value
    sides = [x for x in (other - gap, other + gap) if 0.0 <= x <= 1.0]
    return float(sides[int(rng.integers(len(sides)))]) if sides else value


def _smooth_field(rng, shape: tuple[int, int], cells: int, amp: float) -> np.ndarray:
    """A smooth random field of mean 0: a coarse grid of normals, upsampled cubically."""
    coarse = rng.normal(0, amp, (cells, cells))
    return ndimage.zoom(coarse, (shape[0] / cells, shape[1] / cells), order=3, mode="nearest")[:shape[0], :shape[1]]


def _blobs(rng, shape: tuple[int, int], background: np.ndarray, img: np.ndarray) -> np.ndarray:
    """Up to 6 smooth blobs of random intensity painted over background (non-heart) pixels."""
    yy, xx = np.mgrid[:shape[0], :shape[1]].astype(np.float32)
    for _ in range(rng.integers(0, 7)):
        cy, cx = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
        ry, rx = rng.uniform(2, shape[0] / 8, 2)
        w = np.exp(-(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2))
        img = np.where(background, img * (1 - w) + w * rng.uniform(0, 1), img)
    return img


def render(tissue: np.ndarray, lge: np.ndarray, oversample: int, rng, heart_mask: np.ndarray,
           random_p: float = 0.5, blood_p: float = 0.0, min_contrast: float = 0.0) -> np.ndarray:
    """tissue, lge (slab, H·k, W·k) -> (H, W) float32 image; `heart_mask` (H·k, W·k) bool marks the
    heart's own tissue (blobs stay off it)."""
    means, spreads, scar = draw_contrast(rng, random_p, blood_p, min_contrast)
    fine = tissue.shape[1:]
    img = means[tissue] + spreads[tissue] * rng.standard_normal(tissue.shape, dtype=np.float32)
    texture = 1.0 + _smooth_field(rng, fine, int(rng.integers(6, 24)), rng.uniform(0, 0.12))
    img = img * texture[None]
    if scar:
        img = img + scar * lge * (1.0 - img)
    img = img.mean(0)                                                    # through-plane partial volume
    img = _blobs(rng, fine, ~heart_mask, img)
    k = oversample
    img = img.reshape(fine[0] // k, k, fine[1] // k, k).mean((1, 3))     # in-plane partial volume
    return _acquire(img.astype(np.float32), rng)


def _acquire(img: np.ndarray, rng) -> np.ndarray:
    """Blur, anisotropic resolution loss, bias field, Rician noise, gamma, scale."""
    img = ndimage.gaussian_filter(img, rng.uniform(0, 0.9))
    if rng.random() < 0.5:
        f = rng.uniform(1.0, 2.0)
        axis = int(rng.integers(2))
        size = list(img.shape)
        size[axis] = max(8, int(round(img.shape[axis] / f)))
        low = ndimage.zoom(img, np.divide(size, img.shape), order=1)
        img = ndimage.zoom(low, np.divide(img.shape, low.shape), order=1)[:img.shape[0], :img.shape[1]]
    img = img * np.exp(_smooth_field(rng, img.shape, int(rng.integers(2, 5)), rng.uniform(0, 0.35)))
    sigma = rng.uniform(0.0, 0.08) * max(float(img.mean()), 1e-3) * 4
    re = img + rng.normal(0, sigma, img.shape)
    im = rng.normal(0, sigma, img.shape)
    img = np.sqrt(re * re + im * im)
    img = np.clip(img, 0, None) ** np.exp(rng.normal(0, 0.25))
    return (img * rng.uniform(0.5, 2.0)).astype(np.float32)
