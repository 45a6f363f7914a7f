"""The overhead benchmark (issues 6, 13) runs end to end on tiny sizes and writes valid JSON.

No timed assertions: the machines are noisy, so only structure and sanity are checked.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "overhead.py"
EXIT_OK, EXIT_GOAL_MISSED = 0, 3
VARIANTS = ("baseline", "lilaw", "graph_through_network", "limit", "lilaw-cheap")


def _positive_finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--threads", "1", "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=900)
    files = sorted(out.glob("*.json"))
    return proc, files


def test_quick_run_exits_ok_or_goal_missed(quick_run):
    proc, _ = quick_run
    assert proc.returncode in (EXIT_OK, EXIT_GOAL_MISSED), proc.stderr[-3000:]
    assert "goals:" in proc.stdout
    if proc.returncode == EXIT_GOAL_MISSED:
        assert "MISS" in proc.stdout and "goal(s) missed" in proc.stdout
    else:
        assert "MISS" not in proc.stdout


def test_quick_run_writes_one_valid_json(quick_run):
    proc, files = quick_run
    assert len(files) == 1 and files[0].name.endswith("-quick.json"), [f.name for f in files]
    data = json.loads(files[0].read_text())
    assert data["quick"] is True
    assert {"device", "machine", "settings", "workloads", "loader", "scaling", "goals", "all_goals_met"} <= set(data)
    for key in ("cpu_count", "torch", "torch_threads", "cpu_model", "git_commit"):
        assert key in data["machine"]
    assert data["machine"]["torch_threads"] == 1
    assert set(data["workloads"]) == {"lstm_ecg5000", "small_cnn_28", "resnet18_32"}
    for name, w in data["workloads"].items():
        assert w["data"] in ("real", "synthetic"), name
        for v in VARIANTS:
            assert _positive_finite(w["epoch_seconds"][v]["median"]), (name, v)
            assert _positive_finite(w["memory"][v][w["memory_metric"]]), (name, v)
        for v in VARIANTS[1:]:
            assert _positive_finite(w["ratios"][v]), (name, v)
            assert _positive_finite(w["memory_ratios"][v]), (name, v)
            assert w["ratios"][v] == pytest.approx(w["epoch_seconds"][v]["median"] / w["epoch_seconds"]["baseline"]["median"])
    assert _positive_finite(data["loader"]["speedup"])
    assert data["scaling"]["n_train"] == [data["scaling"]["n_train"][0] * k for k in (1, 2, 4)]
    assert all(_positive_finite(x) for x in data["scaling"]["per_sample_time_vs_n"])
    # The exit status agrees with the goals recorded in the file.
    assert data["all_goals_met"] == all(g["met"] for g in data["goals"])
    assert (proc.returncode == EXIT_OK) == data["all_goals_met"]
    assert len(data["goals"]) == 3 * 4 + 1 + 2
    cheap_goals = [g for g in data["goals"] if "time lilaw-cheap/baseline" in g["name"]]
    assert len(cheap_goals) == 3 and all(g["target"] == 1.10 for g in cheap_goals)  # issue 13
    assert data["workloads"]["lstm_ecg5000"]["meta_settings"]["lilaw-cheap"]["meta_every"] == 4
    assert all(len(w["load_average_start"]) == 3 for w in data["workloads"].values())


def test_bad_arguments_exit_2(tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--repeats", "0", "--out", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert "--repeats must be >= 1, got 0" in proc.stderr
    assert not list(tmp_path.glob("*.json"))


def test_graph_through_network_step_leaves_network_grads_and_flags_as_before():
    """Variant 3 updates only alpha, beta, delta and restores requires_grad on the network."""
    import torch

    sys.path.insert(0, str(REPO))
    from benchmarks.variants import graph_through_network_meta_step
    from lilaw_edu.core.weighting import LiLAW

    gen = torch.Generator().manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    lilaw = LiLAW(constraints=False)
    x, y = torch.randn(16, 4, generator=gen), torch.randint(0, 3, (16,), generator=gen)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    expected = LiLAW(constraints=False)
    expected.meta_step(model(x).detach(), y)  # the package's own meta step on the same logits
    graph_through_network_meta_step(model, lilaw, x, y, device=torch.device("cpu"))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.requires_grad and p.grad is None for p in model.parameters())
    assert all(getattr(lilaw, n).grad is None for n in ("alpha", "beta", "delta"))
    for n in ("alpha", "beta", "delta"):  # same update as LiLAW.meta_step: only the cost differs
        assert float(getattr(lilaw, n)) == pytest.approx(float(getattr(expected, n)), rel=1e-6)
    assert float(lilaw.alpha) != 10.0


def test_exclude_and_skip_are_checked(tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--exclude", "lilaw", "--out", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert "--exclude takes variants from graph_through_network" in proc.stderr
    assert not list(tmp_path.glob("*.json"))
