"""Load the published CMR-CLIP checkpoint (makiyeah/CMRCLIP) strictly into `cmr-clip-b16`.

Accepted inputs (docs/cmrclip-reference.md §2):
- `pytorch_model.bin`: the bare state_dict (427 keys with `text_model.embeddings.position_ids`, 426 without),
  or a training checkpoint {'state_dict': ..., 'epoch', 'optimizer', ...}; a `module.` prefix is stripped.
- `config.json`: top-level {video_params, text_params, projection_dim?} or nested
  {"arch": {"type": "CMRCLIP", "args": {...}}}.
Nothing is downloaded: the towers are built from config, then every key/shape is checked (strict).
"""
from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from .config import ModelConfig, load_config
from .errors import CheckpointError, CheckpointMismatchError, ConfigError
from .model import CMRClip

OPTIONAL_KEYS = ("text_model.embeddings.position_ids",)
WEIGHT_FILES = ("pytorch_model.bin", "model.pth", "model_best.pth")


def published_args(cfg: dict[str, Any]) -> dict[str, Any]:
    """Either config form -> {video_params, text_params, projection_dim, ...}."""
    if "arch" in cfg:
        arch = cfg["arch"]
        if arch.get("type", "CMRCLIP") != "CMRCLIP":
            raise ConfigError(f"config arch.type={arch.get('type')!r}; only 'CMRCLIP' is supported.")
        cfg = arch.get("args", {})
    if "video_params" not in cfg:
        raise ConfigError("published config has neither top-level 'video_params' nor 'arch.args'; "
                          "pass the config.json that came with pytorch_model.bin.")
    return cfg


def config_from_published(cfg: dict[str, Any], tokenizer: str | None = None) -> ModelConfig:
    """Map the published config onto `cmr-clip-b16` (num_frames, projection_dim)."""
    args = published_args(cfg)
    vp = args["video_params"]
    if vp.get("arch_config", "base_patch16_224") != "base_patch16_224":
        raise ConfigError(f"video arch_config {vp.get('arch_config')!r}: only base_patch16_224 is supported.")
    base = load_config("cmr-clip-b16")
    video = replace(base.video, num_frames=int(vp.get("num_frames", base.video.num_frames)))
    text = replace(base.text, tokenizer=tokenizer or base.text.tokenizer)
    return replace(base, video=video, text=text, embed_dim=int(args.get("projection_dim", 512)))


def read_state_dict(path: str | Path, trusted: bool = False) -> dict[str, torch.Tensor]:
    """pytorch_model.bin / training checkpoint -> bare state_dict (wrapper unwrapped, `module.` stripped,
    the version-dependent position_ids buffer dropped)."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=not trusted)
    except Exception as e:  # noqa: BLE001 - pickle errors have many types
        raise CheckpointError(f"cannot read {path}: {e}. A training checkpoint that pickles its config "
                              "needs trusted=True (only for files you trust).") from e
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a state_dict.")
    return clean_state_dict(obj)


def clean_state_dict(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    sd = {(k[len("module."):] if k.startswith("module.") else k): v for k, v in sd.items()}
    return {k: v for k, v in sd.items() if k not in OPTIONAL_KEYS}


def fix_temporal_embed(sd: dict[str, torch.Tensor], num_frames: int) -> dict[str, torch.Tensor]:
    """Crop temporal_embed to num_frames, or zero-fill the extra rows (published load_temporal_fix='zeros')."""
    key = "video_model.temporal_embed"
    t = sd.get(key)
    if t is None or t.shape[1] == num_frames:
        return sd
    if t.shape[1] > num_frames:
        new = t[:, :num_frames]
    else:
        new = torch.zeros(t.shape[0], num_frames, t.shape[2], dtype=t.dtype)
        new[:, :t.shape[1]] = t
    return {**sd, key: new.contiguous()}


def load_strict(model: torch.nn.Module, sd: dict[str, torch.Tensor], what: str) -> None:
    """load_state_dict(strict=True) after a check that names the first missing/unexpected/misshapen keys."""
    own = model.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    shapes = [f"{k}: file {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}"
              for k in own if k in sd and sd[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        raise CheckpointMismatchError(what, missing, unexpected, shapes)
    model.load_state_dict(sd, strict=True)


def _find_weights(folder: Path) -> Path:
    for name in WEIGHT_FILES:
        if (folder / name).exists():
            return folder / name
    raise CheckpointError(f"no {' / '.join(WEIGHT_FILES)} in {folder}; download the released "
                          "pytorch_model.bin + config.json into this folder.")


def load_cmrclip(path: str | Path, config: str | Path | dict | None = None, tokenizer: str | None = None,
                 num_frames: int | None = None, device: str = "cpu", trusted: bool = False):
    """Published checkpoint (folder or .bin) -> CMRClip (eval mode).

    config: config.json path or dict; default: the folder's config.json, else cmr-clip-b16 as published.
    tokenizer: local Bio_ClinicalBERT tokenizer folder (needed for encode_text only).
    num_frames: model frame count; temporal_embed is cropped / zero-filled to it.
    """
    path = Path(path)
    weights = _find_weights(path) if path.is_dir() else path
    if config is None and (weights.parent / "config.json").exists():
        config = weights.parent / "config.json"
    if isinstance(config, (str, Path)):
        config = json.loads(Path(config).read_text())
    cfg = config_from_published(config or {"video_params": {}}, tokenizer)
    if num_frames:
        cfg = replace(cfg, video=replace(cfg.video, num_frames=int(num_frames)))
    model = CMRClip(cfg)
    sd = fix_temporal_embed(read_state_dict(weights, trusted), cfg.video.num_frames)
    load_strict(model, sd, str(weights))
    return model.to(device).eval()


def load_published(folder: str | Path, tokenizer=None, device: str = "cpu", trusted: bool = False):
    """The published folder (config.json + pytorch_model.bin) -> CMRClip (eval mode), strictly.
    tokenizer: a tokenizer object or a local tokenizer folder (None: the model has none; encoding text
    then needs one)."""
    if isinstance(tokenizer, (str, os.PathLike)):
        tokenizer = read_tokenizer(tokenizer)
    model = load_cmrclip(folder, device=device, trusted=trusted)
    model.tokenizer = tokenizer
    return model


def read_tokenizer(folder: str | Path):
    """A local tokenizer folder -> tokenizer (never downloads); CheckpointError naming it when unreadable."""
    from transformers import AutoTokenizer       # lazy: heavy, only when there is a tokenizer to load
    try:
        return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except Exception as e:  # noqa: BLE001 - transformers raises OSError, ValueError, KeyError...
        raise CheckpointError(f"the tokenizer in {folder} cannot be loaded ({type(e).__name__}: "
                              f"{' '.join(str(e).split())[:200]}). Copy the files of the Bio_ClinicalBERT "
                              "model folder there again: vocab.txt + tokenizer_config.json (or its "
                              "config.json).") from None
