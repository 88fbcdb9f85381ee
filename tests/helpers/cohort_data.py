"""A small indexed SYNTHETIC data folder with known truth for the cohort tests (tests/search/test_cohort_phantom.py,
tests/ui/test_cohort_cmd.py): the fake study cache of tests.helpers.cache_helpers, rewritten so that cohorts
have something to find (three studies per patient, ages 30-89, dates over years, LVEF spread, impressions
whose findings are LGE / amyloid / HCM in every status), embedded and indexed by a fresh cmr-tiny through
`cmr index`'s pipeline (tests.helpers.demo_data.build_demo). The truth is DATA/cache/studies.parquet.
Built once per process."""
from __future__ import annotations

import tempfile
from pathlib import Path

N_STUDIES = 30
IMPRESSIONS = ("Extensive LGE in the inferior wall. Reduced LV function.",
               "No LGE. Normal biventricular size and function.",
               "Cardiac amyloidosis with diffuse LGE.",
               "Possible amyloid. No LGE.",
               "Family history of HCM. Mid-wall fibrosis.",
               "Hypertrophic cardiomyopathy with patchy LGE.",
               "Subendocardial LGE consistent with prior infarction.")
_built: dict[str, Path] = {}


def cohort_data() -> Path:
    """The data folder (index, model, cache); shared read-only by the tests of one process."""
    if "data" not in _built:
        _built["data"] = _build(Path(tempfile.mkdtemp(prefix="cmr-cohort-")) / "data")
    return _built["data"]


def _build(data: Path) -> Path:
    import polars as pl

    from cmr_search.model.report_context import finding_keys
    from tests.helpers.cache_helpers import make_fake_cache
    from tests.helpers.demo_data import build_demo
    cache = make_fake_cache(data / "cache", n=N_STUDIES, seed=5)
    t = pl.read_parquet(cache / "studies.parquet")
    i = pl.int_range(pl.len())
    impressions = [IMPRESSIONS[(j * 3) % len(IMPRESSIONS)] for j in range(N_STUDIES)]
    t = t.with_columns(
        patient_key=pl.format("pt{}", i // 3), age=(30 + (i * 7) % 60).cast(pl.Float64),
        study_date=pl.format("20{}-0{}-15", 10 + (i % 3) * 4 + i // 10, 1 + i % 9),
        lvef=pl.when(pl.col("lvef").is_null()).then(None).otherwise(20.0 + (i * 11) % 50),
        impression=pl.Series(impressions), report_findings=pl.Series([finding_keys(s) for s in impressions]),
        source_fingerprint=pl.col("study_key"))                   # `cmr index` skips by fingerprint
    t.write_parquet(cache / "studies.parquet")
    return build_demo(data, label=False)
