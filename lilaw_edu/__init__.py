"""lilaw_edu: LiLAW (Lightweight Learnable Adaptive Weighting), explained and reproduced.

The core names are importable from the top level::

    from lilaw_edu import LiLAW, weight_components, lilaw_weights
    from lilaw_edu import inject_label_noise, inject_input_noise
"""
from __future__ import annotations

from importlib import import_module

from lilaw_edu.core.losses import LOSS_KINDS, per_sample_loss
from lilaw_edu.core.weighting import LiLAW, check_probs, label_and_max_prob, lilaw_weights, plain_loss, weight_components

__version__ = "0.2.0"  # the one place the version is written (pyproject reads it; see CHANGELOG.md)

# Names re-exported lazily from submodules (keeps `import lilaw_edu` light).
_LAZY = {
    "inject_label_noise": "noise.inject", "inject_input_noise": "noise.inject", "inject_noise": "noise.inject",
    "LABEL_NOISE_KINDS": "noise.inject", "INPUT_NOISE_KINDS": "noise.inject",
    "load_dataset": "datasets", "list_datasets": "datasets", "DatasetSplits": "datasets.core",
    "build_model": "models",
    "TrainConfig": "training.config", "PRESETS": "training.config", "config_from_preset": "training.config",
    "fit": "training.fit",
    "evaluate_predictions": "metrics", "fit_temperature": "metrics", "mislabel_detection": "metrics",
}

__all__ = ["LiLAW", "weight_components", "lilaw_weights", "check_probs", "label_and_max_prob",
           "plain_loss", "per_sample_loss", "LOSS_KINDS", "__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'lilaw_edu' has no attribute {name!r}")
