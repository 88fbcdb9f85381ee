"""DICOM writer: validity, geometry, timing, layouts, compression, determinism, class independence."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.pixels.encoders import RLELosslessEncoder

from cmr_search.phantom.cases import params
from cmr_search.phantom.cases.acquisition import VENDORS
from cmr_search.phantom.dicom import encode as dicom_encode
from cmr_search.phantom.dicom import vendors
from cmr_search.phantom.dicom import writer as dicom_writer
from cmr_search.phantom.heart.geometry import HeartFrame, Plane, lax_plane, sax_stack, unit
from cmr_search.phantom.imaging.series import RenderedSeries
from cmr_search.phantom.profiles import get_profile

SEED = 7
N, S, F = 24, 6, 5               # tiny images: matrix, SAX slices, cine frames
PHYSIOLOGY = {"PatientSex", "PatientAge", "PatientSize", "PatientWeight", "HeartRate",
              "NominalInterval", "LowRRValue", "HighRRValue"}


def make_study(index=3, label="NORMAL", **acq_over):
    latent = params.sample_latent(np.random.default_rng([SEED, index, 1]), index, label)
    acq = params.sample_acquisition(np.random.default_rng([SEED, index, 2]), get_profile("tiny"),
                                    index, SEED, age=latent.age)
    if "vendor" in acq_over:                     # keep manufacturer/model/software consistent
        manufacturer, models, softwares = VENDORS[acq_over["vendor"]]
        acq_over = {"manufacturer": manufacturer, "model_name": models[acq.field_strength][0],
                    "software": softwares[0], **acq_over}
    return latent, dataclasses.replace(acq, **acq_over)


def _img(rng, n_slices, n_frames, signed=False):
    x = rng.gamma(4.0, 150.0, size=(n_slices, n_frames, N, N)).astype(np.float32)   # (S, F, H, W) a.u.
    return x - 600.0 if signed else x


def make_series(acq, spacing=9.0, seed=0):
    """A full set of small rendered series on one heart frame (psir pair when acq.psir)."""
    rng = np.random.default_rng(seed)
    fr = HeartFrame.from_angles([20.0, -10.0, 0.0], 45.0, 25.0, 10.0)
    sp, th = 2.5, 8.0
    trig = [20.0 + 180.0 * k for k in range(F)]
    sax = sax_stack(fr, [5.0 + spacing * k for k in range(S)], sp, N, N, th)
    out = [RenderedSeries("localizer", _localizer(), _img(rng, 3, 1), [0.0]),
           RenderedSeries("cine_sax", sax, _img(rng, S, F), trig)]
    out += [RenderedSeries(f"cine_{v.lower()}", [lax_plane(fr, v, 40.0, sp, N, N, th)],
                           _img(rng, 1, F), trig) for v in ("2CH", "3CH", "4CH")]
    out.append(RenderedSeries("ti_scout", [lax_plane(fr, "4CH", 40.0, sp, N, N, th)], _img(rng, 1, 8),
                              [400.0] * 8, [100.0 + 40 * k for k in range(8)]))
    recons = ("magnitude", "psir") if acq.psir else ("magnitude",)
    for r in recons:
        lge = [("lge_sax", sax_stack(fr, [5.0 + spacing * k for k in range(S)], sp, N, N, th))]
        lge += [(f"lge_{v.lower()}", [lax_plane(fr, v, 40.0, sp, N, N, th)]) for v in ("2CH", "4CH")]
        for kind, planes in lge:
            out.append(RenderedSeries(kind, planes, _img(rng, len(planes), 1, r == "psir"), [450.0],
                                      [acq.ti_ms], signed=r == "psir", recon=r))
    out.append(RenderedSeries("t2", sax[2:3], _img(rng, 1, 1), [500.0]))
    return out


def _localizer():
    c = np.array([0.0, 0.0, 0.0])
    dirs = [((1, 0, 0), (0, 1, 0)), ((1, 0, 0), (0, 0, -1)), ((0, 1, 0), (0, 0, -1))]
    return [Plane(c, unit(r), unit(cc), 3.0, N, N, 8.0) for r, cc in dirs]


def write(tmp: Path, latent, acq, series=None, compress=False):
    series = make_series(acq) if series is None else series
    return dicom_writer.write_study(tmp, latent, acq, series, SEED, compress=compress)


def read_series(study: Path, rec: dict):
    files = sorted((study / rec["folder"]).glob("*.dcm"))
    return [pydicom.dcmread(f) for f in files]


@pytest.mark.parametrize("vendor,layout,psir", [("SIEMENS", "stack", True), ("GE", "per_slice", True),
                                                 ("PHILIPS", "stack", False), ("GE", "stack", False)])
def test_files_valid(tmp_path, vendor, layout, psir):
    latent, acq = make_study(vendor=vendor, sax_layout=layout, psir=psir)
    recs = write(tmp_path, latent, acq)
    study_uid = dicom_writer.study_instance_uid(SEED, latent.study_index)
    fors = set()
    for rec in recs:
        assert re.fullmatch(r"\d+_[A-Za-z0-9._=+-]+", rec["folder"]), rec["folder"]
        dss = read_series(tmp_path, rec)
        assert len(dss) == rec["n_files"] > 0
        ir = rec["kind"].startswith("lge_") or rec["kind"] == "ti_scout"
        for ds in dss:
            assert ds.SOPClassUID == dicom_writer.MR_IMAGE_STORAGE
            assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
            assert ds.StudyInstanceUID == study_uid and ds.SeriesInstanceUID == rec["series_instance_uid"]
            assert ds.Modality == "MR" and ds.BitsStored == 12 and ds.HighBit == 11
            assert ("InversionTime" in ds) == ir
            assert ("IR" in ds.ScanningSequence) == ir
            iop = np.array(ds.ImageOrientationPatient, float).reshape(2, 3)
            assert np.allclose(iop @ iop.T, np.eye(2), atol=1e-5)
            assert ds.pixel_array.shape == (N, N)
            assert re.fullmatch(r"\d{3}Y", ds.PatientAge) and ds.PatientPosition == "HFS"
            assert ("CG" in ds.ScanOptions) == (rec["kind"] != "localizer")
            assert ds.Manufacturer == acq.manufacturer and float(ds.ImagingFrequency) > 60
            signed_psir = rec["recon"] == "psir" and "RescaleIntercept" not in ds
            assert (ds.PixelRepresentation == 1) == signed_psir
            fors.add(ds.FrameOfReferenceUID)
        if rec["kind"] == "ti_scout":
            assert len({float(d.InversionTime) for d in dss}) == len(dss)
    assert len(fors) == 1
    sops = [d.SOPInstanceUID for r in recs for d in read_series(tmp_path, r)]
    assert len(set(sops)) == len(sops)


def _cine_sax(tmp, recs):
    by_slice = {}
    for rec in recs:
        if rec["kind"] == "cine_sax":
            for ds in read_series(tmp, rec):
                by_slice.setdefault(tuple(ds.ImagePositionPatient), []).append(ds)
    return by_slice


@pytest.mark.parametrize("layout", ["stack", "per_slice"])
def test_sax_geometry_and_timing(tmp_path, layout):
    latent, acq = make_study(sax_layout=layout, vendor="SIEMENS")
    recs = write(tmp_path, latent, acq)
    cine = [r for r in recs if r["kind"] == "cine_sax"]
    if layout == "per_slice":
        assert [r["slice"] for r in cine] == list(range(S)) and all(r["n_files"] == F for r in cine)
    else:
        assert len(cine) == 1 and cine[0]["slice"] is None and cine[0]["n_files"] == S * F
    by_slice = _cine_sax(tmp_path, recs)
    assert len(by_slice) == S
    firsts = sorted((dss[0] for dss in by_slice.values()), key=lambda d: int(d.SeriesNumber) * 1000
                    + int(d.InstanceNumber))
    iop = np.array(firsts[0].ImageOrientationPatient, float).reshape(2, 3)
    normal = np.cross(iop[0], iop[1])
    ipp = np.array([d.ImagePositionPatient for d in firsts], float)
    steps = np.diff(ipp @ normal)
    assert np.allclose(np.abs(steps), float(firsts[0].SpacingBetweenSlices), atol=1e-3)
    assert np.allclose(np.abs(steps), 9.0, atol=1e-3)
    for d in firsts:
        assert float(d.SliceLocation) == pytest.approx(float(np.dot(np.array(d.ImagePositionPatient, float),
                                                                    normal)), abs=1e-3)
    for dss in by_slice.values():
        tt = [float(d.TriggerTime) for d in sorted(dss, key=lambda d: int(d.InstanceNumber))]
        assert len(tt) == int(dss[0].CardiacNumberOfImages) == F
        assert np.all(np.diff(tt) > 0)


def test_order_numbers_and_times(tmp_path):
    latent, acq = make_study(vendor="GE", sax_layout="per_slice", psir=True)
    recs = write(tmp_path, latent, acq)
    nums = [r["series_number"] for r in recs]
    assert nums == sorted(nums) and len(set(nums)) == len(nums)
    assert recs[0]["kind"] == "localizer" and recs[0]["series_number"] == 1
    lge = [r for r in recs if r["kind"].startswith("lge_")]
    assert min(r["series_number"] for r in lge) >= 20
    assert len(lge) == 6 and {r["description"][:3] for r in lge} <= {"MAG", "PS:"}

    def t(rec):
        ds = read_series(tmp_path, rec)[0]
        return pydicom.valuerep.TM(ds.AcquisitionTime)

    last_cine = max(t(r) for r in recs if r["kind"].startswith("cine_"))
    first_lge = min(t(r) for r in lge)
    gap = (first_lge.hour * 3600 + first_lge.minute * 60 + first_lge.second) - \
          (last_cine.hour * 3600 + last_cine.minute * 60 + last_cine.second)
    assert gap % 86400 >= 9 * 60           # >= ~10 min after the last cine started acquiring + its end


@pytest.mark.parametrize("vendor", ["SIEMENS", "GE", "PHILIPS"])
def test_compressed_roundtrip(tmp_path, vendor):
    latent, acq = make_study(vendor=vendor, psir=True, sax_layout="stack")
    series = make_series(acq)
    plain = write(tmp_path / "a", latent, acq, series)
    rle = write(tmp_path / "b", latent, acq, series, compress=True)
    assert plain == rle
    for rec in plain:
        for da, db in zip(read_series(tmp_path / "a", rec), read_series(tmp_path / "b", rec)):
            assert db.file_meta.TransferSyntaxUID == pydicom.uid.RLELossless
            assert np.array_equal(da.pixel_array, db.pixel_array)
            assert da.SOPInstanceUID == db.SOPInstanceUID
    psir = [r for r in plain if r["recon"] == "psir"]
    assert psir
    ds = read_series(tmp_path / "b", psir[0])[0]
    slope, intercept = float(ds.get("RescaleSlope", 1)), float(ds.get("RescaleIntercept", 0))
    phys = ds.pixel_array.astype(float) * slope + intercept
    assert phys.min() < 0 < phys.max()          # signed PSIR survives storage (signed or offset)


def test_quantize_decodes_to_written_values(tmp_path):
    latent, acq = make_study(vendor="SIEMENS", sax_layout="stack", psir=False)
    series = make_series(acq)
    recs = write(tmp_path, latent, acq, series, compress=True)
    rec = next(r for r in recs if r["kind"] == "cine_sax")
    cine = next(s for s in series if s.kind == "cine_sax")
    dss = read_series(tmp_path, rec)
    got = np.stack([d.pixel_array for d in dss]).reshape(S, F, N, N)
    x, unclipped = cine.images.astype(np.float64), got < 4095
    k = np.sum(got[unclipped] * x[unclipped]) / np.sum(x[unclipped] ** 2)    # the series' one gain
    assert 0.5 < k < 2.0
    assert np.abs(got[unclipped] - x[unclipped] * k).max() <= 0.52           # rounding only
    assert np.all(x[~unclipped] * k > 4094)                                   # clipped only above range
    for storage in ("magnitude", "signed", "offset2048", "offset4096"):
        x = np.linspace(-5000, 5000, 64).reshape(1, 1, 8, 8)
        x = np.abs(x) if storage == "magnitude" else x
        st, slope, icpt = dicom_writer.quantize(x, 0.5, storage)
        phys = st.astype(float) * slope + icpt
        assert st.min() >= (-2048 if storage == "signed" else 0) and st.max() <= 4095
        assert np.all(np.diff(phys.ravel()[32:]) >= 0)                   # monotone, clipped at the ends
        mid = np.abs(x * 0.5) < 2000
        assert np.abs(phys[mid] - x[mid] * 0.5).max() <= slope / 2 + 1e-9


def test_deterministic_bytes(tmp_path):
    latent, acq = make_study(vendor="PHILIPS", name_noise=True)
    series = make_series(acq)
    for compress in (False, True):
        da, db = tmp_path / f"a{compress}", tmp_path / f"b{compress}"
        assert write(da, latent, acq, series, compress) == write(db, latent, acq, series, compress)
        files = sorted(p.relative_to(da) for p in da.rglob("*.dcm"))
        assert files and files == sorted(p.relative_to(db) for p in db.rglob("*.dcm"))
        for f in files:
            assert (da / f).read_bytes() == (db / f).read_bytes()


def _headers(study: Path, recs):
    out = {}
    for rec in recs:
        for i, ds in enumerate(read_series(study, rec)):
            out[(rec["folder"], i)] = {e.keyword: str(e.value) for e in ds if e.keyword != "PixelData"
                                       and e.keyword not in PHYSIOLOGY}
    return out


@pytest.mark.parametrize("vendor", ["SIEMENS", "GE", "PHILIPS"])
def test_no_tag_depends_on_class(tmp_path, vendor):
    lat_a, acq = make_study(index=5, label="NORMAL", vendor=vendor, name_noise=True)
    lat_b = params.sample_latent(np.random.default_rng(99), 5, "AMYLOID")
    assert lat_a.label != lat_b.label and lat_a.study_index == lat_b.study_index
    series = make_series(acq)
    ha = _headers(tmp_path / "a", write(tmp_path / "a", lat_a, acq, series))
    hb = _headers(tmp_path / "b", write(tmp_path / "b", lat_b, acq, series))
    assert ha.keys() == hb.keys()
    for k in ha:
        assert ha[k] == hb[k], k


def test_name_noise_fraction_and_lexicon(tmp_path):
    latent, acq = make_study(vendor="GE", sax_layout="per_slice", psir=True)
    fracs = []
    for i in range(6):
        a = dicom_writer.plan_series(acq, make_series(acq), SEED + i, 3)
        noisy = dataclasses.replace(acq, name_noise=True)
        b = dicom_writer.plan_series(noisy, make_series(acq), SEED + i, 3)
        assert [j.number for j in a] == [j.number for j in b]
        assert not any("REPEAT" in j.name or j.name.startswith("*") for j in a)
        fracs.append(np.mean([x.name != y.name for x, y in zip(a, b)]))
    assert all(0.3 <= f <= 0.6 for f in fracs) and len(set(fracs)) > 1, fracs


def test_noise_ops_and_mismatch():
    rng = np.random.default_rng(0)
    outs = [vendors.noisy_name("4CH_FIESTA_BH", rng, 7) for _ in range(300)]
    assert all(o != "4CH_FIESTA_BH" for o in outs)
    assert any(o.startswith(("2CH", "3CH", "SAX", "LVOT", "VLA", "HLA")) for o in outs)
    assert "Series 7" in outs and "" in outs and any("_REPEAT" in o for o in outs)
    assert vendors.group_of("lge_sax", "psir") == "psir" and vendors.group_of("cine_4ch") == "cine"


def test_uids_and_sanitize():
    u = dicom_writer.study_instance_uid(1, 2)
    assert u == dicom_writer.study_instance_uid(1, 2) and len(u) <= 64
    assert u != dicom_writer.study_instance_uid(1, 3) != dicom_writer.study_instance_uid(2, 2)
    assert dicom_writer.sanitize("MAG:SAX_SS_PSMDE") == "MAG_SAX_SS_PSMDE"
    assert dicom_writer.sanitize("*SAX cine/trufi #2") == "SAX_cine_trufi_2"
    assert dicom_writer.sanitize("") == "unnamed"
    with pytest.raises(ValueError, match="sax_layout"):
        dicom_writer._expand([], "bogus")


@pytest.mark.parametrize("compress", [False, True])
def test_fast_encoder_matches_pydicom(tmp_path, compress):
    """dicom_encode's cached encoding gives the bytes pydicom's own save_as writes."""
    latent, acq = make_study(vendor="GE", psir=True)
    series = make_series(acq)
    c = dicom_writer._context(SEED, latent, acq)
    jobs = dicom_writer.plan_series(acq, series, SEED, latent.study_index)
    for j in jobs[:12:3] + [j for j in jobs if j.group == "psir"]:
        storage = "signed" if j.src.signed else "magnitude"
        img = dicom_writer.quantize(j.src.images[j.slices], 0.4, storage)[0]
        const = dicom_writer._series_dataset(j, c, j.src.signed, 1.0, 0.0)
        per = dicom_writer._image_dataset(j, c, 0, 0, 1, img[0, 0], ("100", "200"), compress)
        fast = dicom_encode.SeriesEncoder(const, dicom_writer.MR_IMAGE_STORAGE, compress).file_bytes(per)
        ref = dicom_writer._series_dataset(j, c, j.src.signed, 1.0, 0.0)
        ref.update(per)
        ref.file_meta = pydicom.dataset.FileMetaDataset()           # pydicom completes the rest
        uid = pydicom.uid
        ref.file_meta.TransferSyntaxUID = uid.RLELossless if compress else uid.ExplicitVRLittleEndian
        ref.save_as(tmp_path / "ref.dcm", enforce_file_format=True)
        assert fast == (tmp_path / "ref.dcm").read_bytes()
        back = pydicom.dcmread(tmp_path / "ref.dcm")
        assert np.array_equal(back.pixel_array, img[0, 0])


def test_rle_plugin_bytes_match_pydicom_native():
    """Whatever RLE plugin the writer uses must write what pydicom's own encoder writes."""
    img = np.random.default_rng(1).integers(-2048, 2048, (16, 16)).astype(np.int16)
    kw = dict(rows=16, columns=16, samples_per_pixel=1, bits_allocated=16, bits_stored=12,
              pixel_representation=1, photometric_interpretation="MONOCHROME2", number_of_frames=1)
    native = RLELosslessEncoder.encode(img, encoding_plugin="pydicom", **kw)
    assert RLELosslessEncoder.encode(img, encoding_plugin=dicom_encode.RLE_PLUGIN, **kw) == native
