"""Training of the measure head (model/measures.py) on a frozen checkpoint: `cmr train --task measure-head`.

    cmr train --task measure-head --cache CACHE [CACHE ...] --init model/checkpoints/cmr-tiny-phantom \
              --out runs/measured --steps 3000 --seed 0

1. Every study of the caches (built by `cmr prepare` with the segmenter, so their rows hold measurements)
   is embedded once by the frozen checkpoint: its projected video vector and its report's text vector.
   Nothing of the checkpoint is trained, so the text space, and every report vector of an index, stay
   exactly as they were.
2. The head learns to add to the video vector what makes normalise(video + head(measures)) match the
   study's own report: symmetric InfoNCE at the temperature the checkpoint was trained to (its loss's
   final scale is not saved; TEMPERATURE is the CLIP initial value).
   - **Video swap**: with probability `swap`, a study's video vector is another study's. Its report can
     then be found from the numbers alone, which is what a phantom-trained video tower leaves on real
     hearts (ACDC 5-group probe 0.26, docs/training.md).
   - **Measurement noise**: each z-score gets Gaussian noise (`noise` sd, in reference sds) and each
     measure is dropped with probability `drop`, because the segmenter measures real hearts less well
     than the phantom's (docs/segmentation.md).
3. `scale` multiplies the trained head's output. The head learns to carry a study alone (swap), which
   on the phantom, where the video vector is right, pulls NICM and ICM towards each other (both dilated,
   both low EF): seed-11 validation NICM AUC 0.938 -> 0.908 at scale 1, 0.913 at 0.5, 0.922 at 0.2;
   on the ACDC dev set the 5-group probe is 0.52 at 1 and 0.49 at 0.2 (docs/training.md). 0.2 ships.
4. The output folder is the init checkpoint with `measure_head: true`, its weights plus measure_proj.,
   and a card with this recipe, the data and the loss curve.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..checkpoint import is_checkpoint_folder, save_checkpoint
from ..embed import embed_texts
from ..errors import DataError, RunUsageError
from ..factory import create_model
from ..measures import MEASURES, N_FEATURES
from ..model import CMRClip
from .data import CacheDataset

TEMPERATURE = 0.07
MIN_MEASURED = 20           # fewer measured studies than this: the cache was prepared without the segmenter


@dataclass
class MeasureHeadRecipe:
    steps: int = 3000          # optimiser steps
    batch: int = 256           # studies per step (each batch's reports are its negatives)
    lr: float = 1e-3           # AdamW learning rate (cosine decay to 0)
    weight_decay: float = 0.01
    swap: float = 0.5          # share of studies whose video vector is another study's
    noise: float = 0.3         # sd of the Gaussian noise on each z-score
    drop: float = 0.1          # chance that a measure is dropped (as if not measured)
    scale: float = 1.0         # the trained head's output is multiplied by this (its last layer scaled)
    seed: int = 0


def _projected_video(model, ds, batch: int = 64) -> np.ndarray:
    """(N, E) the init checkpoint's projected (un-normalised) video vectors: encode_video of a model
    without a measure head."""
    with torch.no_grad():
        return np.concatenate([model.encode_video(torch.as_tensor(f).float(), torch.as_tensor(i).long(),
                                                  torch.as_tensor(m).bool()).numpy()
                               for f, i, m, *_ in ds.eval_batches(batch)])


def _augment(x: torch.Tensor, r: MeasureHeadRecipe, gen: torch.Generator) -> torch.Tensor:
    m = len(MEASURES)
    z, present = x[:, :m].clone(), x[:, m:].clone()
    z = z + r.noise * torch.randn(z.shape, generator=gen) * present
    keep = (torch.rand(present.shape, generator=gen) >= r.drop).float()
    return torch.cat([z * keep, present * keep], 1)


def fit_head(head: torch.nn.Module, video: np.ndarray, text: np.ndarray, feats: np.ndarray,
             r: MeasureHeadRecipe) -> list[float]:
    """Train `head` in place; -> the loss every 100 steps."""
    gen = torch.Generator().manual_seed(r.seed)
    torch.manual_seed(r.seed)
    v_all, t_all, x_all = (torch.as_tensor(a).float() for a in (video, text, feats))
    opt = torch.optim.AdamW(head.parameters(), lr=r.lr, weight_decay=r.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, r.steps)
    n, losses = len(v_all), []
    head.train()
    for step in range(r.steps):
        idx = torch.randperm(n, generator=gen)[:min(r.batch, n)]
        v, t, x = v_all[idx], t_all[idx], _augment(x_all[idx], r, gen)
        swap = torch.rand(len(idx), generator=gen) < r.swap
        v = torch.where(swap[:, None], v_all[torch.randint(n, (len(idx),), generator=gen)], v)
        e = F.normalize(v + head(x), dim=1)
        logits = e @ t.T / TEMPERATURE
        target = torch.arange(len(idx))
        loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 100 == 0 or step == r.steps - 1:
            losses.append(round(float(loss.detach()), 4))
    head.eval()
    return losses


def train_measure_head(caches: list[str], init: str, out: str, recipe: MeasureHeadRecipe,
                       command: list[str] | None = None) -> Path:
    """The whole run (module docstring); -> the new checkpoint folder."""
    if not is_checkpoint_folder(init):
        raise RunUsageError(f"--init {init} is not a checkpoint folder; the measure head is trained on one")
    t0 = time.time()
    torch.manual_seed(recipe.seed)
    base = create_model(init).eval()
    model = CMRClip(replace(base.cfg, measure_head=True), tokenizer=base.tokenizer)
    missing, unexpected = model.load_state_dict(base.state_dict(), strict=False)
    if unexpected or any(not k.startswith("measure_proj.") for k in missing):
        raise DataError(f"{init}: its weights do not fit a measure-head model ({unexpected or missing})")
    ds = CacheDataset(caches, model.clip_spec, require_text=True)
    feats = ds.measure_features()
    measured = feats[:, len(MEASURES):].sum(1) > 0
    if measured.sum() < MIN_MEASURED:
        raise DataError(f"only {int(measured.sum())} studies of {caches} have measurements; prepare the "
                        "archive with the segmenter (`cmr prepare`, the shipped seg-unet-synth) first")
    video = _projected_video(base, ds)
    text = embed_texts(base, ds.texts)
    losses = fit_head(model.measure_proj, video, text, feats, recipe)
    with torch.no_grad():                       # scale: how far the numbers may move a study (docstring)
        model.measure_proj.net[-1].weight.mul_(recipe.scale)
        model.measure_proj.net[-1].bias.mul_(recipe.scale)
    card = {"kind": "measure-head training", "init": str(Path(init).resolve()), "recipe": asdict(recipe),
            "data": {**ds.summary(), "measured": int(measured.sum())}, "losses_every_100_steps": losses,
            "wall_seconds_this_run": round(time.time() - t0, 1), "features": N_FEATURES,
            "command": command, "demonstration_only": True}
    base_card = Path(init) / "card.json"
    if base_card.exists():
        card["init_card"] = {k: v for k, v in json.loads(base_card.read_text()).items()
                             if k in ("data", "schedule", "eval", "command")}
    return save_checkpoint(model, out, card=card)
