"""`cmr ui` and the app's plain helpers (no Streamlit session needed)."""
from pathlib import Path

import pytest


def test_ui_registered_and_help(capsys):
    from cmr_search.ui.cli import COMMANDS, main
    assert COMMANDS["ui"][0] == "cmr_search.ui.ui_cmd"
    assert main(["ui", "--help"]) == 0
    assert "--port" in capsys.readouterr().out


def test_command_is_local_headless_without_stats():
    from cmr_search.ui.ui_cmd import APP, build_parser, command
    cmd = command(build_parser().parse_args([]))
    opts = dict(zip(cmd[5::2], cmd[6::2]))
    assert cmd[3:5] == ["run", str(APP)] and Path(APP).exists()
    assert opts["--server.address"] == "127.0.0.1" and opts["--server.headless"] == "true"
    assert opts["--browser.gatherUsageStats"] == "false" and opts["--server.maxUploadSize"] == "200"


def test_missing_index_is_one_line_failure(tmp_path, capsys):
    from cmr_search.ui.ui_cmd import main
    assert main(["--data", str(tmp_path)]) == 1
    assert "no index" in capsys.readouterr().err


def test_small_counts():
    from cmr_search.ui.app.logic import facet_frame, small
    assert [small(n) for n in (0, 1, 10, 11, 250)] == ["0", "<11", "<11", "11", "250"]
    assert facet_frame([("F", 3), ("M", 40)])["studies"].to_list() == ["<11", "40"]


def test_make_filter_and_kept_keys():
    from cmr_search.search import Filter
    from cmr_search.ui.app.logic import kept_keys, make_filter
    assert make_filter({}) is None and make_filter({"sex": [], "labels": None}) is None
    assert make_filter({"sex": ["F"], "age": [40, 80]}) == Filter(sex=["F"], age=(40, 80))
    basket = {"a": {"study_key": "a", "image_cosine": 0.5}, "b": {"study_key": "b", "image_cosine": 0.9},
              "c": {"study_key": "c", "image_cosine": None}, "d": {"study_key": "d", "image_cosine": 0.1}}
    assert kept_keys(basket, 0.4, "image_cosine") == ["b", "a", "c"]


def test_gif_and_png(tmp_path):
    import numpy as np
    from PIL import Image

    from cmr_search.ui.app.media import gif_bytes, png_bytes
    frames = np.linspace(0, 1, 20 * 8 * 8).reshape(20, 8, 8).astype(np.float16)
    (tmp_path / "a.gif").write_bytes(gif_bytes(frames, px=32))
    im = Image.open(tmp_path / "a.gif")
    assert im.n_frames == 20 and im.size == (32, 32) and im.info.get("loop") == 0
    assert png_bytes(frames[0], px=16)[:4] == b"\x89PNG"


def test_thumb_paths_refuse_odd_keys(tmp_path):
    from cmr_search.ui.app.media import cine_gif
    with pytest.raises(ValueError):
        cine_gif(tmp_path, "../x", "arrays/x.npz")


def test_server_url_needs_a_key_or_insecure(tmp_path, capsys, monkeypatch):
    from cmr_search.ui.ui_cmd import main
    monkeypatch.delenv("QDRANT_API_KEY", raising=False)
    monkeypatch.delenv("QDRANT_URL", raising=False)
    assert main(["--data", str(tmp_path), "--url", "http://qdrant:6333"]) == 2
    err = capsys.readouterr().err
    assert "--api-key" in err and "--insecure" in err


def test_server_url_reaches_the_app_environment(tmp_path, monkeypatch):
    from cmr_search.ui.ui_cmd import build_parser, environment
    monkeypatch.delenv("QDRANT_URL", raising=False)
    ca = tmp_path / "ca.pem"
    args = build_parser().parse_args(["--data", str(tmp_path), "--url", "https://q:6333", "--api-key", "k",
                                      "--tls-ca", str(ca)])
    env = environment(args)
    assert env["CMR_UI_URL"] == "https://q:6333" and env["QDRANT_API_KEY"] == "k"
    assert env["QDRANT_TLS_CA"] == str(ca.resolve()) and "CMR_UI_INSECURE" not in env
    plain = environment(build_parser().parse_args(["--data", str(tmp_path)]))
    assert "CMR_UI_URL" not in plain


def test_app_client_uses_the_server_url(monkeypatch, tmp_path):
    import cmr_search.ui.app.state as state
    seen = {}

    class FakeClient:
        model = None

    def fake_connect(settings):
        seen.update(data=str(settings.data), url=settings.url, insecure=settings.insecure)
        return FakeClient()
    monkeypatch.setattr(state, "connect", fake_connect)
    monkeypatch.setenv("CMR_UI_URL", "http://q:6333")
    monkeypatch.setenv("CMR_UI_INSECURE", "1")
    state._client.clear()                          # st.cache_resource: works without a Streamlit runtime
    state._client(str(tmp_path))
    state._client.clear()
    assert seen == {"data": str(tmp_path), "url": "http://q:6333", "insecure": True}


def test_media_cache_writes_atomically_once(tmp_path, monkeypatch):
    import cmr_search.ui.app.media as media
    calls = []
    monkeypatch.setattr(media, "atomic_write", lambda p, b, fsync: calls.append(p) or p.write_bytes(b))
    path = tmp_path / "thumbs" / "k" / "a.png"
    assert media._cached(path, lambda: b"png") == path and path.read_bytes() == b"png"
    assert media._cached(path, lambda: b"again") == path and path.read_bytes() == b"png"
    assert calls == [path]


def test_about_shows_the_checkpoint_the_client_loads(tmp_path, monkeypatch):
    """The About page reads the card of the checkpoint in the search client's order ($CMR_CHECKPOINT when it
    is a checkpoint folder, else DATA/model), not of a $CMR_CHECKPOINT that the client passes over."""
    from cmr_search.ui.app.screens.about import checkpoint_dir
    monkeypatch.setenv("CMR_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("CMR_UI_URL", raising=False)
    monkeypatch.setenv("CMR_CHECKPOINT", str(tmp_path / "not-a-checkpoint"))
    assert checkpoint_dir() == (tmp_path / "data" / "model").resolve()
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text("{}")
    (ckpt / "model.safetensors").write_bytes(b"")
    monkeypatch.setenv("CMR_CHECKPOINT", str(ckpt))
    assert checkpoint_dir() == ckpt
