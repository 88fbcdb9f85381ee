"""End to end in a real browser: `cmr ui` on a free localhost port, a small indexed phantom archive,
Debian's chromium through Playwright. Type a query, open a study, 👎 a result and see the ranking change,
add to the cohort, export, check the exported file. Screenshots go to a temp folder."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def phantom_data(tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is absent (apt-get install chromium); the browser test needs it")
    pytest.importorskip("playwright.sync_api", reason="playwright (python package) is not installed")
    from tests.helpers.demo_data import build
    return build(tmp_path_factory.mktemp("e2e"), n=12, seed=3)


def test_browser_flow(phantom_data, tmp_path):
    from tests.helpers import browser as b
    shots = tmp_path / "shots"
    shots.mkdir()
    with b.serve(phantom_data) as url, b.browser() as page:
        b.open_app(page, url)
        run = b.run_count(page)
        b.submit_query(page, "dilated left ventricle with reduced ejection fraction")
        b.wait_results(page, run, n=12)
        first = b.result_keys(page)
        assert len(first) == 12
        page.screenshot(path=shots / "search.png")
        html = [page.content()]

        run = b.run_count(page)                                  # 👎 the top result: ranking changes
        b.card_button(page, "down", first[0]).click()
        b.wait_results(page, run)
        second = b.result_keys(page)
        assert first[0] not in second and second != first
        assert page.get_by_text("refined by feedback").is_visible()

        b.card_button(page, "add", second[0]).click()             # add to the cohort
        b.idle(page)
        b.card_button(page, "open", second[1]).click()            # open a study
        page.get_by_role("heading", name="Study", exact=True).wait_for()
        b.idle(page)
        assert page.get_by_text("Similar studies (study → study)").is_visible()
        page.screenshot(path=shots / "study.png", full_page=True)
        assert page.get_by_text("cine SAX, segmented").first.is_visible()
        assert _coloured_frames(next((phantom_data / "thumbs" / second[1]).glob("seg_cine_*.gif"))) >= 2
        html.append(page.content())
        page.get_by_role("button", name="add to cohort").locator("visible=true").first.click()
        b.idle(page)

        b.goto_page(page, "Cohort")
        page.get_by_role("tab", name="Basket").click()
        page.get_by_text("studies in the cohort").wait_for()
        with page.expect_download() as dl:
            page.locator(".st-key-dl_csv button >> visible=true").first.click()
        path = tmp_path / "cohort.csv"
        dl.value.save_as(path)
        page.screenshot(path=shots / "cohort.png", full_page=True)
    frame = pl.read_csv(path)
    assert set(frame["study_key"]) == {second[0], second[1]}
    assert {"rank", "score", "age", "sex", "labels", "impression"} <= set(frame.columns)
    assert not {"study_instance_uid", "accession_number", "source_path"} & set(frame.columns)
    assert all((shots / f"{p}.png").stat().st_size > 10_000 for p in ("search", "study", "cohort"))
    link = pl.read_parquet(phantom_data / "cache" / "link.parquet")     # raw identifiers: never shown
    raw = [v for c in ("study_instance_uid", "accession_number", "source_path") for v in link[c].to_list() if v]
    assert raw and not [v for v in raw if any(v in h for h in html)]
    print(f"screenshots in {shots}: {sorted(os.listdir(shots))}")


def _coloured_frames(gif_path) -> int:
    """Frames of a GIF with the LV cavity's overlay colour (red, as media.MASK_COLOURS; GIF palettes shift
    it a little)."""
    from PIL import Image
    gif, n = Image.open(gif_path), 0
    for i in range(gif.n_frames):
        gif.seek(i)
        n += any(r > 180 and g < 130 and b < 130 for _, (r, g, b) in gif.convert("RGB").getcolors(1 << 16))
    return n


def test_browser_cohort_builder(phantom_data, tmp_path):
    """Issue 21: build a two-criterion cohort (age 40-80, LGE affirmed in the report) on the Cohort page,
    read its attrition chart, export it; on the Search page every card marks the clause that matched."""
    from cmr_search.search import connect
    from cmr_search.search.cohort_definition import CohortDefinition
    from tests.helpers import browser as b
    with b.serve(phantom_data) as url, b.browser() as page:
        b.open_app(page, url)
        run = b.run_count(page)
        b.submit_query(page, "late gadolinium enhancement")
        b.wait_results(page, run, n=12)
        page.wait_for_function("() => document.querySelectorAll('mark').length >= 12")   # cards fill in
        marks = page.locator("mark").all_inner_texts()           # the best clause of each card, highlighted
        assert len(marks) >= 12 and all(m.strip() for m in marks)
        page.get_by_role("button", name="more", exact=True).nth(11).wait_for()       # the last card painted
        assert page.get_by_role("button", name="more", exact=True).count() == 12     # named buttons

        b.goto_page(page, "Cohort")
        b.add_criteria(page, "age=40..80", "LGE")
        page.get_by_text("1. age=40..80").wait_for(timeout=30_000)        # each criterion listed, in order
        page.get_by_text("2. report LGE affirmed").wait_for(timeout=30_000)
        chart = b.run_cohort(page)
        page.get_by_text("Attrition").wait_for()
        texts = chart.locator("text").evaluate_all("els => els.map(e => e.textContent)")
        assert {"0. all studies in the index", "1. age=40..80", "2. report LGE affirmed"} <= set(texts), texts
        assert "12" in texts                                     # the index's studies, a bar label
        page.screenshot(path=tmp_path / "cohort-builder.png", full_page=True)
        page.locator(".st-key-cb_export button >> visible=true").first.click()
        b.idle(page)
        with page.expect_download() as dl:
            page.locator(".st-key-cb_dl_0 button >> visible=true").first.click()
        path = tmp_path / "cohort.csv"
        dl.value.save_as(path)
    with connect(phantom_data) as client:
        truth = CohortDefinition.from_dict({"inclusion": [{"filter": ["age=40..80"]},
                                                          {"report": "LGE", "status": ["affirmed"]}]}).run(client)
    assert pl.read_csv(path)["study_key"].to_list() == truth.keys and truth.keys
    assert (tmp_path / "cohort-builder.png").stat().st_size > 10_000


def test_cmr_ui_a_notebook_and_cmr_index_on_one_embedded_folder(phantom_data):
    """Issue 19: the workbench (a real `cmr ui` process) and a Python session search one embedded data
    folder at the same time and agree; `cmr index` run while the UI is open completes; the UI still answers."""
    from cmr_search.search import connect
    from tests.helpers import browser as b
    query = "dilated left ventricle with reduced ejection fraction"
    with b.serve(phantom_data) as url, b.browser() as page:
        b.open_app(page, url)
        run = b.run_count(page)
        b.submit_query(page, query)
        b.wait_results(page, run, n=12)
        in_ui = b.result_keys(page)
        with connect(phantom_data) as notebook:
            assert notebook.search(query, k=12)["study_key"].to_list() == in_ui
            run = b.run_count(page)
            b.submit_query(page, "amyloid")                          # the UI answers while the notebook is open
            b.wait_results(page, run, n=12)
        done = subprocess.run([sys.executable, "-m", "cmr_search.ui.cli", "index", "--data", str(phantom_data),
                               "--no-progress"], capture_output=True, text=True, timeout=300,
                              env={**os.environ, "HF_HUB_OFFLINE": "1"})
        assert done.returncode == 0, done.stderr[-2000:]
        assert "already up to date" in done.stdout
        run = b.run_count(page)
        b.submit_query(page, query)
        b.wait_results(page, run, n=12)
        assert b.result_keys(page) == in_ui
