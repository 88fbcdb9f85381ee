"""A small indexed SYNTHETIC data folder whose reports, DICOM header fields and labels are hostile (issue 22):
Markdown images and links to another host, headings, Streamlit directives, HTML and script tags, bare URLs,
a right-to-left override, a 200 KB unbroken token. The fake study cache of tests.helpers.cache_helpers,
rewritten, then embedded and indexed by a fresh cmr-tiny (tests.helpers.demo_data.build_demo)."""
from __future__ import annotations

from pathlib import Path

EVIL = "evil.example"
IMPRESSIONS = (f"![x](http://{EVIL}/beacon.png) Extensive LGE in the inferior wall.",
               "# HEADING\nNo LGE. Normal biventricular size and function.",
               f":red[alarm] :material/warning: see http://{EVIL}/x and www.{EVIL} Patchy LGE.",
               f"<img src=http://{EVIL}/i.png> <script>fetch('http://{EVIL}/s')</script> LGE present.",
               "LVEF \u202e35%\u202c reduced. Dilated LV with LGE.",
               "Subendocardial LGE " + "A" * 200_000 + " consistent with prior infarction.")
MANUFACTURER = f"=1+1 ![m](http://{EVIL}/m.png)"
MODEL_NAME = "@SUM(1+1) :blue[model]"
LABEL = f"[lbl](http://{EVIL}/l)"


def hostile_data(root: Path, n: int = 12) -> Path:
    """The data folder (index, model, cache) under `root`."""
    import polars as pl

    from cmr_search.model.report_context import finding_keys
    from tests.helpers.cache_helpers import make_fake_cache
    from tests.helpers.demo_data import build_demo
    data = root / "data"
    cache = make_fake_cache(data / "cache", n=n, seed=9)
    t = pl.read_parquet(cache / "studies.parquet")
    impressions = [IMPRESSIONS[j % len(IMPRESSIONS)] for j in range(n)]
    t = t.with_columns(impression=pl.Series(impressions),
                       report_findings=pl.Series([finding_keys(s) for s in impressions]),
                       manufacturer=pl.lit(MANUFACTURER), model_name=pl.lit(MODEL_NAME),
                       source_fingerprint=pl.col("study_key"))
    t.write_parquet(cache / "studies.parquet")
    data = build_demo(data, label=False)
    from cmr_search.search import connect
    with connect(data) as client:                      # a hostile label name on every study
        for key in t["study_key"].to_list():
            client.store.set_payload(key, {"labels": [LABEL]})
    return data
