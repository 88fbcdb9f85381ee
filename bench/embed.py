"""Benchmark of study embedding: studies/s, video-tower FLOPs per study and resident memory.

    python bench/embed.py [--model CKPT] [--cache CACHE] [--threads 2] [--batch 64] [--seconds 20]

- cmr-tiny (`--model`: the shipped checkpoint by default, or a config name) on the CPU with
  `--threads` torch threads (default 2), batch `--batch` (default 64): model throughput on in-memory
  clips, and with `--cache` also end to end from the study cache (npz decode + build_clip + model, what
  `cmr index` pays per study);
- FLOPs of the video tower (encode_video) per study, counted by torch.utils.flop_counter.FlopCounterMode
  (multiply-add = 2 FLOPs; attention and convolutions included, elementwise ops not);
- peak resident memory of the process (resource.getrusage, ru_maxrss);
- cmr-base and cmr-clip-b16 on CUDA when a GPU is present (skipped with a message otherwise).
Results: printed, and written to bench/results/embed.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]

import torch  # noqa: E402

from cmr_search.model.preprocess import VIEW_ID  # noqa: E402


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024      # Linux: KiB


def random_clips(spec, batch: int, device="cpu", seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    frames = torch.rand(batch, spec.n_frames, spec.size, spec.size, generator=g)
    ids = torch.tensor([VIEW_ID[v] for v, n in spec.layout for _ in range(n)]).expand(batch, -1).clone()
    mask = torch.ones(batch, spec.n_frames, dtype=torch.bool)
    return frames.to(device), ids.to(device), mask.to(device)


def video_flops(model, spec) -> int:
    from torch.utils.flop_counter import FlopCounterMode
    f, v, m = random_clips(spec, 1, model.device)
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model.encode_video(f, v, m)
    return int(fc.get_total_flops())


@torch.no_grad()
def throughput(model, spec, batch: int, seconds: float, device: str, amp: bool = False) -> dict:
    f, v, m = random_clips(spec, batch, device)
    ctx = torch.autocast("cuda", dtype=torch.bfloat16) if amp else torch.autocast("cpu", enabled=False)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    with ctx:
        model.encode_video(f, v, m)                       # warm-up
        sync()
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds or n < 2:
            model.encode_video(f, v, m)
            n += 1
        sync()
    dt = time.perf_counter() - t0
    return {"batch": batch, "batches": n, "seconds": round(dt, 2), "studies_per_s": round(n * batch / dt, 1)}


def train_throughput(model, spec, batch: int, seconds: float, device: str) -> dict:
    """Training speed of the video tower: bf16 autocast forward + backward + AdamW step on random clips."""
    params = [p for p in list(model.video_model.parameters()) + list(model.vid_proj.parameters())]
    opt = torch.optim.AdamW(params, lr=1e-5)
    f, v, m = random_clips(spec, batch, device)
    model.train()

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model.encode_video(f, v, m).float().pow(2).mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    step()                                                # warm-up
    torch.cuda.synchronize()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds or n < 2:
        step()
        n += 1
    torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    model.eval()
    return {"batch": batch, "steps": n, "seconds": round(dt, 2), "studies_per_s": round(n * batch / dt, 1)}


def from_cache(model, cache: str, batch: int, max_studies: int) -> dict:
    """End to end: npz decode + build_clip + video tower, in cache order (first `max_studies`)."""
    import numpy as np
    from cmr_search.model.training.data import CacheDataset
    from cmr_search.model.embed import embed_clips
    ds = CacheDataset(cache, model.clip_spec, memory_bytes=0)
    idx = np.arange(min(len(ds), max_studies))
    t0 = time.perf_counter()
    emb = embed_clips(model, ds.eval_batches(batch, idx=idx))
    dt = time.perf_counter() - t0
    t1 = time.perf_counter()
    for i in idx:
        ds.clip(int(i))
    load = time.perf_counter() - t1
    return {"studies": len(emb), "seconds": round(dt, 2), "studies_per_s": round(len(emb) / dt, 1),
            "load_only_studies_per_s": round(len(idx) / load, 1)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cache", help="study cache for the end-to-end measurement")
    p.add_argument("--model", default=str(ROOT / "model" / "checkpoints" / "cmr-tiny-measured"),
                   help="cmr-tiny config name or checkpoint folder for the CPU measurement (default: the "
                        "shipped checkpoint, whose config may differ from the bundled cmr-tiny one)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seconds", type=float, default=20.0, help="timed seconds per measurement")
    p.add_argument("--max-studies", type=int, default=256)
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "embed.json"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    from cmr_search.model.factory import create_model
    from cmr_search.model.model import count_params

    res = {"host": {"cpu": platform.processor() or platform.machine(), "cores_visible": os.cpu_count(),
                    "torch": torch.__version__, "torch_threads": torch.get_num_threads()},
           "rss_mib_start": round(rss_mib(), 1)}
    tiny = create_model(args.model).eval()
    spec = tiny.clip_spec
    res["cmr-tiny"] = {"device": "cpu", "model": args.model, "pool": tiny.cfg.video.pool,
                       "frames": spec.n_frames, "size": spec.size,
                       "video_params": count_params(tiny.video_model) + count_params(tiny.vid_proj),
                       "video_flops_per_study": video_flops(tiny, spec)}
    res["cmr-tiny"]["gflops_per_study"] = round(res["cmr-tiny"]["video_flops_per_study"] / 1e9, 3)
    res["cmr-tiny"]["model_only"] = throughput(tiny, spec, args.batch, args.seconds, "cpu")
    if args.cache:
        res["cmr-tiny"]["from_cache"] = from_cache(tiny, args.cache, args.batch, args.max_studies)
    res["cmr-tiny"]["rss_mib_peak"] = round(rss_mib(), 1)
    print(json.dumps(res["cmr-tiny"], indent=1))

    if torch.cuda.is_available():
        for name, batch, train_batch in (("cmr-base", 64, 16), ("cmr-clip-b16", 4, 2)):
            m = create_model(name, device="cuda").eval()
            s = m.clip_spec
            torch.cuda.reset_peak_memory_stats()
            r = {"device": torch.cuda.get_device_name(), "frames": s.n_frames, "size": s.size,
                 "video_flops_per_study": video_flops(m, s),
                 "video_params": count_params(m.video_model) + count_params(m.vid_proj),
                 "bf16": throughput(m, s, batch, args.seconds, "cuda", amp=True),
                 "train_bf16": train_throughput(m, s, train_batch, args.seconds, "cuda")}
            r["gflops_per_study"] = round(r["video_flops_per_study"] / 1e9, 2)
            r["gpu_mem_peak_mib"] = round(torch.cuda.max_memory_allocated() / 2**20)
            res[name] = r
            print(name, json.dumps(r))
            del m
            torch.cuda.empty_cache()
    else:
        msg = "skipped: no CUDA device (run on a GPU machine for cmr-base / cmr-clip-b16)"
        res["cmr-base"] = res["cmr-clip-b16"] = {"skipped": msg}
        print(msg)
    res["rss_mib_peak"] = round(rss_mib(), 1)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
