"""`cmr label`: scores and prints by default; writes labels to the index only with --write."""
import json
import shutil

import pytest

from tests.helpers.search_helpers import CLASSES


@pytest.fixture
def data(tmp_path, tiny_model):
    from cmr_search.model.checkpoint import save_checkpoint
    from cmr_search.search import Store
    from tests.helpers.search_helpers import aligned_rows
    d = tmp_path / "data"
    with Store.open(d, dim=tiny_model.embed_dim) as s:
        s.upsert_studies(aligned_rows(tiny_model))
    save_checkpoint(tiny_model, d / "model")
    prompts = tmp_path / "prompts.json"
    prompts.write_text(json.dumps({c: [t] for c, t in CLASSES.items()}))
    yield ["--data", str(d), "--prompts", str(prompts)], d
    shutil.rmtree(d, ignore_errors=True)


def _labels(d):
    from cmr_search.search import Store
    with Store.open(d) as s:
        return sorted(tuple(h.payload.get("labels") or ()) for h in s.scroll(None))


def test_label_writes_only_with_the_flag(data, capsys):
    from cmr_search.ui.cli import main
    args, d = data
    empty = _labels(d)
    assert main(["label", *args]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("scored 30 studies") and "--write" in err and _labels(d) == empty == [()] * 30
    assert main(["label", "--dry-run", *args]) == 0 and _labels(d) == empty      # the old flag: still nothing
    capsys.readouterr()
    assert main(["label", "--write", *args]) == 0
    out, _ = capsys.readouterr()
    assert out.startswith("labeled 30 studies") and sum(1 for x in _labels(d) if x) >= 25
