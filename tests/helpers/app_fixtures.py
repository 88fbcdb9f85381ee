"""Fixtures of the app tests: one small indexed data folder (a fake 12-study cache embedded by a fresh
cmr-tiny, saved as DATA/model), shared by the test_app_* modules, and an AppTest on it."""
from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "ui" / "app" / "main.py")
N_STUDIES = 12


@pytest.fixture(scope="session")
def ui_data(tmp_path_factory) -> Path:
    from tests.helpers.cache_helpers import make_fake_cache

    from tests.helpers.demo_data import build_demo
    data = tmp_path_factory.mktemp("ui") / "data"
    import polars as pl
    cache = make_fake_cache(data / "cache", n=N_STUDIES, seed=3)
    table = pl.read_parquet(cache / "studies.parquet")           # `cmr index` skips by fingerprint
    table.with_columns(source_fingerprint=pl.col("study_key")).write_parquet(cache / "studies.parquet")
    return build_demo(data)


@pytest.fixture
def app(ui_data, monkeypatch):
    """A fresh session of the app on ui_data (the index client is shared through st.cache_resource)."""
    return open_session(ui_data, monkeypatch)


def open_session(data: Path, monkeypatch):
    """A fresh AppTest session of the workbench on the data folder `data`, run once."""
    from streamlit.testing.v1 import AppTest
    monkeypatch.setenv("CMR_DATA", str(data))
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


def search(at, query: str = "dilated left ventricle"):
    at.text_input(key="q_box").set_value(query)
    at.button(key="FormSubmitter:query_form-Search").click().run()
    assert not at.exception, at.exception
    return at


def goto(at, page: str):
    at.sidebar.radio[0].set_value(page).run()
    assert not at.exception, at.exception
    return at


def result_keys(at, prefix: str = "r_open_") -> list[str]:
    return [b.key[len(prefix):] for b in at.button if b.key and b.key.startswith(prefix)]


@pytest.fixture(scope="session")
def study_zip(tmp_path_factory) -> bytes:
    """One synthetic DICOM study, zipped (the upload of query by example)."""
    from cmr_search.ui.cli import main
    out = tmp_path_factory.mktemp("upload") / "archive"
    assert main(["synth", "--n", "1", "--profile", "tiny", "--seed", "5", "--out", str(out)]) == 0
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for p in sorted(out.rglob("*")):
            if p.is_file() and p.suffix not in (".json", ".txt", ".csv", ".parquet"):
                zf.write(p, os.path.relpath(p, out))
    return buf.getvalue()
