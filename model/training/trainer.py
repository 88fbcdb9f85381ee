"""Training core: a resumable, DDP-aware contrastive Trainer over any iterable of batches.

A batch is (frames (B, F, H, W), view_ids (B, F), mask (B, F), texts list[str]) as tensors or arrays.
Under torchrun each rank takes every world-th batch of the same iterable (no DistributedSampler).
Resume: `Trainer(...).fit(batches)` with the same out_dir continues from out_dir/last/state.pt
(model, optimizer, scheduler, step, EMA, loss temperature, RNG states) and skips the batches already
consumed; pass a callable `batches(start_index)` to seek instead of skipping. metrics.jsonl keeps one line
per logged step: on (re)start at step s, lines of steps after s (written before a kill, after the last
saved state) are dropped, as is a line cut short by the kill; the resumed run logs those steps again.
"""
from __future__ import annotations

import contextlib
import itertools
import json
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from ..atomic import atomic_write
from ..checkpoint import frozen_text_keys, save_checkpoint
from ..device import pick_device
from ..preprocess import CINE_VIEWS, LGE_VIEWS, VIEW_ID
from .distributed import init_distributed
from .loss import ClipLoss

CINE_IDS = torch.tensor([VIEW_ID[v] for v in CINE_VIEWS])
LGE_IDS = torch.tensor([VIEW_ID[v] for v in LGE_VIEWS])


@dataclass
class TrainConfig:
    out_dir: str = "runs/cmr-tiny"        # logs, resumable state (last/) and the final checkpoint (final/)
    total_steps: int = 1000               # optimizer steps of the whole schedule
    warmup_steps: int = 50                # linear warmup from 0 to lr
    lr: float = 1e-3                      # peak learning rate (cosine decay to min_lr_ratio * lr)
    min_lr_ratio: float = 0.0             # floor of the cosine schedule as a fraction of lr
    betas: tuple[float, float] = (0.9, 0.98)   # AdamW betas
    weight_decay: float = 0.05            # on weight matrices only (not norms, biases, embeddings, temperature)
    grad_clip: float = 1.0                # max gradient norm; 0 = off
    seed: int = 0                         # seeds python, numpy, torch (+ rank)
    view_dropout: float = 0.3             # probability per sample of dropping all cine or all LGE frames
    ema_decay: float = 0.0                # > 0: keep an EMA of the weights; the final checkpoint uses it
    amp: str = "auto"                     # "auto": CUDA autocast; CPU bf16 only with amx_bf16/avx512_bf16; "off"
    log_every: int = 10                   # steps between metrics.jsonl lines
    ckpt_every: int = 200                 # steps between resumable states (also written at the end)


# ---- small pieces ------------------------------------------------------------------------------------
def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def autocast_for(device: torch.device, amp: str):
    """(context manager, needs GradScaler)."""
    if amp == "off":
        return contextlib.nullcontext(), False
    if device.type == "cuda":
        bf16 = torch.cuda.is_bf16_supported()
        return torch.autocast("cuda", dtype=torch.bfloat16 if bf16 else torch.float16), not bf16
    if device.type == "cpu" and cpu_has_bf16():
        return torch.autocast("cpu", dtype=torch.bfloat16), False
    return contextlib.nullcontext(), False


def lr_factor(step: int, warmup: int, total: int, floor: float = 0.0) -> float:
    """Linear warmup then cosine decay to `floor`."""
    if step < warmup:
        return (step + 1) / max(1, warmup)
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))


NO_DECAY = ("cls_token", "pos_embed", "temporal_embed", "frame_embed", "view_embed.weight", "logit_scale")


def param_groups(model: torch.nn.Module, loss: torch.nn.Module, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for mod in (model, loss):
        for name, p in mod.named_parameters():
            if not p.requires_grad:
                continue
            plain = p.ndim < 2 or name.endswith(NO_DECAY)
            (no_decay if plain else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def view_dropout(view_ids: torch.Tensor, mask: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """Per sample with probability p, mask all cine (or all LGE) frames, only if the other kind remains."""
    if p <= 0:
        return mask
    B = mask.shape[0]
    is_cine = torch.isin(view_ids, CINE_IDS.to(view_ids.device))
    is_lge = torch.isin(view_ids, LGE_IDS.to(view_ids.device))
    drop = torch.rand(B, generator=gen) < p
    drop_cine = torch.rand(B, generator=gen) < 0.5
    out = mask.clone()
    for i in torch.nonzero(drop).flatten().tolist():
        gone, stay = (is_cine[i], is_lge[i]) if drop_cine[i] else (is_lge[i], is_cine[i])
        if (mask[i] & stay).any():
            out[i] &= ~gone
    return out


class EMA:
    """Exponential moving average of the trainable parameters."""

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.shadow = {k: p.detach().clone() for k, p in model.named_parameters() if p.requires_grad}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        for k, p in model.named_parameters():
            if k in self.shadow:
                self.shadow[k].lerp_(p.detach(), 1 - self.decay)

    def state_dict_for(self, model: torch.nn.Module) -> dict[str, torch.Tensor]:
        return {k: self.shadow.get(k, v) for k, v in model.state_dict().items()}


# ---- the trainer -------------------------------------------------------------------------------------
Batch = tuple  # (frames, view_ids, mask, texts)


class Trainer:
    """Contrastive training of a CMRClip. `fit(batches)` runs (or resumes) the schedule."""

    def __init__(self, model: torch.nn.Module, cfg: TrainConfig, loss: torch.nn.Module | None = None,
                 text_augment: Callable[[str, random.Random], str] | None = None, device: str | None = None):
        self.rank, self.world = init_distributed()
        self.device = pick_device(device)                 # None: CUDA (LOCAL_RANK's GPU under torchrun) or CPU
        self.cfg, self.text_augment = cfg, text_augment
        seed_everything(cfg.seed + self.rank)
        self.model = model.to(self.device).train()
        if hasattr(self.model, "text_one_by_one"):
            self.model.text_one_by_one = True     # features a function of the string: resume = uninterrupted
        self.loss = (loss or ClipLoss()).to(self.device)
        self.net = self.model
        if self.world > 1:
            self.net = DistributedDataParallel(self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.opt = torch.optim.AdamW(param_groups(self.model, self.loss, cfg.weight_decay), lr=cfg.lr,
                                     betas=tuple(cfg.betas))
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lambda s: lr_factor(s, cfg.warmup_steps, cfg.total_steps, cfg.min_lr_ratio))
        self.autocast, need_scaler = autocast_for(self.device, cfg.amp)
        self.scaler = torch.amp.GradScaler("cuda", enabled=need_scaler)
        self.ema = EMA(self.model, cfg.ema_decay) if cfg.ema_decay > 0 else None
        self.gen = torch.Generator().manual_seed(cfg.seed + 1000 * self.rank)
        self.step = 0
        self.out = Path(cfg.out_dir)
        if (self.out / "last" / "state.pt").exists():
            self.load_state(self.out / "last" / "state.pt")
        if self.rank == 0:
            trim_metrics(self.out / "metrics.jsonl", self.step)

    # -- one step -------------------------------------------------------------------------------------
    def _prepare(self, batch: Batch):
        frames, view_ids, mask, texts = batch
        frames = torch.as_tensor(np.asarray(frames) if not torch.is_tensor(frames) else frames).float()
        view_ids = torch.as_tensor(view_ids).long()
        mask = view_dropout(view_ids, torch.as_tensor(mask).bool(), self.cfg.view_dropout, self.gen)
        texts = list(texts)
        if self.text_augment is not None:
            texts = [self.text_augment(t, self._sample_rng(i, len(texts))) for i, t in enumerate(texts)]
        d = self.device
        return frames.to(d, non_blocking=True), view_ids.to(d), mask.to(d), texts

    def _sample_rng(self, i: int, per_rank: int) -> random.Random:
        """The text augmentation's draw for sample i of this rank's part of the global batch: fixed by
        (seed, step, position in the global batch), so N processes and one, or a resumed run and an
        uninterrupted one, augment every sample alike."""
        return random.Random(f"{self.cfg.seed}:{self.step}:{self.rank * per_rank + i}")

    def train_step(self, batch: Batch) -> float:
        frames, view_ids, mask, texts = self._prepare(batch)
        with self.autocast:
            v, t = self.net(frames, view_ids, mask, texts)
            loss = self.loss(v.float(), t.float())
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.cfg.grad_clip > 0:
            self.scaler.unscale_(self.opt)
            params = [p for g in self.opt.param_groups for p in g["params"]]
            torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)
        self.scaler.step(self.opt)
        self.scaler.update()
        self.sched.step()
        if self.ema is not None:
            self.ema.update(self.model)
        self.step += 1
        return float(loss.detach())

    # -- the loop -------------------------------------------------------------------------------------
    def _batches(self, batches: Iterable[Batch] | Callable[[int], Iterable[Batch]]):
        start = self.step * self.world                      # global batch index to continue from
        it = batches(start) if callable(batches) else itertools.islice(batches, start, None)
        for i, b in enumerate(it):
            if i % self.world == self.rank:
                yield b

    def fit(self, batches, max_steps: int | None = None) -> dict:
        """Train until total_steps (or max_steps this call, or the iterable ends). Returns a summary."""
        stop = self.cfg.total_steps if max_steps is None else min(self.cfg.total_steps, self.step + max_steps)
        losses, t0, seen, last_log = [], time.perf_counter(), 0, time.perf_counter()
        for batch in self._batches(batches):
            if self.step >= stop:
                break
            losses.append(self.train_step(batch))
            seen += len(batch[3])
            if self.step % self.cfg.log_every == 0 or self.step == stop:
                now = time.perf_counter()
                self.log({"step": self.step, "loss": float(np.mean(losses[-self.cfg.log_every:])),
                          "lr": self.sched.get_last_lr()[0], "logit_scale": self.loss.logit_scale.exp().item()
                          if hasattr(self.loss, "logit_scale") else None,
                          "samples_per_s": seen * self.world / max(now - last_log, 1e-9)})
                seen, last_log = 0, now
            if self.step % self.cfg.ckpt_every == 0:
                self.save_state()
        self.save_state()
        if self.step >= self.cfg.total_steps:
            self.save_final()
        return {"step": self.step, "losses": losses, "seconds": time.perf_counter() - t0}

    # -- outputs --------------------------------------------------------------------------------------
    def log(self, row: dict) -> None:
        if self.rank != 0:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        with open(self.out / "metrics.jsonl", "a") as f:
            f.write(json.dumps({**row, "time": time.time()}) + "\n")

    def save_final(self, card: dict | None = None) -> Path | None:
        if self.rank != 0:
            return None
        sd = self.ema.state_dict_for(self.model) if self.ema else None
        info = {"train": asdict(self.cfg), "steps": self.step, "ema": self.ema is not None, **(card or {})}
        return save_checkpoint(self.model, self.out / "final", card=info, state_dict=sd)

    def _model_state(self) -> dict:
        skip = frozen_text_keys(self.model)
        return {k: v for k, v in self.model.state_dict().items() if k not in skip}

    def _rng_state(self) -> dict:
        return {"step": self.step, "gen": self.gen.get_state(), "py_rng": random.getstate(),
                "np_rng": np.random.get_state(), "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}

    def save_state(self) -> None:
        """Everything needed to resume: out_dir/last/state.pt (rank 0) + rng{rank}.pt (every rank)."""
        last = self.out / "last"
        last.mkdir(parents=True, exist_ok=True)
        if self.rank != 0:                      # rank 0 keeps its RNG inside state.pt: one atomic file
            atomic_write(last / f"rng{self.rank}.pt", lambda p: torch.save(self._rng_state(), p))
            return
        state = {"model": self._model_state(), "loss": self.loss.state_dict(), "opt": self.opt.state_dict(),
                 "sched": self.sched.state_dict(), "scaler": self.scaler.state_dict(), "step": self.step,
                 "world": self.world, "ema": self.ema.shadow if self.ema else None, "rng": self._rng_state()}
        atomic_write(last / "state.pt", lambda p: torch.save(state, p))

    def load_state(self, path: Path) -> None:
        s = torch.load(path, map_location="cpu", weights_only=False)   # our own file
        self.model.load_state_dict({**self.model.state_dict(), **s["model"]})
        self.loss.load_state_dict(s["loss"])
        self.opt.load_state_dict(s["opt"])
        self.sched.load_state_dict(s["sched"])
        self.scaler.load_state_dict(s["scaler"])
        self.step = s["step"]
        if self.ema and s["ema"]:
            self.ema.shadow = {k: v.to(self.device) for k, v in s["ema"].items()}
        r = s.get("rng") if self.rank == 0 else None
        rng = path.parent / f"rng{self.rank}.pt"
        if r is None and rng.exists():
            r = torch.load(rng, map_location="cpu", weights_only=False)
        if r is not None and r.get("step", self.step) != self.step:
            r = None                            # written for another step (a kill between the two files)
        if r is not None:
            self.gen.set_state(r["gen"])
            random.setstate(r["py_rng"])
            np.random.set_state(r["np_rng"])
            torch.set_rng_state(r["torch_rng"])
            if r["cuda_rng"] is not None and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(r["cuda_rng"])


def trim_metrics(path: Path, step: int) -> int:
    """Keep the metrics lines of steps <= `step` (the state a run resumes from); drop later ones and any
    line a kill cut short. Returns how many lines were dropped."""
    if not path.exists():
        return 0
    lines = path.read_text().splitlines()
    keep = []
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), int) and row["step"] <= step:
            keep.append(line)
    if len(keep) < len(lines):
        atomic_write(path, "".join(x + "\n" for x in keep))
    return len(lines) - len(keep)
