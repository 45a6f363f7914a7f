"""Checkpoints: atomic writes, corruption detection, and kill-and-resume == uninterrupted."""
from __future__ import annotations

import json

import pytest
import torch

from lilaw_edu.training import checkpoint as ckpt
from lilaw_edu.training.config import config_from_preset
from lilaw_edu.training.fit import fit


class Killed(RuntimeError):
    """Simulated crash raised from the per-epoch callback (after that epoch's checkpoint)."""


def kill_at(method: str, epoch: int):
    def callback(event):
        if event["method"] == method and event["epoch"] == epoch:
            raise Killed(f"{method} killed after epoch {epoch}")
    return callback


def _comparable(results: dict) -> dict:
    out = {}
    for m, run in results["methods"].items():
        history = [{k: v for k, v in h.items() if k not in ("time_s", "epoch_time_s")} for h in run["history"]]
        out[m] = {"metrics": run["metrics"], "lilaw": run["lilaw"], "history": history,
                  "weights": run["weights"], "init": run["init_state_sha256"]}
    return out


def test_kill_and_resume_equals_uninterrupted_run(tmp_path):
    config = config_from_preset("cpu-digits", noise="uniform", rate=0.4, epochs=3, max_train=200,
                                record_weights_epochs=(3,), augment=True)
    straight = fit(config, ("baseline", "lilaw"), out_dir=tmp_path / "straight", progress=False)
    out = tmp_path / "killed"
    with pytest.raises(Killed):   # crash in the middle of the baseline
        fit(config, ("baseline", "lilaw"), out_dir=out, progress=False, callback=kill_at("baseline", 1))
    assert not (out / "results.json").exists()
    with pytest.raises(Killed):   # resume, then crash in LiLAW after its first meta-learning epoch
        fit(config, ("baseline", "lilaw"), out_dir=out, resume=True, progress=False, callback=kill_at("lilaw", 2))
    epochs_seen = []
    resumed = fit(config, ("baseline", "lilaw"), out_dir=out, resume=True, progress=False,
                  callback=lambda e: epochs_seen.append((e["method"], e["epoch"])))
    assert epochs_seen == [("lilaw", 3)]  # the finished baseline is not rerun; LiLAW continues at epoch 3
    assert _comparable(resumed) == _comparable(straight)
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk["methods"]["lilaw"]["metrics"] == json.loads(
        (tmp_path / "straight" / "results.json").read_text())["methods"]["lilaw"]["metrics"]


def test_resume_refuses_a_different_config(tmp_path):
    config = config_from_preset("cpu-digits", epochs=2, max_train=100, temperature_scaling=False)
    with pytest.raises(Killed):
        fit(config, ("baseline",), out_dir=tmp_path, progress=False, callback=kill_at("baseline", 1))
    with pytest.raises(ValueError, match=r"different config \(fields \['lr'\]\)"):
        fit(config.replace(lr=0.1), ("baseline",), out_dir=tmp_path, resume=True, progress=False)
    with pytest.raises(ValueError, match="resume=True needs out_dir"):
        fit(config, ("baseline",), resume=True, progress=False)


def test_save_is_atomic_and_corruption_is_reported(tmp_path):
    path = ckpt.checkpoint_path(tmp_path, "lilaw")
    ckpt.save_checkpoint(path, ckpt.LoopState(method="lilaw", config={}, epoch=2, model={"x": torch.arange(5)}))
    assert [p.name for p in path.parent.iterdir()] == ["lilaw.pt"]  # no temporary file left behind
    state = ckpt.load_checkpoint(path)
    assert torch.equal(state.model["x"], torch.arange(5)) and state.epoch == 2
    assert ckpt.load_checkpoint(tmp_path / "missing.pt") is None
    path.write_bytes(path.read_bytes()[:40])  # truncated
    with pytest.raises(ValueError, match="corrupted or truncated"):
        ckpt.load_checkpoint(path)


def test_failed_write_keeps_the_previous_checkpoint(tmp_path):
    path = tmp_path / "m.pt"
    ckpt.save_checkpoint(path, ckpt.LoopState(method="m", config={}, epoch=1))

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("cannot pickle")

    with pytest.raises(RuntimeError):
        ckpt.save_checkpoint(path, ckpt.LoopState(method="m", config={}, epoch=2, model={"v": Unpicklable()}))
    assert ckpt.load_checkpoint(path).epoch == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]


def test_rng_capture_and_restore_replays_the_same_numbers():
    gens = {"a": torch.Generator().manual_seed(1)}
    state = ckpt.capture_rng(gens)
    first = (torch.rand(3, generator=gens["a"]), torch.rand(3))
    ckpt.restore_rng(gens, state)
    second = (torch.rand(3, generator=gens["a"]), torch.rand(3))
    assert all(torch.equal(x, y) for x, y in zip(first, second))


def test_resume_after_an_early_stop_does_not_train_further(tmp_path):
    config = config_from_preset("cpu-digits", epochs=4, max_train=100, lr=1e-12, patience=1,
                                temperature_scaling=False)
    straight = fit(config, ("baseline",), progress=False)
    with pytest.raises(Killed):  # killed right after the epoch that triggered the stop
        fit(config, ("baseline",), out_dir=tmp_path, progress=False, callback=kill_at("baseline", 2))
    seen = []
    resumed = fit(config, ("baseline",), out_dir=tmp_path, resume=True, progress=False, callback=seen.append)
    assert seen == [] and resumed["methods"]["baseline"]["metrics"]["epochs_run"] == 2
    assert _comparable(resumed) == _comparable(straight)


def test_results_json_is_written_atomically_and_truncation_is_detected(tmp_path):
    from lilaw_edu.training.results import read_results, write_results

    config = config_from_preset("cpu-digits", epochs=1, max_train=60, temperature_scaling=False)
    results = fit(config, ("baseline",), progress=False)
    paths = write_results(tmp_path, results)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.png", "results.json", "table.txt"]
    assert read_results(tmp_path)["methods"]["baseline"]["metrics"] == json.loads(
        paths["results"].read_text())["methods"]["baseline"]["metrics"]
    text = paths["results"].read_text()
    paths["results"].write_text(text[: len(text) // 2])
    with pytest.raises(ValueError, match="truncated or corrupted"):
        read_results(tmp_path)
