"""Patient geometry: the heart's frame in LPS space and the imaging planes cut through it.

Conventions (DICOM patient LPS, mm): +x patient left, +y posterior, +z head.
Heart-local coordinates are (lat, ant, z): `lat` toward the LV lateral wall, `ant` toward the anterior
wall, `z` along the long axis from the LV base (z = 0, mitral plane) toward the apex (z > 0).
(e_lat, e_ant, u) is right-handed: e_lat × e_ant = u.

A `Plane` is what a scanner prescribes: centre, row/column direction cosines (DICOM IOP), square pixels.
Pixel (r, c) has its centre at  centre + (c - (cols-1)/2)·sp·row_dir + (r - (rows-1)/2)·sp·col_dir,
so ImagePositionPatient is pixel (0, 0).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def rotate_about(v: np.ndarray, axis: np.ndarray, deg: float) -> np.ndarray:
    """Rodrigues rotation of v about a unit axis by deg degrees (right-hand rule)."""
    a = np.deg2rad(deg)
    axis = unit(axis)
    return v * np.cos(a) + np.cross(axis, v) * np.sin(a) + axis * np.dot(axis, v) * (1 - np.cos(a))


@dataclass(frozen=True)
class HeartFrame:
    """Where the heart sits in the patient: LV base centre and the three heart axes (LPS)."""
    origin: np.ndarray   # (3,) LV base centre (mitral plane), LPS mm
    e_lat: np.ndarray    # (3,) toward the LV lateral wall
    e_ant: np.ndarray    # (3,) toward the LV anterior wall
    u: np.ndarray        # (3,) long axis, base -> apex

    @classmethod
    def from_angles(cls, origin, azimuth_deg: float, elevation_deg: float,
                    inplane_rot_deg: float = 0.0) -> "HeartFrame":
        """phantom.md §3.3: u ∝ (sinφ·cosθ, -cosφ·cosθ, -sinθ); e_ant from anterior-superior."""
        phi, th = np.deg2rad(azimuth_deg), np.deg2rad(elevation_deg)
        u = unit([np.sin(phi) * np.cos(th), -np.cos(phi) * np.cos(th), -np.sin(th)])
        ant_sup = unit([0.0, -1.0, 1.0])
        e_ant = unit(ant_sup - np.dot(ant_sup, u) * u)
        e_ant = rotate_about(e_ant, u, inplane_rot_deg)
        e_lat = np.cross(e_ant, u)        # makes (e_lat, e_ant, u) right-handed
        return cls(np.asarray(origin, np.float64), unit(e_lat), unit(e_ant), u)

    @property
    def rotation(self) -> np.ndarray:
        """(3, 3) matrix whose rows are e_lat, e_ant, u: local = R @ (p - origin)."""
        return np.stack([self.e_lat, self.e_ant, self.u])

    def to_local(self, pts: np.ndarray) -> np.ndarray:
        """(..., 3) LPS points -> (..., 3) heart-local (lat, ant, z)."""
        return (np.asarray(pts) - self.origin) @ self.rotation.T

    def to_lps(self, local: np.ndarray) -> np.ndarray:
        """(..., 3) heart-local points -> (..., 3) LPS."""
        return np.asarray(local) @ self.rotation + self.origin


@dataclass(frozen=True)
class Plane:
    """One prescribed image plane (a DICOM image's geometry)."""
    center: np.ndarray   # (3,) LPS mm, centre of the image
    row_dir: np.ndarray  # (3,) direction of increasing column index (IOP first triplet)
    col_dir: np.ndarray  # (3,) direction of increasing row index (IOP second triplet)
    pixel_spacing: float # mm
    rows: int
    cols: int
    thickness: float     # mm, slice thickness (slice profile FWHM)

    @property
    def normal(self) -> np.ndarray:
        return np.cross(self.row_dir, self.col_dir)

    def ipp(self) -> np.ndarray:
        """ImagePositionPatient: centre of the top-left pixel."""
        return (self.center - (self.cols - 1) / 2 * self.pixel_spacing * self.row_dir
                - (self.rows - 1) / 2 * self.pixel_spacing * self.col_dir)

    def iop(self) -> list[float]:
        return [float(x) for x in (*self.row_dir, *self.col_dir)]

    def pixel_points(self, oversample: int = 1, through: float = 0.0) -> np.ndarray:
        """(rows·k, cols·k, 3) LPS sample points, k = oversample sub-pixels per pixel per axis,
        shifted by `through` mm along the normal (for slice-profile integration)."""
        k = oversample
        sp = self.pixel_spacing
        c = (np.arange(self.cols * k) + 0.5) / k - 0.5 - (self.cols - 1) / 2   # pixel units
        r = (np.arange(self.rows * k) + 0.5) / k - 0.5 - (self.rows - 1) / 2
        pts = (self.center + through * self.normal
               + (sp * c)[None, :, None] * self.row_dir
               + (sp * r)[:, None, None] * self.col_dir)
        return pts

    def shifted(self, offset) -> "Plane":
        return Plane(self.center + np.asarray(offset, np.float64), self.row_dir, self.col_dir,
                     self.pixel_spacing, self.rows, self.cols, self.thickness)


def sax_plane(frame: HeartFrame, z_mm: float, pixel_spacing: float, rows: int, cols: int,
              thickness: float, center_offset=(0.0, 0.0)) -> Plane:
    """Short-axis plane at depth z along the long axis. Display: anterior up, lateral wall right
    (row_dir = e_lat, col_dir = -e_ant), so the normal is -u (parallel to the long axis)."""
    center = frame.to_lps(np.array([center_offset[0], center_offset[1], z_mm]))
    return Plane(center, frame.e_lat.copy(), -frame.e_ant, pixel_spacing, rows, cols, thickness)


def sax_stack(frame: HeartFrame, z_positions, pixel_spacing: float, rows: int, cols: int,
              thickness: float, center_offset=(0.0, 0.0)) -> list[Plane]:
    """Parallel SAX planes at the given long-axis depths (base first)."""
    return [sax_plane(frame, z, pixel_spacing, rows, cols, thickness, center_offset)
            for z in z_positions]


# In-plane direction (in the SAX frame) that each long-axis plane contains besides u, as an angle
# from e_ant toward the septum (-e_lat). 2CH contains e_ant; 4CH ~ e_lat rotated 15° toward the RV;
# 3CH e_ant rotated ~60° toward the septum, through the LVOT/aortic root (phantom.md §3.3).
LAX_ANGLE_DEG = {"2CH": 0.0, "3CH": 60.0, "4CH": 105.0}


def lax_direction(frame: HeartFrame, view: str, jitter_deg: float = 0.0) -> np.ndarray:
    """Unit in-plane direction w (⊥ u) spanning the LAX plane of `view` together with u."""
    a = np.deg2rad(LAX_ANGLE_DEG[view] + jitter_deg)
    return unit(np.cos(a) * frame.e_ant - np.sin(a) * frame.e_lat)


def lax_plane(frame: HeartFrame, view: str, mid_z: float, pixel_spacing: float, rows: int,
              cols: int, thickness: float, jitter_deg: float = 0.0,
              display_rot_deg: float = 0.0) -> Plane:
    """Long-axis plane containing the LV long axis. Display: apex toward screen left-bottom
    (row_dir ≈ -u tilted by 30° + display_rot_deg)."""
    w = lax_direction(frame, view, jitter_deg)
    center = frame.to_lps(np.array([0.0, 0.0, mid_z]))
    n = np.cross(w, frame.u)                         # plane normal
    row0 = -frame.u
    row = rotate_about(row0, n, 30.0 + display_rot_deg)
    col = np.cross(n, row)
    return Plane(center, unit(row), unit(col), pixel_spacing, rows, cols, thickness)
