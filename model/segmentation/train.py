"""Train the cine short-axis segmenter on synthetic slices only: `cmr train --task seg`.

    cmr synth seg --hearts 600 --out runs/seg-data        # randomized phantom slices (phantom.randomized)
    cmr train --task seg --data runs/seg-data --out runs/seg --steps 4000   # --data A,B: several folders

Recipe (every number is a flag; the card records them): shards of (image, label) pairs are held in
memory; each step draws a batch at random, applies label-preserving augmentation that the renderer
does not (rot90 and flips, a random crop offset, intensity inversion with probability `invert_p`),
normalises every image by its own percentiles exactly as inference does (segmenter.normalise_images),
and minimises cross-entropy + soft Dice (the mean over the three structures) with AdamW, linear warmup
and a cosine decay. The weights are written as a checkpoint folder (segmenter.Segmenter.save) at the end
and every `save_every` steps, with the recipe and the data's recipe.json in card.json; OUT/train/log.jsonl
holds the loss curve. On CPU, torch uses `threads` threads.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from ..errors import DataError, RunUsageError
from .config import load_seg_config
from .network import UNet
from .segmenter import Segmenter, normalise_images


@dataclass
class SegRecipe:
    data: str                    # folder(s) of shard-*.npz (phantom.randomized.write_shards), comma-separated
    out: str                     # checkpoint folder to write
    config: str = "seg-unet-small"   # segmenter config name or JSON path
    init: str = ""               # start from this checkpoint folder's weights (a second stage); "" = fresh
    steps: int = 4000            # optimiser steps
    batch: int = 16              # images per step
    lr: float = 2e-3             # peak learning rate (AdamW)
    weight_decay: float = 1e-4   # AdamW weight decay
    warmup: int = 200            # linear warmup steps
    dice_weight: float = 1.0     # weight of the soft Dice term next to cross-entropy
    invert_p: float = 0.1        # chance of an inverted-intensity image
    seed: int = 0                # init and sampling seed
    threads: int = 2             # torch CPU threads
    save_every: int = 500        # steps between checkpoint writes
    log_every: int = 50          # steps between loss lines (OUT/train/log.jsonl)
    reload_every: int = 0        # steps between re-reading the data folder for new shards (0 = never;
                                 # lets training start while `cmr synth seg` is still writing)
    device: str = "cpu"          # cpu | cuda


def load_shards(data: str | Path) -> tuple[np.ndarray, np.ndarray, dict | list]:
    """All shards of `data` (one folder, or several separated by commas): images (N, H, W) float16,
    labels (N, H, W) uint8, and the folder's recipe.json (a list of them for several folders)."""
    folders = [f for f in str(data).split(",") if f.strip()]
    if len(folders) > 1:
        parts = [load_shards(f.strip()) for f in folders]
        return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
                [p[2] for p in parts])
    folder = Path(folders[0] if folders else data)
    paths = sorted(folder.glob("shard-*.npz"))
    if not paths:
        raise DataError(f"{folder} holds no shard-*.npz training slices; make them with "
                        f"`cmr synth seg --hearts N --out {folder}`.")
    images, labels = [], []
    for p in paths:
        try:
            with np.load(p) as z:
                images.append(z["images"])
                labels.append(z["labels"])
        except (OSError, KeyError, ValueError) as e:
            raise DataError(f"{p} is not a training shard ({e}); delete it and rerun `cmr synth --seg`.") from e
    recipe = folder / "recipe.json"
    return np.concatenate(images), np.concatenate(labels), json.loads(recipe.read_text()) if recipe.exists() else {}


def augment(x: torch.Tensor, y: torch.Tensor, gen: torch.Generator, invert_p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, H, W) images and labels: a random rot90 / flip per batch, inversion per image."""
    k = int(torch.randint(0, 4, (1,), generator=gen))
    x, y = torch.rot90(x, k, (1, 2)), torch.rot90(y, k, (1, 2))
    if torch.rand(1, generator=gen) < 0.5:
        x, y = x.flip(2), y.flip(2)
    inv = torch.rand(len(x), generator=gen) < invert_p
    x = torch.where(inv[:, None, None], x.amax((1, 2), keepdim=True) - x, x)
    return x, y


def loss_fn(logits: torch.Tensor, y: torch.Tensor, dice_weight: float) -> tuple[torch.Tensor, float]:
    """Cross-entropy + (1 - mean soft Dice over classes 1..C-1); returns the loss and the Dice."""
    ce = F.cross_entropy(logits, y)
    p = torch.softmax(logits, 1)[:, 1:]
    onehot = F.one_hot(y, logits.shape[1]).permute(0, 3, 1, 2)[:, 1:].float()
    inter = (p * onehot).sum((0, 2, 3))
    dice = (2 * inter + 1) / (p.sum((0, 2, 3)) + onehot.sum((0, 2, 3)) + 1)
    return ce + dice_weight * (1 - dice.mean()), float(dice.mean().detach())


def lr_at(step: int, r: SegRecipe) -> float:
    if step < r.warmup:
        return r.lr * (step + 1) / r.warmup
    return 0.5 * r.lr * (1 + math.cos(math.pi * (step - r.warmup) / max(1, r.steps - r.warmup)))


def train(r: SegRecipe, log=print) -> Path:
    """Run the recipe; returns the checkpoint folder."""
    torch.set_num_threads(max(1, r.threads))
    images, labels, data_recipe = load_shards(r.data)
    cfg = load_seg_config(r.config)
    torch.manual_seed(r.seed)
    start = Segmenter.load(r.init) if r.init else None
    net = (start.net if start else UNet(cfg.channels, cfg.classes)).to(r.device)
    opt = torch.optim.AdamW(net.parameters(), lr=r.lr, weight_decay=r.weight_decay)
    gen = torch.Generator().manual_seed(r.seed)
    out = Path(r.out)
    (out / "train").mkdir(parents=True, exist_ok=True)
    logf = (out / "train" / "log.jsonl").open("a")
    card = {"trained_on": "synthetic only (phantom.randomized)", "recipe": asdict(r), "data": data_recipe,
            "slices": int(len(images))}
    if start:
        card["init_card"] = start.card
    t0, net_sum = time.time(), 0.0
    for step in range(r.steps):
        if r.reload_every and step and step % r.reload_every == 0:
            images, labels, data_recipe = load_shards(r.data)
            card["slices"] = int(len(images))
        idx = torch.randint(0, len(images), (r.batch,), generator=gen).numpy()
        x = torch.from_numpy(images[idx].astype(np.float32))
        y = torch.from_numpy(labels[idx].astype(np.int64))
        x, y = augment(x, y, gen, r.invert_p)
        x = normalise_images(x, cfg.norm_percentiles)[:, None]
        for g in opt.param_groups:
            g["lr"] = lr_at(step, r)
        net.train()
        loss, dice = loss_fn(net(x.to(r.device)), y.to(r.device), r.dice_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        net_sum += float(loss.detach())
        if (step + 1) % r.log_every == 0:
            row = {"step": step + 1, "loss": round(net_sum / r.log_every, 4), "dice": round(dice, 4),
                   "lr": lr_at(step, r), "seconds": round(time.time() - t0, 1)}
            logf.write(json.dumps(row) + "\n")
            logf.flush()
            log(row)
            net_sum = 0.0
        if (step + 1) % r.save_every == 0 or step + 1 == r.steps:
            Segmenter(net, cfg, device=r.device).save(out, {**card, "steps_done": step + 1})
            net.to(r.device)
    logf.close()
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cmr train --task seg",
                                description="Train the cine SAX segmenter on synthetic slices only.")
    p.add_argument("--task", choices=["seg"], default="seg")
    for name, f in SegRecipe.__dataclass_fields__.items():
        flag = "--" + name.replace("_", "-")
        if f.default is dataclasses.MISSING:      # required (no default)
            p.add_argument(flag, required=True)
        else:
            p.add_argument(flag, type=type(f.default), default=f.default)
    return p


def recipe_from_args(argv: list[str] | None) -> SegRecipe:
    a = vars(build_parser().parse_args(argv))
    a.pop("task", None)
    r = SegRecipe(**a)
    if r.steps < 1 or r.batch < 1 or r.lr <= 0:
        raise RunUsageError("--steps, --batch and --lr must be positive")
    return r
