"""Checkpoint selection (issue 16 part 1) and the provenance every result carries (part 3)."""
from __future__ import annotations

import json
import re
from types import SimpleNamespace

import pytest
from torch import nn

from lilaw_edu.training.checkpoint import LoopState
from lilaw_edu.training.config import config_from_preset
from lilaw_edu.training.fit import fit
from lilaw_edu.training.loop import select_checkpoint


def _select(records, **config):
    """Feed ``(val_loss, val_acc)`` pairs to select_checkpoint; return (best epoch, stop epoch or None).

    The model's single weight is set to the epoch number, so the saved best state names its epoch.
    """
    cfg = config_from_preset("cpu-digits", epochs=len(records), **config)
    model = nn.Linear(1, 1, bias=False)
    run = SimpleNamespace(config=cfg, model=model)
    state = LoopState(method="m", config={})
    for epoch, (loss, acc) in enumerate(records, 1):
        model.weight.data.fill_(epoch)
        record = {"epoch": epoch, "val_loss": loss, "val_acc": acc, "val_loss_clean": 9.0 - epoch,
                  "val_acc_clean": acc}
        if select_checkpoint(run, state, record):
            return state.best_epoch, int(state.best_model["weight"].item()), epoch
    return state.best_epoch, int(state.best_model["weight"].item()), None


def test_val_acc_ties_go_to_the_later_epoch():
    # the ECG5000 case: the best accuracy is reached at epoch 2 and stays tied
    assert _select([(1.0, 0.5), (0.9, 0.98), (0.8, 0.98), (0.85, 0.98), (0.7, 0.9)], select_by="val_acc") \
        == (4, 4, None)


def test_val_loss_picks_the_lowest_loss_with_ties_to_the_later_epoch():
    assert _select([(1.0, 0.5), (0.6, 0.4), (0.7, 0.9), (0.6, 0.3), (0.8, 0.9)], select_by="val_loss") \
        == (4, 4, None)


def test_a_nan_validation_score_is_never_selected():
    nan = float("nan")
    assert _select([(nan, nan), (0.9, 0.5), (nan, nan)], select_by="val_loss") == (2, 2, None)
    assert _select([(nan, nan), (0.9, 0.5), (nan, nan)], select_by="val_acc") == (2, 2, None)


def test_last_selects_the_final_epoch():
    assert _select([(1.0, 0.9), (0.5, 0.95), (2.0, 0.1)], select_by="last") == (3, 3, None)


def test_patience_counts_epochs_without_a_strict_gain():
    # ties do not reset patience: tied epochs 3, 4 and 5 are three epochs without a gain
    records = [(1.0, 0.5), (0.9, 0.8), (0.9, 0.8), (0.9, 0.8), (0.9, 0.8), (0.1, 0.99)]
    assert _select(records, select_by="val_loss", patience=3) == (5, 5, 5)
    assert _select(records, select_by="val_loss", patience=0) == (6, 6, None)


def test_clean_val_selection_uses_the_clean_scores():
    # val_loss_clean = 9 - epoch falls every epoch although the noisy val_loss rises
    assert _select([(1.0, 0.5), (2.0, 0.5), (3.0, 0.5)], select_by="val_loss", select_on="clean_val") \
        == (3, 3, None)


@pytest.fixture(scope="module")
def two_rules():
    base = dict(noise="uniform", rate=0.4, epochs=3, max_train=150, batch_size=32, temperature_scaling=False)
    return {rule: fit(config_from_preset("cpu-digits", select_by=rule, **base), ("baseline", "lilaw"),
                      progress=False) for rule in ("last", "val_acc")}


def test_results_record_the_rule_and_the_last_epoch_test_metrics(two_rules):
    for rule, results in two_rules.items():
        for run in results["methods"].values():
            m = run["metrics"]
            assert m["select_by"] == rule and m["select_on"] == "val" and m["patience"] == 0
            assert set(m["test_last_epoch"]) == set(m["test"]) and m["epochs_run"] == 3
            hist = run["history"]
            assert m["best_val_acc"] == hist[m["best_epoch"] - 1]["val_acc"]
            assert m["best_val_loss"] == hist[m["best_epoch"] - 1]["val_loss"]
    for run in two_rules["last"]["methods"].values():   # "last" selects the last epoch: both test entries agree
        assert run["metrics"]["best_epoch"] == 3 and run["metrics"]["test"] == run["metrics"]["test_last_epoch"]
    for run in two_rules["val_acc"]["methods"].values():
        accs = [h["val_acc"] for h in run["history"]]
        best = max(accs)
        assert run["metrics"]["best_epoch"] == max(i + 1 for i, a in enumerate(accs) if a == best)
    # same seed, same training: the last-epoch metrics do not depend on the selection rule
    for method in ("baseline", "lilaw"):
        assert two_rules["last"]["methods"][method]["metrics"]["test_last_epoch"] == \
            two_rules["val_acc"]["methods"][method]["metrics"]["test_last_epoch"]


def test_results_carry_provenance(two_rules, tmp_path):
    from lilaw_edu.training.results import write_results

    env = two_rules["last"]["environment"]
    for key in ("git_commit", "git_dirty", "source_sha256", "cpu_model", "gpu_name", "torch", "cuda", "cudnn",
                "python", "platform", "device", "torch_threads", "date", "lilaw_edu"):
        assert key in env, key
    assert re.fullmatch(r"[0-9a-f]{64}", env["source_sha256"])
    assert env["cpu_model"] and env["device"] == "cpu" and env["gpu_name"] in (None, env["gpu_name"])
    if env["git_commit"] is not None:   # in a git checkout (as in this repository)
        assert re.fullmatch(r"[0-9a-f]{40}", env["git_commit"]) and isinstance(env["git_dirty"], bool)
    for run in two_rules["last"]["methods"].values():
        assert run["pretrained_weights"] is None and run["thread_changes"] == []
    write_results(tmp_path, two_rules["last"])
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["environment"]["source_sha256"] == env["source_sha256"]


def test_source_hash_changes_with_the_source(tmp_path):
    from lilaw_edu._internal.provenance import source_sha256

    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"compiled")
    first = source_sha256(tmp_path)
    (tmp_path / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"recompiled")
    assert source_sha256(tmp_path) == first          # compiled files do not count
    (tmp_path / "a.py").write_text("x = 2\n")
    assert source_sha256(tmp_path) != first
    (tmp_path / "a.py").write_text("x = 1\n")
    assert source_sha256(tmp_path) == first
    (tmp_path / "b.py").write_text("")
    assert source_sha256(tmp_path) != first          # a new file counts


def test_git_state_sees_uncommitted_changes(tmp_path):
    import subprocess

    from lilaw_edu._internal.provenance import git_state

    assert git_state(tmp_path) == {"git_commit": None, "git_dirty": None}   # not a repository
    run = lambda *a: subprocess.run(["git", *a], cwd=tmp_path, check=True, capture_output=True)  # noqa: E731
    run("init", "-q")
    (tmp_path / "m.py").write_text("1\n")
    run("add", "m.py")
    run("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "c")
    state = git_state(tmp_path)
    assert re.fullmatch(r"[0-9a-f]{40}", state["git_commit"]) and state["git_dirty"] is False
    (tmp_path / "m.py").write_text("2\n")
    assert git_state(tmp_path)["git_dirty"] is True


def test_pretrained_identity_names_the_weights():
    from lilaw_edu.training.results import pretrained_identity

    timm_like = SimpleNamespace(pretrained_cfg={"architecture": "vit_base_patch16_224", "tag": "augreg_in21k"})
    on = SimpleNamespace(pretrained=True, model="vit_b16")
    assert pretrained_identity(on, timm_like) == "timm vit_base_patch16_224.augreg_in21k"
    assert pretrained_identity(on, nn.Linear(1, 1)) == "torchvision vit_b16 IMAGENET1K_V1"
    assert pretrained_identity(SimpleNamespace(pretrained=True, model="resnet18"), nn.Linear(1, 1)) == \
        "torchvision resnet18 IMAGENET1K_V1"
    assert pretrained_identity(SimpleNamespace(pretrained=False, model="vit_b16"), timm_like) is None



def test_test_each_epoch_records_test_metrics_without_changing_training():
    """The per-epoch test pass (issue 16, selection rules replayed afterwards) leaves training bit-identical, and
    replaying the run's own rule from the history finds the recorded epoch and test metrics exactly."""
    from lilaw_edu.experiments.sensitivity import replay_errors, rule_epoch
    from lilaw_edu.experiments.store import run_id_of
    base = dict(noise="uniform", rate=0.4, epochs=3, max_train=150, batch_size=32, temperature_scaling=False)
    plain, every = (fit(config_from_preset("cpu-digits", test_each_epoch=flag, **base), ("baseline", "lilaw"),
                        progress=False) for flag in (False, True))
    for method in ("baseline", "lilaw"):
        a, b = plain["methods"][method], every["methods"][method]
        assert a["metrics"]["test"] == b["metrics"]["test"] and a["metrics"]["best_epoch"] == b["metrics"]["best_epoch"]
        assert [e["val_loss"] for e in a["history"]] == [e["val_loss"] for e in b["history"]]
        assert "test_top1" not in a["history"][0] and all(0 <= e["test_top1"] <= 1 for e in b["history"])
        assert b["history"][-1]["test_top1"] == b["metrics"]["test_last_epoch"]["top1"]
        assert rule_epoch(b["history"], "val_loss") == b["metrics"]["best_epoch"]
    record = {"preset": "p", "row": "r", "run_id": "x", "payload": {"config": every["config"], "result": every}}
    assert replay_errors([record]) == []
    record["payload"]["result"]["methods"]["lilaw"]["metrics"]["test"]["top1"] += 0.01  # a tampered record
    assert len(replay_errors([record])) == 1
    # the new field keeps old run ids unless it is set
    cfg = config_from_preset("cpu-digits", **base)
    assert run_id_of(cfg, ("baseline",)) == run_id_of({k: v for k, v in cfg.to_dict().items()
                                                       if k != "test_each_epoch"}, ("baseline",))
    assert run_id_of(config_from_preset("cpu-digits", test_each_epoch=True, **base), ("baseline",)) != \
        run_id_of(cfg, ("baseline",))
