"""Config validation before any work (issue 10 items 4, 5, 7): every bad value is a TypeError or
ValueError naming the parameter, the value and what is allowed; presets have one source of truth."""
from __future__ import annotations

import re

import pytest

from lilaw_edu.training.config import PRESETS, TrainConfig, config_from_preset, validate_config

# (overrides, error type, regex that must name the parameter, the value and what is allowed)
BAD = [
    (dict(alpha=0.5), ValueError, r"alpha must be >= 1 when constraints=True .* got 0\.5"),
    (dict(alpha=float("nan")), ValueError, r"alpha must be a finite number.*got nan"),
    (dict(alpha="abc"), TypeError, r"alpha must be a real number, got 'abc' \(str\)"),
    (dict(alpha=[1, 2]), TypeError, r"alpha must be a real number, got \(1, 2\) \(tuple\)"),
    (dict(alpha=True), TypeError, r"alpha must be a real number, got True \(bool\)"),
    (dict(alpha=1e300), ValueError, r"alpha must be a finite number within float32 range.*got 1e\+300"),
    (dict(beta=float("inf")), ValueError, r"beta must be a finite number.*got inf"),
    (dict(delta=1.0, beta=2.0), ValueError, r"delta must be >= beta when constraints=True .* delta=1\.0, beta=2\.0"),
    (dict(delta="6"), TypeError, r"delta must be a real number, got '6' \(str\)"),
    (dict(lr=float("inf")), ValueError, r"lr must be a finite number > 0.*got inf"),
    (dict(lr=1e300), ValueError, r"lr must be a finite number > 0 within float32 range.*got 1e\+300"),
    (dict(lr=0.0), ValueError, r"lr must be a finite number > 0.*got 0\.0"),
    (dict(lr=-1e-3), ValueError, r"lr must be a finite number > 0.*got -0\.001"),
    (dict(meta_lr=float("inf")), ValueError, r"meta_lr must be a finite number > 0.*got inf"),
    (dict(meta_lr=float("nan")), ValueError, r"meta_lr must be a finite number > 0.*got nan"),
    (dict(meta_wd=-1.0), ValueError, r"meta_wd must be a finite number >= 0.*got -1\.0"),
    (dict(weight_decay="0"), TypeError, r"weight_decay must be a real number, got '0' \(str\)"),
    (dict(gamma_lr=0), ValueError, r"gamma_lr must be a finite number > 0.*got 0"),
    (dict(seed=2 ** 64), ValueError, r"seed must be an integer in \[0, 4294967295\], got 18446744073709551616"),
    (dict(seed=-1), ValueError, r"seed must be an integer in \[0, 4294967295\], got -1"),
    (dict(seed=1.5), TypeError, r"seed must be an integer in \[0, 4294967295\], got 1\.5"),
    (dict(epochs=0), ValueError, r"epochs must be an integer >= 1, got 0"),
    (dict(batch_size="32"), TypeError, r"batch_size must be an integer >= 1, got '32'"),
    (dict(milestones=5), TypeError, r"milestones must be a tuple of epoch numbers such as \(3, 10\), got 5 \(int\)"),
    (dict(milestones=(6, 4)), ValueError, r"milestones must hold increasing 1-based epoch numbers, got \(6, 4\)"),
    (dict(milestones=(0,)), ValueError, r"milestones must hold increasing 1-based epoch numbers"),
    (dict(record_weights_epochs=3), TypeError, r"record_weights_epochs must be a tuple of epoch numbers.*got 3 \(int\)"),
    (dict(record_weights_epochs=(2, 99)), ValueError, r"record_weights_epochs must be epochs <= epochs \(15\), got \(2, 99\)"),
    (dict(record_weights_epochs=("3",)), ValueError, r"record_weights_epochs must hold increasing 1-based epoch"),
    (dict(constraints="no"), TypeError, r"constraints must be True or False, got 'no' \(str\)"),
    (dict(augment=1), TypeError, r"augment must be True or False, got 1 \(int\)"),
    (dict(rate=0.3), ValueError, r"rate must be 0 when noise='none' \(rate 0\.3 would train on clean labels\)"),
    (dict(rate=1.5, noise="uniform"), ValueError, r"rate must be in \[0, 1\], got 1\.5"),
    (dict(rate=-0.1, noise="uniform"), ValueError, r"rate must be in \[0, 1\], got -0\.1"),
    (dict(noise="gaussain"), ValueError, r"noise must be one of \(.*'uniform'.*\), got 'gaussain'"),
    (dict(dataset="cifar1000"), ValueError, r"dataset must be one of \(.*'digits'.*\), got 'cifar1000'"),
    (dict(dataset=""), ValueError, r"dataset must be one of .*got ''"),
    (dict(val_fraction=1.0), ValueError, r"val_fraction must be in \(0, 1\), got 1\.0"),
    (dict(val_fraction=0), ValueError, r"val_fraction must be in \(0, 1\), got 0"),
    (dict(select_by="val_auc"), ValueError, r"select_by must be one of \('val_loss', 'val_acc', 'last'\), got 'val_auc'"),
    (dict(select_by="last", patience=3), ValueError, r"patience must be 0 when select_by='last'.*got patience=3"),
    (dict(patience=-1), ValueError, r"patience must be an integer >= 0, got -1"),
    (dict(optimizer="rmsprop"), ValueError, r"optimizer must be one of \('adam', 'sgd'\), got 'rmsprop'"),
    (dict(active="xyz"), ValueError, r"active must be a non-empty subset of 'abd' such as 'ab', got 'xyz'"),
    (dict(active=""), ValueError, r"active must be a non-empty subset of 'abd'"),
    (dict(num_threads=0), ValueError, r"num_threads must be an integer >= 1, got 0"),
    (dict(image_size=2), ValueError, r"image_size must be an integer >= 4, got 2"),
    (dict(device="tpu"), ValueError, r"device must be one of \('auto', 'cpu', 'cuda'\), got 'tpu'"),
    (dict(data_dir=""), TypeError, r"data_dir must be None or a non-empty path string, got ''"),
    (dict(train_on_clean_only=True), ValueError, r"train_on_clean_only needs a noise kind"),
    (dict(model="vit"), ValueError, r"model must be one of \('auto', 'lstm', 'small_cnn', 'resnet18', 'vit_b16'\), got 'vit'"),
    (dict(rate="0.3", noise="uniform"), TypeError, r"rate must be a real number in \[0, 1\], got '0\.3'"),
]


@pytest.mark.parametrize("overrides, error, pattern", BAD, ids=[re.sub(r"\W+", "-", repr(o))[:40] for o, _, _ in BAD])
def test_bad_config_values_are_named_with_value_and_allowed(overrides, error, pattern):
    with pytest.raises(error, match=pattern) as info:
        config_from_preset("cpu-digits", **overrides)
    assert "\n" not in str(info.value)
    with pytest.raises(error, match=pattern):   # the same through the dataclass path
        TrainConfig.from_dict(dict(config_from_preset("cpu-digits").to_dict(), **overrides))


def test_at_least_forty_distinct_bad_inputs_are_covered():
    assert len({repr(o) for o, _, _ in BAD}) >= 40


def test_constraints_off_allows_any_finite_initial_values():
    config = config_from_preset("cpu-digits", constraints=False, alpha=0.5, beta=3.0, delta=1.0)
    assert (config.alpha, config.beta, config.delta) == (0.5, 3.0, 1.0)


def test_validate_config_rejects_a_non_config():
    with pytest.raises(TypeError, match="config must be a TrainConfig"):
        validate_config({"lr": 1})


def test_bad_config_fails_before_any_work(tmp_path):
    from lilaw_edu.training.fit import fit

    config = config_from_preset("cpu-digits", epochs=1, max_train=60)
    object.__setattr__(config, "meta_lr", float("inf"))   # bypass the constructor's validation
    with pytest.raises(ValueError, match="meta_lr must be a finite number > 0"):
        fit(config, ("baseline", "lilaw"), out_dir=tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()   # no checkpoints/baseline.pt left behind


# ------------------------------------------------------------------ presets
def test_paper_presets_use_early_stopping_and_cpu_presets_select_by_validation_loss():
    for name, values in PRESETS.items():
        config = config_from_preset(name)
        if name.startswith("paper-"):
            assert config.patience > 0 and config.select_by == "val_loss", name
        assert config.select_by in ("val_loss", "val_acc", "last")


def test_ecg5000_cpu_epochs_have_one_source_of_truth():
    from lilaw_edu.experiments.plan import expand_preset
    from lilaw_edu.experiments.presets import CPU_DATA

    assert "epochs" not in CPU_DATA["ecg5000"]           # the sweep inherits the run preset
    specs = [s for s in expand_preset("cpu-table3") if s.base == "cpu-ecg5000"]
    assert specs and {s.config().epochs for s in specs} == {PRESETS["cpu-ecg5000"]["epochs"]} == {30}
