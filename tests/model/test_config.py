import json

import pytest

from cmr_search.model import create_model, list_models
from cmr_search.model.config import config_from_dict, load_config
from cmr_search.model.errors import ConfigError, UnknownModelError


def test_list_models_has_the_three_configs():
    assert {"cmr-tiny", "cmr-base", "cmr-clip-b16"} <= set(list_models())


@pytest.mark.parametrize("name", ["cmr-tiny", "cmr-base", "cmr-clip-b16"])
def test_configs_parse_and_roundtrip(name):
    cfg = load_config(name)
    assert cfg.name == name
    assert cfg.clip_spec().n_frames <= cfg.video.num_frames
    again = config_from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg


def test_published_config_values():
    cfg = load_config("cmr-clip-b16")
    assert (cfg.video.width, cfg.video.depth, cfg.video.heads, cfg.video.num_frames) == (768, 12, 12, 64)
    assert cfg.text.bert["vocab_size"] == 28996 and cfg.embed_dim == 512
    assert cfg.video_head == cfg.text_head == "relu_linear"


def test_unknown_name_says_what_exists():
    with pytest.raises(UnknownModelError, match="cmr-tiny"):
        create_model("cmr-huge")


def test_unknown_field_is_rejected():
    d = load_config("cmr-tiny").to_dict()
    d["video"]["widht"] = 3
    with pytest.raises(ConfigError, match="widht"):
        config_from_dict(d)


def test_unknown_pooling_is_rejected():
    d = load_config("cmr-tiny").to_dict()
    d["video"]["pool"] = "max"
    with pytest.raises(ConfigError, match="pool"):
        config_from_dict(d)
