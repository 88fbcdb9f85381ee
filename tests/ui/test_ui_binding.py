"""The UI binds to localhost unless told otherwise: `cmr ui` and `cmr demo --serve` start Streamlit with
--server.address 127.0.0.1 (checked on the exact command line handed to exec, nothing is started)."""
from types import SimpleNamespace

import pytest


class Exec(Exception):
    """Raised by the os.execve stand-in: the command that would have replaced the process."""


@pytest.fixture
def exec_spy(monkeypatch):
    def execve(path, argv, env):
        raise Exec(argv, env)
    monkeypatch.setattr("os.execve", execve)


def _opts(argv: list[str]) -> dict[str, str]:
    i = argv.index("run") + 2                                   # after `streamlit run APP`
    return dict(zip(argv[i::2], argv[i + 1::2]))


def _data(tmp_path):
    (tmp_path / "d" / "index").mkdir(parents=True)
    return tmp_path / "d"


def test_cmr_ui_binds_to_localhost_by_default(exec_spy, tmp_path, capsys):
    from cmr_search.ui.cli import main
    with pytest.raises(Exec) as e:
        main(["ui", "--data", str(_data(tmp_path))])
    argv, env = e.value.args
    assert _opts(argv)["--server.address"] == "127.0.0.1" and argv.count("--server.address") == 1
    assert "http://127.0.0.1:8501" in capsys.readouterr().out
    assert env["CMR_DATA"] == str((tmp_path / "d").resolve())


def test_cmr_ui_binds_elsewhere_only_when_told(exec_spy, tmp_path):
    from cmr_search.ui.cli import main
    with pytest.raises(Exec) as e:
        main(["ui", "--data", str(_data(tmp_path)), "--host", "0.0.0.0", "--port", "8600"])
    opts = _opts(e.value.args[0])
    assert opts["--server.address"] == "0.0.0.0" and opts["--server.port"] == "8600"


def test_cmr_demo_serve_binds_to_localhost(exec_spy, tmp_path, monkeypatch):
    """The whole `cmr demo --serve` path, with synthesis, indexing and the queries stubbed out."""
    import cmr_search.indexer.index as indexer_index
    import cmr_search.ui.demo_cmd as demo
    data = _data(tmp_path)
    monkeypatch.setattr(demo, "_synthesize", lambda arch, args: None)
    monkeypatch.setattr(demo, "_queries", lambda data, k: None)
    monkeypatch.setattr(demo, "_where", lambda data, arch: None)
    monkeypatch.setattr(indexer_index, "index_archive", lambda *a, **k: SimpleNamespace(
        n_indexed=0, n_skipped=0, n_points=0, model_id="stub"))
    with pytest.raises(Exec) as e:
        demo.main(["--n", "1", "--data", str(data), "--serve"])
    argv = e.value.args[0]
    assert _opts(argv)["--server.address"] == "127.0.0.1" and "--server.headless" in argv
