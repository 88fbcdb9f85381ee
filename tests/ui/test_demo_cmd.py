"""`cmr demo` end to end on a few tiny studies: archive, index, three tables, where the data went; a
re-run keeps the archive and indexes nothing."""
import pytest


@pytest.mark.slow
def test_demo_small(tmp_path, monkeypatch, capsys):
    from cmr_search.model.segmentation import Segmenter
    from cmr_search.search import Store
    from cmr_search.ui.demo_cmd import main
    monkeypatch.setenv("CMR_SALT_FILE", str(tmp_path / "salt"))
    monkeypatch.delenv("QDRANT_URL", raising=False)
    seg = Segmenter.untrained().save(tmp_path / "seg")           # the shipped segmenter's stand-in
    args = ["--n", "3", "--profile", "tiny", "--data", str(tmp_path / "d"), "--workers", "1", "--k", "2",
            "--segmenter", str(seg)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.count("ground truth of these synthetic studies") == 3
    assert "where the data went" in out and "3 studies indexed" in out and "of 3 studies measured" in out
    with Store.open(data=tmp_path / "d") as s:                    # the demo index holds the measurements
        assert all(h.payload.get("seg_fingerprint") for h in s.scroll())
    assert (tmp_path / "d" / "index").is_dir() and (tmp_path / "d" / "link.parquet").exists()
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "already holds 3 tiny studies: kept" in out and "0 studies indexed, 3 already up to date" in out


def test_demo_usage(capsys):
    from cmr_search.ui.demo_cmd import main
    assert main(["--n", "0"]) == 2
    assert main(["--help"]) == 0


def test_demo_archive_resumes_or_restarts(tmp_path):
    """An interrupted demo synthesis (no completion mark) resumes; a folder of another run is replaced."""
    import argparse
    import json

    from cmr_search.ui.demo_cmd import DEMO_MARK, _synthesize
    from cmr_search.ui.synth_cmd import main as synth
    arch = tmp_path / "demo-archive"
    assert synth(["--n", "2", "--profile", "tiny", "--seed", "3", "--out", str(arch)]) == 0
    first = sorted(p.stat().st_mtime_ns for p in arch.glob("*/study.json"))
    _synthesize(arch, argparse.Namespace(n=3, profile="tiny", seed=3, workers=1))
    again = sorted(p.stat().st_mtime_ns for p in arch.glob("*/study.json"))
    assert len(again) == 3 and set(first) <= set(again)          # the two finished studies were kept
    assert json.loads((arch / DEMO_MARK).read_text()) == {"n": 3, "profile": "tiny", "seed": 3}
    (arch / DEMO_MARK).unlink()                                   # a partial archive of another seed
    (arch / next(arch.glob("*/study.json")).parent.name / "study.json").unlink()
    _synthesize(arch, argparse.Namespace(n=2, profile="tiny", seed=4, workers=1))
    seeds = {json.loads(p.read_text())["generator"]["seed"] for p in arch.glob("*/study.json")}
    assert seeds == {4} and len(list(arch.glob("*/study.json"))) == 2


def test_demo_indexes_and_queries_the_embedded_index_even_with_a_server_url(tmp_path, monkeypatch):
    """`cmr demo` is the embedded default: $QDRANT_URL set in the shell does not send it to a server."""
    from types import SimpleNamespace

    import cmr_search.indexer.index as indexer_index
    import cmr_search.ui.demo_cmd as demo
    seen = {}
    monkeypatch.setenv("QDRANT_URL", "http://qdrant.invalid:6333")
    monkeypatch.setattr(demo, "_synthesize", lambda arch, args: None)
    monkeypatch.setattr(demo, "_queries", lambda settings, k: seen.setdefault("queries", settings))
    monkeypatch.setattr(demo, "_where", lambda data, arch: None)

    def fake_index(archive, reports, settings, **kw):
        seen["index"] = settings
        return SimpleNamespace(n_indexed=0, n_skipped=0, n_points=0, model_id="stub")
    monkeypatch.setattr(indexer_index, "index_archive", fake_index)
    assert demo.main(["--n", "1", "--data", str(tmp_path / "d")]) == 0
    assert seen["index"].url is None and seen["queries"].url is None
    assert seen["index"].folder.index == tmp_path / "d" / "index"
