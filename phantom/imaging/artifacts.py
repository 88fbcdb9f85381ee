"""Acquisition nuisance of the phantom (phantom.md §2.4): coil bias, breath-hold misregistration,
Rician noise, k-space truncation, optional artifacts (banding, mistrigger, wrap, motion blur).

Everything here is drawn from the acquisition and the `rng` only, never from the class or the
latent, so none of it can become a label shortcut. Image arrays are (F, H, W): frames, rows,
columns; the phase-encode axis is W (along an image row: DICOM InPlanePhaseEncodingDirection ROW),
the frequency axis H. `acq_matrix` = (frequency, phase) lines acquired.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import fft, ndimage


# --- coil sensitivity -----------------------------------------------------------------------------
@dataclass(frozen=True)
class BiasField:
    """Smooth multiplicative coil sensitivity: Gaussian lobes of anterior/posterior coils."""
    centers: np.ndarray   # (K, 3) LPS mm, lobe centres
    widths: np.ndarray    # (K,) mm, lobe Gaussian sigma
    amps: np.ndarray      # (K,) relative lobe amplitudes
    gamma: float          # exponent that sets max/min across the heart to the requested ratio
    norm: float           # divisor that makes the mean over the heart 1

    def raw(self, pts) -> np.ndarray:
        d2 = ((np.asarray(pts, np.float64)[..., None, :] - self.centers) ** 2).sum(-1)  # (..., K)
        return 0.25 + (self.amps * np.exp(-0.5 * d2 / self.widths ** 2)).sum(-1)

    def __call__(self, pts) -> np.ndarray:
        """(..., 3) LPS points -> (...,) float32 gain."""
        return (self.raw(pts) ** self.gamma / self.norm).astype(np.float32)

    def on_plane(self, plane) -> np.ndarray:
        """(H, W) float32 gain at a plane's pixel centres; each lobe is separable in the plane's
        (row, column) coordinates because row_dir ⟂ col_dir."""
        a = (np.arange(plane.cols) - (plane.cols - 1) / 2) * plane.pixel_spacing   # (W,) mm
        b = (np.arange(plane.rows) - (plane.rows - 1) / 2) * plane.pixel_spacing   # (H,) mm
        raw = np.full((plane.rows, plane.cols), 0.25)
        for c, wid, amp in zip(self.centers, self.widths, self.amps):
            d0 = plane.center - c
            k = -0.5 / wid ** 2
            ea = np.exp(k * (a * a + 2 * a * (d0 @ plane.row_dir)))
            eb = np.exp(k * (b * b + 2 * b * (d0 @ plane.col_dir)))
            raw += amp * np.exp(k * (d0 @ d0)) * np.outer(eb, ea)
        return (raw ** self.gamma / self.norm).astype(np.float32)


def _ball(radius: float, step: float = 10.0) -> np.ndarray:
    """(P, 3) grid points within a ball (a fixed probe set, no randomness)."""
    g = np.arange(-radius, radius + 1e-9, step)
    p = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
    return p[(p ** 2).sum(1) <= radius ** 2]


def draw_bias(rng, heart_center, ratio: float) -> BiasField:
    """2-4 lobes, alternately anterior (-y) and posterior (+y) of the heart, max/min = `ratio`
    over a 60 mm ball around `heart_center` (a flat field when ratio <= 1)."""
    k = int(rng.integers(2, 5))
    side = np.where(np.arange(k) % 2 == 0, -1.0, 1.0)
    offs = np.stack([rng.uniform(-80, 80, k), side * rng.uniform(90, 140, k),
                     rng.uniform(-80, 80, k)], axis=1)
    field = BiasField(np.asarray(heart_center) + offs, rng.uniform(70, 150, k),
                      rng.uniform(0.5, 1.5, k), 1.0, 1.0)
    raw = field.raw(np.asarray(heart_center) + _ball(60.0))
    r = raw.max() / raw.min()
    gamma = float(np.log(ratio) / np.log(r)) if ratio > 1.0 and r > 1.0 + 1e-9 else 0.0
    return BiasField(field.centers, field.widths, field.amps, gamma, float(np.mean(raw ** gamma)))


# --- breathing, scale -----------------------------------------------------------------------------
def slice_offsets(rng, n: int, mm: float) -> np.ndarray:
    """(n, 3) LPS breath-hold offsets of the anatomy: mostly superior-inferior (z), some AP/LR."""
    sd = np.array([0.2, 0.3, 1.0]) * mm
    return rng.normal(0.0, 1.0, (n, 3)) * sd


def series_scale(rng, reference: float) -> float:
    """Global intensity scale of one series: `reference` near 1000 a.u., ±30 % (log-normal)."""
    return float(1000.0 / max(reference, 1e-6) * np.exp(rng.normal(0.0, 0.3)))


# --- noise and k-space ----------------------------------------------------------------------------
def kept_lines(shape: tuple[int, int], acq_matrix) -> tuple[np.ndarray, float]:
    """(H, W) bool mask of the acquired k-space lines (centre of k-space) and the kept fraction."""
    h, w = shape
    nf, npe = min(int(acq_matrix[0]), h), min(int(acq_matrix[1]), w)
    kh = np.round(np.fft.fftfreq(h) * h)
    kw = np.round(np.fft.fftfreq(w) * w)
    keep = ((kh >= -(nf // 2)) & (kh < nf - nf // 2))[:, None] & \
           ((kw >= -(npe // 2)) & (kw < npe - npe // 2))[None, :]
    return keep, float(keep.mean())


def acquire(signal: np.ndarray, sigma: float, rng, acq_matrix=None) -> np.ndarray:
    """(F, H, W) complex image -> + complex Gaussian noise (std `sigma` per channel in the final
    image), then crop k-space to `acq_matrix` and zero-fill back (Gibbs ringing, blur)."""
    shape = signal.shape[-2:]
    keep, frac = kept_lines(shape, acq_matrix) if acq_matrix is not None else (None, 1.0)
    sd = sigma / np.sqrt(frac)
    noise = rng.standard_normal((2,) + signal.shape, dtype=np.float32) * np.float32(sd)
    z = signal.astype(np.complex64) + (noise[0] + 1j * noise[1])
    if keep is not None and frac < 1.0:
        z = fft.ifft2(fft.fft2(z) * keep).astype(np.complex64)
    return z


# --- optional artifacts ---------------------------------------------------------------------------
def banding_gain(lung: np.ndarray, spacing: float, rng, field_strength: float) -> np.ndarray:
    """(H, W) bSSFP off-resonance gain: dark bands where the susceptibility phase near the lung
    passes through ±π (more bands at 3 T)."""
    if not lung.any():
        return np.ones(lung.shape, np.float32)
    d = ndimage.distance_transform_edt(~lung) * spacing                  # mm to nearest lung
    cycles = rng.uniform(0.6, 2.0) * (1.8 if field_strength >= 2.0 else 1.0)
    phase = 2 * np.pi * cycles * np.exp(-d / rng.uniform(15.0, 30.0))
    off = np.abs((phase - np.pi + np.pi) % (2 * np.pi) - np.pi)          # distance to ±π
    depth = rng.uniform(0.7, 0.95)
    return (1.0 - depth * np.exp(-0.5 * (off / 0.3) ** 2)).astype(np.float32)


def mistrigger(frames: np.ndarray, rng) -> np.ndarray:
    """(F, H, W) cine with 1-3 frames duplicated from the previous one or blurred (mistrigger)."""
    out = frames.copy()
    f = frames.shape[0]
    for i in rng.choice(f, size=min(f, int(rng.integers(1, 4))), replace=False):
        if rng.random() < 0.5:
            out[i] = frames[i - 1]
        else:
            mix = 0.25 * frames[i - 1] + 0.5 * frames[i] + 0.25 * frames[(i + 1) % f]
            out[i] = ndimage.gaussian_filter(mix, 1.0)
    return out


def ghost(frames: np.ndarray, rng) -> np.ndarray:
    """(F, H, W) LGE mistrigger: a faint ghost copy shifted along the phase-encode axis."""
    w = frames.shape[-1]
    return frames + rng.uniform(0.1, 0.3) * np.roll(frames, w // int(rng.integers(3, 7)), axis=-1)


def motion_blur(z: np.ndarray, direction_px, rng) -> np.ndarray:
    """(F, H, W) complex: poor breath-hold. Each phase-encode line sees the anatomy displaced along
    `direction_px` (unit (drow, dcol)) by a slow breathing trace: blur and phase-axis ghosts."""
    h, w = z.shape[-2:]
    kh, kw = np.fft.fftfreq(h)[:, None], np.fft.fftfreq(w)[None, :]
    order = np.argsort(np.argsort(kw[0])) / w                            # sequential line order
    disp = rng.uniform(2.0, 5.0) * np.sin(2 * np.pi * (rng.uniform(0.7, 2.0) * order
                                                        + rng.uniform(0, 2 * np.pi)))  # (W,) px
    ramp = np.exp(-2j * np.pi * (kh * direction_px[0] + kw * direction_px[1]) * disp[None, :])
    return fft.ifft2(fft.fft2(z) * ramp.astype(np.complex64)).astype(np.complex64)


def fold(frames: np.ndarray, beyond_left: np.ndarray, beyond_right: np.ndarray) -> np.ndarray:
    """Wrap-around along the phase axis: (H, h) signal from beyond the left edge lands on the right
    edge and vice versa, added to every frame of (F, H, W)."""
    out = frames.copy()
    h = beyond_left.shape[-1]
    out[..., out.shape[-1] - h:] += beyond_left
    out[..., :h] += beyond_right
    return out
