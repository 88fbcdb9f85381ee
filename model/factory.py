"""One small factory: create_model(name) from model/configs/<name>.json, list_models(), and `model_from`:
THE loader of a resolved model source for `cmr index`, `cmr search` and connect()."""
from __future__ import annotations

import os
from pathlib import Path

import torch

from .checkpoint import FOLDER_HELP, UNTRAINED_DEFAULT, checkpoint_kind, load_any, why_not_checkpoint
from .cmrclip_compat import load_cmrclip
from .config import list_configs, load_config
from .errors import CheckpointError
from .model import CMRClip

UNTRAINED_SEED = 0          # the same random weights (so the same model_id) in every process


class UntrainedNotAllowedError(CheckpointError):
    """A config name where a checkpoint was expected, without the flag that asks for an untrained model."""
    usage = True            # bad input: the commands exit 2

    def __init__(self, name: str):
        super().__init__(f"--checkpoint {name} is a model config name, not a checkpoint folder: it would build "
                         "an UNTRAINED model (random image weights, meaningless image search). Add --untrained "
                         "(connect(..., untrained=True)) if that is what you want; otherwise pass a checkpoint "
                         f"folder ({FOLDER_HELP}).")


def list_models() -> list[str]:
    """Names of the bundled configs (model/configs/*.json)."""
    return list_configs()


def create_model(name: str, checkpoint: str | Path | None = None, device: str = "cpu", tokenizer=None):
    """Build a model by config name, optionally with weights.

    name: a config name (list_models()) or a checkpoint folder of either kind (checkpoint_kind).
    checkpoint: a checkpoint folder (ours: config.json + model.safetensors; published: config.json +
        pytorch_model.bin), or for cmr-clip-b16 a bare pytorch_model.bin. None = fresh weights.
    tokenizer: a tokenizer object or local folder (cmr-clip-b16 needs one to encode text).
    Returns a CMRClip on `device` (eval mode when weights were loaded, train mode otherwise).
    """
    if checkpoint is None and checkpoint_kind(name):
        return load_any(name, device, tokenizer)
    if checkpoint is None:
        return CMRClip(load_config(name), tokenizer=tokenizer).to(device)
    if checkpoint_kind(checkpoint):
        return load_any(checkpoint, device, tokenizer)
    p = Path(checkpoint)
    if not p.is_file():
        raise CheckpointError(f"checkpoint {why_not_checkpoint(p)}; {FOLDER_HELP}.")
    if name != "cmr-clip-b16":
        raise CheckpointError(f"{p} is not a checkpoint folder; a pytorch_model.bin is only accepted for "
                              f"'cmr-clip-b16' (got {name!r}).")
    by_path = tokenizer is None or isinstance(tokenizer, (str, os.PathLike))
    model = load_cmrclip(p, tokenizer=str(tokenizer) if by_path and tokenizer else None, device=device)
    if not by_path:
        model.tokenizer = tokenizer
    return model


def untrained_model(name: str = UNTRAINED_DEFAULT, device: str = "cpu", seed: int = UNTRAINED_SEED):
    """A config with fixed-seed random weights (a pretrained text backbone stays pretrained), eval mode."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return create_model(name, device=device).eval()


def model_from(source: str | Path, device: str = "cpu", *, untrained: bool = False):
    """A resolved model source (checkpoint.resolve_checkpoint's answer) -> CMRClip in eval mode:
    a checkpoint folder of either kind is loaded; a config name builds an untrained model only with
    `untrained` (--untrained), else UntrainedNotAllowedError; anything else is a CheckpointError that
    names what is missing."""
    if checkpoint_kind(source):
        return load_any(source, device).eval()
    if str(source) in list_configs():
        if not untrained:
            raise UntrainedNotAllowedError(str(source))
        return untrained_model(str(source), device)
    names = "" if Path(source).exists() else f", nor a model config name ({', '.join(list_configs())})"
    raise CheckpointError(f"checkpoint {why_not_checkpoint(source)}{names}; {FOLDER_HELP}.")
