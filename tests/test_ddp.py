"""DDP on CPU (gloo, 2 processes on 127.0.0.1): α, β, δ bit-identical on both ranks after
every meta step, final metrics equal to one process with the same global batch within a
measured floating-point tolerance, rank 0 alone writes, ``--resume`` after an interruption
ends exactly where the uninterrupted run ends. The ranks run ``lilaw-edu run`` (``cli.main``) with
torchrun's variables (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``PORT``) set, so DDP is
detected as under ``torchrun --nproc-per-node 2 -m lilaw_edu run``; the processes are started
with ``torch.multiprocessing`` (spawn) rather than torchrun, which saves one Python start.

Data: ECG5000 (stacked LSTM: no BatchNorm, no dropout, no augmentation, so one process
and two differ only in floating-point summation order), 200 training samples, 2 epochs,
no warm-up (meta steps from the first step), global batch 32 (the last batch of 8 splits 4/4).
"""
from __future__ import annotations

import json
import os
import socket
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


def _recording(trajectory: list, rows: list | None = None):
    """Patch LiLAW.meta_step to append (alpha, beta, delta) after every step (and the number of
    validation rows it saw to ``rows``); returns the undo."""
    original = LiLAW.meta_step

    def meta_step(self, val_logits, *args, **kwargs):
        if rows is not None:
            rows.append(int(val_logits.shape[0]))
        out = original(self, val_logits, *args, **kwargs)
        trajectory.append(torch.stack([self.alpha.detach(), self.beta.detach(), self.delta.detach()]).clone())
        return out

    LiLAW.meta_step = meta_step
    return lambda: setattr(LiLAW, "meta_step", original)


GLOBAL = ("val_loss", "val_acc", "val_loss_clean", "val_acc_clean", "alpha", "beta", "delta", "lr")


def _summary(results: dict) -> dict:
    res = results["methods"]["lilaw"]
    return {"test": res["metrics"]["test"], "lilaw": res["lilaw"], "history": res["history"]}


CLI = ["run", "--preset", "cpu-ecg5000", "--dataset", "ecg5000", "--noise", "uniform", "--rate", "0.3",
       "--method", "lilaw", "--epochs", "2", "--max-train", "200", "--batch-size", "32", "--set", "warmup_epochs=0",
       "--device", "cpu", "--quiet"]


def _worker(rank: int, world: int, ports: list, out: str) -> None:
    """One rank: (A) ``lilaw-edu run`` with DDP detected from the torchrun variables, recording alpha/beta/delta
    after every meta step; (B) the same run stopped after epoch 1 and (C) resumed to the end."""
    import contextlib
    import io

    from lilaw_edu.cli import main
    os.environ.update(MASTER_ADDR="127.0.0.1", RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    full, resumed, rows, stdout = [], [], [], io.StringIO()
    os.environ["MASTER_PORT"] = str(ports[0])
    undo = _recording(full, rows)
    with contextlib.redirect_stdout(stdout):
        status = main(CLI + ["--out", str(Path(out) / "full")])
    undo()

    def stop_after_first(event):
        if event["epoch"] == 1:
            raise _Interrupted()

    config = config_from_preset("cpu-ecg5000", **SETTINGS)
    os.environ["MASTER_PORT"] = str(ports[1])
    with distributed_session(True, "cpu") as ddp, contextlib.suppress(_Interrupted):
        fit(config, ["lilaw"], out_dir=Path(out) / "resumed", progress=False, callback=stop_after_first,
            distributed=ddp)
    os.environ["MASTER_PORT"] = str(ports[2])
    undo = _recording(resumed)
    with distributed_session(True, "cpu") as ddp:
        b = fit(config, ["lilaw"], out_dir=Path(out) / "resumed", resume=True, progress=False, distributed=ddp)
    undo()
    torch.save({"full": torch.stack(full), "resumed": torch.stack(resumed), "b": _summary(b), "status": status,
                "rows": rows, "stdout": stdout.getvalue()}, Path(out) / f"rank{rank}.pt")


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    ports = [_free_port() for _ in range(3)]
    mp.start_processes(_worker, args=(2, ports, str(out)), nprocs=2, join=True, start_method="spawn")
    ranks = [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(2)]
    full = json.loads((out / "full" / "results.json").read_text())
    return out, ranks, _summary(full)


def test_alpha_beta_delta_bit_identical_on_every_rank_after_every_step(ddp_run):
    _, (r0, r1), full = ddp_run
    steps = 2 * 7                                            # 2 epochs x ceil(200 / 32) global batches
    assert r0["full"].shape == (steps, 3) and r0["full"].dtype == torch.float32
    assert torch.equal(r0["full"], r1["full"])                # bitwise, every step
    assert r0["rows"] == r1["rows"] == [16] * steps          # each rank: its half of the 32-row meta batch
    assert (r0["full"][-1] != torch.tensor([10.0, 2.0, 6.0])).all()   # every meta step moved them
    assert r0["full"][-1].tolist() == [full["lilaw"][k] for k in ("alpha", "beta", "delta")]
    assert r0["b"]["test"] == r1["b"]["test"] and r0["b"]["lilaw"] == r1["b"]["lilaw"]
    for h0, h1 in zip(r0["b"]["history"], r1["b"]["history"]):   # validation gathered over the whole split
        assert {k: h0[k] for k in GLOBAL} == {k: h1[k] for k in GLOBAL}


def test_ddp_equals_one_process_with_the_same_global_batch(ddp_run):
    _, (r0, _), full = ddp_run
    one, rows = [], []
    undo = _recording(one, rows)
    try:
        single = _summary(fit(config_from_preset("cpu-ecg5000", **SETTINGS), ["lilaw"], progress=False))
    finally:
        undo()
    diff = (torch.stack(one) - r0["full"]).abs().max().item()
    gaps = {k: abs(single["test"][k] - full["test"][k]) for k in ("top1", "auroc")}
    print(f"DDP 2 vs 1 process: max |alpha, beta, delta| gap over {len(one)} steps {diff:.3g}; test gaps {gaps}")
    assert len(one) == len(r0["full"]) and rows == [32] * len(one) and diff <= TRAJECTORY_ATOL
    assert all(gap <= METRIC_ATOL for gap in gaps.values()), gaps
    for mine, ref in zip(full["history"], single["history"]):
        assert abs(mine["val_loss"] - ref["val_loss"]) <= 1e-4 and abs(mine["val_acc"] - ref["val_acc"]) <= METRIC_ATOL


def test_cli_detects_ddp_rank0_writes_and_resume_ends_where_the_run_ends(ddp_run):
    out, (r0, r1), full = ddp_run
    assert r0["status"] == r1["status"] == 0
    assert "top-1 (%)" in r0["stdout"] and "results written to" in r0["stdout"] and r1["stdout"] == ""
    assert sorted(p.name for p in (out / "full" / "checkpoints").iterdir()) == ["lilaw.pt"]
    assert not list(out.rglob("*.tmp"))
    assert len(r0["resumed"]) == 7 and torch.equal(r0["resumed"], r1["resumed"])    # epoch 2 only
    assert torch.equal(r0["resumed"], r0["full"][7:])                               # same steps, bitwise
    assert r0["b"]["test"] == full["test"] and r0["b"]["lilaw"] == full["lilaw"]
    keys = GLOBAL + ("train_loss", "train_acc")
    assert [{k: h[k] for k in keys} for h in r0["b"]["history"]] == [{k: h[k] for k in keys} for h in full["history"]]


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


def test_unsupported_settings_and_empty_shards_refused():
    from types import SimpleNamespace

    from lilaw_edu.training.ddp import Distributed
    two = Distributed(rank=0, world_size=2, local_rank=0, backend="gloo")

    def run(n_train=200, batch_size=32, **cfg):
        x = torch.zeros(n_train, 1)
        data = {k: Batches(x[:n], torch.zeros(n, dtype=torch.int64), 8, torch.device("cpu"))
                for k, n in (("train", n_train), ("val", 40), ("test", 40))}
        config = config_from_preset("cpu-ecg5000", **dict(SETTINGS, batch_size=batch_size, **cfg))
        return SimpleNamespace(config=config, data=data, method="lilaw", reweighter=None)

    two._check_shards(run())                                                  # 200 = 6 x 32 + 8: fine
    with pytest.raises(ValueError, match="last training batch has 1 sample"):
        two._check_shards(run(n_train=193))
    with pytest.raises(ValueError, match="batch_size=1 < 2 processes"):
        two._check_shards(run(batch_size=1))
    bad = run()
    bad.reweighter = object()
    with pytest.raises(ValueError, match="DDP does not support L2RW"):
        two._check_shards(bad)
