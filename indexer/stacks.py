"""Image planes and slice stacks from header records: the geometry half of study assembly.

A `Plane` is one image's position in patient space (DICOM LPS, mm). `group_slices` turns the instances of
one view (possibly spread over several series, e.g. one series per SAX slice) into `Slice`s ordered along
the slice normal, base -> apex for short-axis stacks, each with its phases ordered by TriggerTime.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from cmr_search.indexer.records import InstanceRecord

APEX_HINT = np.array([1.0, -1.0, -1.0]) / np.sqrt(3.0)  # LPS: the apex points left, anterior, inferior
SAME_POSITION_MM = 1.0


@dataclass
class Plane:
    ipp: np.ndarray                 # (3,) position of the first pixel's centre, mm
    row_dir: np.ndarray             # (3,) direction of increasing column index
    col_dir: np.ndarray             # (3,) direction of increasing row index
    spacing: tuple[float, float]    # (between rows, between columns) mm
    shape: tuple[int, int]          # (rows, cols)
    real: bool = True               # False: geometry tags missing, a stand-in plane at the origin

    @property
    def normal(self) -> np.ndarray:
        return np.cross(self.row_dir, self.col_dir)

    def to_patient(self, row: float, col: float) -> np.ndarray:
        return self.ipp + col * self.spacing[1] * self.row_dir + row * self.spacing[0] * self.col_dir

    def to_pixel(self, point: np.ndarray) -> tuple[float, float]:
        d = np.asarray(point, float) - self.ipp
        return float(d @ self.col_dir) / self.spacing[0], float(d @ self.row_dir) / self.spacing[1]

    def distance(self, point: np.ndarray) -> float:
        return abs(float((np.asarray(point, float) - self.ipp) @ self.normal))


@dataclass
class Slice:
    plane: Plane
    instances: list[InstanceRecord] = field(default_factory=list)   # phases (or TIs) in time order


def plane_of(inst: InstanceRecord) -> Plane:
    """The plane of one instance; a stand-in (real=False) when IPP/IOP are missing."""
    spacing = tuple(float(s) for s in inst.pixel_spacing) if inst.pixel_spacing else (1.0, 1.0)
    if inst.ipp is None or inst.iop is None or len(inst.iop) != 6:
        return Plane(np.zeros(3), np.array([1.0, 0, 0]), np.array([0, 1.0, 0]), spacing,
                     (inst.rows, inst.cols), real=False)
    iop = np.asarray(inst.iop, float)
    row_dir, col_dir = iop[:3] / np.linalg.norm(iop[:3]), iop[3:] / np.linalg.norm(iop[3:])
    return Plane(np.asarray(inst.ipp, float), row_dir, col_dir, spacing, (inst.rows, inst.cols))


def has_geometry(inst: InstanceRecord) -> bool:
    return inst.ipp is not None and inst.iop is not None and len(inst.iop) == 6


def _time_key(inst: InstanceRecord) -> tuple:
    t = inst.trigger_time if inst.trigger_time is not None else inst.inversion_time
    return (t is None, t or 0.0, inst.instance_number or 0, inst.frame)


def _oriented_normal(inst: InstanceRecord) -> np.ndarray:
    return _oriented_normal_of(tuple(inst.iop))


@lru_cache(maxsize=4096)
def _oriented_normal_of(iop: tuple[float, ...]) -> np.ndarray:
    """Slice normal of an orientation, pointing apex-ward (cached: a series shares one orientation)."""
    v = np.asarray(iop, float)
    n = np.cross(v[:3] / np.linalg.norm(v[:3]), v[3:] / np.linalg.norm(v[3:]))
    n = n if n @ APEX_HINT >= 0 else -n
    n.flags.writeable = False
    return n


def _main_orientation(instances: list[InstanceRecord]) -> np.ndarray:
    keys = Counter(tuple(np.round(_oriented_normal(i), 1)) for i in instances)
    best = np.array(keys.most_common(1)[0][0], float)
    return best / np.linalg.norm(best)


def _split_by_time(instances: list[InstanceRecord]) -> list[list[InstanceRecord]]:
    """No geometry: a new slice starts wherever the trigger time goes back (instance-number order)."""
    ordered = sorted(instances, key=lambda i: (i.instance_number or 0, i.frame))
    groups: list[list[InstanceRecord]] = []
    last = None
    for inst in ordered:
        t = inst.trigger_time
        if not groups or (t is not None and last is not None and t <= last):
            groups.append([])
        groups[-1].append(inst)
        last = t
    return groups


def _one_series_per_position(group: list[InstanceRecord], series_of: dict[int, str]) -> list[InstanceRecord]:
    """Several series at one position (repeats, magnitude + PSIR): keep the one with most images."""
    counts = Counter(series_of[id(i)] for i in group)
    keep = counts.most_common(1)[0][0]
    return [i for i in group if series_of[id(i)] == keep]


def group_slices(series_instances: dict[str, list[InstanceRecord]]) -> tuple[list[Slice], int]:
    """Instances of one view (series uid -> instances) -> (slices ordered along the normal, files
    without geometry). Slices are base -> apex for SAX stacks; phases within a slice by time."""
    series_of = {id(i): uid for uid, insts in series_instances.items() for i in insts}
    everything = [i for insts in series_instances.values() for i in insts]
    with_geo = [i for i in everything if has_geometry(i)]
    missing = len(everything) - len(with_geo)
    if not with_geo:
        groups = [g for insts in series_instances.values() for g in _split_by_time(insts)]
        return [Slice(plane_of(g[0]), sorted(g, key=_time_key)) for g in groups], missing
    normal = _main_orientation(with_geo)
    aligned = [i for i in with_geo if abs(_oriented_normal(i) @ normal) > 0.98]
    aligned.sort(key=lambda i: float(np.asarray(i.ipp) @ normal))
    groups, last = [], None
    for inst in aligned:
        pos = float(np.asarray(inst.ipp) @ normal)
        if last is None or pos - last > SAME_POSITION_MM:
            groups.append([])
        groups[-1].append(inst)
        last = pos
    slices = []
    for g in groups:
        g = sorted(_one_series_per_position(g, series_of), key=_time_key)
        slices.append(Slice(plane_of(g[0]), g))
    return slices, missing
