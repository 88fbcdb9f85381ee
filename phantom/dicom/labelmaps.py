"""Exact label maps written beside a synthetic study's DICOM: `<study>/labels/` (phantom.md, "Label maps").

One file per DICOM series, `labels/<SeriesNumber>_<kind>[_psir].npz`, holding one label frame per
DICOM image of the series, in InstanceNumber order (slice-major, frame-minor, as dicom/writer.py numbers
them), and the keys that map each label frame to its image:

    tissue        (N, H, W) uint8    cases.latent.TISSUE code of every pixel: at the pixel centre, on the
                                     slab's mid plane, at the image's trigger time (imaging/slab.py)
    seg           (N, H, W) uint8    ACDC labels of `tissue` (acdc_seg): 0 background, 1 RV cavity,
                                     2 LV myocardium, 3 LV cavity, 4 LGE scar (within LV myocardium)
    lge_pct       (N, H, W) uint8    LGE fibrosis % 0..100 at the same points (LGE and TI-scout series
                                     of hearts with fibrosis only; scar: >= 50 in LV myocardium)
    sop_instance_uid (N,) str, instance_number (N,) int32, slice_index (N,) int16 (rendered slice,
    SAX base -> apex), frame_index (N,) int16, trigger_time_ms (N,) float32,
    image_position_patient (N, 3) and image_orientation_patient (N, 6) float64 (mm, LPS; a localizer's
    planes differ), pixel_spacing_mm, series_instance_uid, series_number, kind, recon (scalars)

Label row r, column c is DICOM pixel (row r, column c). The label maps show the anatomy as imaged
(breath-hold misregistration included) at each frame's own time; image artifacts (mistrigger, motion
blur, wrap) are not in them (study.json `acquisition.artifacts` lists a study's). The PSIR twin of an
LGE series gets its own file with the same maps. Files are byte-reproducible (fixed zip timestamps).

ACDC conventions (Bernard et al., IEEE TMI 2018; checked against the 20 ACDC masks in
../shared/data/acdc-dev, docs/phantom.md "Label maps"): papillary muscles, LV trabeculae and an LV
thrombus are LV cavity; RV trabeculae and the moderator band are RV cavity; RV free wall, atria, aortic
root, AV-groove fat, pericardium and effusions are background. The phantom's LV base is a plane at
right angles to the long axis (SAX slices are parallel to it) and nothing of the ventricles exists above
it (no RV outflow tract, no pulmonary trunk: nothing to exclude above the pulmonary valve), so a basal
slice is labelled when its mid plane lies below the base, where the myocardium surrounds the cavity
completely, as the ACDC annotators cut; the apical cap beyond the cavity is myocardium only.
"""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

from cmr_search.phantom.cases.latent import TISSUE
from cmr_search.phantom.dicom.writer import sop_instance_uid
from cmr_search.phantom.imaging.labels import LV_CAVITY, SEG_NAMES, seg_labels
from cmr_search.phantom.imaging.series import RenderedSeries

FOLDER = "labels"
ZIP_TIME = (1980, 1, 1, 0, 0, 0)        # fixed member timestamps: same seed, same bytes
ZIP_LEVEL = 1                           # deflate level: the maps compress well even at 1
LGE_KINDS = ("lge_", "ti_scout")        # series (kind prefixes) whose files carry lge_pct
# Codes the ACDC masks put in the LV cavity beyond labels.seg_labels' own (their LV cavity has no
# holes: a thrombus lies inside the endocardial contour; measure.py counts it as cavity too).
EXTRA_LV_CAVITY = (TISSUE["thrombus"],)


def acdc_seg(tissue: np.ndarray, lge_pct: np.ndarray | None) -> np.ndarray:
    """Tissue codes and LGE % (any shape) -> ACDC labels with scar (label 4), see the module docstring."""
    lge = None if lge_pct is None else lge_pct.astype(np.float32) / np.float32(100.0)
    seg = seg_labels(tissue, lge, scar=True)
    for code in EXTRA_LV_CAVITY:
        seg[tissue == code] = LV_CAVITY
    return seg


def file_name(record: dict) -> str:
    """`<SeriesNumber>_<kind>[_psir].npz` of one DICOM series record (dicom.writer.write_study)."""
    return f"{record['series_number']}_{record['kind']}{'_psir' if record['recon'] == 'psir' else ''}.npz"


def label_arrays(src: RenderedSeries, record: dict, seed: int, study_index: int) -> dict:
    """The arrays of one DICOM series' label file (module docstring), from its rendered series."""
    slices = [record["slice"]] if record["slice"] is not None else list(range(len(src.planes)))
    n_frames = src.tissue.shape[1]
    sl = np.repeat(np.asarray(slices, np.int16), n_frames)                  # (N,) slice-major
    fr = np.tile(np.arange(n_frames, dtype=np.int16), len(slices))          # (N,)
    inst = np.arange(1, sl.size + 1, dtype=np.int32)
    if inst.size != record["n_files"]:
        raise ValueError(f"series {record['folder']}: {record['n_files']} DICOM files but {inst.size} "
                         f"label frames; the writer's instance layout changed (update labelmaps.py)")
    tissue = src.tissue[sl, fr]                                              # (N, H, W)
    lge = None if src.lge_pct is None else src.lge_pct[sl, fr]
    plane0 = src.planes[slices[0]]
    out = {
        "tissue": tissue, "seg": acdc_seg(tissue, lge),
        "sop_instance_uid": np.array([sop_instance_uid(seed, study_index, record["series_number"], int(i))
                                      for i in inst]),
        "instance_number": inst, "slice_index": sl, "frame_index": fr,
        "trigger_time_ms": np.asarray(src.trigger_times, np.float32)[fr],
        "image_position_patient": np.stack([src.planes[s].ipp() for s in sl]).astype(np.float64),
        "image_orientation_patient": np.array([src.planes[s].iop() for s in sl], np.float64),
        "pixel_spacing_mm": np.float64(plane0.pixel_spacing),
        "series_instance_uid": np.array(record["series_instance_uid"]),
        "series_number": np.int32(record["series_number"]),
        "kind": np.array(record["kind"]), "recon": np.array(record["recon"]),
    }
    if lge is not None and record["kind"].startswith(LGE_KINDS):
        out["lge_pct"] = lge
    return out


def write_npz(path: Path, arrays: dict) -> None:
    """An .npz (np.load reads it) whose bytes depend on the arrays only: fixed member timestamps."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, a in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asarray(a), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_TIME)
            info.compress_type, info.external_attr = zipfile.ZIP_DEFLATED, 0o644 << 16
            z.writestr(info, member.getvalue(), compresslevel=ZIP_LEVEL)
    Path(path).write_bytes(buf.getvalue())


def write_label_maps(study_dir: Path, series: list[RenderedSeries], records: list[dict], seed: int,
                     study_index: int) -> list[str]:
    """Write `<study_dir>/labels/`: README.txt and one .npz per DICOM series record (those whose
    rendered series carries label maps). Returns the file names written, README first."""
    by_key = {(s.kind, s.recon): s for s in series if s.tissue is not None}
    folder = Path(study_dir) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "README.txt").write_text(readme_text())
    names = ["README.txt"]
    for rec in records:
        src = by_key.get((rec["kind"], rec["recon"]))
        if src is not None:
            write_npz(folder / file_name(rec), label_arrays(src, rec, seed, study_index))
            names.append(file_name(rec))
    return names


def read_label_map(path: str | Path) -> dict[str, np.ndarray]:
    """All arrays of one label file (module docstring); a clear error for a missing or torn file."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise ValueError(f"{path}: not a readable label map ({type(e).__name__}: {e}); regenerate the "
                         f"study with `cmr synth` (labels are on unless --no-labels)") from None


def readme_text() -> str:
    """labels/README.txt: the files, the codes and the conventions."""
    codes = "\n".join(f"  {v:3d}  {k}" for k, v in sorted(TISSUE.items(), key=lambda kv: kv[1]))
    segs = "\n".join(f"  {k}  {v}" for k, v in sorted(SEG_NAMES.items()))
    doc = (__doc__ or "").split("\n\n", 1)[1]
    return (f"SYNTHETIC label maps of this study's DICOM images (cmr-search phantom).\n\n{doc.strip()}\n\n"
            f"tissue codes (cases.latent.TISSUE):\n{codes}\n\nseg labels (ACDC, plus scar):\n{segs}\n")
