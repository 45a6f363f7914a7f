"""Sweeps on Ray (``lilaw-edu sweep --executor ray``) against a local Ray started here
(``ray.init(num_cpus=2, num_gpus=1)``; the GPU is a declared resource only, for the
GPU-hours estimate): every record written once and valid, a failing run retried once and
then counted as failed, a driver killed mid-sweep (SIGKILL) and rerun completing with no
duplicates, the dry run's GPU-hours.

The fake fit functions stand in for training (as in ``tests/test_sweep.py``); they are
shipped to the Ray workers by value.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from lilaw_edu.experiments import plan, presets  # noqa: E402
from lilaw_edu.experiments.ray_executor import cluster_slots, run_sweep_ray  # noqa: E402
from lilaw_edu.experiments.store import read_record  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PRESET = "test-ray-tiny"


def tiny_rows() -> list:
    """8 runs: two rows of digits x 4 seeds (configs only; the fake fit never trains)."""
    data = dict(presets.CPU_DATA["digits"], epochs=2)
    return [presets.row(f"digits/uniform-{r:g}", ("x",), data, ("baseline", "lilaw"), (0, 1, 2, 3),
                        noise="uniform", rate=r) for r in (0.2, 0.4)]


class FakeFit:
    """Deterministic metrics, no training. Appends ``<seed> <rate>`` to ``calls`` (a file: workers are
    other processes); sleeps ``delay`` s; raises on seeds in ``fail_seeds``, and on the first call of
    seeds in ``flaky_seeds`` (a marker file remembers the first call)."""

    def __init__(self, calls, delay=0.0, fail_seeds=(), flaky_seeds=()):
        self.calls, self.delay, self.fail, self.flaky = str(calls), delay, set(fail_seeds), set(flaky_seeds)

    def __call__(self, config, methods, out_dir=None, resume=False, progress=True):
        with open(self.calls, "a") as f:
            f.write(f"{config.seed} {config.rate}\n")
        time.sleep(self.delay)
        with open(f"{self.calls}.finished", "a") as f:
            f.write(f"{config.seed} {config.rate}\n")
        if config.seed in self.fail:
            raise RuntimeError(f"boom at seed {config.seed}")
        marker = Path(f"{self.calls}.flaky-{config.seed}-{config.rate}")
        if config.seed in self.flaky and not marker.exists():
            marker.write_text("x")
            raise RuntimeError("flaky first attempt")
        runs = {m: {"metrics": {"test": {"top1": 0.5 + 0.01 * config.seed + 0.02 * i}, "epochs_run": config.epochs,
                                "best_epoch": 1},
                    "lilaw": None, "history": [], "wall_time_s": 0.01, "weights": {}, "scores": {}}
                for i, m in enumerate(methods)}
        return {"config": config.to_dict(), "methods": runs, "data": {"sizes": {"train": 100, "val": 10, "test": 10}},
                "noise": {"kind": config.noise, "rate": config.rate}, "init_state_sha256": "x", "environment": {}}


@pytest.fixture(scope="module")
def cluster():
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])   # workers cannot import this test module
    ctx = ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False,
                   configure_logging=True, logging_level="ERROR")
    yield ctx.address_info["gcs_address"]
    ray.shutdown()


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setitem(presets.SWEEP_PRESETS, PRESET, dict(description="tiny", tables=("x",), rows=tiny_rows()))
    return plan.expand_preset(PRESET)


def _calls(path: Path) -> list:
    return path.read_text().splitlines() if path.exists() else []


def test_every_record_written_once_and_valid(cluster, tiny, tmp_path):
    calls = tmp_path / "calls"
    summary = run_sweep_ray([PRESET], results_dir=tmp_path / "res", fit_fn=FakeFit(calls), progress=False,
                            log=lambda m: None)
    assert summary["ran"] == len(tiny) == 8 and not summary["failed"] and summary["slots"] == 2
    files = sorted((tmp_path / "res" / PRESET).glob("*.json"))
    assert [p.stem for p in files] == sorted(s.run_id for s in tiny)
    for spec in tiny:
        record = read_record(tmp_path / "res" / PRESET / f"{spec.run_id}.json")
        assert record["payload"]["spec"]["seed"] == spec.seed and record["payload"]["config"]["device"] == "cpu"
    assert sorted(_calls(calls)) == sorted(f"{s.seed} {float(dict(s.overrides)['rate'])}" for s in tiny)
    assert not list((tmp_path / "res").rglob("*.tmp"))
    before = {p: p.read_bytes() for p in files}
    again = run_sweep_ray([PRESET], results_dir=tmp_path / "res", fit_fn=FakeFit(calls), progress=False,
                          log=lambda m: None)
    assert again["ran"] == 0 and again["done_before"] == 8 and len(_calls(calls)) == 8
    assert all(p.read_bytes() == b for p, b in before.items())


def test_failed_run_retried_once_then_counted_failed(cluster, tiny, tmp_path):
    calls, log = tmp_path / "calls", []
    fake = FakeFit(calls, fail_seeds=(3,), flaky_seeds=(1,))
    summary = run_sweep_ray([PRESET], results_dir=tmp_path / "res", fit_fn=fake, progress=False, log=log.append)
    assert summary["ran"] == 6 and len(summary["failed"]) == 2                # seed 3 of both rows
    assert all("failed after 2 attempts: RuntimeError: boom at seed 3" in m for m in summary["failed"])
    assert sum("flaky first attempt" in line and "retrying once" in line for line in log) == 2
    seeds = [int(line.split()[0]) for line in _calls(calls)]
    assert seeds.count(3) == 4 and seeds.count(1) == 4 and seeds.count(0) == 2   # 2 rows x attempts
    written = {p.stem for p in (tmp_path / "res" / PRESET).glob("*.json")}
    assert written == {s.run_id for s in tiny if s.seed != 3}


DRIVER = textwrap.dedent("""
    import sys, ray
    sys.path.insert(0, {tests!r})
    import test_ray_sweep as t
    ray.cloudpickle.register_pickle_by_value(t)
    from lilaw_edu.experiments import presets
    from lilaw_edu.experiments.ray_executor import run_sweep_ray
    presets.SWEEP_PRESETS[t.PRESET] = dict(description="tiny", tables=("x",), rows=t.tiny_rows())
    ray.init(address=sys.argv[1], log_to_driver=False, configure_logging=True, logging_level="ERROR")
    run_sweep_ray([t.PRESET], results_dir=sys.argv[2], fit_fn=t.FakeFit(sys.argv[3], delay=1.5), progress=False)
""")


def test_killed_driver_rerun_completes_without_duplicates(cluster, tiny, tmp_path):
    res, calls = tmp_path / "res", tmp_path / "calls"
    script = tmp_path / "driver.py"
    script.write_text(DRIVER.format(tests=str(REPO / "tests")))
    proc = subprocess.Popen([sys.executable, str(script), cluster, str(res), str(calls)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 60
    while len(list((res / PRESET).glob("*.json"))) < 3 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)                                           # the driver dies mid-sweep
    proc.wait()
    first = sorted((res / PRESET).glob("*.json"))
    assert 3 <= len(first) < len(tiny), proc.stdout.read().decode()[-2000:]
    before = {p: p.read_bytes() for p in first}
    for p in first:
        read_record(p)                                                          # every file left is whole
    started_before = len(_calls(calls))
    summary = run_sweep_ray([PRESET], results_dir=res, fit_fn=FakeFit(calls), progress=False, log=lambda m: None)
    assert summary["done_before"] == len(first) and summary["ran"] == len(tiny) - len(first)
    assert not summary["failed"]
    files = sorted((res / PRESET).glob("*.json"))
    assert [p.stem for p in files] == sorted(s.run_id for s in tiny)
    assert all(p.read_bytes() == b for p, b in before.items())                # finished runs not rewritten
    assert len(_calls(calls)) - started_before == len(tiny) - len(first)        # only unfinished runs rerun
    assert all(read_record(p)["run_id"] == p.stem for p in files)


def test_ctrl_c_cancels_outstanding_tasks(cluster, tiny, tmp_path, monkeypatch):
    calls, log = tmp_path / "calls", []
    real_wait = ray.wait

    def wait_then_ctrl_c(*args, **kwargs):              # Ctrl-C arrives while two tasks run
        if len(_calls(calls)) >= 2:
            raise KeyboardInterrupt
        return real_wait(*args, **kwargs)

    monkeypatch.setattr(ray, "wait", wait_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        run_sweep_ray([PRESET], results_dir=tmp_path / "res", fit_fn=FakeFit(calls, delay=4.0), progress=False,
                      log=log.append)
    assert any("cancelled 2 running task(s), 6 not started" in line for line in log), log
    time.sleep(5.0)                                      # longer than a task's 4 s: a task left running would finish
    assert len(_calls(calls)) == 2                       # both had started; neither finished nor was written
    assert not Path(f"{calls}.finished").exists() and not list((tmp_path / "res").rglob("*.json"))


def test_dry_run_gpu_hours_on_cluster_resources(cluster, tmp_path, capsys):
    from lilaw_edu.cli import main
    assert main(["sweep", "cpu-table3", "--executor", "ray", "--dry-run", "--gpus-per-run", "0.5",
                 "--cpus-per-run", "1", "--address", cluster, "--results-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    specs = plan.expand_preset("cpu-table3")
    gpu_hours = sum(plan.estimate_seconds(s, {}, "cuda") for s in specs) * 0.5 / 3600
    assert "2 CPUs, 1 GPUs; 0.5 GPU + 1 CPU per run -> 2 run(s) at once" in out
    assert f"Estimated {gpu_hours:.2f} GPU-hours" in out and "10 runs: 0 done, 10 to run" in out
    assert not list(tmp_path.rglob("*.json"))


def test_bad_options_and_slots(tmp_path, capsys):
    from lilaw_edu.cli import main
    assert cluster_slots({"CPU": 16.0, "GPU": 4.0}, 1, 2) == 4 and cluster_slots({"CPU": 16.0}, 0, 3) == 5
    assert cluster_slots({"CPU": 8.0, "GPU": 0.0}, 1, 1) == 0
    with pytest.raises(ValueError, match="gpus_per_run must be a number >= 0, got -1"):
        run_sweep_ray(["cpu-table9"], results_dir=tmp_path, gpus_per_run=-1, dry_run=True)
    with pytest.raises(ValueError, match="--jobs applies to --executor local"):
        run_sweep_ray(["cpu-table9"], results_dir=tmp_path, jobs=2, dry_run=True)
    assert main(["sweep", "cpu-table9", "--gpus-per-run", "1", "--dry-run"]) == 2
    assert "need --executor ray" in capsys.readouterr().err
    assert main(["sweep", "cpu-table9", "--executor", "ray", "--cpus-per-run", "0", "--dry-run"]) == 2
    assert "cpus_per_run must be a number > 0, got 0.0" in capsys.readouterr().err
