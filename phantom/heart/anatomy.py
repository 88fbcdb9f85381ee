"""The analytic 3-D beating heart (phantom.md §0 item 1, §1.2, §1.3, §7.1 item 2).

`Heart(latent, frame).sample(pts, t)` labels any LPS points with a tissue code (latent.TISSUE) and an
LGE fibrosis fraction, at cycle time t (fraction of RR, 0 = end-diastole). The body (body.py) is static;
the heart is built in heart-local coordinates (lat, ant, z) of geometry.HeartFrame as radial layers
around the LV long axis, all tabulated over myocardial coordinates (segments.py: angle phi, level s):
  LV cavity   radius R·Rn(phi, s)·g(s)·contraction(t); g(s) a truncated prolate-ellipsoid profile,
              Rn the shape (septal flattening, apical-HCM spade, aneurysm); volume solved = EDV / ESV;
  LV wall     r_epi² = r_endo² + A(phi, s): myocardial area conserved per angle and level (systolic
              thickening; akinetic cells do not thicken); ED thickness from latent.wall_ed_mm;
  RV          crescent on the septal side between the insertion points (30°..150°), depth H(t)·b,
              H solved so the crescent volume is the RV EDV / ESV; free wall rv_wall_mm outside it;
  fat, fluid  epicardial fat, then the pericardial effusion layer (deeper posteriorly);
  apex cap    beyond the cavity tip: ellipsoidal cap of thickness wall_ed_mm[16] (segment 17);
  pericardium a thin fibrous layer (PERI_MM) outside fat / fluid;
  cavities    papillary muscles, LV trabecular fringe, RV trabeculae, moderator band (cavity.py);
  above base  atria, aortic root, AV-groove fat (atria.py).
The body (body.py) is placed around the heart's outer surface (_hull_lps) with a class-independent
habitus (body.habitus from study index, height and weight).
The base descends toward the fixed apex by base_descent_mm·f(t) (motion.py), so s is a material
coordinate and the LGE table (lge.py) moves with the wall.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from cmr_search.phantom.cases.latent import TISSUE, Latent
from cmr_search.phantom.heart import atria, cavity, lge, motion
from cmr_search.phantom.heart.body import Body, habitus
from cmr_search.phantom.heart.body import labels as body_labels
from cmr_search.phantom.heart.geometry import HeartFrame
from cmr_search.phantom.heart.segments import (NPHI, NS, PHI_DEG, RV_INSERTION_DEG, S, angle_diff_deg, smooth_map,
                                              smoothstep)

NONE = atria.NONE
SC = 0.25                         # s of the LV equator (base is truncated above it)
DPHI = 2.0 * np.pi / NPHI         # table cell angle, rad
RV_END_S = 0.80                   # RV cavity reaches this fraction of the LV cavity length
BULGE_MM = (3.0, 8.0)             # ARVC-like free-wall bulge: ED depth, extra systolic excursion
# Radial layer index (number of boundaries inside the point) -> tissue code.
LAYER_CODES = np.array([TISSUE["lv_blood"], TISSUE["lv_myo"], TISSUE["rv_blood"], TISSUE["rv_myo"],
                        TISSUE["fat"], TISSUE["pericardial_fluid"], TISSUE["pericardium"], NONE],
                       np.uint8)
PERI_MM = 1.2                     # parietal pericardium thickness (thin dark line)
NCOL = 9                          # state table columns, see Heart._make_state


def _angle_lut(q: int = 1024) -> np.ndarray:
    """(8·q,) angle cell of each (octant, quantised tangent) pair; see angle_bin."""
    octant = np.arange(8)[:, None]
    base = np.arctan((np.arange(q) + 0.5) / q)[None, :]
    ang = np.where(octant & 1, np.pi / 2 - base, base)            # |y| > |x|
    ang = np.where(octant & 4, np.pi - ang, ang)                   # x < 0
    ang = np.where(octant & 2, 2 * np.pi - ang, ang)               # y < 0
    return (np.floor(ang / (2 * np.pi) * NPHI).astype(np.int32) % NPHI).ravel()


ANGLE_Q = 1024
ANGLE_LUT = _angle_lut(ANGLE_Q)


def angle_bin(lat, ant) -> np.ndarray:
    """(n,) int32 table cell of phi = atan2(-lat, ant) (a lookup; numpy's atan2 is slow)."""
    y, x = -lat, ant
    ax, ay = np.abs(x), np.abs(y)
    mx, mn = np.maximum(ax, ay), np.minimum(ax, ay)
    q = (mn * np.float32(ANGLE_Q - 0.01) / np.maximum(mx, np.float32(1e-20))).astype(np.int32)
    octant = (ay > ax).view(np.int8) + 2 * (y < 0).view(np.int8) + 4 * (x < 0).view(np.int8)
    return ANGLE_LUT[octant.astype(np.int32) * ANGLE_Q + q]


def profile_g(s):
    """Truncated prolate-ellipsoid radius profile (1 at the equator, 0 at the cavity tip)."""
    x = (np.asarray(s, dtype=np.float32) - SC) / (1.0 - SC)
    return np.sqrt(np.clip(1.0 - x * x, 0.0, None))


def _g2_cells() -> np.ndarray:
    """(NS,) exact integral of g(s)² over each s cell."""
    edges = np.arange(NS + 1) / NS
    anti = edges - (edges - SC) ** 3 / (3.0 * (1.0 - SC) ** 2)
    return np.diff(anti)


class Heart:
    """Analytic beating heart of one study; see the module docstring."""

    # RV crescent shape (a subclass or an instance may change them before __init__ builds the RV;
    # phantom.randomized does, for shape variety in segmenter training)
    rv_insertion_deg: tuple[float, float] = RV_INSERTION_DEG   # anterior / inferior insertion angles
    rv_end_s: float = RV_END_S        # RV cavity reaches this fraction of the LV cavity length
    rv_base_width: float = 0.6        # crescent depth at the annulus relative to mid-ventricle
    rv_arc_power: float = 0.35        # crescent depth across the arc: sin(pi u) ** power (small = blunt)

    def __init__(self, latent: Latent, frame: HeartFrame):
        self.latent, self.frame = latent, frame
        self.es_fraction: float = motion.es_fraction(latent.hr_bpm)   # ES time, fraction of RR
        self._rot = frame.rotation.astype(np.float32)                 # (3, 3) rows e_lat, e_ant, u
        self._org = frame.origin.astype(np.float32)                   # (3,)
        self._g2 = _g2_cells()                                        # (NS,)
        self._build_lv()
        self._build_rv()
        self._build_layers()
        self._atria = atria.Atria.build(latent, float(self._r0[:, 0].mean() * profile_g(0.0)))
        self._lge = lge.lge_table(latent, self._radius + 0.5 * float(np.mean(latent.wall_ed_mm)),
                                  self._len0).ravel()                 # (NPHI*(NS+1)*ND,)
        self._rv_lge, self._atria_lge = lge.side_lge(latent)
        self._cav = cavity.Cavity.build(latent)
        self._cache: dict[float, dict] = {}
        self._bounds()
        hull, contact = self._hull_lps()
        self._body = Body.around(frame.origin, latent.pleural_effusion_mm, hull,
                                 habitus(latent.study_index, latent.height_cm, latent.weight_kg),
                                 contact)

    def set_lv_trabeculae(self, lv_trab: np.ndarray, max_frac: float = 0.0) -> None:
        """Replace the LV trabecular fringe (cavity.Cavity.lv_trab, mm deep; `max_frac` > 0: at most that
        fraction of the local cavity radius, Cavity.lv_trab_frac); cached phase states go."""
        self._cav = replace(self._cav, lv_trab=lv_trab, lv_trab_frac=float(max_frac))
        self._cache.clear()

    # --- construction -------------------------------------------------------------------------
    def _shape(self) -> np.ndarray:
        """(NPHI, NS) cavity shape factor Rn: septal flattening, apical spade, aneurysm."""
        lat = self.latent
        phi = np.deg2rad(PHI_DEG)[:, None]
        h = 1.0 - 0.3 * lat.septal_flattening
        rn = np.minimum(1.0, h / np.maximum(np.sin(phi), 1e-3)) * np.ones((1, NS))
        if lat.subtype == "apical":
            rn = rn * (1.0 - 0.45 * smoothstep(S, 0.55, 0.95))[None, :]
        if lat.aneurysm:
            rn = rn * (1.0 + 0.3 * smoothstep(S, 0.6, 0.85))[None, :]
        return rn

    def _build_lv(self) -> None:
        lat = self.latent
        self.edv = lat.lv_edvi * lat.bsa * 1000.0                     # mm³
        self.esv = self.edv * (1.0 - lat.lv_ef / 100.0)
        rn = self._shape()                                            # (NPHI, NS)
        alpha = 1.9 - 0.7 * float(np.clip(lat.sphericity, 0.0, 1.0))  # length / diameter
        unit = alpha * 0.5 * DPHI * np.sum(rn * rn * self._g2[None, :]) * 2.0
        self._radius = float((self.edv / unit) ** (1.0 / 3.0))        # equatorial radius mm
        self._len0 = 2.0 * alpha * self._radius                       # cavity length at ED
        self._r0 = self._radius * rn                                  # (NPHI, NS) ED radius / g
        w = np.maximum(smooth_map(lat.wall_ed_mm), 1.0)               # (NPHI, NS) ED wall mm
        self._p = 2.0 * self._r0 * w                                  # area term ∝ g
        self._q = w * w                                               # area term, constant
        self._c = smooth_map(lat.contractility)                       # (NPHI, NS)
        self._w17 = max(float(lat.wall_ed_mm[16]), 1.0)
        self._z_apex = self._len0 + self._w17                         # epicardial apex (fixed)
        self._k = motion.solve_contraction(self._r0, self._c, self._g2, self._length(1.0), DPHI,
                                           self.esv)

    def _cap(self, f: float) -> float:
        """Apical cap thickness (mm) at ejection fraction f of the cycle."""
        c17 = float(np.clip(self.latent.contractility[16], -0.5, 1.3))
        return self._w17 * (1.0 + 0.35 * c17 * f)

    def _length(self, f: float) -> float:
        """Cavity length (mm) at ejection fraction f: base descends, apex fixed."""
        return self._z_apex - self._cap(f) - self.latent.base_descent_mm * f

    def _r_epi_cells(self, f: float) -> np.ndarray:
        """(NPHI, NS) LV epicardial radius at the cell centres."""
        g = profile_g(S)[None, :].astype(np.float64)
        ren = motion.contracted(self._r0, self._c, self._k, f) * g
        return np.sqrt(ren * ren + self._p * g + self._q)

    def _build_rv(self) -> None:
        lat = self.latent
        a0, a1 = self.rv_insertion_deg
        u = np.clip((PHI_DEG - a0) / (a1 - a0), 0.0, 1.0)
        ang = np.sin(np.pi * u) ** self.rv_arc_power                  # (NPHI,)
        w0 = self.rv_base_width
        lon = np.sqrt(np.clip(1.0 - (S / self.rv_end_s) ** 2, 0.0, None)) \
            * (w0 + (1.0 - w0) * smoothstep(S, 0.0, 0.2))             # (NS,) narrower at the annulus
        lon_w = np.sqrt(np.clip(1.0 - (S / (self.rv_end_s + 0.06)) ** 2, 0.0, None))
        self._rv_b = ang[:, None] * lon[None, :]                      # (NPHI, NS)
        self._rv_w = (np.clip(ang / 0.12, 0, 1)[:, None] * np.clip(lon_w / 0.12, 0, 1)[None, :]
                      * lat.rv_wall_mm)
        bump = np.exp(-(angle_diff_deg(PHI_DEG, 70.0) / 18.0) ** 2)[:, None] \
            * np.exp(-((S - 0.45) / 0.12) ** 2)[None, :]
        self._rv_bump = bump * ang[:, None] if lat.rv_bulge else np.zeros_like(bump)
        edv, ef = lat.rv_edvi * lat.bsa * 1000.0, lat.rv_ef / 100.0
        self.rv_edv, self.rv_esv = edv, edv * (1.0 - ef)
        dA = DPHI / NS
        self._h_ed = motion.solve_crescent(self._r_epi_cells(0.0), self._rv_b, self._bulge(0.0), dA,
                                           self._length(0.0), self.rv_edv)
        self._h_es = motion.solve_crescent(self._r_epi_cells(1.0), self._rv_b, self._bulge(1.0), dA,
                                           self._length(1.0), self.rv_esv)

    def _bulge(self, f: float) -> np.ndarray:
        return self._rv_bump * (BULGE_MM[0] + BULGE_MM[1] * f)

    def _build_layers(self) -> None:
        """Epicardial fat and pericardial fluid depth tables (NPHI, NS), constant in time."""
        phi = PHI_DEG[:, None]
        groove = sum(np.exp(-(angle_diff_deg(phi, a) / 12.0) ** 2) for a in self.rv_insertion_deg)
        self._fat = (1.2 + 4.0 * np.exp(-S / 0.08)[None, :] + 2.5 * groove
                     + 1.5 * smoothstep(S, 0.8, 1.0)[None, :]) * np.ones((NPHI, 1))
        e0 = max(float(self.latent.pericardial_effusion_mm), 0.0)
        a = np.deg2rad(PHI_DEG)
        dirs = np.cos(a)[:, None] * self.frame.e_ant - np.sin(a)[:, None] * self.frame.e_lat
        posterior = dirs[:, 1]                                        # LPS +y component
        self._fluid = e0 * (0.75 + 0.25 * posterior)[:, None] * np.ones((1, NS))

    def _bounds(self) -> None:
        """Cylinder (radius, z range) in heart-local coordinates outside which nothing is heart."""
        outer = max(float(np.max(self._r_epi_cells(f) + self._h_ed * self._rv_b + self._rv_w
                                 + self._bulge(1.0) + self._fat + self._fluid + PERI_MM))
                    + abs(self._h_es - self._h_ed) for f in (0.0, 1.0))
        self._rv_extent = float(max(np.max(self._r_epi_cells(f) + max(self._h_ed, self._h_es)
                                           * self._rv_b + self._rv_w + self._bulge(1.0))
                                    for f in (0.0, 1.0)) + 3.0)
        r_at, z_at = self._atria.extent()
        self._rho_max = float(max(outer, r_at) + 2.0)
        self._z_lo = z_at
        self._z_hi = float(self._z_apex + np.max(self._fat + self._fluid) + PERI_MM + 2.0)

    def _hull_lps(self) -> tuple[np.ndarray, np.ndarray]:
        """(N, 3) LPS points on the heart's outer surface at ED (ventricles, apex, atria), and the
        (M, 3) mid-ventricular ones the anterior chest wall rests on."""
        r = self._r_epi_cells(0.0) + self._h_ed * self._rv_b + self._rv_w + self._fat  # (NPHI, NS)
        a = np.deg2rad(PHI_DEG)[:, None]
        z = np.broadcast_to(S[None, :] * self._length(0.0), r.shape)
        ring = np.stack([-np.sin(a) * r, np.cos(a) * r, z], -1)                # (NPHI, NS, 3)
        rv_side = (PHI_DEG > 40.0) & (PHI_DEG < 140.0)                       # RV free wall
        mid = ring[rv_side][:, (S > 0.3) & (S < 0.75)].reshape(-1, 3)
        pts = [ring.reshape(-1, 3)[::3],
               np.array([[0.0, 0.0, self._z_apex + 2.0]])]
        at = self._atria
        for c, ax, roof in ((at.la_centre, at.la_axes, at.la_roof),
                            (at.ra_centre, at.ra_axes, at.ra_roof)):
            for d in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                pts.append(np.array([[c[0] + d[0] * ax[0], c[1] + d[1] * ax[1], 0.5 * roof]]))
        return self.frame.to_lps(np.concatenate(pts)), self.frame.to_lps(mid)

    # --- state at time t ----------------------------------------------------------------------
    def _state(self, t: float) -> dict:
        key = round(float(t) % 1.0, 9)
        st = self._cache.get(key)
        if st is None:
            if len(self._cache) > 256:
                self._cache.clear()
            st = self._cache[key] = self._make_state(key)
        return st

    def _make_state(self, t: float) -> dict:
        f = motion.ejection_curve(t, self.es_fraction)
        h = self._h_ed + (self._h_es - self._h_ed) * f
        hc = h * self._rv_b + self._bulge(f)
        ho = hc + self._rv_w
        fl = ho + self._fat + self._fluid
        tab = np.stack([motion.contracted(self._r0, self._c, self._k, f), self._p, self._q, hc,
                        ho, ho + self._fat, fl, self._fat, fl + PERI_MM],
                       axis=-1)    # (NPHI, NS, NCOL): radius/g, area terms, outer offsets, fat
        z_base = self.latent.base_descent_mm * f
        cap = self._cap(f)
        st = {"tab": tab.reshape(-1, NCOL).astype(np.float32), "z_base": z_base,
              "z_tip": self._z_apex - cap, "cap": cap, "f": f}
        st["thrombus"] = self._thrombus(st) if self.latent.thrombus else None
        return st

    def _thrombus(self, st: dict) -> tuple[np.ndarray, float]:
        """(centre (lat, ant, z), radius) of the apical thrombus at this state."""
        s0 = 0.88
        i = int(s0 * NS)
        r_en = float(st["tab"][i, 0] * profile_g(s0))               # anterior (phi ~ 0) cell
        rad = float(np.clip(0.55 * r_en, 4.0, 11.0))
        z = st["z_base"] + s0 * (st["z_tip"] - st["z_base"])
        return np.array([0.0, max(r_en - 0.6 * rad, 0.0), z]), rad

    # --- public API ---------------------------------------------------------------------------
    def sax_extent(self) -> tuple[float, float]:
        """(z_base, z_apex) heart-local mm at ED: a SAX stack from a few mm above the mitral plane
        to the epicardial apex covers the LV."""
        return -6.0, float(self._z_apex)

    def lv_length_mm(self) -> float:
        """Base-to-apex (epicardial) length at ED, mm."""
        return float(self._z_apex)

    def inplane_extent_mm(self) -> float:
        """Largest distance (mm) from the LV long axis of the LV and RV walls over the cycle."""
        return self._rv_extent

    def cavity_volume_ml(self, t: float) -> float:
        """Analytic LV cavity volume (mL) at time t (what the volume solve targets)."""
        st = self._state(t)
        r = st["tab"][:, 0].reshape(NPHI, NS).astype(np.float64)
        return motion.cavity_volume(r, self._g2, st["z_tip"] - st["z_base"], DPHI) / 1000.0

    def sample(self, pts: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
        """pts (..., 3) float LPS mm; t in [0, 1) fraction of RR (0 = ED). Returns tissue (...,)
        uint8 codes of latent.TISSUE, and lge (...,) float32 fibrosis fraction 0..1 (0 outside
        LV myocardium / RV myocardium / atrial wall)."""
        pts = np.asarray(pts)
        if pts.shape[-1] != 3:
            raise ValueError(f"pts must have a last axis of 3 (LPS x, y, z); got shape {pts.shape}")
        shape = pts.shape[:-1]
        flat = pts.reshape(-1, 3)
        tissue = np.empty(flat.shape[0], np.uint8)                    # (N,)
        lge_out = np.zeros(flat.shape[0], np.float32)
        local = self._to_local(flat)                                  # (N, 3)
        idx = np.flatnonzero(self._in_bounds(local))
        rest = np.ones(flat.shape[0], bool)
        if idx.size:
            codes, lg = self.sample_local(local[idx], t)
            hit = idx[codes != NONE]
            tissue[hit], lge_out[hit] = codes[codes != NONE], lg[codes != NONE]
            rest[hit] = False
        tissue[rest] = body_labels(self._body, flat[rest] if idx.size else flat)
        return tissue.reshape(shape), lge_out.reshape(shape)


    def _to_local(self, flat: np.ndarray) -> np.ndarray:
        """(N, 3) LPS -> (N, 3) float32 heart-local (explicit products: matmul with a 3x3 is slow)."""
        d = [flat[:, i].astype(np.float32) - self._org[i] for i in range(3)]
        out = np.empty((flat.shape[0], 3), np.float32)
        for r in range(3):
            out[:, r] = d[0] * self._rot[r, 0] + d[1] * self._rot[r, 1] + d[2] * self._rot[r, 2]
        return out

    def _in_bounds(self, local: np.ndarray) -> np.ndarray:
        z = local[:, 2]
        rho2 = local[:, 0] * local[:, 0] + local[:, 1] * local[:, 1]
        return (rho2 < self._rho_max ** 2) & (z > self._z_lo) & (z < self._z_hi)

    def sample_local(self, local: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Heart only: local (n, 3) heart-local (lat, ant, z) mm -> codes (n,) uint8 (NONE = 255
        where no heart structure) and lge (n,) float32."""
        st = self._state(t)
        local = np.asarray(local, np.float32)
        lat, ant, z = local[:, 0], local[:, 1], local[:, 2]
        rho = np.sqrt(lat * lat + ant * ant)
        iphi = angle_bin(lat, ant)
        s = (z - np.float32(st["z_base"])) * np.float32(1.0 / (st["z_tip"] - st["z_base"]))
        codes, lg = self._wall(st, lat, ant, z, rho, iphi, s)
        for sel, fn in ((s >= 1, self._apex), (s < 0, self._above)):
            i = np.flatnonzero(sel)
            if i.size:
                codes[i], lg[i] = fn(st, lat[i], ant[i], z[i], rho[i], iphi[i], s[i])
        return codes, lg

    def sample_stack(self, grid: np.ndarray, zs, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Heart only, fast path for SAX stacks: grid (G, 2) in-plane (lat, ant) mm, zs (Z,) depths
        -> codes (Z, G) uint8 (NONE = 255 outside the heart) and lge (Z, G) float32."""
        st = self._state(t)
        grid = np.asarray(grid, np.float32)
        lat, ant = grid[:, 0], grid[:, 1]
        rho, iphi = np.sqrt(lat * lat + ant * ant), angle_bin(lat, ant)
        codes = np.empty((len(zs), len(grid)), np.uint8)
        lg = np.zeros(codes.shape, np.float32)
        span = st["z_tip"] - st["z_base"]
        for j, z in enumerate(np.asarray(zs, np.float64)):
            s = (z - st["z_base"]) / span
            th = st["thrombus"]
            if not 0.0 <= s < 1.0 or th is not None and abs(z - th[0][2]) < th[1]:
                pts = np.concatenate([grid, np.full((len(grid), 1), z, np.float32)], axis=1)
                codes[j], lg[j] = self.sample_local(pts, t)
                continue
            codes[j], lg[j] = self._ring(st, lat, ant, rho, iphi, float(s))
        return codes, lg

    def _ring(self, st, lat, ant, rho, iphi, s: float):
        """One SAX slice at level s: per-angle boundaries, then a lookup per point."""
        i_s = min(int(s * NS), NS - 1)
        row = st["tab"][np.arange(NPHI) * NS + i_s]                  # (NPHI, NCOL)
        g = np.float32(profile_g(s))
        b1 = row[:, 0] * g
        b2 = np.sqrt(b1 * b1 + row[:, 1] * g + row[:, 2])
        bounds = [b1, b2] + [b2 + row[:, k] for k in (3, 4, 5, 6, 8)]
        layer = np.zeros(rho.shape, np.uint8)
        for b in bounds:
            layer += rho >= b[iphi]
        codes = LAYER_CODES[layer]
        z_rel = (s - cavity.MB_S) * (st["z_tip"] - st["z_base"])
        cavity.paint(self._cav, st, codes, layer, (lat, ant, rho, iphi), (np.int32(i_s),
                     np.float32(s), g, z_rel), (b1[iphi], b2[iphi], row[iphi, 3]))
        lg = np.zeros(rho.shape, np.float32)
        myo = np.flatnonzero(layer == 1)
        ip = iphi[myo]
        depth = (rho[myo] - b1[ip]) / np.maximum(b2[ip] - b1[ip], 1e-3)
        lg[myo] = self._lge_at(ip, np.full(myo.size, i_s, np.int32), depth)
        if self._rv_lge > 0:
            lg[layer == 3] = self._rv_lge
        return codes, lg

    # --- regions ------------------------------------------------------------------------------
    def _wall(self, st, lat, ant, z, rho, iphi, s):
        """Radial layers LV blood | LV myo | RV blood | RV myo | fat | fluid (valid for 0 <= s < 1;
        computed for every point, the caller overrides the apex and above-base regions)."""
        i_s = np.clip(s * np.float32(NS), 0, NS - 1).astype(np.int32)
        row = np.take(st["tab"], iphi * NS + i_s, axis=0)            # (n, 8)
        g = profile_g(s)
        b1 = row[:, 0] * g
        b2 = np.sqrt(b1 * b1 + row[:, 1] * g + row[:, 2])
        layer = (rho >= b1).view(np.uint8) + (rho >= b2)
        for k in (3, 4, 5, 6, 8):
            layer += rho >= b2 + row[:, k]
        codes = LAYER_CODES[layer]
        z_rel = (s - cavity.MB_S) * np.float32(st["z_tip"] - st["z_base"])
        cavity.paint(self._cav, st, codes, layer, (lat, ant, rho, iphi), (i_s, s, g, z_rel),
                     (b1, b2, row[:, 3]))
        lg = np.zeros(rho.shape, np.float32)
        myo = np.flatnonzero(layer == 1)
        depth = (rho[myo] - b1[myo]) / np.maximum(b2[myo] - b1[myo], 1e-3)
        lg[myo] = self._lge_at(iphi[myo], i_s[myo], depth)
        if self._rv_lge > 0:
            lg[layer == 3] = self._rv_lge
        if st["thrombus"] is not None:
            c, rad = st["thrombus"]
            d2 = (lat - c[0]) ** 2 + (ant - c[1]) ** 2 + (z - c[2]) ** 2
            codes[(layer == 0) & (d2 < rad * rad)] = TISSUE["thrombus"]
        return codes, lg

    def _lge_at(self, iphi, i_s, depth):
        i_d = np.clip((depth * lge.ND).astype(np.int32), 0, lge.ND - 1)
        return self._lge[(iphi * (NS + 1) + i_s) * lge.ND + i_d]

    def _apex(self, st, lat, ant, z, rho, iphi, s):
        """s >= 1: ellipsoidal cap (segment 17) with fat and fluid layers around it."""
        row = st["tab"][iphi * NS + NS - 1]
        a, c = np.sqrt(row[:, 2]), np.float32(st["cap"])
        dz = z - np.float32(st["z_tip"])
        codes = np.full(rho.shape, NONE, np.uint8)
        lg = np.zeros(rho.shape, np.float32)
        layers = ((0.0, TISSUE["lv_myo"]), (row[:, 7], TISSUE["fat"]),
                  (row[:, 7] + row[:, 6] - row[:, 5], TISSUE["pericardial_fluid"]),
                  (row[:, 7] + row[:, 8] - row[:, 5], TISSUE["pericardium"]))
        q_myo = None
        for extra, code in reversed(layers):
            q = (rho / (a + extra)) ** 2 + (dz / (c + extra)) ** 2
            codes[q < 1] = code
            q_myo = q
        myo = np.flatnonzero(q_myo < 1)
        lg[myo] = self._lge_at(iphi[myo], np.full(myo.size, NS, np.int32), np.sqrt(q_myo[myo]))
        return codes, lg

    def _above(self, st, lat, ant, z, rho, iphi, s):
        """s < 0: atria, aortic root and AV-groove fat above the base."""
        row = st["tab"][iphi * NS]
        g0 = profile_g(0.0)
        r_ep = np.sqrt((row[:, 0] * g0) ** 2 + row[:, 1] * g0 + row[:, 2])
        edge = r_ep + row[:, 5]
        codes = np.full(rho.shape, NONE, np.uint8)
        atria.classify(self._atria, lat, ant, z, edge, float(st["z_base"]), codes)
        lg = np.where(codes == TISSUE["atrial_wall"], np.float32(self._atria_lge), np.float32(0))
        return codes, lg.astype(np.float32)
