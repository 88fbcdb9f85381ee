"""Run by tests/model/test_ddp.py under torchrun (`-m tests.helpers.ddp_worker`): a few DDP steps on CPU (gloo); prints one line per rank."""
import sys
from pathlib import Path

import torch
import torch.distributed as dist

torch.set_num_threads(1)

from cmr_search.model.model import CMRClip  # noqa: E402
from cmr_search.model.training.distributed import cleanup_distributed  # noqa: E402
from cmr_search.model.training.trainer import TrainConfig, Trainer  # noqa: E402
from tests.helpers.model_helpers import small_config  # noqa: E402
from tests.model.training.test_trainer import make_batches  # noqa: E402

cfg = small_config()
torch.manual_seed(0)
tr = Trainer(CMRClip(cfg), TrainConfig(out_dir=sys.argv[1], total_steps=4, warmup_steps=2, log_every=1),
             device="cpu")
res = tr.fit(make_batches(cfg, n_batches=8, B=4))
w = tr.model.vid_proj[1].weight.detach().clone()
ws = [torch.empty_like(w) for _ in range(tr.world)]
dist.all_gather(ws, w)
print(f"RANK {tr.rank} WORLD {tr.world} STEPS {res['step']} SYNC {all(torch.equal(ws[0], x) for x in ws)}",
      flush=True)
cleanup_distributed()
