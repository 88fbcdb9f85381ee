"""The Python API as a REPL user meets it: README.md's "Python" example runs, every public call has a
docstring with an example, and a Client says what it is connected to."""
import re
import shutil
from pathlib import Path

import pytest

import cmr_search.search as api
from cmr_search.search import Client

README = Path(__file__).resolve().parents[2] / "README.md"
CLIENT_CALLS = ["connect", "search", "similar", "reports_for", "refine", "label", "cohort", "near_duplicates",
                "info"]


def readme_example() -> str:
    m = re.search(r"^## Python\n.*?```python\n(.*?)```", README.read_text(), re.S | re.M)
    assert m, "README.md has no '## Python' section with a ```python block"
    return m.group(1)


@pytest.fixture
def demo_folder(tmp_path, aligned_template, tiny_model):
    """A data folder as `cmr index` leaves it: DATA/index and the model in DATA/model."""
    from cmr_search.model.checkpoint import save_checkpoint
    shutil.copytree(aligned_template, tmp_path / "data")
    save_checkpoint(tiny_model, tmp_path / "data" / "model")
    return tmp_path / "data"


def test_the_readme_python_example_runs(demo_folder, tmp_path, monkeypatch, capsys):
    code = readme_example()
    assert code.count('"cmr-data"') == 1
    for call in CLIENT_CALLS[:-2]:
        assert f"{call}(" in code, f"the README example does not show {call}()"
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code.replace('"cmr-data"', repr(str(demo_folder))), str(README), "exec"), scope)
    out = capsys.readouterr().out
    assert out.startswith(f"Client(data={str(demo_folder)!r}, backend='embedded', studies=30")
    assert scope["hits"].height > 0 and set(scope["hits"]["sex"]) == {"M"}
    assert (tmp_path / "dcm.csv").exists() and (tmp_path / "dcm.cohort.json").exists()
    assert scope["labels"]["label"].is_in(["amyloid", "hcm"]).all()


def _has_example(obj) -> bool:
    return ">>>" in (obj.__doc__ or "")


def test_every_public_call_has_a_docstring_with_an_example():
    missing = [n for n in ["Client"] + CLIENT_CALLS if not _has_example(getattr(Client, n, None) or
                                                                        getattr(api, n))]
    missing += [f"cmr_search.search.{n}" for n in api.__all__ if callable(getattr(api, n))
                and getattr(api, n).__module__ == api.__name__ and not _has_example(getattr(api, n))]
    assert not missing, f"no docstring example: {missing}"


def test_the_client_repr_names_data_backend_studies_and_model(demo_folder):
    with api.connect(demo_folder) as c:
        before = repr(c)
        c.search("cardiac amyloidosis", k=1)
        after = repr(c)
    assert before.startswith(f"Client(data={str(demo_folder)!r}, backend='embedded', studies=30, model='not loaded")
    model_id = c.text_encoder.model_id
    assert f"model='{model_id} ({demo_folder / 'model'})'" in after and model_id.startswith("cmr-tiny:")
