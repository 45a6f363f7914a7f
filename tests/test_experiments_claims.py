"""Two sweeps on one results folder: a run claimed by a live sweep is skipped, a claim left by a killed
sweep is taken over, a failed run is counted as failed (not "ran"), and a dirty tree is refused."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from lilaw_edu.experiments import runner
from lilaw_edu.experiments.plan import expand_preset
from lilaw_edu.experiments.store import claim_run, lock_path, read_record

sys.path.insert(0, os.path.dirname(__file__))
from sweep_fake_fit import fit as fake_fit  # noqa: E402


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


def test_live_claim_is_skipped_and_stale_claim_taken_over(tmp_path):
    specs = expand_preset("cpu-table9")
    other = os.getppid()  # a live process that is not this one
    assert claim_run(tmp_path, specs[0], other) is not None
    assert claim_run(tmp_path, specs[0], os.getpid()) is None          # held by a live sweep
    lock_path(tmp_path, specs[1]).write_text(f"{socket.gethostname()} {_dead_pid()}")
    summary = runner.run_sweep(["cpu-table9"], results_dir=tmp_path, fit_fn=fake_fit, allow_dirty=True,
                               progress=False, log=lambda m: None)
    assert summary["skipped"] == 1 and summary["ran"] == len(specs) - 1 and not summary["failed"]
    assert not (tmp_path / "cpu-table9" / f"{specs[0].run_id}.json").exists()
    assert read_record(tmp_path / "cpu-table9" / f"{specs[1].run_id}.json")       # stale claim taken over
    assert lock_path(tmp_path, specs[0]).exists() and not lock_path(tmp_path, specs[1]).exists()


def test_failed_run_is_counted_as_failed(tmp_path):
    def broken(config, methods, out_dir=None, resume=False, progress=True):
        raise RuntimeError("diverged")
    lines = []
    summary = runner.run_sweep(["cpu-table9"], results_dir=tmp_path, fit_fn=broken, allow_dirty=True, limit=2,
                               progress=False, log=lines.append)
    assert summary["ran"] == 0 and len(summary["failed"]) == 2 and "diverged" in summary["failed"][0]
    assert not list((tmp_path / "cpu-table9").glob("*.json")) and not list((tmp_path / "cpu-table9").glob(".*"))


def test_dirty_tree_refused_unless_allowed(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "git_state", lambda: {"git_commit": "abc", "git_dirty": True})
    with pytest.raises(ValueError, match="uncommitted changes.*--allow-dirty"):
        runner.run_sweep(["cpu-table9"], results_dir=tmp_path, fit_fn=fake_fit, progress=False, log=lambda m: None)
    assert not tmp_path.joinpath("cpu-table9").exists()
    monkeypatch.setattr(runner, "git_state", lambda: {"git_commit": "abc", "git_dirty": False})
    summary = runner.run_sweep(["cpu-table9"], results_dir=tmp_path, fit_fn=fake_fit, limit=1, progress=False,
                               log=lambda m: None)
    assert summary["ran"] == 1
    (path,) = (tmp_path / "cpu-table9").glob("*.json")
    prov = read_record(path)["payload"]["provenance"]
    for key in ("git_commit", "git_dirty", "source_sha256", "cpu_model", "torch"):
        assert key in prov, key
