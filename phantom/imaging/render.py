"""MR image synthesis: every series of one synthetic study, rendered from the 3-D beating heart.

    render_study(latent, acq, profile, heart, frame, rng) -> list[RenderedSeries]

For each series the renderer (1) prescribes planes (geometry.sax_plane / lax_plane, or axial /
coronal / sagittal for the localizer), (2) samples the anatomy over each slice's slab with partial
volume (slab.SlabSampler), (3) maps tissue to signal with the sequence's model (signal.py) and
(4) applies the class-independent nuisance of the acquisition (artifacts.py): coil bias, wrap,
banding, mistrigger, motion, complex noise with k-space truncation, magnitude (or PSIR), and a
per-series intensity scale. Series come back in acquisition order: localizer, cines, T2, flow,
TI scout, LGE. Timing: cine frame k at k·RR/N + a 0-20 ms offset; LGE and T2 in mid-diastole.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from cmr_search.phantom.cases.latent import TISSUE, Acquisition, Latent
from cmr_search.phantom.heart.geometry import HeartFrame, Plane, lax_plane, sax_plane, unit
from cmr_search.phantom.imaging import artifacts as art
from cmr_search.phantom.imaging import signal as sig
from cmr_search.phantom.imaging.series import RenderedSeries
from cmr_search.phantom.imaging.slab import SignalFn, SlabSampler
from cmr_search.phantom.profiles import Profile
from cmr_search.phantom.randomness import patient_rng

LOCALIZER_ZOOM = 1.6          # localizer pixel spacing relative to the cine's (larger FOV)
FLOW_Z_MM = -20.0             # flow plane depth: above the mitral plane, through the aortic root
ARTIFACT_SLICE_P = 0.3        # chance that a given slice of an affected study shows the artifact
TEXTURE_AMP = 0.06           # peak relative amplitude of the smooth texture of body organs
TEXTURE_CODES = np.array([TISSUE[n] for n in ("liver", "muscle", "fat", "gastric", "bone")])
COVER_MM = 120.0              # SAX stacks span at least this (sax_extent: 84-130 mm, 95th pct 123)


@dataclass
class _Study:
    """What every series of one study shares."""
    latent: Latent
    acq: Acquisition
    profile: Profile
    heart: object                 # anatomy.Heart
    frame: HeartFrame
    rng: np.random.Generator
    nuisance: bool                # False: noise-, bias-, artifact- and misregistration-free
    tab: sig.TissueTable          # MR properties per tissue code
    bias: art.BiasField | None    # coil sensitivity (None when nuisance is off)
    rr: float                     # ms, RR interval
    lv_len: float                 # mm, LV length (base -> apex)
    lax_pose: dict                # view -> (in-plane jitter deg, display rotation deg)
    texture: tuple                # (wave vectors (K, 3) rad/mm, phases (K,), amplitudes (K,))
    labels: bool = True           # also render each series' label maps (RenderedSeries.tissue / lge_pct)


@dataclass
class _Recipe:
    """How to acquire one series (before nuisance)."""
    kind: str                     # one of series.SERIES_KINDS
    planes: list[Plane]           # one per slice
    trigger_ms: list[float]       # (F,) ms after the R wave
    signal_fn: SignalFn           # tissue -> clean signed signal
    reference: float              # nominal signal the SNR and the intensity scale refer to
    snr: float                    # requested SNR at `reference`
    static: bool = True           # body signal identical in all frames
    fine: bool = True             # use the profile's oversample / slab samples (else 1 / 1)
    bssfp: bool = False           # subject to off-resonance banding
    inversion_ms: list[float] | None = None   # (F,) TI per frame (LGE, TI scout), else None


# --- slice planning -------------------------------------------------------------------------------
def stack_spacing(n: int, spacing: float) -> float:
    """Centre-to-centre spacing of an n-slice SAX stack: the prescribed thickness + gap, widened
    to COVER_MM / n when n slices could not cover a large LV. COVER_MM is fixed (not this heart's
    length) so SpacingBetweenSlices carries no information about the LV size (shortcut audit)."""
    return float(max(spacing, COVER_MM / max(n, 1)))


def _stack(z_base: float, z_apex: float, n: int, spacing: float, drop: str | None) -> list[float]:
    """n long-axis depths, base first, centred on [z_base, z_apex] at stack_spacing(); `drop`
    ('base' | 'apex') leaves one slice's worth of that end uncovered."""
    sp = stack_spacing(n, spacing)
    span = (n - 1) * sp
    if drop == "base":
        start = z_base + sp
    elif drop == "apex":
        start = z_apex - sp - span
    else:
        start = 0.5 * (z_base + z_apex) - 0.5 * span
    return [float(start + i * sp) for i in range(n)]


def plan_sax(heart, acq: Acquisition, rng) -> list[float]:
    """z positions (heart-local mm, base first) of the cine SAX slices: acq.n_sax slices at spacing
    acq.slice_thickness + acq.slice_gap (see stack_spacing) centred on heart.sax_extent();
    'incomplete_coverage' in acq.artifacts drops a basal or apical slice's worth of coverage."""
    z_base, z_apex = heart.sax_extent()
    u = rng.random()
    drop = ("base" if u < 0.5 else "apex") if "incomplete_coverage" in acq.artifacts else None
    return _stack(z_base, z_apex, acq.n_sax, acq.slice_thickness + acq.slice_gap, drop)


def _lge_depths(st: _Study) -> list[float]:
    """LGE SAX depths: their own stack over the LV, never incomplete."""
    z_base, z_apex = st.heart.sax_extent()
    a = st.acq
    return _stack(z_base, z_apex, a.n_lge_sax, a.slice_thickness + a.slice_gap, None)


# --- plane helpers --------------------------------------------------------------------------------
def _sax(st: _Study, z: float, zoom: float = 1.0) -> Plane:
    a = st.acq
    return sax_plane(st.frame, z, a.pixel_spacing * zoom, a.rows, a.cols, a.slice_thickness)


def _lax(st: _Study, view: str) -> Plane:
    a, (jit, rot) = st.acq, st.lax_pose[view]
    return lax_plane(st.frame, view, 0.5 * st.lv_len, a.pixel_spacing, a.rows, a.cols,
                     a.slice_thickness, jitter_deg=jit, display_rot_deg=rot)


def _localizer_planes(st: _Study) -> list[Plane]:
    """Axial, coronal and sagittal planes through the heart centre (standard DICOM orientations)."""
    a, c = st.acq, st.frame.to_lps(np.array([0.0, 0.0, 0.5 * st.lv_len]))
    sp = a.pixel_spacing * LOCALIZER_ZOOM
    dirs = (((1, 0, 0), (0, 1, 0)), ((1, 0, 0), (0, 0, -1)), ((0, 1, 0), (0, 0, -1)))
    return [Plane(c.copy(), unit(r), unit(col), sp, a.rows, a.cols, a.slice_thickness)
            for r, col in dirs]


# --- timing ---------------------------------------------------------------------------------------
def _cine_triggers(st: _Study, n: int) -> list[float]:
    """k·RR/N plus a small first-frame offset (0-20 ms)."""
    off = st.rng.uniform(0.0, 20.0)
    return [float(off + k * st.rr / n) for k in range(n)]


def _diastole_trigger(st: _Study) -> float:
    """Mid-diastolic trigger delay (300-700 ms, inside the RR interval)."""
    t = st.rng.uniform(0.55, 0.75) * st.rr
    return float(np.clip(t, 300.0, min(700.0, st.rr - 50.0)))


# --- signal functions -----------------------------------------------------------------------------
def _cine_fn(st: _Study) -> SignalFn:
    table = sig.cine_table(st.tab, st.acq.flip_deg)
    lat = st.latent
    return lambda tis, lge, z, f: sig.cine_signal(table, tis, z, st.lv_len, lat.lv_ef)


def _table_fn(table: np.ndarray) -> SignalFn:
    return lambda tis, lge, z, f: table[tis]


def _lge_fn(st: _Study, ti_ms: float) -> SignalFn:
    return lambda tis, lge, z, f: sig.lge_signal(st.tab, tis, lge, ti_ms)


def _scout_fn(st: _Study, tis_ms: list[float]) -> SignalFn:
    return lambda tis, lge, z, f: sig.lge_signal(st.tab, tis, lge, tis_ms[f])


# --- rendering pipeline ---------------------------------------------------------------------------
def _flags(st: _Study, n: int, name: str) -> np.ndarray:
    """(n,) bool: the slices that show per-slice artifact `name` (>= 1 in an affected stack)."""
    hit = st.rng.random(n) < ARTIFACT_SLICE_P
    if n > 1 and not hit.any():
        hit[st.rng.integers(n)] = True
    return hit & (name in st.acq.artifacts) & st.nuisance


def _corrupt(st: _Study, rec: _Recipe, x: np.ndarray, smp: SlabSampler, trig: bool) -> np.ndarray:
    """(F, H, W) clean signal -> same with banding, wrap, mistrigger and coil bias."""
    a, plane = st.acq, smp.plane
    if rec.bssfp and "banding" in a.artifacts:
        lung = smp.pixel_tissue() == TISSUE["lung"]
        x = x * art.banding_gain(lung, plane.pixel_spacing, st.rng, a.field_strength)
    if "wrap" in a.artifacts:
        width = int(plane.cols * st.rng.uniform(0.15, 0.3))
        x = art.fold(x, *smp.beyond_edges(width, rec.trigger_ms[0] / st.rr, rec.signal_fn))
    if trig:
        x = art.mistrigger(x, st.rng) if x.shape[0] > 1 else art.ghost(x, st.rng)
    return x * st.bias.on_plane(plane)


def draw_texture(latent: Latent) -> tuple:
    """Smooth organ texture: K plane waves (wavelengths 30-100 mm), seeded by the study index and
    the patient's height and weight only (class-independent)."""
    rng = patient_rng(latent.study_index, latent.height_cm, latent.weight_kg, 8111)
    k = rng.normal(size=(6, 3))
    k *= (2 * np.pi / rng.uniform(30.0, 100.0, size=6) / np.linalg.norm(k, axis=1))[:, None]
    amp = rng.uniform(0.5, 1.0, size=6)
    return k, rng.uniform(0, 2 * np.pi, size=6), TEXTURE_AMP * amp / amp.sum()


def _texture(st: _Study, smp: SlabSampler) -> np.ndarray:
    """(H, W) float32 gain: 1 ± TEXTURE_AMP inside body organs (liver, muscle, fat, ...), 1
    elsewhere (blood and myocardium keep their exact contrast)."""
    k, ph, amp = st.texture
    tis = smp.pixel_tissue()                                               # (H, W)
    pts = smp.centres[smp.centres.shape[0] // 2].reshape(tis.shape + (3,))  # (H, W, 3) mid slab
    k, ph, amp = (np.asarray(v, np.float32) for v in (k, ph, amp))
    field = 1.0 + np.cos(pts @ k.T + ph) @ amp                              # (H, W)
    organ = np.isin(tis, TEXTURE_CODES)
    return np.where(organ, field, 1.0).astype(np.float32)


def _acquire(st: _Study, rec: _Recipe, x: np.ndarray, smp: SlabSampler, trig: bool,
             blur: bool) -> np.ndarray:
    """(F, H, W) clean signal of one slice -> (F, H, W) complex image, every nuisance applied."""
    z = art.acquire(_corrupt(st, rec, x, smp, trig), rec.reference / rec.snr, st.rng,
                    st.acq.acq_matrix if st.profile.kspace else None)
    if blur:
        si = np.array([0.0, 0.0, 1.0])     # breathing moves the anatomy superior-inferior
        d = np.array([smp.plane.col_dir @ si, smp.plane.row_dir @ si])     # (drow, dcol)
        z = art.motion_blur(z, d / max(np.linalg.norm(d), 1e-6), st.rng)
    return z


def _render(st: _Study, rec: _Recipe, psir: bool = False) -> list[RenderedSeries]:
    """Sample, corrupt and reconstruct one series slice by slice (plus its PSIR twin)."""
    k, n = (st.profile.oversample, st.profile.slab_samples) if rec.fine else (1, 1)
    times = [t / st.rr for t in rec.trigger_ms]
    n_sl, a = len(rec.planes), st.acq
    offsets = art.slice_offsets(st.rng, n_sl, a.misregistration_mm) * float(st.nuisance)
    trig, blur = _flags(st, n_sl, "mistrigger"), _flags(st, n_sl, "motion_blur")
    scale = np.float32(art.series_scale(st.rng, rec.reference) if st.nuisance else 1.0)
    shape = (n_sl, len(times), rec.planes[0].rows, rec.planes[0].cols)
    mag = np.empty(shape, np.float32)                      # (slices, F, H, W)
    ps = np.empty(shape, np.float32) if psir else None
    tissue = np.empty(shape, np.uint8) if st.labels else None
    lge = np.zeros(shape, np.uint8) if st.labels else None
    fibrosis = False
    for i, plane in enumerate(rec.planes):
        smp = SlabSampler(st.heart, st.frame, plane, k, n, offsets[i])
        x = smp.render(times, rec.signal_fn, rec.static, labels=st.labels)   # (F, H, W) clean
        if st.labels:
            tissue[i] = smp.tissue
            if smp.lge_pct is not None:
                lge[i], fibrosis = smp.lge_pct, True
        if st.nuisance:
            x = x * _texture(st, smp)
        z = _acquire(st, rec, x, smp, trig[i], blur[i]) if st.nuisance else x
        mag[i] = np.abs(z) * scale
        if psir:                               # same acquisition, phase-sensitive (signed) recon
            ps[i] = z.real * scale
    maps = (tissue, lge if fibrosis else None)
    out = [_series(rec, mag, "magnitude", maps)]
    return out + [_series(rec, ps, "psir", maps)] if psir else out


def _series(rec: _Recipe, images: np.ndarray, recon: str, maps: tuple) -> RenderedSeries:
    """maps: (tissue, lge_pct) label arrays of the series (None, None without labels)."""
    inv = None if rec.inversion_ms is None else [float(t) for t in rec.inversion_ms]
    return RenderedSeries(rec.kind, list(rec.planes), images,
                          [float(t) for t in rec.trigger_ms], inv, recon == "psir", recon, *maps)


# --- series ---------------------------------------------------------------------------------------
def _cine(st: _Study, kind: str, planes: list[Plane]) -> RenderedSeries:
    rec = _Recipe(kind, planes, _cine_triggers(st, st.acq.n_phases), _cine_fn(st),
                  sig.cine_reference(st.tab, st.acq.flip_deg), st.acq.snr_cine, bssfp=True)
    return _render(st, rec)[0]


def _lge(st: _Study, kind: str, planes: list[Plane]) -> list[RenderedSeries]:
    ti = float(st.acq.ti_ms)
    rec = _Recipe(kind, planes, [_diastole_trigger(st)], _lge_fn(st, ti),
                  sig.lge_reference(st.tab), st.acq.snr_lge, inversion_ms=[ti])
    return _render(st, rec, psir=st.acq.psir)


def _localizer(st: _Study) -> RenderedSeries:
    t = st.rng.uniform(0.0, st.rr)          # not gated: any phase
    rec = _Recipe("localizer", _localizer_planes(st), [t], _cine_fn(st),
                  sig.cine_reference(st.tab, st.acq.flip_deg), st.acq.snr_cine, fine=False)
    return _render(st, rec)[0]


def _ti_scout(st: _Study) -> RenderedSeries:
    """Look-Locker: one mid SAX slice, frames across the cycle at increasing TI."""
    n = int(st.rng.integers(15, 26))
    step = st.rng.uniform(35.0, 55.0)       # TI increment: scanner setting, not this heart's RR
    ti0 = st.rng.uniform(80.0, 120.0)
    tis = [float(ti0 + k * step) for k in range(n)]
    trig = [float((k * step) % st.rr) for k in range(n)]
    rec = _Recipe("ti_scout", [_sax(st, 0.5 * st.lv_len)], trig, _scout_fn(st, tis),
                  sig.lge_reference(st.tab), st.acq.snr_lge, static=False, fine=False,
                  inversion_ms=tis)
    return _render(st, rec)[0]


def _t2(st: _Study) -> RenderedSeries:
    """Dark-blood T2 SAX: basal, mid and apical slices, one mid-diastolic frame."""
    planes = [_sax(st, f * st.lv_len) for f in (0.25, 0.5, 0.75)]
    rec = _Recipe("t2", planes, [_diastole_trigger(st)], _table_fn(sig.t2_table(st.tab, st.rr)),
                  sig.t2_reference(st.tab, st.rr), 0.6 * st.acq.snr_cine, fine=False)
    return _render(st, rec)[0]


def _flow(st: _Study) -> RenderedSeries:
    """Phase-contrast magnitude through the aortic root, one slice over the cycle."""
    table = sig.flow_table(st.tab)
    rec = _Recipe("flow", [_sax(st, FLOW_Z_MM)], _cine_triggers(st, st.acq.n_phases),
                  _table_fn(table), float(table[TISSUE["muscle"]]), 0.5 * st.acq.snr_cine,
                  fine=False)
    return _render(st, rec)[0]


DISTRACTORS: dict[str, Callable[[_Study], RenderedSeries]] = {
    "localizer": _localizer, "ti_scout": _ti_scout, "t2": _t2, "flow": _flow}


def _setup(latent, acq, profile, heart, frame, rng, nuisance: bool, labels: bool) -> _Study:
    lv_len = float(heart.lv_length_mm())
    centre = frame.to_lps(np.array([0.0, 0.0, 0.5 * lv_len]))
    bias = art.draw_bias(rng, centre, acq.bias_ratio) if nuisance else None
    pose = {v: (float(rng.normal(0.0, 5.0)), float(rng.uniform(-15.0, 15.0)))
            for v in ("2CH", "3CH", "4CH")}
    return _Study(latent, acq, profile, heart, frame, rng, nuisance,
                  sig.tissue_table(latent, acq.field_strength), bias, 60000.0 / latent.hr_bpm,
                  lv_len, pose, draw_texture(latent), labels)


def render_study(latent: Latent, acq: Acquisition, profile: Profile, heart, frame: HeartFrame,
                 rng: np.random.Generator, *, nuisance: bool = True,
                 labels: bool = True) -> list[RenderedSeries]:
    """Every series of the study, in acquisition order. `nuisance=False` (tests, previews of pure
    contrast) renders without noise, bias, misregistration, artifacts or intensity scale.
    `labels` (default) also renders every series' label maps (RenderedSeries.tissue / lge_pct, from
    the same samples: a few per cent of the time); the images are the same either way."""
    unknown = set(acq.distractors) - set(DISTRACTORS)
    if unknown:
        raise ValueError(f"unknown distractor series {sorted(unknown)}; "
                         f"known: {', '.join(DISTRACTORS)}")
    st = _setup(latent, acq, profile, heart, frame, rng, nuisance, labels)
    out = [_localizer(st)] if "localizer" in acq.distractors else []
    out.append(_cine(st, "cine_sax", [_sax(st, z) for z in plan_sax(heart, acq, rng)]))
    out += [_cine(st, f"cine_{v.lower()}", [_lax(st, v)]) for v in acq.cine_lax]
    out += [DISTRACTORS[d](st) for d in ("t2", "flow", "ti_scout") if d in acq.distractors]
    out += _lge(st, "lge_sax", [_sax(st, z) for z in _lge_depths(st)])
    for v in acq.lge_lax:
        out += _lge(st, f"lge_{v.lower()}", [_lax(st, v)])
    return out
