"""The published CMR-CLIP folder (config.json + pytorch_model.bin, random weights from the key manifest)
through every entry point: connect(checkpoint=DIR), `cmr search --checkpoint DIR`, the indexer's
resolve_model and the copy into DATA/model (our layout, tokenizer included)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.model.test_checkpoint_kinds import write_tokenizer
from tests.model.test_cmrclip_compat import MANIFEST, PUBLISHED_CONFIG, random_published_state_dict

pytestmark = [pytest.mark.slow,                     # a 223 M-parameter model is built and loaded a few times
              pytest.mark.skipif(not MANIFEST.exists(), reason=f"needs the key manifest at {MANIFEST}")]


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """DIR with the published layout (no tokenizer) and an embedded index of 512-d vectors."""
    from cmr_search.search import Store
    root = tmp_path_factory.mktemp("published")
    pub = root / "cmrclip"
    pub.mkdir()
    torch.save(random_published_state_dict(), pub / "pytorch_model.bin")
    cfg = {**PUBLISHED_CONFIG, "video_params": {**PUBLISHED_CONFIG["video_params"], "num_frames": 64}}
    (pub / "config.json").write_text(json.dumps({"arch": {"type": "CMRCLIP", "args": cfg}}))
    rng = np.random.default_rng(0)
    unit = lambda: (v := rng.normal(size=512)) / np.linalg.norm(v)          # noqa: E731
    with Store.open(root / "data", dim=512) as s:
        s.upsert_studies([{"study_key": f"s{i}", "vectors": {"study": unit(), "cine": unit(), "lge": None,
                                                             "report": unit()}} for i in range(3)])
    return {"dir": pub, "data": root / "data", "root": root}


def test_connect_loads_it_and_asks_for_the_tokenizer(published):
    from cmr_search.model.checkpoint import checkpoint_kind
    from cmr_search.model.errors import TokenizerMissingError
    from cmr_search.search import connect
    assert checkpoint_kind(published["dir"]) == "published"
    with connect(published["data"], checkpoint=published["dir"]) as c:       # trained weights, not a fresh model
        ref = torch.load(published["dir"] / "pytorch_model.bin")["vid_proj.1.weight"]
        assert c.model.cfg.name == "cmr-clip-b16" and torch.equal(c.model.state_dict()["vid_proj.1.weight"], ref)
        with pytest.raises(TokenizerMissingError, match=f"into {published['dir'] / 'tokenizer'}/"):
            c.search("dilated lv", mode="image")


def test_cmr_search_and_the_indexer_copy(published, capsys):
    from cmr_search.indexer.model_source import resolve_model, save_model_beside
    from cmr_search.model.checkpoint import checkpoint_kind, tokenizer_folder
    from cmr_search.search.collection import model_id
    from cmr_search.ui.cli import main
    write_tokenizer(published["dir"] / "tokenizer")
    rc = main(["search", "dilated lv", "--mode", "image", "--k", "2", "--json", "--data", str(published["data"]),
               "--checkpoint", str(published["dir"])])
    out = capsys.readouterr().out
    assert rc == 0 and len(out.splitlines()) == 2
    model, source = resolve_model(str(published["dir"]), environ={})
    assert source == str(published["dir"]) and model.cfg.name == "cmr-clip-b16"
    data = published["root"] / "copy"
    save_model_beside(model, data, model_id(model), source)                  # DATA/model: our layout
    assert checkpoint_kind(data / "model") == "ours" and tokenizer_folder(data / "model") is not None
    del model
    from cmr_search.model.checkpoint import load_any
    again = load_any(data / "model")
    assert again.encode_text(["dilated lv"]).shape == (1, 512)
