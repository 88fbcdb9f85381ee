"""The import root `cmr_search`: every package is installed under it, and a researcher's own search.py or
model.py (a notebook folder) neither shadows the project nor is shadowed by it."""
import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROOMS = ("phantom", "model", "search", "indexer", "ui")


def test_every_package_folder_is_installed_under_the_root():
    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert setup["package-dir"] == {f"cmr_search.{r}": r for r in ROOMS}
    on_disk = {"cmr_search." + ".".join(p.parent.relative_to(ROOT).parts)
               for r in ROOMS for p in (ROOT / r).rglob("__init__.py")}
    assert set(setup["packages"]) == on_disk


def test_a_folder_with_its_own_search_and_model_modules(tmp_path):
    (tmp_path / "search.py").write_text("MINE = 'search'\n")
    (tmp_path / "model.py").write_text("MINE = 'model'\n")
    (tmp_path / "ui.py").write_text("MINE = 'ui'\n")
    code = ("import search, model, ui\n"
            "from cmr_search.search import search as find, connect\n"
            "import cmr_search.model, cmr_search.indexer, cmr_search.ui.cli\n"
            "assert search.MINE == 'search' and model.MINE == 'model' and ui.MINE == 'ui'\n"
            "assert callable(find) and callable(connect)\n"
            "print(cmr_search.model.__file__)\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert Path(r.stdout.strip()).resolve() == (ROOT / "model" / "__init__.py").resolve()
