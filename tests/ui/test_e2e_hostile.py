"""Issue 22: hostile reports, headers and labels in a real browser (`cmr ui`, Debian's chromium through
Playwright). The search, study, cohort and map pages open; no request leaves for another host (no beacon,
no auto-link fetch, no script); no heading, link or image is made of data; the layout holds (no page-wide
horizontal overflow from a 200 KB token) and the study page renders in seconds."""
from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
LOCAL = {"127.0.0.1", "localhost", "[::1]", "::1"}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is absent (apt-get install chromium); the browser test needs it")
    pytest.importorskip("playwright.sync_api", reason="playwright (python package) is not installed")
    from tests.helpers.hostile_data import hostile_data
    return hostile_data(tmp_path_factory.mktemp("hostile"))


def _check_page(page, name: str, shots: Path) -> None:
    from tests.helpers.hostile_data import EVIL
    page.screenshot(path=shots / f"{name}.png", full_page=True)
    dom = page.content()
    for bad in (f'src="http://{EVIL}', f'href="http://{EVIL}'):
        at = dom.find(bad)
        assert at < 0, (name, dom[max(0, at - 300):at + 100])
    assert page.locator(f'a[href*="{EVIL}"], img[src*="{EVIL}"], script[src*="{EVIL}"]').count() == 0, name
    assert page.get_by_role("heading", name="HEADING").count() == 0, name
    assert "\u202e" not in page.locator("body").inner_text(), name
    width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1] + 16, (name, width)


def test_hostile_text_stays_text_and_nothing_leaves(data, tmp_path):
    from tests.helpers import browser as b
    from tests.helpers.hostile_data import EVIL
    shots = tmp_path / "shots"
    shots.mkdir()
    requests: list[str] = []
    with b.serve(data) as url, b.browser() as page:
        page.on("request", lambda r: requests.append(r.url))
        b.open_app(page, url)
        run = b.run_count(page)
        b.submit_query(page, "late gadolinium enhancement")
        b.wait_results(page, run, n=12)
        _check_page(page, "search", shots)
        assert page.get_by_text("alarm").count() >= 1                  # the directive's words, as text
        keys = b.result_keys(page)
        for key in keys[:6]:                                           # every hostile report, opened
            b.goto_page(page, "Search")
            t0 = time.monotonic()
            b.card_button(page, "open", key).click()
            page.get_by_role("heading", name="Study", exact=True).wait_for()
            b.idle(page)
            assert time.monotonic() - t0 < 30, f"study page of {key} took {time.monotonic() - t0:.0f} s"
            _check_page(page, f"study-{key}", shots)
        b.goto_page(page, "Cohort")
        page.locator(".st-key-cb_terms input").first.wait_for(state="attached")
        _check_page(page, "cohort", shots)
        b.goto_page(page, "Map")
        page.locator('[data-testid="stVegaLiteChart"]').first.wait_for()
        _check_page(page, "map", shots)
    hosts = {urlparse(u).hostname for u in requests if urlparse(u).scheme in ("http", "https", "ws", "wss")}
    assert hosts and hosts <= LOCAL, f"requests left for {sorted(hosts - LOCAL)} ({EVIL} planted)"
