"""Drive the running workbench in a real browser (Debian's chromium through Playwright): the end-to-end
test, the screenshots and the latency bench share this harness. Never downloads a browser.

    with serve(data) as url, browser() as page:
        page.goto(url); submit_query(page, "amyloid"); wait_results(page)
"""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ROOT = Path(__file__).resolve().parents[2]          # the repository root


def folder_to_serve(prog: str, data: Path | None, demo: Path | None, **build) -> Path | None:
    """The data folder a browser run serves: `data` as given, or a SYNTHETIC demo folder built (or reused)
    under `demo` (tests.helpers.demo_data.build(**build)); None, said on stderr, when Chromium is absent."""
    if not Path(CHROMIUM).exists():
        print(f"{prog}: {CHROMIUM} is absent (apt-get install chromium).", file=sys.stderr)
        return None
    if demo is None:
        return data
    from tests.helpers.demo_data import build as build_demo   # torch and the indexer: only when asked
    return build_demo(demo, **build)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


@contextlib.contextmanager
def serve(data: str | Path, port: int | None = None, timeout: float = 120, extra: tuple[str, ...] = ()):
    """`cmr ui --data DATA --port P [extra flags]` in a subprocess; yields its URL; stops it (that process
    only)."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    log = tempfile.NamedTemporaryFile("w+", prefix="cmr-ui-", suffix=".log", delete=False)
    proc = subprocess.Popen([sys.executable, "-m", "cmr_search.ui.cli", "ui", "--data", str(data), "--port", str(port),
                             *extra],
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        t0 = time.monotonic()
        while not _ready(url):
            if proc.poll() is not None or time.monotonic() - t0 > timeout:
                log.seek(0)
                raise RuntimeError(f"cmr ui did not start:\n{log.read()[-3000:]}")
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(0.5)                   # wakes at once if the server dies; else poll again
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        os.unlink(log.name)


@contextlib.contextmanager
def browser(width: int = 1600, height: int = 1000):
    """A fresh headless chromium page (own profile folder, no network but localhost)."""
    from playwright.sync_api import sync_playwright
    with tempfile.TemporaryDirectory(prefix="cmr-chromium-") as profile, sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=ARGS, accept_downloads=True,
            viewport={"width": width, "height": height})
        try:
            page = ctx.pages[0] if ctx.pages else ctx.new_page()
            page.set_default_timeout(60_000)
            yield page
        finally:
            ctx.close()


def idle(page, timeout: float = 60_000, settle_ms: int = 200) -> None:
    """Wait until Streamlit has finished the current run (the app's script state is notRunning);
    `settle_ms` first gives a just-clicked widget time to start its run."""
    page.wait_for_timeout(settle_ms)
    page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for(timeout=timeout)


def open_app(page, url: str) -> None:
    page.goto(url)
    page.get_by_role("heading", name="Search", exact=True).wait_for()
    idle(page)


def submit_query(page, text: str, k: int | None = None) -> None:
    page.locator(".st-key-q_box input").fill(text)
    if k is not None:
        pick(page, "q_k", str(k))
    page.get_by_role("button", name="Search", exact=True).click()


def pick(page, key: str, option: str) -> None:
    """Choose `option` in the selectbox with widget key `key`."""
    page.locator(f".st-key-{key} input").first.click()
    page.get_by_role("option", name=option, exact=True).click()


def run_count(page) -> int:
    import re
    caps = page.locator("text=/results · run \\d+/").all_inner_texts()
    return max((int(m.group(1)) for c in caps if (m := re.search(r"run (\d+)", c))), default=0)


def wait_results(page, after_run: int, n: int | None = None, timeout: float = 60_000) -> None:
    """Wait for the results of run > after_run to be on the page (their caption, then every card)."""
    page.wait_for_function(
        """(after) => [...document.querySelectorAll('p, span, div')].some(e => {
             const m = /results · run (\\d+)/.exec(e.textContent || ''); return m && +m[1] > after; })""",
        arg=after_run, timeout=timeout)
    if n:
        page.wait_for_function(
            "(n) => document.querySelectorAll('[class*=\"st-key-r_open_\"]').length >= n", arg=n,
            timeout=timeout)
    idle(page, timeout, settle_ms=0)          # the new run's caption is on the page: it has started


def result_keys(page) -> list[str]:
    keys = page.eval_on_selector_all('[class*="st-key-r_open_"]',
                                     "els => els.map(e => [...e.classList].find(c => c.startsWith('st-key-r_open_')))")
    return [k[len("st-key-r_open_"):] for k in keys if k]


def card_button(page, action: str, key: str):
    return page.locator(f".st-key-r_{action}_{key} button >> visible=true").first     # a help tooltip doubles it


def goto_page(page, name: str) -> None:
    page.locator('[data-testid="stSidebar"]').get_by_text(name, exact=True).click()
    page.get_by_role("heading", name=name, exact=True).first.wait_for()
    idle(page)


def add_criteria(page, filter_text: str, report_term: str) -> None:
    """On the Cohort page's Criteria tab: add a filter and an affirmed report term as inclusion criteria."""
    page.locator(".st-key-cb_filter input").fill(filter_text)
    page.locator(".st-key-cb_add_filter button").click()
    idle(page)
    page.get_by_role("tab", name="report terms").click()
    page.locator(".st-key-cb_terms input").wait_for()
    page.locator(".st-key-cb_terms input").fill(report_term)
    page.locator(".st-key-cb_add_report button").click()
    idle(page)


def run_cohort(page):
    """Run the builder's cohort; returns its attrition chart (the SVG), drawn."""
    page.locator(".st-key-cb_run button").click()
    idle(page)
    chart = page.locator('[data-testid="stVegaLiteChart"] svg').first
    chart.wait_for()
    return chart
