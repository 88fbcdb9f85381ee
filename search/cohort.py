"""Cohorts: a saved query spec plus its ranked study keys (architecture.md §5).

    cohort = client.cohort("amyloid LGE pattern", k=100, filters=Filter(sex="F"))
    cohort.save("amyloid.cohort.json")                  # spec + ranked keys + scores + index info
    cohort.export("amyloid.csv")                        # or .parquet: keys + payload fields
    again = Cohort.load("amyloid.cohort.json").rerun(client)
    assert again.keys == cohort.keys                     # same index, same model -> same result

The spec records the model id and the index it ran on (backend, collection, point count, model ids), so a
re-run on a changed index says so (CohortDriftWarning) instead of silently differing.
"""
from __future__ import annotations

import datetime as _dt
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from . import audit
from .errors import CohortDefinitionError, QueryError
from .filters import Filter
from .private_files import write_private
from .results import to_frame
from .safe_csv import write_table
from .spec_files import check, read_spec

FORMAT = "cmr-search/cohort-1"


class CohortDriftWarning(UserWarning):
    """A cohort re-run on an index or model that differs from the one it was saved from."""


@dataclass
class Cohort:
    spec: dict                                  # query, mode, view, filters, k, model_id, index, created
    keys: list[str]                             # ranked, best first
    scores: list[float]
    frame: pl.DataFrame | None = field(default=None, repr=False)   # the full results when just run
    audit_to: object = field(default=None, repr=False, compare=False)   # whose audit trail its exports join

    @classmethod
    def build(cls, client, query: str, k: int, filters: Filter | None, mode: str, view: str) -> "Cohort":
        frame = client.search(query, k=k, filters=filters, mode=mode, view=view)
        spec = {"format": FORMAT, "query": query, "mode": mode, "view": view, "k": k,
                "filters": filters.to_dict() if filters else {}, "model_id": client.text_encoder.model_id,
                "index": client.info(),
                "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
        return cls(spec, frame["study_key"].to_list(), frame["score"].to_list(), frame, audit.folder_of(client))

    # ---- persistence ------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """The spec, ranked keys and scores as JSON (a new file 0600: it holds study keys)."""
        return write_private(path, json.dumps({**self.spec, "keys": self.keys, "scores": self.scores}, indent=2))

    @classmethod
    def load(cls, path: str | Path) -> "Cohort":
        """A saved cohort, checked against search/schemas/cohort.schema.json: CohortDefinitionError, one line
        naming the file, the part that is wrong and what is expected (search/spec_files.py)."""
        d = read_spec(path)
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise CohortDefinitionError(f"{path}: not a saved query cohort ({FORMAT}); save one with `cmr cohort "
                                        "export`, or run a cohort definition with `cmr cohort run FILE`.")
        check(d, "cohort", str(path))
        keys, scores = d.pop("keys"), d.pop("scores")
        return cls(d, keys, scores)

    @audit.audited("cohort_run")
    def rerun(self, client) -> "Cohort":
        """Run the saved query again; warns when the index or the model changed since it was saved."""
        s = self.spec
        now = client.info()
        changed = [f for f in ("points", "dim", "report_text_dim", "model_ids") if now.get(f) != s["index"].get(f)]
        if client.text_encoder.model_id != s["model_id"]:
            changed.append("model")
        if changed:
            warnings.warn(f"cohort re-run on a changed index ({', '.join(changed)}): results may differ.",
                          CohortDriftWarning, stacklevel=2)
        return Cohort.build(client, s["query"], s["k"], Filter.from_dict(s["filters"]) if s["filters"] else None,
                            s["mode"], s["view"])

    # ---- export -----------------------------------------------------------------------------------
    def export(self, path: str | Path, client=None, link: str | Path | None = None) -> Path:
        """Write rank, study_key, score and payload fields to .csv or .parquet. `link`: a link.parquet to
        join the raw identifiers (honest-broker step only; never written otherwise): DataFolder.link_table.
        A new file is 0600 and CSV cells that a spreadsheet would run as formulas start with ' (safe_csv).
        Recorded in the audit trail (search/audit.py) of `client`, else of the client that built it."""
        path = Path(path)
        if path.suffix not in (".csv", ".parquet"):
            raise QueryError(f"cohort export to {path.name}: use a .csv or .parquet file name.")
        frame = self.frame if self.frame is not None else self._fetch(client)
        frame = frame.with_row_index("rank", offset=1)
        if link is not None:
            frame = frame.join(pl.read_parquet(link), on="study_key", how="left")
        write_table(frame if path.suffix == ".parquet" else _flat(frame), path)
        audit.record(client if client is not None else self.audit_to, "export",
                     **audit.export_fields(self.spec, rows=frame.height, file=path, identified=link is not None))
        return path

    def _fetch(self, client) -> pl.DataFrame:
        if client is None:
            raise QueryError("this cohort was loaded from a file: pass client= to fetch its payloads.")
        hits = client.store.get(self.keys)
        for h, s in zip(hits, self.scores):
            h.score = s
        return to_frame(hits)


def _flat(frame: pl.DataFrame) -> pl.DataFrame:
    """CSV has no lists: lists joined with ';', label scores as 'label=score;...'."""
    out = []
    for name, dtype in frame.schema.items():
        col = pl.col(name)
        if name == "label_scores":
            col = col.list.eval(pl.element().struct.field("label") + "=" +
                                pl.element().struct.field("score").round(4).cast(pl.Utf8)).list.join(";")
        elif isinstance(dtype, pl.List):
            col = col.list.join(";")
        out.append(col.alias(name))
    return frame.select(out)
