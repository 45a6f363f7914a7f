"""Pretraining on one half, fine-tuning on the other (issue 16, part 5: the confound at CPU scale).

Tiny and synthetic-free: scikit-learn digits (bundled), one epoch of pretraining, one of fine-tuning.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lilaw_edu.experiments.plan import expand_preset
from lilaw_edu.experiments.store import HASH_NEUTRAL_DEFAULTS, read_record, run_id_of
from lilaw_edu.training import engine, loop, pretrain
from lilaw_edu.training.config import TrainConfig, config_from_preset
from lilaw_edu.training.fit import fit, prepare_data

ROOT = Path(__file__).resolve().parents[1]


def _config(**kw) -> TrainConfig:
    base = dict(pretrain="other_half", pretrain_epochs=1, epochs=1, noise="uniform", rate=0.5, max_train=200,
                freeze="last2", baseline_freeze="none", device="cpu", warmup_epochs=0, num_threads=1,
                temperature_scaling=False)
    base.update(kw)
    return config_from_preset("cpu-digits", **base)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LILAW_CACHE_DIR", str(tmp_path / "cache"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the configs say (num_threads=1): a tiny model on a busy machine
    yield tmp_path / "cache" / "pretrained"
    torch.set_num_threads(threads)


def _rows(x: torch.Tensor) -> set:
    return {tuple(r.tolist()) for r in x.flatten(1)}


# ------------------------------------------------------------------ the halves
def test_halves_are_disjoint_cover_everything_and_ignore_the_global_rng():
    torch.manual_seed(123)
    a, b = pretrain.half_indices(101)
    torch.manual_seed(7)
    a2, b2 = pretrain.half_indices(101)
    assert torch.equal(a, a2) and torch.equal(b, b2)
    assert len(a) == 50 and len(b) == 51
    assert sorted(torch.cat([a, b]).tolist()) == list(range(101))


def test_half_b_is_the_same_for_every_run_seed_and_never_touches_half_a():
    _, (xa, _), (xb, _) = pretrain.official_train_halves("digits")
    half_a, half_b = _rows(xa), _rows(xb)
    for seed in (0, 1):
        s = pretrain.half_b_splits(_config(seed=seed, max_train=None))
        used = _rows(s.x_train) | _rows(s.x_val)
        assert used <= half_b and len(s.y_train) + len(s.y_val) == len(xb)
        assert not (used & half_a - half_b)  # digits has a few duplicate images; none comes from half A only
    s0, s1 = (pretrain.half_b_splits(_config(seed=k, max_train=None)) for k in (0, 1))
    assert not torch.equal(s0.y_val, s1.y_val)  # the run seed moves the validation split inside half B


# ------------------------------------------------------------------ the backbone and its identity
def test_backbone_is_content_addressed_atomic_loaded_weights_only_and_recorded(cache, monkeypatch):
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    results = fit(_config(), methods=("baseline", "baseline-frozen", "lilaw", "lilaw-full"), progress=False)
    info = results["pretrain"]
    path = cache / f"{info['sha256']}.pt"
    assert path.is_file() and info["file"] == path.name
    assert engine.state_dict_sha256(real_load(path, weights_only=True)) == info["sha256"]
    assert calls and all(c is True for c in calls)
    assert sorted(p.name for p in cache.iterdir() if not p.name.startswith(".recipe-")) == \
        sorted([path.name, f"recipe-{info['recipe_key']}.json"])  # no temporary file left behind
    inits = {m["init_state_sha256"] for m in results["methods"].values()}
    assert len(inits) == 1  # every method starts from the same (pretrained) weights
    assert {m: r["freeze"] for m, r in results["methods"].items()} == \
        {"baseline": "none", "baseline-frozen": "last2", "lilaw": "last2", "lilaw-full": "none"}
    # a second run reads the cache; it never trains again
    monkeypatch.setattr(pretrain, "_train_backbone", lambda *a: pytest.fail("trained the backbone twice"))
    assert pretrain.ensure_backbone(_config(seed=3, rate=0.3))["sha256"] == info["sha256"]
    state = real_load(path, weights_only=True)
    state["head.bias"] += 1e-3
    torch.save(state, path)  # other weights under the old name
    with pytest.raises(ValueError, match="hash to"):
        pretrain.load_backbone(info["sha256"])
    path.write_bytes(path.read_bytes()[:100])  # truncated
    with pytest.raises(ValueError, match="corrupted"):
        pretrain.load_backbone(info["sha256"])


def test_a_frozen_run_changes_only_the_last_two_layers(cache):
    config = _config()
    splits, noise_info = prepare_data(config)
    model = loop.initial_model(config, splits)
    head = {k: v.clone() for k, v in model.head.state_dict().items()}
    pretrain.apply_backbone(config, model)
    backbone = pretrain.load_backbone(pretrain.ensure_backbone(config)["sha256"])
    assert all(torch.equal(v, backbone[k]) for k, v in model.state_dict().items() if not k.startswith("head."))
    assert all(torch.equal(v, head[k]) for k, v in model.head.state_dict().items())  # head: the run's init
    init = {k: v.clone() for k, v in model.state_dict().items()}
    for method, changed in (("baseline-frozen", ("blocks.2.", "head.")), ("baseline", ("",))):
        run = loop.build_run(config, method, splits, init, noise_info)
        loop.train_epoch(run, loop.LoopState(method=method, config=run.config.to_dict()))
        for name, p in run.model.named_parameters():
            assert torch.equal(p, init[name]) != name.startswith(changed), (method, name)


# ------------------------------------------------------------------ run ids and validation
def test_run_ids_of_earlier_records_do_not_change():
    path = sorted((ROOT / "results" / "cpu-cheap-meta").glob("*.json"))[0]
    record = read_record(path)  # re-verifies the id from the stored config, which has no pretrain fields
    assert "pretrain" not in record["payload"]["config"]
    spec = next(s for s in expand_preset("cpu-cheap-meta") if s.run_id == record["run_id"])
    assert run_id_of(spec.config(), spec.methods) == record["run_id"] == path.stem
    config = spec.config()
    assert config.pretrain == HASH_NEUTRAL_DEFAULTS["pretrain"]
    assert run_id_of(config.replace(pretrain_epochs=6), spec.methods) != record["run_id"]
    assert run_id_of({**record["payload"]["config"], "pretrain_epochs": 5}, spec.methods) == record["run_id"]


@pytest.mark.parametrize("field, value, allowed", [
    ("pretrain", "half", "other_half"), ("pretrain_epochs", 0, ">= 1"), ("pretrained", True, "pretrained=False"),
    ("dataset", "breastmnist", "official validation"), ("image_size", 16, "image_size=None")])
def test_bad_pretrain_values_name_field_value_and_what_is_allowed(field, value, allowed):
    with pytest.raises(ValueError) as err:
        TrainConfig(pretrain="other_half").replace(**{field: value})
    assert field in str(err.value) and repr(value) in str(err.value) and allowed in str(err.value)


def test_fmt_mean_ci_is_the_one_sample_t_interval():
    from scipy import stats

    from lilaw_edu.experiments.analysis import fmt_mean_ci
    values = [0.50, 0.52, 0.49, 0.55, 0.51]
    mean = sum(values) / len(values)
    lo, hi = stats.t.interval(0.95, len(values) - 1, loc=mean, scale=stats.sem(values))
    assert fmt_mean_ci(values, 100) == f"{100 * mean:.2f} [{100 * lo:.2f}, {100 * hi:.2f}] (n=5)"
    assert fmt_mean_ci([0.3, float("nan")], 100) == "30.00 (n=1)" and fmt_mean_ci([], 100) == "not run yet"


def test_sweep_records_keep_the_backbone_identity():
    from lilaw_edu.experiments.summary import summarise_fit
    backbone = {"sha256": "ab" * 32, "recipe_key": "0" * 16, "test_top1": 0.5}
    fake = {"methods": {}, "data": {}, "noise": {}, "init_state_sha256": "x", "environment": {}}
    assert summarise_fit({**fake, "pretrain": backbone})["pretrain"] == backbone
    assert "pretrain" not in summarise_fit(fake)
