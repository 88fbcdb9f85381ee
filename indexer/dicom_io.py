"""Pixel reading: InstanceRecords -> one float32 array, through pydicom's decoder plugins.

    frames = read_frames(series.instances)     # (N, H, W) float32, RescaleSlope/Intercept applied

Uncompressed little-endian classic MR files (most archives) are read straight from their bytes (dicom_fast
finds Pixel Data; no pydicom parse). Compressed transfer syntaxes are decoded by whichever plugin is installed (pylibjpeg + its
libjpeg/openjpeg/rle packages, pyjpegls, python-gdcm; RLE also by pydicom itself). When none is,
DecoderMissingError names the file, the syntax and the package to install. `decoders_available()`
says which syntaxes this environment can decode.
"""
from __future__ import annotations

import io
from collections import OrderedDict

import numpy as np
import pydicom
from pydicom import uid as U
from pydicom.pixels import get_decoder

from cmr_search.indexer.dicom_fast import parse
from cmr_search.indexer.dicom_headers import MULTIFRAME_SOP_CLASSES, frame_item, quiet_pydicom
from cmr_search.indexer.errors import CorruptPixelsError, DecoderMissingError, PixelReadError
from cmr_search.indexer.records import InstanceRecord

# transfer syntax -> what to install when no plugin can decode it
INSTALL_HINT = {
    U.JPEGLossless: "pylibjpeg pylibjpeg-libjpeg or python-gdcm",
    U.JPEGLosslessSV1: "pylibjpeg pylibjpeg-libjpeg or python-gdcm",
    U.JPEGBaseline8Bit: "pylibjpeg pylibjpeg-libjpeg or python-gdcm or pillow",
    U.JPEGExtended12Bit: "pylibjpeg pylibjpeg-libjpeg or python-gdcm",
    U.JPEGLSLossless: "pyjpegls or pylibjpeg pylibjpeg-libjpeg or python-gdcm",
    U.JPEGLSNearLossless: "pyjpegls or pylibjpeg pylibjpeg-libjpeg or python-gdcm",
    U.JPEG2000Lossless: "pylibjpeg pylibjpeg-openjpeg or python-gdcm",
    U.JPEG2000: "pylibjpeg pylibjpeg-openjpeg or python-gdcm",
    U.RLELossless: "numpy (built in) or pylibjpeg pylibjpeg-rle",
}
CHECKED_SYNTAXES = (U.ImplicitVRLittleEndian, U.ExplicitVRLittleEndian, U.DeflatedExplicitVRLittleEndian,
                    U.ExplicitVRBigEndian, *INSTALL_HINT)


def decoder_for(syntax: str):
    """pydicom's decoder for a transfer syntax, or None when pydicom has none at all."""
    try:
        return get_decoder(U.UID(syntax))
    except (NotImplementedError, ValueError):
        return None


def decoders_available() -> dict[str, bool]:
    """Transfer syntax UID -> whether an installed plugin can decode it (uncompressed included)."""
    out = {}
    for ts in CHECKED_SYNTAXES:
        dec = decoder_for(ts)
        out[str(ts)] = bool(dec is not None and dec.is_available)
    return out


def check_decodable(path: str, syntax: str) -> None:
    """Raise DecoderMissingError when no installed plugin decodes `syntax`."""
    dec = decoder_for(syntax)
    if dec is not None and dec.is_available:
        return
    name = U.UID(syntax).name if syntax else "unknown"
    hint = INSTALL_HINT.get(syntax, "a pydicom pixel data plugin for it (pylibjpeg or python-gdcm); "
                                    "no plugin handles this syntax today")
    raise DecoderMissingError(path, syntax, name, hint)


def _rescale(ds, i: int, path: str = "") -> tuple[float, float]:
    """RescaleSlope/Intercept of frame i (Enhanced MR: the Pixel Value Transformation group);
    CorruptPixelsError when they are not finite numbers."""
    src = ds
    try:
        if str(ds.get("SOPClassUID", "")) in MULTIFRAME_SOP_CLASSES:
            src = frame_item(ds, i, "PixelValueTransformationSequence") or ds
        slope, icpt = src.get("RescaleSlope", 1), src.get("RescaleIntercept", 0)
        slope, icpt = float(slope or 1), float(icpt or 0)
    except Exception as e:          # a value pydicom cannot convert, or not a number (e.g. multi-valued)
        raise CorruptPixelsError(path, f"RescaleSlope/RescaleIntercept unreadable ({type(e).__name__}: "
                                 f"{e}): corrupt header; re-export the file") from None
    if not (np.isfinite(slope) and np.isfinite(icpt)):
        raise CorruptPixelsError(path, f"RescaleSlope {slope} / RescaleIntercept {icpt} not finite: "
                                 "corrupt header; re-export the file")
    return slope, icpt


NATIVE_SYNTAXES = (U.ExplicitVRLittleEndian, U.ImplicitVRLittleEndian)


def _native_pixels(ds, syntax: str, path: str) -> np.ndarray | None:
    """Uncompressed little-endian grayscale Pixel Data straight from its bytes -> (F, H, W), the same
    values as pydicom's pixel_array (bits above BitsStored masked, signed values sign-extended)
    without its per-file overhead; None where this shortcut does not apply."""
    bits, stored = int(ds.get("BitsAllocated", 0) or 0), int(ds.get("BitsStored", 0) or 0)
    if syntax not in NATIVE_SYNTAXES or bits not in (8, 16, 32) or "PixelData" not in ds \
            or int(ds.get("SamplesPerPixel", 1) or 1) != 1 or not 0 < stored <= bits:
        return None
    signed = ds.get("PixelRepresentation", 0) == 1
    shape = (int(ds.get("NumberOfFrames", 1) or 1), int(ds.Rows), int(ds.Columns))
    buf = ds.PixelData
    if len(buf) < np.prod(shape) * bits // 8:
        raise CorruptPixelsError(path, f"Pixel Data holds {len(buf)} bytes, {shape} frames of {bits} "
                                 "bits need more: the file is corrupt; re-export or re-copy it")
    arr = np.frombuffer(buf, f"<{'i' if signed else 'u'}{bits // 8}", count=int(np.prod(shape)))
    arr = arr.reshape(shape)
    if stored < bits:
        shift = bits - stored
        arr = (arr << shift) >> shift if signed else arr & ((1 << stored) - 1)
    return arr


def _decode_file(path: str) -> tuple[np.ndarray, pydicom.Dataset]:
    """All frames of one file -> (F, H, W) raw stored values, and its dataset."""
    with quiet_pydicom():
        try:
            with open(path, "rb") as f:                   # one read; parsing from memory is faster
                raw = f.read()
            fast = parse(raw)                             # the common file: no pydicom parse at all
            if fast is not None:
                return _frames(_native_pixels(fast, fast.transfer_syntax, path), path), fast
            ds = pydicom.dcmread(io.BytesIO(raw), force=True)
        except CorruptPixelsError:
            raise
        except Exception as e:
            raise CorruptPixelsError(path, f"unreadable ({type(e).__name__}: {e})") from None
        syntax = str(ds.file_meta.get("TransferSyntaxUID", U.ExplicitVRLittleEndian))
        check_decodable(path, syntax)
        try:
            arr = _native_pixels(ds, syntax, path)
            arr = ds.pixel_array if arr is None else arr
        except CorruptPixelsError:
            raise
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as e:   # Rust decoder plugins panic (pyo3 PanicException is no Exception)
            raise CorruptPixelsError(path, f"pixel data could not be decoded ({type(e).__name__}: "
                                     f"{e}); the file is corrupt: re-export or re-copy it") from None
    return _frames(arr, path), ds


def _frames(arr: np.ndarray, path: str) -> np.ndarray:
    """A decoded pixel array -> (F, H, W); CorruptPixelsError for colour or odd shapes."""
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise CorruptPixelsError(path, f"expected grayscale frames, got pixel array of shape "
                                 f"{arr.shape}; colour images are not supported")
    return arr


def read_frames(instances: list[InstanceRecord]) -> np.ndarray:
    """Pixels of the given instances, in order -> (N, H, W) float32 with rescale applied.

    Each file is decoded once, even when several of its frames are asked for. All frames must have
    the same Rows x Columns (PixelReadError otherwise).
    """
    if not instances:
        return np.zeros((0, 0, 0), np.float32)
    cache: OrderedDict[str, tuple[np.ndarray, pydicom.Dataset]] = OrderedDict()
    shape = (instances[0].rows, instances[0].cols)
    out = np.empty((len(instances), *shape), np.float32)     # (N, H, W)
    for n, inst in enumerate(instances):
        if inst.path not in cache:
            cache[inst.path] = _decode_file(inst.path)
            if len(cache) > 4:                                 # multi-frame files are reused
                cache.popitem(last=False)
        arr, ds = cache[inst.path]
        if inst.frame >= len(arr):
            raise PixelReadError(f"{inst.path}: frame {inst.frame} asked for, file has {len(arr)}")
        frame = arr[inst.frame]
        if frame.shape != shape:
            raise PixelReadError(f"{inst.path}: frame is {frame.shape[0]}x{frame.shape[1]}, the "
                                 f"first is {shape[0]}x{shape[1]}; read series of one size together")
        slope, intercept = _rescale(ds, inst.frame, inst.path)
        out[n] = frame.astype(np.float32) * np.float32(slope) + np.float32(intercept)
    return out
