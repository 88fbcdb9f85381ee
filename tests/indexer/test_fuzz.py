"""Fuzz drill (ingestion acceptance point 2): mutate 500 files of a phantom archive, run `prepare`, and
check that every mutated file is either cached correctly or listed in the error table.

Mutations (seeded, 100 files each): truncation at a random offset, random byte flips in the header,
random byte flips in the pixel data, deletion of one tag (geometry, timing, UIDs, image shape, PixelData,
...), zero length. The archive mixes `tiny` studies (uncompressed) and `bench` studies (RLE Lossless).

"Cached correctly / listed", per mutated file f (with o the same file before mutation):
  listed      f is named in errors.parquet (a scan error, or a "kept: ..." warning on its header);
  study       an assembly error names f's folder or study folder (the study f ended up in failed);
  identical   f is not named, its header places it exactly where o was (same study, series and SOP
              instance UIDs), o's study is cached, and f decodes to the same pixels as o
              (indexer.dicom_io.read_frames, rescale applied): it contributed what o would have.
  unused      f is not named and does not decode, but its series is one whose pixels the cache never
              reads (TI scout, localizer, T2, flow; scan reads headers only): nothing wrong was cached.
Anything else is a silent failure. Undetectable by design, and reported separately: a flip inside pixel
data that leaves every stored value valid for BitsStored, and the deletion of RescaleSlope/Intercept
(optional in an MR image: the file stays well formed, its values mean something else). DICOM carries
no checksum, so such a file is a different but valid image.

    python -m pytest -q -m slow tests/indexer/test_fuzz.py -s      # prints the tally

Input fuzzing (docs/fuzzing.md): every entry point the indexer runs on an untrusted file (dicom_fast.parse,
read_header, check_decodable, read_frames) gets random bytes and mutated seed files (dicom_mutations.py)
and may raise only NotDicomError, DecoderMissingError or PixelReadError (CorruptPixelsError). Fast suite:
1,500 hypothesis inputs plus the regression examples; slow: 100,000 inputs of a seeded generator.
"""
from __future__ import annotations

import io
import json
import os
import random
import resource
import shutil
import time
from collections import Counter
from pathlib import Path

import numpy as np
import polars as pl
import pydicom
import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

import tests.helpers.dicom_mutations as dm
from cmr_search.indexer.dicom_headers import quiet_pydicom, read_header
from cmr_search.indexer.dicom_io import read_frames
from cmr_search.indexer.prepare import prepare

UNUSED_KINDS = ("ti_scout", "localizer", "t2", "flow")   # series whose pixels the cache never reads
OPTIONAL_DELETES = ("deleted RescaleSlope", "deleted RescaleIntercept")   # still a valid file
MUTATIONS = ("truncate", "flip_header", "flip_pixels", "delete_tag", "zero_length")
DELETABLE = ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "SliceThickness",
             "TriggerTime", "InversionTime", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID",
             "SOPClassUID", "PixelData", "Rows", "Columns", "BitsAllocated", "BitsStored",
             "PixelRepresentation", "PhotometricInterpretation", "SamplesPerPixel", "ScanningSequence",
             "ScanOptions", "CardiacNumberOfImages", "InstanceNumber", "SeriesNumber", "RescaleSlope",
             "RescaleIntercept", "ImageType", "SequenceName", "HighBit")


def pixel_element_offset(raw: bytes) -> int:
    """Byte offset of the (7FE0,0010) Pixel Data element in a Part 10 file."""
    with quiet_pydicom():
        fp = io.BytesIO(raw)
        pydicom.dcmread(fp, stop_before_pixels=True, force=True)
        return fp.tell()


def _flip(raw: bytes, lo: int, hi: int, rng) -> tuple[bytes, list[int]]:
    buf, where = bytearray(raw), sorted(int(x) for x in rng.integers(lo, hi, int(rng.integers(1, 5))))
    for k in where:
        buf[k] ^= int(rng.integers(1, 256))
    return bytes(buf), where


def _delete_tag(path: Path, rng) -> str:
    with quiet_pydicom():
        ds = pydicom.dcmread(path, force=True)
        present = [kw for kw in DELETABLE if kw in ds]
        others = [e.keyword for e in ds if e.keyword and e.keyword not in DELETABLE]
        kw = str(rng.choice(present)) if rng.random() < 0.85 or not others else str(rng.choice(others))
        delattr(ds, kw)
        ds.save_as(path, enforce_file_format=False)
    return f"deleted {kw}"


def mutate(path: Path, kind: str, rng) -> str:
    """Mutate one file in place; returns what was done."""
    raw = path.read_bytes()
    if kind == "zero_length":
        path.write_bytes(b"")
        return "zero length"
    if kind == "truncate":
        cut = int(rng.integers(1, len(raw)))
        path.write_bytes(raw[:cut])
        return f"truncated at {cut}/{len(raw)}"
    if kind == "delete_tag":
        return _delete_tag(path, rng)
    px = pixel_element_offset(raw)
    lo, hi = (132, px) if kind == "flip_header" else (px + 12, len(raw))
    out, where = _flip(raw, lo, hi, rng)
    path.write_bytes(out)
    return f"{kind} at {where} (pixel element at {px})"


def mutate_archive(clean: Path, fuzzed: Path, n: int, seed: int) -> dict[Path, tuple[str, str]]:
    """Copy `clean` to `fuzzed` and mutate n of its DICOM files: {fuzzed file: (kind, what)}."""
    shutil.copytree(clean, fuzzed)
    files = sorted(fuzzed.rglob("*.dcm"))
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(files), size=min(n, len(files)), replace=False)
    return {files[i]: (MUTATIONS[k % len(MUTATIONS)], mutate(files[i], MUTATIONS[k % len(MUTATIONS)], rng))
            for k, i in enumerate(sorted(picks))}


def _placement(head) -> tuple:
    return head.study_uid, head.series_uid, head.instances[0].sop_instance_uid, len(head.instances)


def _valid_stored_values(path: Path) -> bool:
    """Every stored value within the range BitsStored allows (signed or unsigned), bits above it
    ignored as the standard says: a well-formed image."""
    with quiet_pydicom():
        ds = pydicom.dcmread(path, force=True)
        arr = ds.pixel_array
    bits = int(ds.BitsStored)
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if ds.PixelRepresentation else (0, (1 << bits) - 1)
    return lo <= int(arr.min()) and int(arr.max()) <= hi


def _series_kind(f: Path) -> str:
    """The phantom's true kind of f's series (study.json of its study folder)."""
    for d in f.parents:
        if (d / "study.json").exists():
            rec = json.loads((d / "study.json").read_text())
            return {s["folder"]: s["kind"] for s in rec["series"]}.get(f.parent.name, "?")
    return "?"


def classify(f: Path, orig: Path, errors: pl.DataFrame, cached_uids: set[str]) -> str:
    """One mutated file -> listed | study | identical | unused | undetectable | FAIL: <why>."""
    named = set(errors["file"])
    if str(f) in named:
        return "listed"
    folders = errors.filter(pl.col("stage") == "assemble")["file"].to_list()
    if any(str(f).startswith(d.rstrip("/") + "/") for d in folders):
        return "study"
    try:
        head, ref = read_header(str(f)), read_header(str(orig))
    except Exception as e:           # the scan read this header; it should read here too
        return f"FAIL: header unreadable yet not listed ({type(e).__name__}: {e})"
    if _placement(head) != _placement(ref):
        return f"FAIL: silently moved {_placement(ref)} -> {_placement(head)}"
    if ref.study_uid not in cached_uids:
        return "FAIL: its study is neither cached nor listed"
    try:
        same = np.array_equal(read_frames(head.instances), read_frames(ref.instances), equal_nan=True)
    except Exception as e:
        if _series_kind(f) in UNUSED_KINDS:
            return "unused"
        return f"FAIL: not listed, but its pixels do not decode ({type(e).__name__}: {e})"
    if same:
        return "identical"
    return "undetectable" if _valid_stored_values(f) else "FAIL: pixels differ (invalid values), not listed"


def run_drill(root: Path, n_files: int = 500, seed: int = 0, workers: int = 2) -> tuple[Counter, list]:
    """Mutate, prepare, classify: (Counter of (kind, outcome), [(file, kind, what, outcome) failures])."""
    truth = mutate_archive(root / "clean", root / "fuzzed", n_files, seed)
    res = prepare(root / "fuzzed", None, root / "cache", workers=workers, salt_file=root / "salt",
                  progress=False)
    errors = pl.read_parquet(root / "cache" / "errors.parquet")
    cached = set(pl.read_parquet(root / "cache" / "link.parquet")["study_instance_uid"])
    tally, bad = Counter(), []
    for f, (kind, what) in sorted(truth.items()):
        orig = root / "clean" / f.relative_to(root / "fuzzed")
        outcome = classify(f, orig, errors, cached)
        tally[(kind, outcome.split(":")[0])] += 1
        if outcome.startswith("FAIL") or outcome == "undetectable":
            bad.append((str(f.relative_to(root)), kind, what, outcome))
    tally[("studies", "cached")] = res.studies.height
    return tally, bad


def _generate(root: Path) -> None:
    try:
        from cmr_search.phantom.generate import generate_archive
    except ImportError as e:
        pytest.skip(f"phantom generator unavailable: {e}")
    generate_archive(root / "clean" / "tiny", 10, "tiny", seed=3)
    generate_archive(root / "clean" / "bench", 4, "bench", seed=4)


@pytest.mark.slow
def test_fuzz_500_files(tmp_path):
    _generate(tmp_path)
    tally, bad = run_drill(tmp_path, 500, seed=0)
    print("\n" + "\n".join(f"{k:12s} {o:12s} {n}" for (k, o), n in sorted(tally.items())))
    for row in sorted(bad, key=lambda b: (not b[3].startswith("FAIL"), b[1] == "flip_pixels"))[:30]:
        print(*row, sep=" | ")
    assert sum(n for (k, o), n in tally.items() if k in MUTATIONS) == 500
    fails = [b for b in bad if b[3].startswith("FAIL")]
    assert not fails, fails[:10]
    undetectable = [b for b in bad if b[3] == "undetectable"]
    assert all(b[1] == "flip_pixels" or b[2] in OPTIONAL_DELETES for b in undetectable), undetectable[:5]
    assert tally[("studies", "cached")] >= 10          # the run did not fail wholesale


def test_mutations_do_what_they_say(tmp_path):
    """Fast: each mutation changes the file the stated way (on a small file written here)."""
    from tests.helpers.mr_files import write_mr
    rng = np.random.default_rng(1)
    for kind in MUTATIONS:
        f = write_mr(tmp_path / f"{kind}.dcm", rows=16, cols=16)
        before = f.read_bytes()
        what = mutate(f, kind, rng)
        after = f.read_bytes()
        assert after != before, kind
        if kind == "zero_length":
            assert after == b""
        elif kind == "truncate":
            assert before.startswith(after) and len(after) < len(before)
        elif kind.startswith("flip"):
            px = pixel_element_offset(before)
            diff = [i for i, (a, b) in enumerate(zip(before, after)) if a != b]
            assert len(after) == len(before) and diff
            assert all(i >= px + 12 for i in diff) if kind == "flip_pixels" else all(132 <= i < px for i in diff)
        else:
            assert what.startswith("deleted ")


@pytest.mark.parametrize("signed", [False, True])
def test_native_shortcut_matches_pydicom(tmp_path, signed):
    """Fast: dicom_io's uncompressed shortcut gives pixel_array's values, high bits masked / sign-extended."""
    from tests.helpers.mr_files import mr_dataset, write
    from cmr_search.indexer.dicom_io import _decode_file
    raw = np.random.default_rng(2).integers(-32768 if signed else 0, 32768 if signed else 65536, (16, 16))
    ds = mr_dataset(pixels=raw.astype(np.int16 if signed else np.uint16), signed=signed)
    ds.BitsStored, ds.HighBit = 12, 11                     # garbage above bit 12, as after a flip
    f = write(ds, tmp_path / "x.dcm")
    with quiet_pydicom():
        ref = pydicom.dcmread(f).pixel_array
    assert np.array_equal(_decode_file(str(f))[0][0], ref)


def test_corrupt_file_is_left_out_and_named(tmp_path, monkeypatch):
    """Fast: a file that does not decode is dropped from its study (named in errors.parquet); the study
    is still cached."""
    from tests.helpers.dicom_fixtures import write_study
    import cmr_search.indexer.dicom_io as dio
    from cmr_search.indexer.errors import CorruptPixelsError
    write_study(tmp_path / "arch", "s0", n_slices=5, n_phases=8, heart_slices=(1, 3))
    victim = str(sorted((tmp_path / "arch").rglob("*.dcm"))[3])
    real = dio._decode_file

    def decode(path):
        if path == victim:
            raise CorruptPixelsError(path, "test: corrupt")
        return real(path)
    monkeypatch.setattr(dio, "_decode_file", decode)
    r = prepare(tmp_path / "arch", None, tmp_path / "c", salt_file=tmp_path / "salt", progress=False)
    errors = pl.read_parquet(tmp_path / "c" / "errors.parquet")
    assert r.studies.height == 1 and victim in errors["file"].to_list()
    assert "1 corrupt files left out" in r.studies["qa"][0]


# --- input fuzzing: untrusted bytes raise only the documented errors ------------------------------
POS, ELEM = st.integers(0, 2047), st.integers(0, 127)
OPS = st.one_of(
    st.tuples(st.just("flip"), POS, st.integers(1, 255)),
    st.tuples(st.just("truncate"), st.integers(0, 16384)),
    st.tuples(st.just("insert"), POS, st.binary(min_size=1, max_size=12)),
    st.tuples(st.just("delete"), POS, st.integers(1, 100)),
    st.tuples(st.just("length"), ELEM, st.sampled_from(dm.HUGE_LENGTHS) | st.integers(0, 2**32 - 1)),
    st.tuples(st.just("swap_lengths"), ELEM, ELEM),
    st.tuples(st.just("vr"), ELEM, st.sampled_from(dm.VRS)),
    st.tuples(st.just("value"), ELEM, st.sampled_from(dm.VALUES) | st.binary(max_size=40)))
INPUTS = st.tuples(st.sampled_from(dm.SEED_NAMES), st.lists(OPS, min_size=1, max_size=4)) | st.tuples(
    st.sampled_from(dm.SEED_NAMES), st.binary(max_size=600).map(lambda b: [("random", b)]))
# (seed, element index) -> the element the regression examples below mutate: they stay meaningful
EXAMPLE_TARGETS = {("small_deflated", 6): "ImplementationVersionName", ("small_explicit", 18): "ScanningSequence",
                   ("small_explicit", 28): "InstanceNumber", ("enhanced", 22): "CardiacNumberOfImages",
                   ("enhanced", 29): "NumberOfFrames", ("enhanced", 37): "SharedFunctionalGroupsSequence",
                   ("enhanced", 46): "PixelValueTransformationSequence", ("enhanced", 48): "RescaleIntercept",
                   ("enhanced", 49): "RescaleSlope", ("enhanced", 50): "RescaleType",
                   ("enhanced", 60): "CardiacSynchronizationSequence", ("bench_cine", 80): "Rows",
                   ("tiny_cine", 80): "Rows"}


@pytest.fixture(scope="module")
def fuzz_seeds(tmp_path_factory):
    """(seed bytes by name, their element headers by name, the path each input is written to)."""
    tmp = tmp_path_factory.mktemp("fuzz-seeds")
    seeds = dm.seed_files(tmp)
    return seeds, {k: dm.elements(v) for k, v in seeds.items()}, tmp / "input.dcm"


def _run_input(fuzz_seeds, name: str, ops: list) -> str:
    seeds, els, path = fuzz_seeds
    return dm.read_untrusted(dm.write(path, dm.apply_ops(seeds[name], ops, els[name])))


def test_seeds_are_read_and_examples_target_their_elements(fuzz_seeds):
    """The unmutated seeds decode, and the regression examples still mutate the elements they name."""
    from pydicom.datadict import keyword_for_tag
    seeds, els, _ = fuzz_seeds
    assert [_run_input(fuzz_seeds, n, []) for n in dm.SEED_NAMES] == ["read"] * len(dm.SEED_NAMES)
    for (name, i), keyword in EXAMPLE_TARGETS.items():
        group, elem = np.frombuffer(seeds[name], "<u2", 2, els[name][i].start)
        assert keyword_for_tag(int(group) << 16 | int(elem)) == keyword, (name, i)


@settings(max_examples=1500, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=INPUTS)
# regressions (each raised an undocumented error before the fix noted)
@example(case=("small_deflated", [("length", 6, 3)]))        # zlib.error from dcmread (_read_dataset)
@example(case=("small_explicit", [("vr", 18, b"UL")]))       # BytesLengthException on first use
@example(case=("small_explicit", [("flip", 674, 2)]))        # NotImplementedError: unknown VR 'WS'
@example(case=("enhanced", [("length", 60, 1)]))             # OSError 'No tag to read' in a sequence
@example(case=("small_explicit", [("value", 28, b"inf")]))   # OverflowError: int(inf) InstanceNumber
@example(case=("enhanced", [("value", 22, b"nan")]))         # ValueError: int(nan)
@example(case=("enhanced", [("value", 29, b"inf")]))         # OverflowError: NumberOfFrames 'inf'
@example(case=("enhanced", [("value", 29, b"-1")]))          # IndexError: NumberOfFrames -1, no frames
@example(case=("bench_cine", [("vr", 80, b"PN")]))           # TypeError: int(Rows as PersonName)
@example(case=("tiny_cine", [("vr", 80, b"CS")]))            # ValueError: int(Rows as text)
@example(case=("enhanced", [("vr", 46, b"UT")]))             # AttributeError: functional group as text
@example(case=("enhanced", [("vr", 37, b"OW"), ("vr", 21, b"AT")]))   # AttributeError in _enhanced_sequence
@example(case=("enhanced", [("vr", 49, b"UT")]))             # ValueError: RescaleSlope not a number
@example(case=("enhanced", [("vr", 48, b"US"), ("vr", 59, b"SQ")]))   # TypeError: float(list) rescale
@example(case=("enhanced", [("vr", 50, b"UT")]))             # struct.error parsing a sequence item
def test_dicom_reader_raises_only_documented_errors(fuzz_seeds, case):
    name, ops = case
    assert _run_input(fuzz_seeds, name, ops) in ("rejected", "no pixels", "read")


def test_huge_frame_count_is_refused_not_looped(fuzz_seeds, tmp_path):
    """A compressed file claiming 10^8 frames: NotDicomError at once (it looped over 10^8 frames)."""
    from cmr_search.indexer.errors import NotDicomError
    with quiet_pydicom():
        ds = pydicom.dcmread(io.BytesIO(fuzz_seeds[0]["bench_cine"]))
    ds.NumberOfFrames = 10**8
    ds.save_as(tmp_path / "huge.dcm")
    with pytest.raises(NotDicomError, match="NumberOfFrames is 100000000, impossible"):
        read_header(str(tmp_path / "huge.dcm"))


@pytest.mark.slow
def test_dicom_reader_100k_inputs(fuzz_seeds):
    """100,000 seeded inputs (dicom_mutations.random_input): only documented errors, and every outcome
    (rejected, no pixels, read) is reached, so the run exercises pixel decoding too."""
    seeds, els, _ = fuzz_seeds
    rng, tally, bugs, n = random.Random(7), Counter(), [], 100_000
    start = time.perf_counter()
    for _ in range(n):
        name, ops = dm.random_input(rng, seeds, els)
        try:
            tally[_run_input(fuzz_seeds, name, ops)] += 1
        except BaseException as e:                  # Rust panics are BaseExceptions; collect, then fail
            if isinstance(e, KeyboardInterrupt):
                raise
            tally["BUG"] += 1
            bugs.append((name, ops, f"{type(e).__name__}: {e}"[:200])) if len(bugs) < 20 else None
    took = time.perf_counter() - start
    print(f"\n{n} inputs in {took:.0f} s ({n / took:.0f}/s), max RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB: {dict(tally)}")
    assert not bugs, bugs[:5]
    assert all(tally[o] >= 100 for o in ("rejected", "no pixels", "read")), tally
