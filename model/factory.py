"""One small factory: create_model(name) from model/configs/<name>.json, list_models()."""
from __future__ import annotations

import os
from pathlib import Path

from .checkpoint import is_checkpoint_folder, load_checkpoint
from .cmrclip_compat import load_cmrclip
from .config import list_configs, load_config
from .errors import CheckpointError
from .model import CMRClip


def list_models() -> list[str]:
    """Names of the bundled configs (model/configs/*.json)."""
    return list_configs()


def create_model(name: str, checkpoint: str | Path | None = None, device: str = "cpu", tokenizer=None):
    """Build a model by config name, optionally with weights.

    name: a config name (list_models()) or a checkpoint folder.
    checkpoint: a checkpoint folder (config.json + model.safetensors), or for cmr-clip-b16 the published
        pytorch_model.bin (or its folder, with config.json). None = fresh weights (pretrained text tower).
    tokenizer: a tokenizer object or local folder (cmr-clip-b16 needs one to encode text).
    Returns a CMRClip on `device` (eval mode when weights were loaded, train mode otherwise).
    """
    if checkpoint is None and is_checkpoint_folder(name):
        return load_checkpoint(name, device, tokenizer)
    if checkpoint is None:
        return CMRClip(load_config(name), tokenizer=tokenizer).to(device)
    if is_checkpoint_folder(checkpoint):
        return load_checkpoint(checkpoint, device, tokenizer)
    p = Path(checkpoint)
    if not p.exists():
        raise CheckpointError(f"checkpoint {p} does not exist.")
    if name != "cmr-clip-b16":
        raise CheckpointError(f"{p} is not a checkpoint folder; a pytorch_model.bin is only accepted for "
                              f"'cmr-clip-b16' (got {name!r}).")
    by_path = tokenizer is None or isinstance(tokenizer, (str, os.PathLike))
    model = load_cmrclip(p, tokenizer=str(tokenizer) if by_path and tokenizer else None, device=device)
    if not by_path:
        model.tokenizer = tokenizer
    return model
