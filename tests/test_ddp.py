"""DDP on CPU (gloo, 2 processes on 127.0.0.1): α, β, δ bit-identical on both ranks after
every meta step, final metrics equal to one process with the same global batch within a
measured floating-point tolerance, rank 0 alone writes, ``--resume`` after an interruption
ends exactly where the uninterrupted run ends, and ``torchrun -m lilaw_edu run`` end to end.

Data: ECG5000 (stacked LSTM: no BatchNorm, no dropout, no augmentation, so one process
and two differ only in floating-point summation order), 200 training samples, 2 epochs,
no warm-up (meta steps from the first step), global batch 32 (the last batch of 8 splits 4/4).
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from lilaw_edu.core.weighting import LiLAW
from lilaw_edu.datasets import list_datasets
from lilaw_edu.training.config import config_from_preset
from lilaw_edu.training.ddp import ShardedBatches, distributed_session, environment_world
from lilaw_edu.training.engine import Batches
from lilaw_edu.training.fit import fit

REPO = Path(__file__).resolve().parents[1]
SETTINGS = dict(dataset="ecg5000", noise="uniform", rate=0.3, epochs=2, max_train=200, batch_size=32,
                warmup_epochs=0, device="cpu", num_threads=1)
# Measured on this machine (torch 2.14.1, CPU): max |DDP - one process| over the 14-step
# alpha/beta/delta trajectories 0.0 to 1e-6; test top-1 and AUROC identical. Asserted with margin:
TRAJECTORY_ATOL = 1e-5
METRIC_ATOL = 2e-4        # top-1 and AUROC (a flipped prediction among 4500 test samples is 2.2e-4)

pytestmark = pytest.mark.skipif(not any(d["name"] == "ecg5000" and d["available"] for d in list_datasets()),
                                reason="ECG5000 not in LILAW_DATA_DIR")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Interrupted(Exception):
    pass


def _recording(trajectory: list):
    """Patch LiLAW.meta_step to append (alpha, beta, delta) after every step; returns the undo."""
    original = LiLAW.meta_step

    def meta_step(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        trajectory.append(torch.stack([self.alpha.detach(), self.beta.detach(), self.delta.detach()]).clone())
        return out

    LiLAW.meta_step = meta_step
    return lambda: setattr(LiLAW, "meta_step", original)


GLOBAL = ("val_loss", "val_acc", "val_loss_clean", "val_acc_clean", "alpha", "beta", "delta", "lr")


def _summary(results: dict) -> dict:
    res = results["methods"]["lilaw"]
    return {"test": res["metrics"]["test"], "lilaw": res["lilaw"], "history": res["history"]}


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    config = config_from_preset("cpu-ecg5000", **SETTINGS)
    full, resumed = [], []
    with distributed_session(True, "cpu") as ddp:
        undo = _recording(full)
        a = fit(config, ["lilaw"], out_dir=Path(out) / "full", progress=False, distributed=ddp)
        undo()

        def stop_after_first(event):
            if event["epoch"] == 1:
                raise _Interrupted()

        try:
            fit(config, ["lilaw"], out_dir=Path(out) / "resumed", progress=False, callback=stop_after_first,
                distributed=ddp)
        except _Interrupted:
            pass
        undo = _recording(resumed)
        b = fit(config, ["lilaw"], out_dir=Path(out) / "resumed", resume=True, progress=False, distributed=ddp)
        undo()
    torch.save({"full": torch.stack(full), "resumed": torch.stack(resumed), "a": _summary(a), "b": _summary(b)},
               Path(out) / f"rank{rank}.pt")


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    mp.start_processes(_worker, args=(2, _free_port(), str(out)), nprocs=2, join=True, start_method="spawn")
    ranks = [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(2)]
    return out, ranks


def test_alpha_beta_delta_bit_identical_on_every_rank_after_every_step(ddp_run):
    _, (r0, r1) = ddp_run
    steps = 2 * 7                                            # 2 epochs x ceil(200 / 32) global batches
    assert r0["full"].shape == (steps, 3) and r0["full"].dtype == torch.float32
    assert torch.equal(r0["full"], r1["full"])                # bitwise, every step
    assert (r0["full"][-1] != torch.tensor([10.0, 2.0, 6.0])).any()   # the meta steps did move them
    assert r0["a"]["test"] == r1["a"]["test"] and r0["a"]["lilaw"] == r1["a"]["lilaw"]
    for h0, h1 in zip(r0["a"]["history"], r1["a"]["history"]):   # validation gathered over the whole split
        assert {k: h0[k] for k in GLOBAL} == {k: h1[k] for k in GLOBAL}


def test_ddp_equals_one_process_with_the_same_global_batch(ddp_run):
    _, (r0, _) = ddp_run
    one = []
    undo = _recording(one)
    try:
        single = _summary(fit(config_from_preset("cpu-ecg5000", **SETTINGS), ["lilaw"], progress=False))
    finally:
        undo()
    diff = (torch.stack(one) - r0["full"]).abs().max().item()
    print(f"max |alpha, beta, delta (DDP 2) - (1 process)| over {len(one)} steps: {diff:.3g}")
    assert len(one) == len(r0["full"]) and diff <= TRAJECTORY_ATOL
    for key in ("top1", "auroc"):
        assert abs(single["test"][key] - r0["a"]["test"][key]) <= METRIC_ATOL, key
    for mine, ref in zip(r0["a"]["history"], single["history"]):
        assert abs(mine["val_loss"] - ref["val_loss"]) <= 1e-4 and abs(mine["val_acc"] - ref["val_acc"]) <= METRIC_ATOL


def test_rank0_writes_and_resume_ends_where_the_uninterrupted_run_ends(ddp_run):
    out, (r0, r1) = ddp_run
    results = json.loads((out / "full" / "results.json").read_text())
    assert results["methods"]["lilaw"]["lilaw"] == r0["a"]["lilaw"]
    assert sorted(p.name for p in (out / "full" / "checkpoints").iterdir()) == ["lilaw.pt"]
    assert not list(out.rglob("*.tmp"))
    assert len(r0["resumed"]) == 7 and torch.equal(r0["resumed"], r1["resumed"])    # epoch 2 only
    assert torch.equal(r0["resumed"], r0["full"][7:])                               # same steps, bitwise
    assert r0["b"]["test"] == r0["a"]["test"] and r0["b"]["lilaw"] == r0["a"]["lilaw"]
    assert [{k: h[k] for k in GLOBAL + ("train_loss", "train_acc")} for h in r0["b"]["history"]] == \
        [{k: h[k] for k in GLOBAL + ("train_loss", "train_acc")} for h in r0["a"]["history"]]


def test_sharding_covers_every_sample_once():
    x, y = torch.arange(10.0)[:, None], torch.arange(10)
    base = Batches(x, y, 4, torch.device("cpu"))
    shards = [ShardedBatches(base, r, 3) for r in range(3)]
    blocks = [torch.cat([i for _, _, i in s.epoch(None)]) for s in shards]
    assert torch.equal(torch.cat(blocks), y) and [len(b) for b in blocks] == [4, 3, 3]
    per_batch = [[i for _, _, i in s.epoch(torch.Generator().manual_seed(0))] for s in shards]
    order = torch.randperm(10, generator=torch.Generator().manual_seed(0))
    for step in range(3):                                    # global batches of 4, 4, 2 -> 2/1/1, 1/2/1, 1/1/0
        got = torch.cat([per_batch[r][step] for r in range(3)]).sort().values
        assert torch.equal(got, order[4 * step:4 * step + 4].sort().values)


def test_environment_detection(monkeypatch):
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    assert environment_world() is None
    with distributed_session(False, "cpu") as ddp:
        assert ddp is None
    with pytest.raises(ValueError, match="--ddp needs torchrun"):
        with distributed_session(True, "cpu"):
            pass
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match="RANK must be in"):
        environment_world()


def test_torchrun_cli_end_to_end(tmp_path):
    """``torchrun --nproc-per-node 2 -m lilaw_edu run``: DDP detected, one table printed, results by rank 0."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
           "--master-port", str(_free_port()), "-m", "lilaw_edu", "run", "--dataset", "ecg5000", "--noise",
           "uniform", "--rate", "0.3", "--method", "lilaw", "--epochs", "1", "--max-train", "96",
           "--set", "warmup_epochs=0", "--device", "cpu", "--out", str(tmp_path / "run"), "--quiet"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("results written to") == 1 and "top-1 (%)" in done.stdout
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["methods"]["lilaw"]["metrics"]["epochs_run"] == 1
