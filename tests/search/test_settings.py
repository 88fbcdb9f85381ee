"""Settings and DataFolder: one owner for the data folder, the checkpoint order and the server settings."""
from pathlib import Path

import pytest

from cmr_search.search.data_folder import DataFolder
from cmr_search.search.settings import Settings

ENV = {"CMR_DATA": "/env/data", "CMR_CHECKPOINT": "/env/ckpt", "QDRANT_URL": "https://env:6333",
       "QDRANT_API_KEY": "env-key", "QDRANT_TLS_CA": "/env/ca.pem"}


def test_defaults_without_environment():
    s = Settings.from_env({})
    assert s == Settings(Path("cmr-data"))
    assert s.embedded and not s.missing_api_key and s.checkpoint is None and s.env_checkpoint is None


def test_given_over_environment_over_default():
    s = Settings.from_env(ENV)
    assert (s.data, s.url, s.api_key, s.tls_ca, s.env_checkpoint) == (
        Path("/env/data"), "https://env:6333", "env-key", "/env/ca.pem", "/env/ckpt")
    assert s.checkpoint is None                       # $CMR_CHECKPOINT is never the explicit checkpoint
    g = Settings.from_env(ENV, data=Path("d"), checkpoint=Path("c"), url="http://u", api_key="k",
                          tls_ca=Path("ca"), insecure=True)
    assert (g.data, g.checkpoint, g.url, g.api_key, g.tls_ca, g.insecure) == (
        Path("d"), "c", "http://u", "k", "ca", True)
    assert Settings.from_env(ENV, url="", api_key=None).url == "https://env:6333"   # "" = not given


def test_unknown_setting_is_an_error():
    with pytest.raises(TypeError, match="nope"):
        Settings.from_env({}, nope=1)


def test_search_rule_a_data_folder_means_embedded():
    assert Settings.for_search(ENV).url == "https://env:6333"              # nothing given: $QDRANT_URL
    assert Settings.for_search(ENV, data="d").url is None                   # data given: embedded
    assert Settings.for_search(ENV, data="d", url="http://u").url == "http://u"
    assert Settings.for_search(ENV, server_client=True).url is None         # a client object is the server
    assert Settings.from_env(ENV, data="d").url == "https://env:6333"       # cmr index / cmr ui rule


def test_server_settings_and_the_key_rule():
    s = Settings.from_env(ENV).with_(url=None)
    assert s.url is None and s.api_key == "env-key" and s.tls_ca == "/env/ca.pem"
    assert Settings.from_env({}).with_(url="http://u").missing_api_key
    assert not Settings.from_env({}, insecure=True).with_(url="http://u").missing_api_key
    assert not Settings.from_env({}, api_key="k").with_(url="http://u").missing_api_key


def test_data_folder_paths(tmp_path):
    f = Settings.from_env({}, data=tmp_path).folder
    assert f == DataFolder(tmp_path)
    assert (f.index, f.cache, f.studies_table, f.model, f.link_table) == (
        tmp_path / "index", tmp_path / "cache", tmp_path / "cache" / "studies.parquet", tmp_path / "model",
        tmp_path / "link.parquet")
    assert (f.thumbs, f.cohorts, f.exports, f.demo_archive) == (
        tmp_path / "thumbs", tmp_path / "cohorts", tmp_path / "exports", tmp_path / "demo-archive")


def _fake_checkpoint(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"")
    return folder


def test_checkpoint_order_explicit_env_data_model(tmp_path):
    data_model = _fake_checkpoint(tmp_path / "data" / "model")
    env_ckpt = _fake_checkpoint(tmp_path / "env")
    env = {"CMR_CHECKPOINT": str(env_ckpt)}
    s = Settings.from_env(env, data=tmp_path / "data")
    assert s.resolve_checkpoint(shipped=False) == (str(env_ckpt), [str(env_ckpt)])
    assert s.with_(checkpoint="cmr-tiny").resolve_checkpoint(shipped=False)[0] == "cmr-tiny"  # a config name
    assert s.with_(env_checkpoint=None).resolve_checkpoint(shipped=False)[0] == str(data_model)
    # $CMR_CHECKPOINT that is not a checkpoint folder is passed over (only the explicit one may be a name)
    assert Settings.from_env({"CMR_CHECKPOINT": "nope"}, data=tmp_path / "data").resolve_checkpoint(
        shipped=False) == (str(data_model), ["nope", str(data_model)])
    assert [src for src, _ in s.checkpoint_candidates(shipped=False)] == ["$CMR_CHECKPOINT", "DATA/model"]


def test_search_client_has_no_shipped_fallback(tmp_path):
    s = Settings.from_env({}, data=tmp_path)
    assert s.resolve_checkpoint(shipped=False) == (None, [str(tmp_path / "model")])


# ---- Settings passed down ------------------------------------------------------------------------------
def test_store_and_connect_take_settings(tmp_path, monkeypatch):
    from cmr_search.search import Store, connect
    from cmr_search.search.errors import ModelNotFoundError
    monkeypatch.setenv("QDRANT_URL", "https://nowhere.invalid:6333")        # a given data folder wins
    monkeypatch.delenv("CMR_CHECKPOINT", raising=False)
    s = Settings.for_search(data=tmp_path)
    with Store.open(s, dim=4) as store:
        assert store.backend.name == "embedded" and store.count() == 0
    assert s.folder.index.is_dir()
    with pytest.raises(ModelNotFoundError, match=str(tmp_path / "model")):   # no shipped fallback
        connect(s).model


def test_client_options_take_settings():
    from cmr_search.search.backends.server import client_options
    from cmr_search.search.errors import ServerSecurityError
    s = Settings.from_env({}).with_(url="http://q:6333")
    with pytest.raises(ServerSecurityError, match="without an API key"):
        client_options(s)
    assert client_options(s.with_(api_key="k")) == {"url": "http://q:6333", "api_key": "k"}
    assert client_options(s.with_(insecure=True))["api_key"] is None
    with pytest.raises(ServerSecurityError, match="no Qdrant server URL"):
        client_options(s.with_(url=None, api_key="k"))


def test_no_cycle_between_client_and_cohort():
    from cmr_search.search import client, cohort, results
    assert cohort.to_frame is results.to_frame is client.to_frame


def test_keywords_beside_settings_override_it():
    s = Settings.from_env({}, data="d", url="http://a")
    assert s.over(url=None, checkpoint="", insecure=False) is s
    assert s.over(url="http://b", checkpoint="c", insecure=True) == s.with_(url="http://b", checkpoint="c",
                                                                            insecure=True)
