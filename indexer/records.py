"""Plain records passed between the indexer's stages: scan -> series typing -> assembly -> cache.

scan.py fills InstanceRecord / SeriesRecord / StudyRecord from headers only; series_typing.py adds a SeriesType
per series; assemble.py reads pixels and builds the cached views; cache.py writes them with a QARecord.
Raw identifiers (PatientID, names, accession, UIDs) live only in StudyRecord and the link table; nothing
downstream of the cache sees them.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ErrorRecord:
    """One thing that could not be used. Bulk jobs collect these instead of stopping."""
    path: str            # the file or folder concerned
    study: str           # study key or StudyInstanceUID where known, else ""
    stage: str           # scan | typing | assemble | report | cache
    reason: str          # what is wrong and, where possible, how to fix it


@dataclass
class InstanceRecord:
    """One image (one frame of a multi-frame file), from its header."""
    path: str                                # file on disk
    frame: int                               # frame index inside the file (0 for single-frame)
    sop_instance_uid: str
    instance_number: int | None
    rows: int
    cols: int
    ipp: tuple[float, float, float] | None   # ImagePositionPatient (None if missing)
    iop: tuple[float, ...] | None            # ImageOrientationPatient, 6 values
    pixel_spacing: tuple[float, float] | None
    slice_thickness: float | None
    trigger_time: float | None               # ms
    inversion_time: float | None             # ms
    transfer_syntax: str
    mtime_ns: int                            # file modification time (for incremental re-runs)
    size: int                                # file size in bytes


@dataclass
class SeriesRecord:
    series_instance_uid: str
    series_number: int | None
    description: str                         # SeriesDescription (may be empty or misleading)
    protocol: str                            # ProtocolName
    sop_class_uid: str
    scanning_sequence: str                   # e.g. "GR", "GR\\IR"
    sequence_variant: str
    scan_options: str
    sequence_name: str
    image_type: str
    cardiac_number_of_images: int | None
    instances: list[InstanceRecord] = field(default_factory=list)


@dataclass
class StudyRecord:
    study_instance_uid: str
    accession_number: str
    patient_id: str
    patient_name: str
    birth_date: str
    sex: str
    age: float | None                        # years, from PatientAge or birth date
    study_date: str                          # YYYYMMDD as found (may be invalid in real data)
    manufacturer: str
    model_name: str
    field_strength: float | None
    height_m: float | None
    weight_kg: float | None
    source_dir: str                          # common folder of the study's files
    series: list[SeriesRecord] = field(default_factory=list)


@dataclass
class SeriesType:
    """What a series is, with how sure and why (series_typing.py)."""
    view: str            # cine_sax | cine_2ch | cine_3ch | cine_4ch | lge_sax | lge_2ch | lge_3ch |
                         # lge_4ch | ti_scout | localizer | other
    confidence: float    # 0..1
    reason: str          # the rules that decided, e.g. "IR + 1 phase; SAX stack of 12 parallel slices"


@dataclass
class QARecord:
    """Per-study quality record written to the cache next to the arrays."""
    views_found: list[str]
    views_missing: list[str]
    frames: dict[str, int]        # view -> frames/slices acquired
    warnings: list[str]
