"""The model `cmr index` embeds with, and the copy of it kept beside the index (DATA/model).

The order is model.checkpoint's (resolve_checkpoint): the explicit `checkpoint`, else $CMR_CHECKPOINT,
else DATA/model when an earlier run left one there (not on a rebuild, which may be recovering from damaged
weights), else the checkpoint shipped in model/checkpoints/. A checkpoint folder may be ours or the
published CMR-CLIP one (model.factory.model_from loads both). An untrained model (a config name, or
`--untrained` alone: cmr-tiny) only when asked for, with a warning; with nothing found, an error that says
how to proceed. The weights used are saved to DATA/model (our layout) so that `cmr search --data DATA`
encodes queries with them.

After indexing, `check_demo_model` compares DATA/model's card with the cache: a model trained on synthetic
phantoms only (card `demonstration_only`) on studies that are not synthetic is recorded in the card (the
workbench shows a banner) and returned as a warning for `cmr index` to print.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import polars as pl

from cmr_search.model.atomic import atomic_write
from cmr_search.model import checkpoint as _checkpoint
from cmr_search.model.checkpoint import (UNTRAINED_DEFAULT, checkpoint_kind, is_checkpoint_folder, resolve_checkpoint,
                                         save_checkpoint)
from cmr_search.model.errors import CheckpointError
from cmr_search.model.factory import UNTRAINED_SEED, model_from, untrained_model
from cmr_search.search.data_folder import DataFolder

FRESH_SEED = UNTRAINED_SEED                # seed of the untrained stand-in model
FRESH_CONFIG = UNTRAINED_DEFAULT
SOURCE_CARD_FIELDS = ("kind", "demonstration_only", "data", "schedule", "device", "wall_seconds_this_run",
                      "seed", "final_loss", "eval", "eval_real")
DEMO_ON_REAL = "synthetic_model_on_real_studies"   # the card's record of a demo model on real studies
TRUTH_COLUMNS = ("label", "split")                 # ground truth: only synthetic phantom studies have it
NOTHING_FOUND = ("no model checkpoint found (looked at: {tried}). Pass --checkpoint DIR (a checkpoint folder "
                 "of `cmr train`, or the published CMR-CLIP config.json + pytorch_model.bin), set "
                 "CMR_CHECKPOINT, or add --untrained to index with an untrained {config} (meaningless "
                 "image vectors).")


class UntrainedModelWarning(UserWarning):
    """Indexing with a freshly initialised model (asked for with --untrained)."""


def fresh_model(device: str = "cpu", config: str = FRESH_CONFIG):
    """A config with fixed-seed random weights (a pretrained text backbone stays pretrained): the same
    weights, and so the same model_id, in every process."""
    return untrained_model(config, device, FRESH_SEED)


def resolve_model(checkpoint: str | Path | None = None, device: str = "cpu", data_model: str | Path | None = None,
                  environ=None, untrained: bool = False):
    """-> (model, where it came from). See the module docstring for the order; `data_model`: DATA/model
    (None: not looked at); `environ`: where $CMR_CHECKPOINT is read (default os.environ); `untrained`:
    --untrained (a config name is then allowed; alone, it means cmr-tiny)."""
    found, tried = resolve_checkpoint(checkpoint, data_model, shipped=True, environ=environ, untrained=untrained)
    if found is None:
        raise CheckpointError(NOTHING_FOUND.format(tried=", ".join(tried + [str(_checkpoint.SHIPPED_CHECKPOINTS)]),
                                                   config=FRESH_CONFIG))
    if checkpoint_kind(found):
        if _is_untrained_copy(found):
            _warn_untrained(FRESH_CONFIG, f"{found} holds weights an earlier --untrained run saved")
        return model_from(found, device), found
    model = model_from(found, device, untrained=untrained)      # a config name with --untrained, or the error
    _warn_untrained(found, "as asked (--untrained)")
    return model, f"fresh {found} (seed {FRESH_SEED}, untrained)"


def _is_untrained_copy(folder: str) -> bool:
    """DATA/model saved by a run that used the untrained stand-in (its card says so)."""
    try:
        return str(json.loads((Path(folder) / "card.json").read_text()).get("source", "")).startswith("fresh ")
    except (OSError, ValueError, AttributeError):
        return False


def _warn_untrained(config: str, why: str) -> None:
    warnings.warn(f"indexing with an untrained {config} (seed {FRESH_SEED}), {why}. Its image embeddings "
                  "are NOT meaningful; re-index with a trained checkpoint (`cmr train`, or the published "
                  "CMR-CLIP weights, then `cmr index --rebuild --checkpoint DIR`).", UntrainedModelWarning,
                  stacklevel=3)


def save_model_beside(model, data: str | Path, mid: str, source: str, force: bool = False) -> None:
    """DATA/model = the weights the index was built with (what `search` loads to encode queries), in our
    layout whatever the source's; `force` (a rebuild) writes them again even when the card says they are
    there (they may be damaged)."""
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


# ---- a demonstration model on studies that are not synthetic ------------------------------------------
def real_studies(studies_table: str | Path) -> tuple[int, int]:
    """-> (studies without synthetic ground truth, all studies) of a studies.parquet; (0, 0) when absent."""
    path = Path(studies_table)
    if not path.exists():
        return 0, 0
    cols = [c for c in TRUTH_COLUMNS if c in pl.read_parquet_schema(path)]
    table = pl.read_parquet(path, columns=cols or ["study_key"])
    if not cols:
        return table.height, table.height
    return table.filter(pl.all_horizontal(pl.col(c).is_null() for c in cols)).height, table.height


def check_demo_model(data: str | Path) -> str | None:
    """DATA/model's card says `demonstration_only` (trained on synthetic phantoms) and DATA/cache holds
    studies that are not synthetic: record it in the card (DEMO_ON_REAL, the workbench's banner) and return
    the warning; otherwise clear an old record and return None."""
    folder = DataFolder(data)
    path = folder.model / "card.json"
    try:
        card = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    n_real, n = real_studies(folder.studies_table)
    demo = card.get("demonstration_only") is True and n_real > 0
    if demo:
        card[DEMO_ON_REAL] = {"real_studies": n_real, "studies": n}
    elif card.pop(DEMO_ON_REAL, None) is None:
        return None
    atomic_write(path, json.dumps(card, indent=2, default=str))
    return demo_warning(card, folder) if demo else None


def demo_warning(card: dict, folder: DataFolder) -> str:
    rec = card[DEMO_ON_REAL]
    return (f"the model this index was built with ({card.get('source', folder.model)}) was trained on synthetic "
            f"phantom studies only (its card says demonstration_only), but {rec['real_studies']} of "
            f"{rec['studies']} studies in {folder.cache} are not synthetic: their image vectors are not "
            "meaningful (report-text search is unaffected). Next step: train on this archive (`cmr train "
            f"--cache {folder.cache} --config cmr-tiny --out runs/site`, then `cmr index --data {folder.root} "
            "--checkpoint runs/site`), or index with the published CMR-CLIP weights (`cmr index ARCHIVE "
            "--rebuild --checkpoint DIR`; README, \"Using the published CMR-CLIP weights\").")
