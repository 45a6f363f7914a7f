#!/usr/bin/env python
"""DDP with N processes vs 1 process: training samples per second of one run (issue 12).

Trains LiLAW with the same config (global batch ``--batch-size``) once in one process and
once in ``--nproc`` processes under :mod:`lilaw_edu.training.ddp` (``gloo`` on CPU, ``nccl``
with one GPU per process on CUDA), and prints one line::

    DDP 2 processes vs 1 process (cpu, ecg5000, lilaw, global batch 64, 800 train samples): ...

Samples per second = epochs x training samples / the summed ``epoch_time_s`` of the
history (training steps, meta steps, the gathered validation pass), after one untimed
warm-up epoch. Each process uses ``--threads`` torch threads (default 1), so on CPU the ideal
ratio is N (and needs N free cores).

Usage::

    python benchmarks/ddp.py                              # CPU, 2 processes, ECG5000
    python benchmarks/ddp.py --device cuda --nproc 2      # a machine with 2 GPUs
"""
from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402


def _config(args):
    from lilaw_edu.training.config import config_from_preset
    return config_from_preset("cpu-ecg5000", dataset=args.dataset, noise="uniform", rate=0.3,
                              epochs=args.epochs + 1, max_train=args.max_train, batch_size=args.batch_size,
                              warmup_epochs=0, device=args.device, num_threads=args.threads, patience=0,
                              temperature_scaling=False)


def _throughput(results: dict) -> float:
    res = results["methods"]["lilaw"]
    timed = res["history"][1:]                                   # epoch 1 is the warm-up
    return len(timed) * results["data"]["sizes"]["train"] / sum(h["epoch_time_s"] for h in timed)


def _worker(rank: int, world: int, port: int, args, out: str) -> None:
    from lilaw_edu.training.ddp import distributed_session
    from lilaw_edu.training.fit import fit
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    with distributed_session(world > 1, args.device) as ddp:
        results = fit(_config(args), ["lilaw"], progress=False, distributed=ddp)
    if rank == 0:
        torch.save({"samples_per_s": _throughput(results)}, out)


def _measure(world: int, args, out_dir: Path) -> float:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = out_dir / f"world{world}.pt"
    mp.start_processes(_worker, args=(world, port, args, str(out)), nprocs=world, join=True, start_method="spawn")
    return torch.load(out, weights_only=True)["samples_per_s"]


def main(argv=None) -> int:
    import tempfile
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nproc", type=int, default=2)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--dataset", default="ecg5000")
    p.add_argument("--epochs", type=int, default=2, help="timed epochs (after one warm-up epoch)")
    p.add_argument("--max-train", type=int, default=800)
    p.add_argument("--batch-size", type=int, default=64, help="global batch")
    p.add_argument("--threads", type=int, default=1, help="torch threads per process")
    args = p.parse_args(argv)
    if args.nproc < 2 or (args.device == "cuda" and torch.cuda.device_count() < args.nproc):
        print(f"ddp.py: error: need --nproc >= 2 (and that many GPUs with --device cuda), got --nproc "
              f"{args.nproc}, {torch.cuda.device_count()} GPUs", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        one = _measure(1, args, Path(tmp))
        many = _measure(args.nproc, args, Path(tmp))
    print(f"DDP {args.nproc} processes vs 1 process ({args.device}, {args.dataset}, lilaw, global batch "
          f"{args.batch_size}, {args.max_train} train samples, {args.threads} thread(s) per process): "
          f"{one:.0f} vs {many:.0f} samples/s, ratio {many / one:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
