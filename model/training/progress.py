"""A Trainer that shows a progress bar and logs one mean loss per epoch (the training run's trainer)."""
from __future__ import annotations

import sys

from tqdm import tqdm

from .trainer import Trainer


class ProgressTrainer(Trainer):
    """Trainer + a tqdm bar on stderr (when `progress`) + an `epoch_loss` metrics line at each epoch end
    (the batches' `steps_per_epoch`, e.g. a BatchStream's)."""
    progress = False
    steps_per_epoch = None
    _bar = None
    _epoch: list

    def fit(self, batches, max_steps=None):
        self.steps_per_epoch = getattr(batches, "steps_per_epoch", None)
        self._epoch = []
        if self.progress:
            self._bar = tqdm(total=self.cfg.total_steps, initial=self.step, unit="step", desc="training",
                             file=sys.stderr, dynamic_ncols=True)
        try:
            return super().fit(batches, max_steps)
        finally:
            if self._bar is not None:
                self._bar.close()

    def train_step(self, batch) -> float:
        loss = super().train_step(batch)
        self._epoch.append(loss)
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(loss=f"{loss:.3f}")
        spe = self.steps_per_epoch
        if spe and self.step % spe == 0:
            self.log({"step": self.step, "epoch": self.step // spe, "epoch_loss": float(sum(self._epoch) / len(self._epoch))})
            self._epoch = []
        return loss
