"""CSV files written from data, safe to open in a spreadsheet (docs/privacy.md, "Exports"), and the one
writer of export files (cohort exports, their attrition tables, the audit trail's export).

    write_table(frame, "x.csv")       # formula cells neutralised, written 0600 (search/private_files.py)
    write_table(frame, "x.parquet")   # values as they are, 0600
    csv_text(frame)                   # the same CSV as text (a download button)

The OWASP CSV-injection rule: a text cell that starts with = + - @, a tab or a carriage return gets a
leading single quote, so that a spreadsheet shows `'=HYPERLINK(...)` as text instead of running it (the
cell is quoted where CSV needs it). Only text columns are touched: a number column's -3.5 stays a number.
"""
from __future__ import annotations

from pathlib import Path

import polars as pl

from .private_files import write_private

FORMULA_START = r"^[=+\-@\t\r]"
TEXT_TYPES = (pl.String, pl.Categorical, pl.Enum)


def guarded(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` with every text cell that a spreadsheet would read as a formula prefixed with '."""
    cols = []
    for name, dtype in frame.schema.items():
        if isinstance(dtype, TEXT_TYPES):
            c = pl.col(name).cast(pl.String)
            cols.append(pl.when(c.str.contains(FORMULA_START)).then("'" + c).otherwise(c).alias(name))
    return frame.with_columns(cols) if cols else frame


def csv_text(frame: pl.DataFrame) -> str:
    """`frame` as CSV text, formula cells neutralised."""
    return guarded(frame).write_csv()


def write_csv(frame: pl.DataFrame, path: str | Path) -> Path:
    """`frame` to the CSV file `path`, formula cells neutralised; atomic, a new file 0600."""
    return write_private(path, csv_text(frame).encode("utf-8"))


def write_table(frame: pl.DataFrame, path: str | Path) -> Path:
    """`frame` to `path`: Parquet (values as they are) for .parquet, else write_csv; a new file 0600."""
    path = Path(path)
    if path.suffix == ".parquet":
        return write_private(path, lambda p: frame.write_parquet(p))
    return write_csv(frame, path)
