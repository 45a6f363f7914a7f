"""Training loop: paired fit on real digits, determinism, meta step isolation, data preparation."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from lilaw_edu.training import engine
from lilaw_edu.training.config import PRESETS, VARIANTS, TrainConfig, config_from_preset, method_overrides, resolve_methods
from lilaw_edu.datasets import load_dataset
from lilaw_edu.training.fit import fit, prepare_data
from lilaw_edu.training.loop import initial_model
from lilaw_edu.core.weighting import LiLAW


def tiny(**overrides) -> TrainConfig:
    """digits (real, bundled with scikit-learn), small enough for a few seconds per fit."""
    values = dict(noise="uniform", rate=0.4, epochs=3, max_train=400, batch_size=32, temperature_scaling=True)
    values.update(overrides)
    return config_from_preset("cpu-digits", **values)


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("digits")
    config = tiny(epochs=4, record_weights_epochs=(2, 4), record_scores=True)
    return config, fit(config, ("baseline", "lilaw"), out_dir=out, progress=False), out


# ------------------------------------------------------------------ paired fit
def test_fit_digits_40pct_noise_well_above_chance(digits_run):
    config, results, _ = digits_run
    for method in ("baseline", "lilaw"):
        top1 = results["methods"][method]["metrics"]["test"]["top1"]
        assert top1 > 0.5, f"{method} top-1 {top1:.3f} is not well above chance (0.1)"
    hist = results["methods"]["lilaw"]["history"]
    assert len(hist) == config.epochs
    assert hist[0]["alpha"] == pytest.approx(config.alpha)  # warm-up epoch: no meta step yet
    assert (hist[-1]["alpha"], hist[-1]["beta"], hist[-1]["delta"]) != (config.alpha, config.beta, config.delta)
    assert all(h["alpha"] is None for h in results["methods"]["baseline"]["history"])


def test_methods_start_from_identical_initial_weights(digits_run):
    config, results, _ = digits_run
    hashes = {m: r["init_state_sha256"] for m, r in results["methods"].items()}
    assert set(hashes.values()) == {results["init_state_sha256"]}
    splits, noise = prepare_data(config)
    rebuilt = engine.state_dict_sha256(initial_model(config, splits).state_dict())
    assert rebuilt == results["init_state_sha256"]
    other = engine.state_dict_sha256(initial_model(config.replace(seed=1), splits).state_dict())
    assert other != rebuilt


def test_results_json_layout(digits_run):
    config, results, out = digits_run
    saved = json.loads((out / "results.json").read_text())
    assert saved["config"] == config.to_dict()
    assert saved["methods"]["lilaw"]["metrics"] == results["methods"]["lilaw"]["metrics"]
    for key in ("torch", "device", "git_commit", "date", "python"):
        assert saved["environment"][key]
    m = saved["methods"]["baseline"]["metrics"]
    assert m["test_calibrated"]["top1"] == pytest.approx(m["test"]["top1"])  # T > 0 keeps the argmax
    assert m["temperature"] > 0 and 1 <= m["best_epoch"] <= config.epochs
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "lilaw - baseline" in (out / "table.txt").read_text()


def test_recorded_weights_and_scores_cover_the_training_set(digits_run):
    config, results, _ = digits_run
    n = results["data"]["sizes"]["train"]
    mask = results["noise"]["train_corrupted"]
    assert len(mask) == n and sum(mask) == round(config.rate * n)
    weights = results["methods"]["lilaw"]["weights"]
    assert sorted(weights) == ["2", "4"]
    for comp in ("w_alpha", "w_beta", "w_delta", "w"):
        assert len(weights["4"][comp]) == n
    w = torch.tensor(weights["4"]["w"])
    parts = sum(torch.tensor(weights["4"][c]) for c in ("w_alpha", "w_beta", "w_delta"))
    assert torch.allclose(w, parts, atol=1e-5) and bool((w > 0).all()) and bool((w < 3).all())
    scores = results["methods"]["baseline"]["scores"]
    assert sorted(scores) == ["2", "4"] and len(scores["4"]["aum"]) == n
    # GraNd got the head's inputs (last-layer closed form), so it is not just EL2N
    assert scores["4"]["grand"] != scores["4"]["el2n"]
    assert results["methods"]["baseline"]["weights"] == {} and results["methods"]["lilaw"]["scores"] == {}


def test_same_seed_twice_gives_identical_results_json_metrics(tmp_path):
    config = tiny(epochs=2, max_train=200)
    a = fit(config, ("baseline", "lilaw"), out_dir=tmp_path / "a", progress=False)
    b = fit(config, ("baseline", "lilaw"), out_dir=tmp_path / "b", progress=False)
    ja = json.loads((tmp_path / "a" / "results.json").read_text())
    jb = json.loads((tmp_path / "b" / "results.json").read_text())
    for m in ("baseline", "lilaw"):
        assert ja["methods"][m]["metrics"] == jb["methods"][m]["metrics"]
        assert ja["methods"][m]["lilaw"] == jb["methods"][m]["lilaw"]
        strip = lambda h: [{k: v for k, v in r.items() if k not in ("time_s", "epoch_time_s")} for r in h]  # noqa: E731
        assert strip(ja["methods"][m]["history"]) == strip(jb["methods"][m]["history"])
    assert a["init_state_sha256"] == b["init_state_sha256"]
    c = fit(config.replace(seed=1), ("lilaw",), progress=False)
    assert c["init_state_sha256"] != a["init_state_sha256"]


def test_dataloader_path_matches_device_resident_path():
    config = tiny(epochs=2, max_train=150, temperature_scaling=False, augment=True)
    resident = fit(config, ("lilaw",), progress=False)["methods"]["lilaw"]
    loader = fit(config.replace(resident_max_gb=0.0), ("lilaw",), progress=False)["methods"]["lilaw"]
    assert loader["metrics"] == resident["metrics"] and loader["lilaw"] == resident["lilaw"]


def test_instance_noise_uses_one_class_map_for_train_and_val():
    splits, noise = prepare_data(tiny(noise="instance", rate=1.0, max_train=None))
    pairs = set()
    for y_new, y_old in ((splits.y_train, noise["y_train_clean"]), (splits.y_val, noise["y_val_clean"])):
        assert bool((y_new != y_old).all())  # instance noise always changes the label
        pairs |= set(zip(y_old.tolist(), y_new.tolist()))
    assert len({old for old, _ in pairs}) == 10 and len(pairs) == 10  # k = 1: one target class per class


def test_every_variant_runs_and_freeze_follows_the_method():
    config = tiny(epochs=2, max_train=60, temperature_scaling=False, freeze="last2", baseline_freeze="none")
    methods = tuple(VARIANTS) + ("lilaw-ab",)
    results = fit(config, methods, progress=False)
    runs = results["methods"]
    assert set(runs) == set(methods)
    assert len({r["init_state_sha256"] for r in runs.values()}) == 1
    assert runs["baseline"]["freeze"] == "none" and runs["gce"]["freeze"] == "none"
    assert runs["lilaw"]["freeze"] == "last2" and runs["baseline-frozen"]["freeze"] == "last2"
    for name, run in runs.items():
        assert 0.0 <= run["metrics"]["test"]["top1"] <= 1.0, name
        assert (run["lilaw"] is not None) == (method_overrides(name)["weighting"] == "lilaw"), name
    # freezing changes training: the frozen baseline ends elsewhere than the full one
    assert runs["baseline-frozen"]["history"][-1]["train_loss"] != runs["baseline"]["history"][-1]["train_loss"]


def test_frozen_variant_keeps_parameters_and_warmup_covers_all_epochs():
    results = fit(tiny(epochs=2, max_train=150, temperature_scaling=False), ("lilaw-frozen",), progress=False)
    hist = results["methods"]["lilaw-frozen"]["history"]
    assert [(h["alpha"], h["beta"], h["delta"]) for h in hist] == [(10.0, 2.0, 6.0)] * 2
    results = fit(tiny(epochs=2, max_train=150, warmup_epochs=2, temperature_scaling=False), ("lilaw",),
                  progress=False)
    assert all(h["alpha"] == 10.0 and h["warmup"] for h in results["methods"]["lilaw"]["history"])


def test_early_stopping_selects_best_epoch():
    # lr so small that the network does not change: validation accuracy never improves after epoch 1
    # (ties go to the later epoch, so the selected epoch is the last of the tied ones)
    results = fit(tiny(epochs=5, max_train=150, lr=1e-12, patience=2, temperature_scaling=False,
                       select_by="val_acc"), ("baseline",), progress=False)
    m = results["methods"]["baseline"]["metrics"]
    accs = [h["val_acc"] for h in results["methods"]["baseline"]["history"]]
    assert max(accs[1:]) <= accs[0]  # no strict gain after epoch 1: stopped after patience = 2 more epochs
    assert m["epochs_run"] == 3 and m["stopped_early"] is True
    assert m["best_epoch"] == max(i + 1 for i, a in enumerate(accs) if a == accs[0]) >= 2  # later tie wins


# ------------------------------------------------------------------ meta step
class _TinyBN(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))

    def forward(self, x):
        return self.net(x)


@pytest.mark.parametrize("eval_mode", [True, False])
def test_meta_step_leaves_model_parameters_and_grads_untouched(eval_mode):
    torch.manual_seed(0)
    model = _TinyBN().train()
    x, y = torch.randn(64, 8), torch.randint(0, 3, (64,))
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    params = {k: v.clone() for k, v in model.named_parameters()}
    grads = {k: v.grad.clone() for k, v in model.named_parameters()}
    buffers = {k: v.clone() for k, v in model.named_buffers()}
    lilaw = LiLAW()
    before = lilaw.state()
    val = engine.Batches(x, y, 64, torch.device("cpu"))
    out = engine.meta_update(model, lilaw, val, 16, torch.Generator().manual_seed(0), eval_mode=eval_mode,
                             device=torch.device("cpu"), amp=False)
    assert model.training
    for k, v in model.named_parameters():
        assert torch.equal(v, params[k]) and torch.equal(v.grad, grads[k])
    assert lilaw.state() != before and set(out) >= {"alpha", "beta", "delta", "val_loss"}
    bn_same = torch.equal(model.net[2].running_mean, buffers["net.2.running_mean"])
    assert bn_same is eval_mode  # eval mode: BatchNorm statistics untouched; train mode updates them


def test_meta_batch_is_a_random_subset_without_replacement():
    x, y = torch.arange(50.0)[:, None], torch.zeros(50, dtype=torch.long)
    seen = []

    class Spy(nn.Module):
        def forward(self, xb):
            seen.append(xb[:, 0].long())
            return torch.zeros(xb.shape[0], 2)

    lilaw = LiLAW()
    val = engine.Batches(x, y, 50, torch.device("cpu"))
    for seed in (0, 0, 1):
        engine.meta_update(Spy(), lilaw, val, 20, torch.Generator().manual_seed(seed), eval_mode=True,
                           device=torch.device("cpu"), amp=False)
    assert all(len(s.unique()) == 20 for s in seen)
    assert torch.equal(seen[0], seen[1]) and not torch.equal(seen[0], seen[2])


# ------------------------------------------------------------------ data preparation
def test_prepare_data_noise_hits_train_and_val_never_test():
    config = tiny()
    splits, noise = prepare_data(config)
    raw = load_dataset("digits", seed=config.seed, max_train=config.max_train)
    n_tr, n_va = len(raw.y_train), len(raw.y_val)
    assert int(noise["train_corrupted"].sum()) == round(0.4 * n_tr)
    assert int(noise["val_corrupted"].sum()) == round(0.4 * n_va)
    assert torch.equal(splits.y_test, raw.y_test) and torch.equal(noise["y_train_clean"], raw.y_train)
    changed = splits.y_train != raw.y_train
    assert bool((changed <= noise["train_corrupted"]).all()) and int(changed.sum()) > 0.25 * n_tr
    clean_val, noise_cv = prepare_data(config.replace(clean_val=True))
    assert torch.equal(clean_val.y_val, raw.y_val) and not noise_cv["val_corrupted"].any()
    assert torch.equal(clean_val.y_train, splits.y_train)  # same seed: same training noise
    only_clean, noise_oc = prepare_data(config.replace(train_on_clean_only=True))
    assert len(only_clean.y_train) == n_tr - round(0.4 * n_tr)
    assert torch.equal(only_clean.y_train, noise_oc["y_train_clean"])
    shifted, _ = prepare_data(config.replace(val_shift=True))
    assert shifted.x_val.shape == splits.x_val.shape and not torch.equal(shifted.x_val, splits.x_val)
    assert torch.equal(shifted.x_train, splits.x_train)


def test_augment_images_is_seeded_and_keeps_shape():
    x = torch.rand(6, 3, 16, 16)
    a = engine.augment_images(x, torch.Generator().manual_seed(3))
    b = engine.augment_images(x, torch.Generator().manual_seed(3))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, x)
    # with zero offset range (pad recentred) and no flip, a crop equals the input: check one sample by search
    pad = 2
    padded = torch.nn.functional.pad(x, (pad,) * 4, mode="reflect")
    for i in range(6):
        crops = [padded[i, :, r:r + 16, c:c + 16] for r in range(5) for c in range(5)]
        assert any(torch.equal(a[i], cr) or torch.equal(a[i], cr.flip(2)) for cr in crops)


def test_batches_cover_every_sample_once_per_epoch():
    x, y = torch.arange(23.0)[:, None], torch.arange(23)
    batches = engine.Batches(x, y, 5, torch.device("cpu"))
    for gen in (None, torch.Generator().manual_seed(0)):
        idx = torch.cat([i for _, _, i in batches.epoch(gen)])
        assert sorted(idx.tolist()) == list(range(23))
    loader = engine.Batches(x, y, 5, torch.device("cpu"), resident=False)
    got = [(xb, yb) for xb, yb, _ in loader.epoch(torch.Generator().manual_seed(0))]
    ref = [(xb, yb) for xb, yb, _ in batches.epoch(torch.Generator().manual_seed(0))]
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(got, ref))


# ------------------------------------------------------------------ config
def test_every_preset_validates_and_bad_names_are_listed():
    for name in PRESETS:
        assert isinstance(config_from_preset(name), TrainConfig)
    with pytest.raises(ValueError, match="preset must be one of .*cpu-ecg5000.*got 'nope'"):
        config_from_preset("nope")
    with pytest.raises(ValueError, match=r"unknown TrainConfig field\(s\) \['bogus'\].*allowed fields"):
        config_from_preset("cpu-digits", bogus=1)
    with pytest.raises(ValueError, match=r"rate must be in \[0, 1\], got 1.5"):
        config_from_preset("cpu-digits", rate=1.5)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        TrainConfig().replace(optimizer="rmsprop")
    assert TrainConfig.from_dict(TrainConfig().to_dict()) == TrainConfig()


def test_method_variants_are_config_overrides():
    for name in VARIANTS:
        TrainConfig().replace(**method_overrides(name))
    assert method_overrides("lilaw-ab") == {"weighting": "lilaw", "active": "ab"}
    assert method_overrides("lilaw-frozen")["learn_meta"] is False
    assert resolve_methods("both") == ("baseline", "lilaw")
    assert resolve_methods("baseline, gce") == ("baseline", "gce")
    for bad in ("lilaw-xyz", "lilaw-aa", "foo"):
        with pytest.raises(ValueError, match="method must be one of"):
            method_overrides(bad)
