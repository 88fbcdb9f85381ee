"""`cmr --version`: the installed distribution's version (pyproject.toml [project] name and version)."""
import subprocess
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path

from cmr_search.ui.cli import DISTRIBUTION, main

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_version_prints_the_installed_version(capsys):
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    assert DISTRIBUTION == project["name"]
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"cmr {version(DISTRIBUTION)}" == f"cmr {project['version']}"
    assert main(["-V"]) == 0 and capsys.readouterr().out.strip() == f"cmr {project['version']}"


def test_version_is_quick_and_light():
    """--version imports no command module (no torch, polars or qdrant)."""
    code = ("import sys; from cmr_search.ui.cli import main; main(['--version']); "
            "print(sorted(m for m in ('torch', 'polars', 'qdrant_edge', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-1] == "[]"
