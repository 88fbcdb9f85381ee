"""Write one synthetic study as classic MR Image Storage DICOM files (phantom.md §3).

Layout: <study_dir>/<SeriesNumber>_<SeriesDescription, sanitized>/<InstanceNumber:04d>.dcm, Explicit VR
Little Endian (or RLE Lossless with compress=True). Series are numbered in a plausible acquisition
order (localizers, cines with interleaved distractors, TI scout, LGE from 20 on); cine SAX is one series
per slice or one stack series (Acquisition.sax_layout); names come from phantom.dicom.vendors, bytes are
encoded by phantom.dicom.encode. Pixels: physical value = render a.u. x a per-series drawn gain
(`quantize`), 12 bits stored, clipped; PSIR signed or offset per vendor.

Shortcut rule (§5.5): the class never reaches a tag. Only the patient module (sex, age, size, weight)
and the heart-rate tags read the latent; everything else comes from the Acquisition, the rendered
series and random draws seeded by (seed, study_index, salt[, series number]). Never the clock.
"""
from __future__ import annotations

import datetime as _dt
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from cmr_search.phantom.cases.latent import Acquisition, Latent
from cmr_search.phantom.dicom import encode as dicom_encode
from cmr_search.phantom.dicom import vendors
from cmr_search.phantom.imaging.series import SERIES_KINDS, RenderedSeries
from cmr_search.phantom.randomness import study_rng

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
STUDY_DESCRIPTIONS = ("MR HEART W/WO CONTRAST", "CARDIAC MRI MORPH FUNCTION", "MRI CARDIAC W CONTRAST",
                      "MR CARDIAC FUNCTION + VIABILITY", "CMR WITH GADOLINIUM", "MRI HEART")
LGE_FIRST_NUMBER = 20          # LGE series numbers start here (or later when the cines ran past it)
POST_CONTRAST = ("ti_scout", "lge", "psir")
# Per-series intensity gain ranges (render a.u. -> stored values). Render puts a class-independent
# reference near 1000 a.u.; IR series (scar, recovered tissue at long TI: up to ~4-5x that) and the
# signed PSIR range (+-2047) need less gain than cine, whose brightest tissue sits near 2000 a.u.
GAIN = {"lge": (0.5, 0.85), "psir": (0.3, 0.45), "ti_scout": (0.35, 0.6), "other": (0.7, 1.3)}
# Salts of the study-level random streams (third seed word); series streams add the series number.
SALT_STYLE, SALT_ORDER, SALT_NAMES, SALT_NOISE, SALT_TIME, SALT_SERIES = range(101, 107)


def study_instance_uid(seed: int, study_index: int) -> str:
    """StudyInstanceUID of study `study_index` of an archive made with `seed` (the writer's own)."""
    return _uid(seed, study_index, "study")


def sop_instance_uid(seed: int, study_index: int, series_number: int, instance: int) -> str:
    """SOPInstanceUID of image `instance` (InstanceNumber, slice-major) of series `series_number`."""
    return _uid(seed, study_index, "sop", series_number, instance)


def _uid(seed: int, study_index: int, *parts) -> str:
    # generate_uid concatenates its entropy sources, so join them with a separator ("1","11" != "11","1")
    key = "|".join(["cmr-phantom", str(seed), str(study_index), *map(str, parts)])
    return str(generate_uid(entropy_srcs=[key]))


def _ds(x: float, nd: int = 6) -> str:
    """A DS string (at most 16 characters for |x| < 1e8)."""
    s = f"{float(x):.{nd}f}".rstrip("0").rstrip(".")
    return "0" if s in ("", "-0") else s


def sanitize(name: str) -> str:
    """A readable, portable folder-name fragment: [A-Za-z0-9._=+-] only, at most 60 characters."""
    s = re.sub(r"[^A-Za-z0-9._=+-]+", "_", name).strip("._")
    return re.sub(r"_+", "_", s)[:60] or "unnamed"


# --- planning: which DICOM series, in which order, named what, acquired when ----------------------
@dataclass
class Job:
    """One DICOM series to write."""
    src: RenderedSeries          # the rendered series its pixels come from
    slices: list[int]            # indices into src.planes / src.images written in this series
    group: str                   # vendors.group_of(kind, recon): cine | lge | psir | ti_scout | ...
    slice_index: int | None      # per_slice cine SAX: which SAX slice; else None
    name: str = ""               # SeriesDescription (after name noise)
    number: int = 0              # SeriesNumber
    start_s: float = 0.0         # acquisition start, seconds after StudyTime
    slice_dt: float = 0.0        # seconds between consecutive slices of the series


def _order(series: list[RenderedSeries], rng: np.random.Generator) -> list[RenderedSeries]:
    """Acquisition order: localizers, pre-contrast block (LAX/SAX cines, T2, flow), TI scout, LGE."""
    for s in series:
        if s.kind not in SERIES_KINDS:
            raise ValueError(f"series kind {s.kind!r} unknown; use one of {SERIES_KINDS}")
    views = list(rng.permutation(["2ch", "3ch", "4ch"]))
    draws = rng.random(4)                            # always four draws: the stream stays aligned
    view_rank = {v: i for i, v in enumerate(views)}

    def pick(pred):
        chosen = [s for s in series if pred(s.kind)]
        return sorted(chosen, key=lambda s: (view_rank.get(s.kind[-3:], -1), s.recon == "psir"))

    lax = pick(lambda k: k.startswith("cine_") and k != "cine_sax")
    sax = pick(lambda k: k == "cine_sax")
    t2, flow = pick(lambda k: k == "t2"), pick(lambda k: k == "flow")
    cines = lax + flow + sax if draws[0] < 0.75 else sax + lax + flow
    pre = t2 + cines if draws[1] < 0.4 else cines + t2
    lge_sax = pick(lambda k: k == "lge_sax")
    lge_lax = pick(lambda k: k.startswith("lge_") and k != "lge_sax")
    lge = lge_sax + lge_lax if draws[2] < 0.6 else lge_lax + lge_sax
    return pick(lambda k: k == "localizer") + pre + pick(lambda k: k == "ti_scout") + lge


def _expand(ordered: list[RenderedSeries], layout: str) -> list[Job]:
    if layout not in ("per_slice", "stack"):
        raise ValueError(f"Acquisition.sax_layout {layout!r} unknown; use 'per_slice' or 'stack'")
    jobs = []
    for s in ordered:
        group = vendors.group_of(s.kind, s.recon)
        if s.kind == "cine_sax" and layout == "per_slice":
            jobs += [Job(s, [k], group, k) for k in range(len(s.planes))]
        else:
            jobs.append(Job(s, list(range(len(s.planes))), group, None))
    return jobs


def _name(jobs: list[Job], acq: Acquisition, seed: int, idx: int) -> None:
    namer = vendors.Namer(acq.vendor, study_rng(seed, idx, SALT_NAMES), acq.ti_ms, acq.psir)
    for j in jobs:
        if j.slice_index is not None:
            j.name = namer.slice_name(j.slice_index + 1)
        elif j.group in ("lge", "psir"):
            j.name = namer.lge_name(j.src.kind, j.src.recon)
        else:
            j.name = namer.base(j.src.kind)
    if acq.name_noise:
        rng = study_rng(seed, idx, SALT_NOISE)
        for i in sorted(vendors.pick_noisy(rng, len(jobs))):
            jobs[i].name = vendors.noisy_name(jobs[i].name, study_rng(seed, idx, SALT_NOISE, jobs[i].number),
                                              jobs[i].number)


def _number(jobs: list[Job], rng: np.random.Generator) -> None:
    """SeriesNumber in acquisition order; an occasional gap (a discarded series); LGE from 20 on."""
    n, first_lge = 1, True
    for j in jobs:
        if j.group in ("lge", "psir") and first_lge:
            n, first_lge = max(n, LGE_FIRST_NUMBER + int(rng.integers(0, 3))), False
        j.number = n
        n += 1 + int(j.group != "localizer" and rng.random() < 0.08)


def _schedule(jobs: list[Job], rng: np.random.Generator) -> None:
    """Start times: breath-holds of 15-35 s per slice; LGE 10-20 min after the last cine."""
    t, last_cine_end, lge_at = float(rng.uniform(30, 120)), 0.0, None
    for j in jobs:
        if j.group in POST_CONTRAST and lge_at is None:
            lge_at = last_cine_end + float(rng.uniform(600, 1200))
            if j.group == "ti_scout":
                t = max(t, lge_at - float(rng.uniform(60, 150)))
        if j.group in ("lge", "psir"):
            t = max(t, lge_at)
        j.slice_dt = float(rng.uniform(15, 35) if j.group == "cine" else rng.uniform(8, 20))
        j.start_s = t
        t += j.slice_dt * len(j.slices) + float(rng.uniform(10, 40))
        if j.group == "cine":
            last_cine_end = t


def plan_series(acq: Acquisition, series: list[RenderedSeries], seed: int, study_index: int) -> list[Job]:
    """The DICOM series of a study, ordered, numbered, named and scheduled."""
    jobs = _expand(_order(series, study_rng(seed, study_index, SALT_ORDER)), acq.sax_layout)
    _number(jobs, study_rng(seed, study_index, SALT_ORDER, 1))
    _name(jobs, acq, seed, study_index)
    _schedule(jobs, study_rng(seed, study_index, SALT_TIME))
    return jobs


# --- pixels ----------------------------------------------------------------------------------------
def quantize(images: np.ndarray, gain: float, storage: str) -> tuple[np.ndarray, float, float]:
    """Float images -> 12-bit stored values, plus (RescaleSlope, RescaleIntercept).

    Physical value = images * gain (render's a.u. put a class-independent reference tissue near 1000;
    `gain` is drawn per series, never from the image or the class). storage: magnitude (uint16
    0..4095), signed (int16 -2048..2047), offset2048 (uint16, intercept -2048), offset4096 (uint16,
    slope 2, intercept -4096). Values outside the range are clipped."""
    v = np.asarray(images, dtype=np.float64) * gain               # (S, F, H, W)
    if not np.isfinite(v).all():
        raise ValueError("rendered images contain NaN/inf; check the renderer's signal model")
    if storage == "magnitude":
        return np.clip(np.rint(v), 0, 4095).astype(np.uint16), 1.0, 0.0
    if storage == "signed":
        return np.clip(np.rint(v), -2048, 2047).astype(np.int16), 1.0, 0.0
    if storage == "offset2048":
        return (np.clip(np.rint(v), -2048, 2047) + 2048).astype(np.uint16), 1.0, -2048.0
    if storage == "offset4096":                                     # physical = 2 * stored - 4096
        return (np.clip(np.rint(v / 2), -2048, 2047) + 2048).astype(np.uint16), 2.0, -4096.0
    raise ValueError(f"pixel storage {storage!r} unknown; use magnitude|signed|offset2048|offset4096")


def _window(gain: float, signed: bool, jitter: tuple[float, float]) -> tuple[str, str]:
    """WindowCenter/Width from the series gain and render's class-independent reference level (~1000
    a.u.), jittered like a protocol default. Never from the image: percentile windows would let a
    header-only classifier see the image content (shortcut audit)."""
    ref = 1000.0 * gain
    center = 0.0 if signed else 0.6 * ref * jitter[0]
    return _ds(round(center)), _ds(round(1.3 * ref * jitter[1]))


# --- tags ------------------------------------------------------------------------------------------
@dataclass
class StudyContext:
    """Study-level values shared by all series of the study."""
    seed: int                    # archive seed
    index: int                   # study index
    latent: Latent               # patient module and heart rate only
    acq: Acquisition             # everything else
    style: vendors.VendorStyle   # the vendor's tag habits
    start: _dt.datetime          # StudyDate + StudyTime
    draws: dict                  # per-study draws: description, study id, body part, PE, storage ...


def _context(seed: int, latent: Latent, acq: Acquisition) -> StudyContext:
    style = vendors.STYLES[vendors.check_vendor(acq.vendor)]
    rng = study_rng(seed, latent.study_index, SALT_STYLE)
    start = _dt.datetime.strptime(acq.study_date + acq.study_time[:6], "%Y%m%d%H%M%S")
    draws = {
        "description": STUDY_DESCRIPTIONS[int(rng.integers(len(STUDY_DESCRIPTIONS)))],
        "study_id": str(int(rng.integers(1000, 99999))),
        "body_part": ("HEART", "CHEST", "")[int(rng.choice(3, p=[0.6, 0.25, 0.15]))],
        "pe_dir": "ROW",            # render.py encodes phase along image rows (wrap, Gibbs, ghosts)
        "phase_fov": _ds(round(rng.uniform(75, 90), 1)),
        "storage": style.psir_storage[int(rng.integers(len(style.psir_storage)))],
        "freq": _ds(style.freq_mhz[float(acq.field_strength)] + rng.uniform(-0.03, 0.03), 4),
        "seg": int(rng.integers(9, 22)),
        "beat_reject": "Y" if rng.random() < 0.5 else "N",
        "protocol": vendors.GE_PROTOCOLS[int(rng.integers(len(vendors.GE_PROTOCOLS)))],
        "seq": {g: tuple(float(rng.uniform(*r)) if r else None for r in rs)
                for g, rs in sorted(vendors.SEQ_RANGES.items())},
        "station": f"MRC{zlib.crc32(acq.institution.encode()) % 90000 + 10000}",
    }
    return StudyContext(seed, latent.study_index, latent, acq, style, start, draws)


def _study_tags(ds: Dataset, c: StudyContext) -> None:
    lat, acq = c.latent, c.acq
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = MR_IMAGE_STORAGE
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = acq.patient_name, acq.patient_id, acq.birth_date
    ds.PatientSex, ds.PatientAge = lat.sex, f"{int(lat.age):03d}Y"
    ds.PatientSize, ds.PatientWeight = _ds(lat.height_cm / 100, 2), _ds(lat.weight_kg, 1)
    ds.StudyInstanceUID = study_instance_uid(c.seed, c.index)
    ds.StudyDate, ds.StudyTime = acq.study_date, acq.study_time
    ds.AccessionNumber, ds.StudyID = acq.accession, c.draws["study_id"]
    ds.StudyDescription, ds.ReferringPhysicianName = c.draws["description"], ""
    ds.Modality, ds.BodyPartExamined, ds.PatientPosition = "MR", c.draws["body_part"], "HFS"
    ds.FrameOfReferenceUID = _uid(c.seed, c.index, "frame_of_reference")
    ds.PositionReferenceIndicator = ""
    ds.Manufacturer, ds.ManufacturerModelName = acq.manufacturer, acq.model_name
    ds.SoftwareVersions, ds.InstitutionName = acq.software, acq.institution
    ds.StationName = c.draws["station"]
    ds.MagneticFieldStrength = _ds(acq.field_strength)
    ds.ImagingFrequency, ds.ImagedNucleus = c.draws["freq"], "1H"


def _mr_tags(ds: Dataset, j: Job, c: StudyContext) -> None:
    """Sequence, acquisition-matrix and cardiac-gating tags of one series."""
    acq, style, g = c.acq, c.style, j.group
    base, variant, gated = vendors.SEQUENCE[g]
    ds.ScanningSequence = list(base or style.ir_order)
    ds.SequenceVariant = list(variant)
    opts = ["IR", "CG"] if style.options_sep_ir_first else ["CG", "IR"]
    ds.ScanOptions = [o for o in opts if o == "CG" and gated or o == "IR" and g in vendors.IR_GROUPS]
    ds.MRAcquisitionType = "2D"
    ds.SequenceName = style.seq_name[g].format(k=c.draws["seg"])
    tr, te, flip, bw = c.draws["seq"][g]
    if g == "cine":
        tr, te, flip = acq.tr_ms, acq.te_ms, acq.flip_deg
    ds.RepetitionTime, ds.EchoTime, ds.FlipAngle = _ds(tr, 2), _ds(te, 2), _ds(round(flip))
    ds.PixelBandwidth, ds.NumberOfAverages = _ds(round(bw)), "1"
    freq, phase = acq.acq_matrix
    ds.AcquisitionMatrix = [0, freq, phase, 0] if c.draws["pe_dir"] == "ROW" else [freq, 0, 0, phase]
    ds.InPlanePhaseEncodingDirection = c.draws["pe_dir"]
    ds.PercentPhaseFieldOfView = c.draws["phase_fov"]
    ds.PercentSampling = "100"
    rr = 60000.0 / c.latent.hr_bpm
    if gated:
        ds.HeartRate, ds.NominalInterval = str(int(round(c.latent.hr_bpm))), str(int(round(rr)))
        ds.CardiacNumberOfImages = str(j.src.images.shape[1])
        ds.BeatRejectionFlag = c.draws["beat_reject"]
        ds.LowRRValue, ds.HighRRValue = str(int(round(rr * 0.85))), str(int(round(rr * 1.15)))
        ds.TriggerWindow = "0" if g in ("cine", "flow") else "10"


def _series_tags(ds: Dataset, j: Job, c: StudyContext) -> None:
    ds.SeriesInstanceUID = _uid(c.seed, c.index, "series", j.number)
    ds.SeriesNumber, ds.SeriesDescription = str(j.number), j.name
    ds.ProtocolName = j.name if c.style.protocol_is_series else c.draws["protocol"]
    ds.ImageType = list(c.style.image_type[j.group])
    when = c.start + _dt.timedelta(seconds=j.start_s)
    ds.SeriesDate, ds.SeriesTime = when.strftime("%Y%m%d"), when.strftime("%H%M%S.%f")
    planes = j.src.planes
    ds.Rows, ds.Columns = planes[0].rows, planes[0].cols
    ds.PixelSpacing = [_ds(planes[0].pixel_spacing), _ds(planes[0].pixel_spacing)]
    ds.SliceThickness = _ds(planes[0].thickness, 3)
    spacing = _stack_spacing(planes)
    if spacing is not None:
        ds.SpacingBetweenSlices = _ds(spacing, 3)
    _mr_tags(ds, j, c)


def _stack_spacing(planes) -> float | None:
    """Median centre-to-centre distance along the normal of parallel planes; None if not a stack."""
    if len(planes) < 2:
        return None
    n0 = planes[0].normal
    if any(abs(float(np.dot(p.normal, n0))) < 0.999 for p in planes):
        return None
    steps = [abs(float(np.dot(b.center - a.center, n0))) for a, b in zip(planes, planes[1:])]
    return float(np.median(steps))


def _pixel_module(ds: Dataset, signed_storage: bool, slope: float, intercept: float) -> None:
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
    ds.PixelRepresentation = 1 if signed_storage else 0
    if intercept != 0.0 or slope != 1.0:
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = _ds(intercept), _ds(slope), "US"


def _instance_tags(ds: Dataset, j: Job, c: StudyContext, pos: int, f: int, inst: int) -> None:
    s = j.slices[pos]
    plane, src = j.src.planes[s], j.src
    ds.SOPInstanceUID = sop_instance_uid(c.seed, c.index, j.number, inst)
    ds.InstanceNumber = str(inst)
    ds.AcquisitionNumber = str(pos + 1 if len(j.slices) > 1 else 1)
    ipp = plane.ipp()
    ds.ImagePositionPatient = [_ds(v) for v in ipp]
    ds.ImageOrientationPatient = [_ds(v) for v in plane.iop()]
    ds.SliceLocation = _ds(float(np.dot(ipp, plane.normal)), 4)
    ds.TriggerTime = _ds(src.trigger_times[f], 2)
    if j.group in vendors.IR_GROUPS:
        ti = src.inversion_times[f] if src.inversion_times is not None else c.acq.ti_ms
        ds.InversionTime = _ds(ti, 1)
    when = c.start + _dt.timedelta(seconds=j.start_s + pos * j.slice_dt)
    ds.AcquisitionDate, ds.AcquisitionTime = when.strftime("%Y%m%d"), when.strftime("%H%M%S.%f")
    done = when + _dt.timedelta(seconds=j.slice_dt * 0.6 + f * 0.01)
    ds.ContentDate, ds.ContentTime = done.strftime("%Y%m%d"), done.strftime("%H%M%S.%f")
    ds.InstanceCreationDate, ds.InstanceCreationTime = ds.ContentDate, ds.ContentTime


# --- writing ---------------------------------------------------------------------------------------
def _series_dataset(j: Job, c: StudyContext, signed: bool, slope: float, intercept: float) -> Dataset:
    """Every element that is the same for all images of the series."""
    ds = Dataset()
    _study_tags(ds, c)
    _series_tags(ds, j, c)
    _pixel_module(ds, signed, slope, intercept)
    return ds


def _image_dataset(j: Job, c: StudyContext, pos: int, f: int, inst: int, img: np.ndarray,
                   window: tuple, compress: bool) -> Dataset:
    """The elements that change per image: UIDs, position, timing, window, pixels."""
    ds = Dataset()
    _instance_tags(ds, j, c, pos, f, inst)
    ds.WindowCenter, ds.WindowWidth = window
    ds["PixelData"] = dicom_encode.pixel_element(img, compress, img.dtype == np.int16)
    return ds


def _write_job(study_dir: Path, j: Job, c: StudyContext, compress: bool) -> dict:
    rng = study_rng(c.seed, c.index, SALT_SERIES, j.number)
    storage = c.draws["storage"] if j.src.signed else "magnitude"
    gain = float(rng.uniform(*GAIN.get(j.group, GAIN["other"])))
    gain *= 2.0 if storage == "offset4096" else 1.0                # that storage spans +-4094
    jitter = (float(rng.uniform(0.9, 1.1)), float(rng.uniform(0.8, 1.2)))
    stored, slope, intercept = quantize(j.src.images[j.slices], gain, storage)   # (S', F, H, W)
    window = _window(gain, j.src.signed, jitter)
    series_ds = _series_dataset(j, c, storage == "signed", slope, intercept)
    encoder = dicom_encode.SeriesEncoder(series_ds, MR_IMAGE_STORAGE, compress)
    folder = f"{j.number}_{sanitize(j.name)}"
    (study_dir / folder).mkdir(parents=True, exist_ok=True)
    inst = 0
    for pos in range(stored.shape[0]):
        for f in range(stored.shape[1]):
            inst += 1
            img = stored[pos, f]                                     # (H, W)
            ds = _image_dataset(j, c, pos, f, inst, img, window, compress)
            (study_dir / folder / f"{inst:04d}.dcm").write_bytes(encoder.file_bytes(ds))
    return {"kind": j.src.kind, "folder": folder, "series_number": j.number, "description": j.name,
            "n_files": inst, "series_instance_uid": str(series_ds.SeriesInstanceUID),
            "slice": j.slice_index, "recon": j.src.recon}


def write_study(study_dir: Path, latent: Latent, acq: Acquisition, series: list[RenderedSeries],
                seed: int, compress: bool = False) -> list[dict]:
    """Write every series of one study under `study_dir`; one record per written DICOM series:
    kind, folder (relative), series_number, description, n_files, series_instance_uid, slice
    (per_slice layout: the SAX slice index, else None) and recon (magnitude | psir)."""
    study_dir = Path(study_dir)
    c = _context(seed, latent, acq)
    jobs = plan_series(acq, series, seed, latent.study_index)
    return [_write_job(study_dir, j, c, compress) for j in jobs]
