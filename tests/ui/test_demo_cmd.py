"""`cmr demo` end to end on a few tiny studies: archive, index, three tables, where the data went; a
re-run keeps the archive and indexes nothing."""
import pytest


@pytest.mark.slow
def test_demo_small(tmp_path, monkeypatch, capsys):
    from ui.demo_cmd import main
    monkeypatch.setenv("CMR_SALT_FILE", str(tmp_path / "salt"))
    monkeypatch.delenv("QDRANT_URL", raising=False)
    args = ["--n", "3", "--profile", "tiny", "--data", str(tmp_path / "d"), "--workers", "1", "--k", "2"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.count("ground truth of these synthetic studies") == 3
    assert "where the data went" in out and "3 studies indexed" in out
    assert (tmp_path / "d" / "index").is_dir() and (tmp_path / "d" / "link.parquet").exists()
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "already holds 3 tiny studies: kept" in out and "0 studies indexed, 3 already up to date" in out


def test_demo_usage(capsys):
    from ui.demo_cmd import main
    assert main(["--n", "0"]) == 2
    assert main(["--help"]) == 0
