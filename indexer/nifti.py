"""NIfTI import for the public ACDC layout: cine SAX studies with a diagnosis group as label.

    root/patient001/Info.cfg                  ED: 1, ES: 12, Group: DCM, Height: 184, NbFrame: 30, Weight: 95
    root/patient001/patient001_4d.nii.gz      (x, y, z, t) cine SAX stack, pixdim = (.., dx, dy, dz, dt)
    root/patient001/patient001_frame01.nii.gz ED (and ES) volumes, used when the 4-D file is absent

Arrays are read as (t, z, y, x): image rows along y, columns along x, slices in file order (ACDC stores
base first). The heart is located and cropped exactly as for DICOM (assemble.py), ED is put first.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

import nibabel as nib
import numpy as np

from cmr_search.indexer.assemble import CineStack, crop_plane, locate_heart, normalise, resample_phases
from cmr_search.indexer.cache import fingerprint, write_arrays
from cmr_search.indexer.identifiers import patient_key, study_key
from cmr_search.indexer.measurements import measure_study, unmeasured
from cmr_search.indexer.records import ErrorRecord, QARecord
from cmr_search.indexer.stacks import Plane
from cmr_search.indexer.study_rows import PrepareResult, study_row


def is_acdc(root) -> bool:
    """True when `root` holds patient folders with an Info.cfg (the ACDC layout)."""
    root = Path(root)
    return root.is_dir() and any(root.glob("patient*/Info.cfg"))


def read_info(path: Path) -> dict:
    """Info.cfg 'Key: value' lines -> dict (numbers as float where they parse)."""
    info = {}
    for line in path.read_text().splitlines():
        if ":" in line:
            k, v = (x.strip() for x in line.split(":", 1))
            try:
                info[k] = float(v)
            except ValueError:
                info[k] = v
    return info


def _load_cine(folder: Path, info: dict, warnings: list[str]) -> tuple[np.ndarray, tuple[float, float], float]:
    """-> stack (S, T, H, W) float32 with ED first, in-plane spacing (row, col) mm, slice spacing mm."""
    four_d = folder / f"{folder.name}_4d.nii.gz"
    if four_d.exists():
        img = nib.load(str(four_d))
        data = np.asarray(img.dataobj, np.float32)                # (x, y, z, t)
        ed = int(info.get("ED", 1)) - 1
        data = np.roll(data, -ed, axis=3) if 0 <= ed < data.shape[3] else data
    else:
        frames = sorted(folder.glob(f"{folder.name}_frame[0-9][0-9].nii.gz"))
        if not frames:
            raise FileNotFoundError(f"{folder}: neither {four_d.name} nor *_frameXX.nii.gz found")
        img = nib.load(str(frames[0]))
        data = np.stack([np.asarray(nib.load(str(f)).dataobj, np.float32) for f in frames], axis=3)
        warnings.append(f"no 4-D cine; built from {len(frames)} frame volumes (ED/ES)")
    zooms = img.header.get_zooms()
    return data.transpose(2, 3, 1, 0), (float(zooms[1]), float(zooms[0])), float(zooms[2])   # (z, t, y, x)


def assemble_acdc(folder: Path, seg=None) -> tuple[dict[str, np.ndarray], QARecord, dict]:
    """One ACDC patient folder -> (views, QA, info); with a segmenter `seg`, info["measurements"] holds
    the row's measurement fields (indexer/measurements.py), or a failure's reason in their seg_flags."""
    info = read_info(folder / "Info.cfg")
    warnings: list[str] = []
    stack, spacing, thickness = _load_cine(folder, info, warnings)
    loc = locate_heart(stack, spacing)
    h, w = stack.shape[2:]
    planes = [Plane(np.array([0.0, 0.0, s * thickness]), np.array([1.0, 0, 0]), np.array([0, 1.0, 0]), spacing,
                    (h, w)) for s in range(stack.shape[0])]
    plane = planes[loc.mid_slice]
    centre = plane.to_patient(loc.row, loc.col)
    cine = normalise(crop_plane(resample_phases(stack[loc.mid_slice]), plane, centre))
    views = {"cine_sax": cine} if cine is not None else {}
    warnings.append("no LGE")
    frames = {"cine_sax": int(stack.shape[1]), "cine_sax_slices": int(stack.shape[0])}
    qa = QARecord(list(views), [v for v in ("cine_2ch", "cine_3ch", "cine_4ch", "lge_sax", "lge_2ch",
                                             "lge_3ch", "lge_4ch")], frames, warnings)
    if seg is not None:
        info["measurements"] = _measure(seg, CineStack(stack, planes, loc.mid_slice, centre, thickness), info)
    return views, qa, info


def _measure(seg, cine: CineStack, info: dict) -> dict:
    """The measurement fields of the studies row (cached display masks are not kept for NIfTI imports)."""
    try:
        fields, _, _ = measure_study(seg, cine, height_cm=info.get("Height"), weight_kg=info.get("Weight"))
    except Exception as exc:          # one study that cannot be measured keeps its image and report
        return unmeasured(seg, f"measurement failed: {type(exc).__name__}")
    return {**fields, "mask_path": None}


def import_acdc(root, seg=None, unchanged=None) -> Iterator[tuple[str, dict[str, np.ndarray], dict]]:
    """Yield (study key source, views, info) per patient folder; info holds Info.cfg values plus
    'label' (the Group), 'qa' (QARecord), 'files' ((path, size, mtime_ns) of the sources), with a
    segmenter 'measurements' and, for a folder that cannot be read, 'error' (and empty views).
    `unchanged(source, files)` True: the folder is neither read nor measured ('unchanged' in info)."""
    for folder in sorted(p.parent for p in Path(root).glob("patient*/Info.cfg")):
        files = [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in sorted(folder.iterdir()) if f.is_file()]
        source = f"acdc:{folder.name}"
        if unchanged is not None and unchanged(source, files):
            yield source, {}, {"unchanged": True, "files": files, "folder": str(folder)}
            continue
        try:
            views, qa, info = assemble_acdc(folder, seg)
        except Exception as exc:     # one bad folder must not stop the import
            yield source, {}, {"error": f"{type(exc).__name__}: {exc}", "files": files, "folder": str(folder)}
            continue
        group = info.get("Group")
        yield source, views, {**info, "label": str(group) if group else None, "qa": qa, "files": files,
                              "folder": str(folder)}


def prepare_acdc(root, writer, salt: bytes, t0: float, progress: bool, seg=None):
    """prepare() for an ACDC folder: every patient becomes a cine SAX study (serial; NIfTI is fast),
    measured by `seg` (a model.segmentation.Segmenter) when one is given."""
    done, keys, built, failed, measured = writer.done(), set(), 0, 0, 0

    def unchanged(source, files) -> bool:             # cached from these very files: not read again
        return done.get(study_key(source, salt)) == fingerprint(files)

    for source, views, info in import_acdc(root, seg, unchanged):
        key, fp = study_key(source, salt), fingerprint(info["files"])
        if info.get("unchanged"):
            keys.add(key)
            continue
        if "error" in info or not views:
            failed += 1
            writer.add_errors([ErrorRecord(info["folder"], key, "assemble", info.get("error", "no cine"))])
            continue
        keys.add(key)
        pkey = patient_key(source, salt)
        meta = {"age": None, "sex": None, "study_date": None, "field_strength": None}
        truth = {"label": info["label"], "split": None, "finding_labels": None}
        row = {**study_row(key, pkey, meta, views, info["qa"], "", truth, fp, write_arrays(writer.out, key, views)),
               **info.get("measurements", {})}
        measured += "measurements" in info
        writer.add_study(row, {"study_key": key, "patient_key": pkey, "study_instance_uid": source,
                               "accession_number": "", "source_path": info["folder"]})
        built += 1
    table = writer.finish(keep_keys=keys)
    return PrepareResult(writer.out, table, built, len(keys) - built, failed, failed, time.monotonic() - t0,
                         n_measured=measured)
