"""The latent record of one synthetic study: physiology (class-bearing) and acquisition (nuisance).

This module is the contract between the phantom's parts:
  cases/params.py     samples a `Latent` and an `Acquisition` per study;
  heart/anatomy.py    builds the 3-D beating heart from a `Latent`;
  imaging/render.py   turns the heart into images following an `Acquisition`;
  heart/measure.py    re-measures the rendered heart (`MEASURED_FIELDS`);
  reports/report.py   writes the impression from `Latent` + measured values;
  dicom/writer.py     writes the series following an `Acquisition`.
Everything here is plain data (numbers, strings, tuples) so it serialises to study.json as is.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

# --- classes -------------------------------------------------------------------------------------
# Primary label of a study (architecture.md §8). ATHLETE is a hard negative whose report reads normal;
# HTN_LVH a hard negative whose report reads "hypertensive LVH" (other).
CLASSES = ("NORMAL", "ATHLETE", "NICM", "ICM", "HCM", "AMYLOID", "RV", "HTN_LVH", "OTHER")

# Archive-like prior (phantom.md §5.2): ~45 % normal/other, ICM and NICM common, amyloid and RV rare.
CLASS_PRIOR = {
    "NORMAL": 0.30, "ATHLETE": 0.03, "OTHER": 0.14, "NICM": 0.16, "ICM": 0.16,
    "HCM": 0.08, "AMYLOID": 0.04, "RV": 0.04, "HTN_LVH": 0.05,
}

# --- AHA 17-segment model -------------------------------------------------------------------------
# Segments are numbered 1..17 as in the AHA statement; arrays over segments have index seg-1.
# Levels: basal 1-6, mid 7-12, apical 13-16, apex 17. Within basal/mid the six segments run
# anterior, anteroseptal, inferoseptal, inferior, inferolateral, anterolateral; apical: anterior,
# septal, inferior, lateral.
SEGMENT_NAMES = (
    "basal anterior", "basal anteroseptal", "basal inferoseptal", "basal inferior",
    "basal inferolateral", "basal anterolateral",
    "mid anterior", "mid anteroseptal", "mid inferoseptal", "mid inferior",
    "mid inferolateral", "mid anterolateral",
    "apical anterior", "apical septal", "apical inferior", "apical lateral", "apex",
)
TERRITORY_SEGMENTS = {  # typical coronary supply (phantom.md §1.2); params add boundary variation
    "LAD": (1, 2, 7, 8, 13, 14, 17),
    "RCA": (3, 4, 9, 10, 15),
    "LCx": (5, 6, 11, 12, 16),
}

# Tissue codes returned by anatomy.Heart.sample(); render.py maps them to MR properties.
TISSUE = {
    "air": 0, "lung": 1, "muscle": 2, "fat": 3, "liver": 4,
    "lv_blood": 5, "rv_blood": 6, "la_blood": 7, "ra_blood": 8, "aorta_blood": 9,
    "lv_myo": 10, "rv_myo": 11, "atrial_wall": 12, "pericardial_fluid": 13, "pleural_fluid": 14,
    "thrombus": 15, "bone": 16,
    # appended (never renumber the above): intracavitary muscle (counted as cavity by a reader),
    # fibrous sheets, and body detail
    "papillary": 17, "rv_trabecula": 18, "pericardium": 19, "valve": 20, "csf": 21,
    "cortex": 22, "gastric": 23,
}

# Keys of the dict returned by measure.measure_study(); the report and the audit oracle read these.
MEASURED_FIELDS = (
    "lv_edv_ml", "lv_esv_ml", "lv_ef", "lv_edvi", "lv_esvi", "lv_mass_g", "lv_massi",
    "max_wall_mm", "septal_wall_mm", "lateral_wall_mm", "septal_lateral_ratio",
    "rv_edv_ml", "rv_esv_ml", "rv_ef", "rv_edvi", "lge_percent", "la_area_cm2",
    "pericardial_effusion_mm",
)


@dataclass(frozen=True)
class LGEPatch:
    """One region of late enhancement, defined in myocardial coordinates so every view agrees."""
    pattern: str                 # subendo | transmural | midwall | subepi | rv_insertion | diffuse | dot
    segments: tuple[int, ...]    # AHA segments (1..17) it covers; for rv_insertion the nearby ones
    depth: tuple[float, float]   # transmural extent, 0 = endocardium .. 1 = epicardium
    strength: float              # 0..1 fraction of fibrosis (1 = dense scar, full T1 shortening)
    patchiness: float = 0.0      # 0 = smooth band, 1 = broken into blobs (HCM, DCM stripe gaps)
    rv: bool = False             # also enhances the RV free wall (amyloid, RV insertion)
    atria: bool = False          # also enhances the atrial walls (amyloid)


@dataclass(frozen=True)
class Latent:
    """Physiological truth of one study. Targets here; what the images show is re-measured."""
    study_index: int             # position in the archive (0-based)
    label: str                   # one of CLASSES
    subtype: str                 # e.g. classic | apical | end_stage | PH | volume | ARVC | myocarditis ...
    borderline: bool             # within ~5 % of a class cut-point: the report hedges
    dx_confidence: str           # definite | probable | possible
    sex: str                     # M | F
    age: int                     # years
    height_cm: float
    weight_kg: float
    bsa: float                   # m², Mosteller from height and weight
    hr_bpm: float                # heart rate; RR = 60000 / hr
    lv_edvi: float               # target LV end-diastolic volume index, mL/m²
    lv_ef: float                 # target LV ejection fraction, %
    wall_ed_mm: tuple[float, ...]      # (17,) end-diastolic wall thickness per AHA segment
    contractility: tuple[float, ...]   # (17,) 1 normal, >1 hyperdynamic, 0 akinetic, <0 dyskinetic
    sphericity: float            # 0 = elongated normal LV .. 1 = spherical (DCM remodelling)
    base_descent_mm: float       # longitudinal shortening of the base toward the apex at ES
    lge: tuple[LGEPatch, ...]    # empty = no enhancement
    territories: tuple[str, ...] # ICM: infarcted coronary territories (LAD/RCA/LCx); else ()
    rv_edvi: float               # target RV end-diastolic volume index, mL/m²
    rv_ef: float                 # target RV ejection fraction, %
    rv_wall_mm: float            # RV free-wall thickness
    rv_bulge: bool               # regional RV free-wall dyskinesia (ARVC-like)
    septal_flattening: float     # 0 round LV .. 1 D-shaped LV (RV pressure overload)
    la_scale: float              # left atrium size relative to normal (1.0)
    ra_scale: float              # right atrium size relative to normal
    atrial_wall_mm: float        # atrial / interatrial septum wall thickness (thick in amyloid)
    pericardial_effusion_mm: float   # 0 = none; depth of the fluid layer
    pleural_effusion_mm: tuple[float, float]  # (right, left) depth of dependent pleural fluid
    nulling_abnormal: bool       # amyloid: myocardium nulls with/before blood on LGE
    sam: bool                    # HCM: systolic anterior motion / LVOT flow void in 3CH systole
    thrombus: bool               # apical LV thrombus (ICM with LAD scar)
    aneurysm: bool               # apical aneurysm (ICM, apical HCM)
    aortic_root_mm: float        # aortic root diameter
    t1_myo_post: float           # ms, post-contrast T1 of normal myocardium
    t1_blood_post: float         # ms, post-contrast T1 of blood
    t1_scar_post: float          # ms, post-contrast T1 of dense scar
    incidentals: tuple[str, ...] # e.g. aortic_dilation, hepatic_cyst, hiatal_hernia, mitral_regurgitation
    label_noise: bool = False    # the report's diagnosis was deliberately changed or dropped (§5.3)


@dataclass(frozen=True)
class Acquisition:
    """How the study was acquired: every field independent of the class (shortcut audit)."""
    vendor: str                  # SIEMENS | GE | PHILIPS (profile key of dicom.writer)
    manufacturer: str            # DICOM Manufacturer string
    model_name: str              # ManufacturerModelName
    field_strength: float        # 1.5 | 3.0
    software: str                # SoftwareVersions
    institution: str             # synthetic InstitutionName
    sax_layout: str              # per_slice (one series per slice) | stack (one series)
    n_phases: int                # cine frames per cycle
    rows: int                    # recon matrix rows (cine and LGE)
    cols: int                    # recon matrix columns
    acq_matrix: tuple[int, int]  # (frequency, phase) acquired lines; < recon means zero-filled
    pixel_spacing: float         # mm, square pixels of the recon matrix
    slice_thickness: float       # mm
    slice_gap: float             # mm between slices (spacing = thickness + gap)
    n_sax: int                   # cine SAX slices
    n_lge_sax: int               # LGE SAX slices
    cine_lax: tuple[str, ...]    # cine long-axis views acquired, subset of ("2CH", "3CH", "4CH")
    lge_lax: tuple[str, ...]     # LGE long-axis views acquired
    distractors: tuple[str, ...] # extra series: localizer | ti_scout | t2 | flow
    azimuth_deg: float           # heart long-axis azimuth toward patient left (phantom.md §3.3)
    elevation_deg: float         # heart long-axis elevation below the axial plane
    inplane_rot_deg: float       # SAX in-plane rotation jitter
    snr_cine: float              # blood-pool SNR of cine
    snr_lge: float               # SNR of LGE
    bias_ratio: float            # max/min of the coil sensitivity across the heart
    misregistration_mm: float    # typical breath-hold offset (per-slice offsets drawn from it)
    artifacts: tuple[str, ...]   # banding | mistrigger | wrap | motion_blur | incomplete_coverage
    ti_ms: float                 # chosen inversion time for LGE
    wrong_ti: bool               # TI deliberately off: myocardium not nulled
    psir: bool                   # LGE stored as PSIR (signed) in addition to magnitude
    name_noise: bool             # this study's series names carry typos / repeats / blanks
    study_date: str              # YYYYMMDD, 2008-2024
    study_time: str              # HHMMSS
    accession: str               # synthetic accession number, 8-10 digits
    patient_id: str              # synthetic patient ID
    patient_name: str            # SYNTH^Pnnnnnn
    birth_date: str              # YYYYMMDD consistent with age at study_date
    tr_ms: float                 # cine repetition time
    te_ms: float                 # cine echo time
    flip_deg: float              # cine flip angle


def to_dict(obj) -> dict:
    """A dataclass (nested ones included) as a JSON-ready dict."""
    return dataclasses.asdict(obj)


def latent_from_dict(d: dict) -> Latent:
    """Inverse of to_dict for a Latent (tuples restored, LGE patches rebuilt)."""
    d = dict(d)
    d["lge"] = tuple(LGEPatch(**{k: tuple(v) if isinstance(v, list) else v for k, v in p.items()})
                     for p in d["lge"])
    return Latent(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})
