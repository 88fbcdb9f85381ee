"""The model `cmr index` embeds with, and the copy of it kept beside the index (DATA/model).

The order is model.checkpoint's (resolve_checkpoint): the explicit `checkpoint`, else $CMR_CHECKPOINT,
else DATA/model when an earlier run left one there (not on a rebuild, which may be recovering from damaged
weights), else the checkpoint shipped in model/checkpoints/, else a freshly initialised cmr-tiny with a
fixed seed (with a warning: its embeddings are not meaningful). The weights used are saved to DATA/model
so that `cmr search --data DATA` encodes queries with them.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch

from cmr_search.model import create_model
from cmr_search.model.checkpoint import SHIPPED_CHECKPOINTS, is_checkpoint_folder, resolve_checkpoint, save_checkpoint
from cmr_search.model.config import list_configs
from cmr_search.model.errors import CheckpointError
from cmr_search.search.data_folder import DataFolder

FRESH_SEED = 0                             # seed of the untrained stand-in model
FRESH_CONFIG = "cmr-tiny"
SOURCE_CARD_FIELDS = ("kind", "demonstration_only", "data", "schedule", "device", "wall_seconds_this_run",
                      "seed", "final_loss", "eval", "eval_real")


class UntrainedModelWarning(UserWarning):
    """Indexing with a freshly initialised model (no trained checkpoint found)."""


def fresh_model(device: str = "cpu", config: str = FRESH_CONFIG):
    """A config with fixed-seed random weights (a pretrained text backbone stays pretrained): the same
    weights, and so the same model_id, in every process."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(FRESH_SEED)
        return create_model(config, device=device).eval()


def resolve_model(checkpoint: str | Path | None = None, device: str = "cpu", data_model: str | Path | None = None,
                  environ=None):
    """-> (model, where it came from). See the module docstring for the order; `data_model`: DATA/model
    (None: not looked at); `environ`: where $CMR_CHECKPOINT is read (default os.environ)."""
    found, _ = resolve_checkpoint(checkpoint, data_model, shipped=True, environ=environ)
    if found is None:
        _warn_untrained(FRESH_CONFIG)
        return fresh_model(device), f"fresh {FRESH_CONFIG} (seed {FRESH_SEED}, untrained)"
    if is_checkpoint_folder(found):
        if _is_untrained_copy(found):
            _warn_untrained(FRESH_CONFIG)
        return create_model(found, device=device).eval(), found
    # the explicit one, not a folder: a config name (untrained) or an error
    if found not in list_configs():
        raise CheckpointError(f"--checkpoint {found}: not a checkpoint folder (config.json + "
                              f"model.safetensors) nor a config name ({', '.join(list_configs())}).")
    _warn_untrained(found)
    return fresh_model(device, found), f"fresh {found} (seed {FRESH_SEED}, untrained)"


def _is_untrained_copy(folder: str) -> bool:
    """DATA/model saved by a run that used the untrained stand-in (its card says so)."""
    try:
        return str(json.loads((Path(folder) / "card.json").read_text()).get("source", "")).startswith("fresh ")
    except (OSError, ValueError, AttributeError):
        return False


def _warn_untrained(config: str) -> None:
    warnings.warn(f"no trained checkpoint (looked at --checkpoint, $CMR_CHECKPOINT, {SHIPPED_CHECKPOINTS}): "
                  f"indexing with a freshly initialised {config} (seed {FRESH_SEED}). Its image "
                  "embeddings are NOT meaningful; re-index with a trained checkpoint (`cmr train`, then "
                  "`cmr index --checkpoint DIR`).", UntrainedModelWarning, stacklevel=3)


def save_model_beside(model, data: str | Path, mid: str, source: str, force: bool = False) -> None:
    """DATA/model = the weights the index was built with (what `search` loads to encode queries);
    `force` (a rebuild) writes them again even when the card says they are there (they may be damaged)."""
    folder = DataFolder(data).model
    card = folder / "card.json"
    if not force and is_checkpoint_folder(folder) and card.exists():
        try:
            if json.loads(card.read_text()).get("model_id") == mid:
                return
        except (OSError, ValueError):
            pass
    card = {**_source_card(source), "model_id": mid, "source": source,
            "note": "weights the index in ../index was built with"}
    save_checkpoint(model, folder, card=card)


def _source_card(source: str) -> dict:
    """What the source checkpoint's card says of its training data and evaluation (for the UI's About)."""
    try:
        card = json.loads((Path(source) / "card.json").read_text())
    except (OSError, ValueError, TypeError):
        return {}
    return {k: card[k] for k in SOURCE_CARD_FIELDS if k in card}
