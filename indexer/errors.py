"""Errors raised by the indexer. Each message says what is wrong and how to fix it."""
from __future__ import annotations


class IndexerError(Exception):
    """Base class of the indexer's errors."""


# --- identifiers, reports, cache (assembly/cache engineer) ---
class SaltError(IndexerError):
    """The salt file exists but cannot be used."""


class ReportFormatError(IndexerError):
    """A reports file cannot be read or has no usable key / text column."""


class CacheError(IndexerError):
    """The study cache folder cannot be written or read."""


class DiskFullError(CacheError):
    """No space left while writing the cache (ENOSPC); the message names the folder and what to do."""


# --- scan, pixel reading, series typing (scan engineer) ---
class NotDicomError(IndexerError):
    """A file is not a usable DICOM image (empty, garbage, truncated, non-image SOP class)."""


class DecoderMissingError(IndexerError):
    """Pixel data uses a transfer syntax whose decoder plugin is not installed."""

    def __init__(self, path: str, syntax: str, name: str, packages: str):
        self.path, self.syntax, self.packages = path, syntax, packages
        super().__init__(f"{path}: cannot decode transfer syntax {name} ({syntax}); "
                         f"install {packages} (pip install {packages.split(' or ')[0]})")


class PixelReadError(IndexerError):
    """Pixel data could not be read or frames do not fit together (shape mismatch)."""


class AssemblyError(IndexerError):
    """A study cannot be assembled into cache arrays (e.g. it has no cine)."""


class CorruptPixelsError(PixelReadError):
    """One file's pixel data cannot be decoded or holds impossible values; `path` names the file, so
    a study can be assembled without it."""

    def __init__(self, path: str, message: str):
        self.path = path
        super().__init__(f"{path}: {message}")


class SegmentInputError(IndexerError):
    """`cmr segment` got something it cannot segment (no cine SAX, a single image, a wrongly shaped or
    unreadable file); the message names the file and the reason."""
