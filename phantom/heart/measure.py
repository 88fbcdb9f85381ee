"""Reader-like re-measurement of the rendered heart (phantom.md §1.2 notes, §7.1 item 6).

`measure_study(heart, z_positions)` contours the heart the way a reader would, from label masks:
SAX planes at the acquired cine slice depths, sampled on a fine in-plane grid (1 mm, independent of
the image pixel size). ED and ES are the phases of largest / smallest LV cavity over N_PHASES phases
(searched on a 3 mm grid);
volumes are Simpson's rule (slice area x slice spacing, each slice's area averaged over SUBSLICES
depths across its slab); mass = myocardial volume x 1.05 g/mL; wall thicknesses are radial, at ED,
on basal/mid slices; LGE % is the share of LV myocardium with fibrosis > 0.5; LA area is taken from
a 4CH plane at ES; the pericardial effusion is the deepest fluid layer on a mid SAX slice.
It returns exactly the keys latent.MEASURED_FIELDS.
"""
from __future__ import annotations

import numpy as np

from cmr_search.phantom.cases.latent import MEASURED_FIELDS, TISSUE
from cmr_search.phantom.heart.geometry import lax_plane

N_PHASES = 20            # phases searched for ED / ES
SUBSLICES = 3            # depths averaged per slice slab (Simpson's rule refinement)
FINE_MM, COARSE_MM = 1.0, 3.0   # in-plane grid (volumes at ED/ES, phase search)
RAY_STEP_MM, N_RAYS = 0.25, 72  # radial wall-thickness rays
MYO_DENSITY = 1.05       # g/mL
# A reader contours papillary muscles, trabeculae and leaflets into the blood pool (cavity).
LV_CAVITY = (TISSUE["lv_blood"], TISSUE["thrombus"], TISSUE["papillary"], TISSUE["valve"])
RV_CAVITY = (TISSUE["rv_blood"], TISSUE["rv_trabecula"])
SEPTAL_ARC, LATERAL_ARC = (70.0, 110.0), (250.0, 290.0)   # degrees from anterior toward septum


def _grid(half: float, step: float) -> np.ndarray:
    """(G, 2) in-plane (lat, ant) points of a square grid, inside the disc of radius `half`."""
    x = np.arange(-half + step / 2, half, step, dtype=np.float32)
    la, an = np.meshgrid(x, x, indexing="ij")
    keep = la * la + an * an < half * half
    return np.stack([la[keep], an[keep]], axis=1)


def _areas(heart, grid, zs, t, step):
    """(len(zs),) areas mm² of the LV cavity, LV myo, RV cavity and LV myo with LGE > 0.5."""
    codes, lge = heart.sample_stack(grid, zs, t)                          # (Z, G)
    px = step * step
    myo = codes == TISSUE["lv_myo"]
    return {"lv": np.isin(codes, LV_CAVITY).sum(1) * px, "myo": myo.sum(1) * px,
            "rv": np.isin(codes, RV_CAVITY).sum(1) * px,
            "lge": (myo & (lge > 0.5)).sum(1) * px}


def _spacing(z_positions: list[float]) -> float:
    if len(z_positions) < 2:
        return 10.0
    return float(np.median(np.abs(np.diff(z_positions))))


def _volumes(heart, z_positions, spacing, t, half) -> dict:
    """Simpson volumes (mm³) at time t, each slice averaged over SUBSLICES depths of its slab."""
    offs = ((np.arange(SUBSLICES) + 0.5) / SUBSLICES - 0.5) * spacing
    zs = (np.asarray(z_positions)[:, None] + offs[None, :]).ravel()
    a = _areas(heart, _grid(half, FINE_MM), zs, t, FINE_MM)
    return {k: float(v.sum() / SUBSLICES * spacing) for k, v in a.items()}


def _phases(heart, z_positions, spacing, half) -> tuple[float, float, float, float]:
    """(LV ED, LV ES, RV ED, RV ES) cycle times: extreme cavity sums over N_PHASES phases."""
    grid = _grid(half, COARSE_MM)
    ts = np.arange(N_PHASES) / N_PHASES
    lv, rv = [], []
    for t in ts:
        a = _areas(heart, grid, z_positions, t, COARSE_MM)
        lv.append(a["lv"].sum())
        rv.append(a["rv"].sum())
    return (float(ts[np.argmax(lv)]), float(ts[np.argmin(lv)]), float(ts[np.argmax(rv)]),
            float(ts[np.argmin(rv)]))


def ray_profile(heart, z: float, t: float, code: int, max_mm: float = 90.0) -> np.ndarray:
    """(N_RAYS,) run length (mm) of tissue `code` along rays from the LV cavity centroid on the SAX
    plane at depth z; ray k points at angle 360·k/N_RAYS from anterior toward the septum."""
    grid = _grid(heart.inplane_extent_mm(), FINE_MM)
    codes, _ = heart.sample_stack(grid, [z], t)
    codes = codes[0]
    cav = np.isin(codes, LV_CAVITY)
    centre = grid[cav].mean(0) if cav.any() else np.zeros(2, np.float32)
    ang = np.deg2rad(np.arange(N_RAYS) * 360.0 / N_RAYS)
    d = np.stack([-np.sin(ang), np.cos(ang)], 1).astype(np.float32)        # (R, 2) lat, ant
    r = np.arange(0.0, max_mm, RAY_STEP_MM, dtype=np.float32)              # (K,)
    xy = centre[None, None, :] + r[None, :, None] * d[:, None, :]           # (R, K, 2)
    pts = np.concatenate([xy, np.full(xy.shape[:2] + (1,), z, np.float32)], -1)
    c, _ = heart.sample_local(pts.reshape(-1, 3), t)
    return (c.reshape(N_RAYS, -1) == code).sum(1) * RAY_STEP_MM


def _arc(profile: np.ndarray, arc: tuple[float, float]) -> float:
    ang = np.arange(N_RAYS) * 360.0 / N_RAYS
    sel = (ang >= arc[0]) & (ang <= arc[1])
    return float(np.median(profile[sel]))


def _walls(heart, z_positions, t_ed) -> dict:
    """Max, septal and lateral ED wall thickness (mm) over basal/mid slices."""
    length = heart.lv_length_mm()
    zs = [z for z in z_positions if 0.12 * length <= z <= 0.65 * length]
    if not zs:
        zs = [min(z_positions, key=lambda z: abs(z - 0.4 * length))]
    profs = [ray_profile(heart, z, t_ed, TISSUE["lv_myo"]) for z in zs]
    smooth = [np.median(np.stack([np.roll(p, k) for k in (-1, 0, 1)]), 0) for p in profs]
    sept = max(_arc(p, SEPTAL_ARC) for p in profs)
    latw = max(_arc(p, LATERAL_ARC) for p in profs)
    return {"max_wall_mm": float(max(p.max() for p in smooth)), "septal_wall_mm": sept,
            "lateral_wall_mm": latw, "septal_lateral_ratio": sept / max(latw, 1e-3)}


def _la_area(heart, t_es: float) -> float:
    """LA area (cm²) on a 4CH plane at ES, 1 mm pixels."""
    length = heart.lv_length_mm()
    plane = lax_plane(heart.frame, "4CH", 0.5 * length, FINE_MM, 320, 320, 8.0)
    local = heart.frame.to_local(plane.pixel_points()).reshape(-1, 3)
    codes, _ = heart.sample_local(local, t_es)
    return float((codes == TISSUE["la_blood"]).sum() * FINE_MM * FINE_MM / 100.0)


def measure_study(heart, z_positions: list[float]) -> dict[str, float]:
    """Reader-like measured values (keys latent.MEASURED_FIELDS) of the heart, from SAX slices at
    the given heart-local depths (mm; the acquired cine SAX slices)."""
    if len(z_positions) == 0:
        raise ValueError("measure_study needs at least one SAX slice depth (heart-local z, mm)")
    zp = sorted(float(z) for z in z_positions)
    spacing = _spacing(zp)
    half = heart.inplane_extent_mm()
    t_ed, t_es, t_rv_ed, t_rv_es = _phases(heart, zp, spacing, half)
    ed, es = _volumes(heart, zp, spacing, t_ed, half), _volumes(heart, zp, spacing, t_es, half)
    rv_ed = ed if t_rv_ed == t_ed else _volumes(heart, zp, spacing, t_rv_ed, half)
    rv_es = es if t_rv_es == t_es else _volumes(heart, zp, spacing, t_rv_es, half)
    bsa = heart.latent.bsa
    edv, esv = ed["lv"] / 1000.0, es["lv"] / 1000.0
    rv_edv, rv_esv = rv_ed["rv"] / 1000.0, rv_es["rv"] / 1000.0
    mass = ed["myo"] / 1000.0 * MYO_DENSITY
    mid = min(zp, key=lambda z: abs(z - 0.45 * heart.lv_length_mm()))
    out = {
        "lv_edv_ml": edv, "lv_esv_ml": esv, "lv_ef": 100.0 * (edv - esv) / max(edv, 1e-6),
        "lv_edvi": edv / bsa, "lv_esvi": esv / bsa, "lv_mass_g": mass, "lv_massi": mass / bsa,
        **_walls(heart, zp, t_ed),
        "rv_edv_ml": rv_edv, "rv_esv_ml": rv_esv, "rv_ef": 100.0 * (rv_edv - rv_esv) / max(rv_edv, 1e-6),
        "rv_edvi": rv_edv / bsa,
        "lge_percent": 100.0 * ed["lge"] / max(ed["myo"], 1e-6),
        "la_area_cm2": _la_area(heart, t_es),
        "pericardial_effusion_mm": float(ray_profile(heart, mid, t_ed, TISSUE["pericardial_fluid"],
                                                     max_mm=130.0).max()),
    }
    return {k: float(out[k]) for k in MEASURED_FIELDS}
