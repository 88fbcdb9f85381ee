"""Progress of `cmr index` and `cmr index push`: a tqdm bar on a terminal, otherwise one plain line per
batch on stderr (logs, CI, tests; the kill drill waits for the first "upserted" line)."""
from __future__ import annotations

import sys
import time

from tqdm import tqdm


class Progress:
    """Counts studies as they are upserted; `update(k)` after each batch, `close()` at the end."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled, self.n, self.t0 = total, enabled, 0, time.monotonic()
        self.bar = None
        if enabled and sys.stderr.isatty():
            self.bar = tqdm(total=total, unit="study", desc="index", file=sys.stderr)

    def update(self, k: int) -> None:
        self.n += k
        if self.bar is not None:
            self.bar.update(k)
        elif self.enabled:
            rate = self.n / max(time.monotonic() - self.t0, 1e-9)
            print(f"index: {self.n}/{self.total} studies upserted ({rate:.1f} studies/s)", file=sys.stderr,
                  flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
