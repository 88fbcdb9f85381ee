"""Screenshots of every page of the workbench (docs/ui/<page>.png), taken in headless chromium.

    python -m tests.helpers.screenshots --data cmr-data [--out docs/ui]      # an indexed data folder
    python -m tests.helpers.screenshots --demo /tmp/ui-demo                   # build a small phantom one first
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tests.helpers import browser as b

QUERY = "dilated left ventricle with reduced ejection fraction"


def _query_and_basket(page) -> list[str]:
    run = b.run_count(page)
    b.submit_query(page, QUERY)
    b.wait_results(page, run)
    page.locator(".st-key-add_all button >> visible=true").first.click()
    b.idle(page)
    return b.result_keys(page)


def take(page, url: str, out: Path, example_zip: Path | None = None) -> list[Path]:
    shots = []

    def shot(name):
        page.wait_for_timeout(600)                 # let GIFs and charts paint
        shots.append(out / f"{name}.png")
        page.screenshot(path=shots[-1], full_page=True)

    b.open_app(page, url)
    keys = _query_and_basket(page)
    shot("search")
    b.card_button(page, "open", keys[0]).click()
    page.get_by_role("heading", name="Study", exact=True).wait_for()
    b.idle(page)
    shot("study")
    b.goto_page(page, "Query by example")
    if example_zip is not None:
        page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(example_zip))
        page.get_by_text("studies most like").wait_for(timeout=180_000)
        b.idle(page)
    shot("query_by_example")
    b.goto_page(page, "Cohort")
    b.add_criteria(page, "age=40..80", "LGE")
    b.run_cohort(page)
    shot("cohort")
    for name, slug in (("Map", "map"), ("About", "about")):
        b.goto_page(page, name)
        shot(slug)
    return shots


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.helpers.screenshots", description=__doc__.splitlines()[0])
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--data", type=Path, help="an indexed data folder")
    g.add_argument("--demo", type=Path, help="build (or reuse) a 12-study phantom data folder here")
    p.add_argument("--out", type=Path, default=Path("docs/ui"))
    p.add_argument("--example-zip", type=Path, default=None, help="a zipped study for the query-by-example shot")
    a = p.parse_args(argv)
    data = b.folder_to_serve("screenshots", a.data, a.demo)
    if data is None:
        return 1
    a.out.mkdir(parents=True, exist_ok=True)
    with b.serve(data) as url, b.browser(1500, 1000) as page:
        for path in take(page, url, a.out, a.example_zip):
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
