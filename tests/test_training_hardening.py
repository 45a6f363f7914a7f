"""Hardening of the training side (issues 9, 10): plain-data checkpoints, early and complete config
validation, divergence, LiLAW's cheap default checks, results published together, file modes,
thread counts on resume."""
from __future__ import annotations

import io
import json
import math
import os
import stat

import pytest
import torch

from lilaw_edu.core.weighting import LiLAW
from lilaw_edu.training import checkpoint as ckpt
from lilaw_edu.training import engine
from lilaw_edu.training.config import RUNTIME_FIELDS, TrainConfig, config_from_preset
from lilaw_edu.training.fit import fit
from lilaw_edu.training.loop import TrainingDiverged


def tiny(**overrides) -> TrainConfig:
    values = dict(noise="uniform", rate=0.4, epochs=2, max_train=120, batch_size=32, temperature_scaling=False)
    values.update(overrides)
    return config_from_preset("cpu-digits", **values)


class Killed(RuntimeError):
    pass


def kill_at(method, epoch):
    def callback(event):
        if event["method"] == method and event["epoch"] == epoch:
            raise Killed(f"{method} killed after epoch {epoch}")
    return callback


# ------------------------------------------------------------------ checkpoints: plain data only
class _CreatesFile:
    """Unpickling this object calls ``open(path, "w")``, which creates ``path``."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _planted(path, marker):
    state = ckpt.LoopState(method="baseline", config={}).to_state_dict()
    state["model"] = {"weight": _CreatesFile(marker)}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())


def test_planted_checkpoint_never_runs_code(tmp_path):
    marker = tmp_path / "pwned.txt"
    path = ckpt.checkpoint_path(tmp_path / "out", "baseline")
    _planted(path, marker)
    with pytest.raises(ckpt.CheckpointError) as info:
        ckpt.load_checkpoint(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message and "pickled objects" in message
    assert not marker.exists()
    # the same file met by `run --resume` (fit): refused before any training, still nothing created
    seen = []
    with pytest.raises(ckpt.CheckpointError, match="pickled objects"):
        fit(tiny(), ("baseline",), out_dir=tmp_path / "out", resume=True, progress=False, callback=seen.append)
    assert not marker.exists() and seen == []
    # the plain-data loader really is what stops it: an unrestricted load would have created the file
    torch.load(path, weights_only=False)
    assert marker.exists()


def _state_without(key):
    state = ckpt.LoopState(method="baseline", config={}).to_state_dict()
    del state[key]
    return state


@pytest.mark.parametrize("state, expected", [
    (_state_without("history"), r"lacks keys \['history'\]"),
    (dict(ckpt.LoopState(method="m", config={}).to_state_dict(), version=1), "has version 1"),
    ({"version": 1, "model": {}, "loop": {}}, "is not a lilaw-edu/loop-state file"),   # the old (v1) layout
    (dict(ckpt.LoopState(method="m", config={}).to_state_dict(), extra=1), r"unknown keys \['extra'\]"),
    (dict(ckpt.LoopState(method="m", config={}).to_state_dict(), epoch="3"), "field 'epoch' must be of type int, got str"),
    ([1, 2, 3], "is not a lilaw-edu/loop-state file"),
])
def test_bad_checkpoints_give_one_line_naming_the_file(tmp_path, state, expected):
    path = tmp_path / "m.pt"
    torch.save(state, path)
    with pytest.raises(ckpt.CheckpointError, match=expected) as info:
        ckpt.load_checkpoint(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value) and "--resume" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_unreadable_checkpoints(tmp_path):
    folder = tmp_path / "dir.pt"
    folder.mkdir()
    with pytest.raises(ckpt.CheckpointError, match="not a regular file"):
        ckpt.load_checkpoint(folder)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a zip at all" * 10)
    with pytest.raises(ckpt.CheckpointError, match="corrupted or truncated") as info:
        ckpt.load_checkpoint(garbage)
    assert "\n" not in str(info.value)


def test_checkpoint_that_does_not_fit_the_run_is_one_clear_error(tmp_path):
    config = tiny()
    with pytest.raises(Killed):
        fit(config, ("baseline",), out_dir=tmp_path, progress=False, callback=kill_at("baseline", 1))
    path = ckpt.checkpoint_path(tmp_path, "baseline")
    state = ckpt.load_checkpoint(path)
    state.model = {"not.a.parameter": torch.zeros(1)}   # right layout, wrong contents
    ckpt.save_checkpoint(path, state)
    with pytest.raises(ckpt.CheckpointError, match="does not fit this run") as info:
        fit(config, ("baseline",), out_dir=tmp_path, resume=True, progress=False)
    assert "\n" not in str(info.value)


def test_loop_state_round_trip_is_exact():
    state = ckpt.LoopState(method="lilaw", config={"lr": 0.1}, epoch=3, history=[{"epoch": 1}], best_score=-0.5,
                           best_epoch=2, model={"w": torch.arange(3.0)}, thread_changes=[{"epoch": 1}])
    back = ckpt.LoopState.from_state_dict(state.to_state_dict())
    assert back.epoch == 3 and back.best_score == -0.5 and torch.equal(back.model["w"], torch.arange(3.0))
    assert set(state.to_state_dict()) == {f for f in back.to_state_dict()}


# ------------------------------------------------------------------ one definition of the runtime fields
def test_runtime_fields_have_one_definition_and_threads_are_not_one_of_them():
    from lilaw_edu.experiments import store

    assert store.RUNTIME_FIELDS is RUNTIME_FIELDS and "num_threads" not in RUNTIME_FIELDS
    config = tiny().to_dict()
    assert store.run_id_of(dict(config, num_threads=4), ("baseline",)) != store.run_id_of(config, ("baseline",))
    for field in RUNTIME_FIELDS:
        assert store.run_id_of(dict(config, **{field: "x"}), ("baseline",)) == store.run_id_of(config, ("baseline",))
    ckpt.check_resume_config(config, dict(config, device="cuda", eval_batch_size=7), "p")
    with pytest.raises(ckpt.CheckpointError, match=r"fields \['num_threads'\]"):
        ckpt.check_resume_config(config, dict(config, num_threads=2), "p")


def test_thread_count_change_on_resume_is_recorded_and_warned(tmp_path):
    config = tiny().replace(num_threads=None)   # (config_from_preset ignores None overrides)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        with pytest.raises(Killed):
            fit(config, ("baseline",), out_dir=tmp_path, progress=False, callback=kill_at("baseline", 1))
        torch.set_num_threads(2)
        with pytest.warns(RuntimeWarning, match="resumed at epoch 1 with 2 torch threads, the checkpoint used 1"):
            result = fit(config, ("baseline",), out_dir=tmp_path, resume=True, progress=False)
    finally:
        torch.set_num_threads(before)
    assert result["methods"]["baseline"]["thread_changes"] == [{"epoch": 1, "from": 1, "to": 2}]
    straight = fit(config, ("baseline",), progress=False)
    assert straight["methods"]["baseline"]["thread_changes"] == []


# ------------------------------------------------------------------ divergence
def test_divergence_stops_with_epoch_and_step_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    real = engine.plain_loss
    calls = {"n": 0}

    def poisoned(logits, y, *args):   # epoch 2 has 4 steps of 32 (max_train=120 -> 102 train samples)
        calls["n"] += 1
        loss = real(logits, y, *args)
        return loss * float("nan") if calls["n"] == 6 else loss

    monkeypatch.setattr(engine, "plain_loss", poisoned)
    config = tiny(epochs=3)
    with pytest.raises(TrainingDiverged) as info:
        fit(config, ("baseline",), out_dir=tmp_path, progress=False)
    message = str(info.value)
    assert "\n" not in message and "epoch 2, step 2 of 4" in message and "checkpoint of epoch 1" in message
    assert isinstance(info.value, ValueError)
    kept = ckpt.load_checkpoint(ckpt.checkpoint_path(tmp_path, "baseline"))
    assert kept.epoch == 1 and kept.result is None
    assert all(math.isfinite(v) for v in kept.model["net.0.weight"].flatten().tolist()) \
        if "net.0.weight" in kept.model else all(bool(torch.isfinite(v).all()) for v in kept.model.values()
                                                  if v.is_floating_point())
    assert not (tmp_path / "results.json").exists()


def test_huge_lr_is_a_divergence_message_not_a_traceback():
    with pytest.raises(TrainingDiverged, match=r"baseline diverged: non-finite training loss at epoch 1, step \d+"):
        fit(tiny(lr=1e30, epochs=1), ("baseline",), progress=False)


# ------------------------------------------------------------------ LiLAW's default checks and guard
def test_meta_step_with_nan_logits_is_skipped_and_counted():
    lilaw = LiLAW()
    before = lilaw.state()
    logits, y = torch.randn(8, 3), torch.randint(0, 3, (8,))
    out = lilaw.meta_step(torch.full((8, 3), float("nan")), y)
    assert out["skipped"] is True and lilaw.state() == before
    lilaw.meta_step(logits, y, sync=False)
    assert lilaw.state() != before                     # a finite step still moves the parameters
    lilaw.meta_step(logits.masked_fill(torch.eye(8, 3, dtype=torch.bool), float("inf")), y)
    assert lilaw.pop_skipped_meta_steps() == 2 and lilaw.pop_skipped_meta_steps() == 0
    assert "skipped_meta_steps" not in lilaw.state_dict()   # a per-epoch counter, not a parameter
    with pytest.raises(ValueError, match="must be finite"):
        LiLAW(check_inputs=True).meta_step(torch.full((8, 3), float("nan")), y)


@pytest.mark.parametrize("logits, targets, error, pattern", [
    (torch.randn(4, 3), torch.tensor([0.0, 1.0, 2.0, 0.0]), TypeError, "targets must be an integer tensor"),
    (torch.randn(4, 3), torch.tensor([True, False, True, False]), TypeError, "targets must be an integer"),
    (torch.randn(0, 3), torch.zeros(0, dtype=torch.long), ValueError, "empty batch"),
    (torch.randn(4, 3), torch.tensor([0, 1, 2, 3]), ValueError, r"targets must lie in \[0, 2\]"),
    (torch.randn(4, 3), torch.tensor([0, 1, -1, 0]), ValueError, r"targets must lie in \[0, 2\]"),
    (torch.randn(4), torch.tensor([0, 1, 2, 0]), ValueError, r"shape \(N, C\)"),
    (torch.randn(4, 3), torch.tensor([0, 1, 2]), ValueError, "targets must have shape"),
    (torch.randint(0, 3, (4, 3)), torch.tensor([0, 1, 2, 0]), TypeError, "floating-point"),
])
def test_lilaw_default_checks_give_clear_errors(logits, targets, error, pattern):
    with pytest.raises(error, match=pattern):
        LiLAW()(logits, targets)


def test_lilaw_rejects_non_bool_flags():
    with pytest.raises(TypeError, match="constraints"):
        LiLAW(constraints="no")


def test_epoch_history_reports_skipped_meta_steps():
    result = fit(tiny(), ("lilaw",), progress=False)["methods"]["lilaw"]
    assert [h["skipped_meta_steps"] for h in result["history"]] == [0, 0]
    assert result["metrics"]["skipped_meta_steps"] == 0


# ------------------------------------------------------------------ files
def test_results_files_are_published_together(tmp_path, monkeypatch):
    from lilaw_edu.training import results as report

    first = fit(tiny(epochs=1), ("baseline",), out_dir=tmp_path, progress=False)
    table, data = (tmp_path / "table.txt").read_bytes(), (tmp_path / "results.json").read_bytes()
    changed = json.loads(json.dumps(first))
    changed["config"]["seed"] = 99
    monkeypatch.setattr(report, "plot_curves", lambda results: (_ for _ in ()).throw(OSError(28, "No space")))
    with pytest.raises(OSError):
        report.write_results(tmp_path, changed)
    assert (tmp_path / "table.txt").read_bytes() == table and (tmp_path / "results.json").read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoints", "curves.png", "results.json", "table.txt"]


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_follow_the_umask(tmp_path, umask, mode):
    from lilaw_edu._internal.files import atomic_write_bytes

    old = os.umask(umask)
    try:
        atomic_write_bytes(tmp_path / "a.json", b"{}")
        ckpt.save_checkpoint(tmp_path / "c.pt", ckpt.LoopState(method="m", config={}))
    finally:
        os.umask(old)
    for name in ("a.json", "c.pt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode


@pytest.mark.parametrize("setup, pattern", [
    (lambda out: out.write_text("x"), "exists and is not a folder"),
    (lambda out: (out / "results.json").mkdir(parents=True), "'results.json' of the wrong kind"),
    (lambda out: (out.mkdir(), (out / "checkpoints").write_text("x")), "'checkpoints' of the wrong kind"),
])
def test_output_folder_is_checked_before_training(tmp_path, setup, pattern):
    out = tmp_path / "out"
    setup(out)
    seen = []
    with pytest.raises(ValueError, match=pattern):
        fit(tiny(), ("baseline",), out_dir=out, progress=False, callback=seen.append)
    assert seen == []


def test_empty_output_folder_name_is_refused():
    with pytest.raises(ValueError, match="out_dir must name a folder, got ''"):
        fit(tiny(), ("baseline",), out_dir="", progress=False)


def test_unwritable_output_folder_is_refused_and_nothing_is_created(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):   # root ignores permissions
            pytest.skip("running as a user that can write anywhere")
        with pytest.raises(ValueError, match=r"out_dir .*locked/new is not writable"):
            fit(tiny(), ("baseline",), out_dir=locked / "new", progress=False)
        assert not (locked / "new").exists()
    finally:
        locked.chmod(0o700)


def test_resume_with_score_recorders_goes_through_plain_state_dicts(tmp_path):
    config = tiny(epochs=3, record_scores=True, record_weights_epochs=(3,))
    straight = fit(config, ("baseline",), progress=False)["methods"]["baseline"]
    with pytest.raises(Killed):
        fit(config, ("baseline",), out_dir=tmp_path, progress=False, callback=kill_at("baseline", 2))
    saved = ckpt.load_checkpoint(ckpt.checkpoint_path(tmp_path, "baseline"))   # weights_only=True
    assert sorted(saved.recorders) == ["aum", "data_iq", "datamaps", "el2n", "forgetting", "grand"]
    assert all(isinstance(v, torch.Tensor) for v in saved.recorders["aum"]["_sums"].values())
    resumed = fit(config, ("baseline",), out_dir=tmp_path, resume=True, progress=False)["methods"]["baseline"]
    assert resumed["scores"] == straight["scores"] and resumed["metrics"] == straight["metrics"]


def test_full_disk_output_folder_is_refused_before_training(tmp_path, monkeypatch):
    import tempfile

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tempfile, "mkstemp", full)
    seen = []
    with pytest.raises(ValueError, match=r"out_dir .*out is not writable \(.*: No space left on device\)") as info:
        fit(tiny(), ("baseline",), out_dir=tmp_path / "out", progress=False, callback=seen.append)
    assert seen == [] and not (tmp_path / "out").exists() and "\n" not in str(info.value)
