"""The three benchmark workloads of issue 6: data (real when present, else synthetic of
the same shape) and the model to train on it.

======================  ==============  ==========================================
workload                model           data
======================  ==============  ==========================================
``lstm_ecg5000``        stacked LSTM    ECG5000 (N, 1, 140), 5 classes
``small_cnn_28``        small CNN       PneumoniaMNIST 28x28 (N, 1, 28, 28), 2 classes
``resnet18_32``         ResNet-18       CIFAR-10 JPEG subset (N, 3, 32, 32), 10 classes
======================  ==============  ==========================================

Real data come from :func:`lilaw_edu.datasets.load_dataset`; when a dataset is missing the
workload uses uniform noise of exactly the same shape, class count and sizes, drawn
from a seeded ``torch.Generator``, and says so in ``Workload.data``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from lilaw_edu.models import build_model

__all__ = ["WORKLOAD_NAMES", "SIZES", "Workload", "load_workload", "build_workload_model", "init_state"]

WORKLOAD_NAMES = ("lstm_ecg5000", "small_cnn_28", "resnet18_32")

# name -> (model, dataset, channels, size, classes). Batch sizes are the package's CPU presets
# (cpu-ecg5000: 32, cpu-medmnist: 64, cpu-cifar10: 128 -> 64 here to keep ResNet-18 epochs short).
_SPECS = {
    "lstm_ecg5000": ("lstm", "ecg5000", 1, 140, 5),
    "small_cnn_28": ("small_cnn", "pneumoniamnist", 1, 28, 2),
    "resnet18_32": ("resnet18", "cifar10-jpeg", 3, 32, 10),
}

# scale -> workload -> (n_train, n_val, batch_size); None = the whole split.
SIZES = {
    "full": {"lstm_ecg5000": (None, None, 32), "small_cnn_28": (1024, None, 64),
             "resnet18_32": (256, 512, 64)},
    "quick": {"lstm_ecg5000": (32, 16, 16), "small_cnn_28": (32, 16, 16),
              "resnet18_32": (8, 4, 4)},
}


@dataclass
class Workload:
    """One model and its training / validation tensors (CPU).

    Attributes
    ----------
    name, model_name, dataset : str
    in_channels, input_size, num_classes : int
    x_train : Tensor, shape (N, C, H, W) or (N, 1, T)
    y_train : Tensor, shape (N,), int64
    x_val : Tensor, shape (M, ...) ; y_val : Tensor, shape (M,)
    batch_size : int
        Training and meta-step validation batch size.
    data : str
        ``"real"`` or ``"synthetic"``.
    notes : str
        Provenance of the data.
    """

    name: str
    model_name: str
    dataset: str
    in_channels: int
    input_size: int
    num_classes: int
    x_train: Tensor
    y_train: Tensor
    x_val: Tensor
    y_val: Tensor
    batch_size: int
    data: str
    notes: str = ""
    extra: dict = field(default_factory=dict)

    def subset(self, n_train: int) -> "Workload":
        """The same workload with the first ``n_train`` training samples (tiled when larger)."""
        reps = -(-n_train // len(self.y_train))
        x = self.x_train.repeat(reps, *([1] * (self.x_train.dim() - 1)))[:n_train]
        y = self.y_train.repeat(reps)[:n_train]
        return Workload(**{**self.__dict__, "x_train": x, "y_train": y})


def _take(x: Tensor, y: Tensor, n: int | None, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    if n is None or n >= len(y):
        return x, y
    idx = torch.randperm(len(y), generator=generator)[:n]
    return x[idx].contiguous(), y[idx].contiguous()


def _synthetic(shape: tuple, n: int, num_classes: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    x = torch.rand((n, *shape), generator=generator)
    return x, torch.randint(0, num_classes, (n,), generator=generator)


def load_workload(name: str, scale: str = "full", *, seed: int = 0, n_train: int | None = None,
                  synthetic: bool = False) -> Workload:
    """Build one workload.

    Parameters
    ----------
    name : str
        One of :data:`WORKLOAD_NAMES`.
    scale : {"full", "quick"}
        Picks sizes from :data:`SIZES`.
    seed : int
        Seeds the subsampling and any synthetic data.
    n_train : int, optional
        Overrides the scale's training-set size (used for the N, 2N, 4N scaling runs).
    synthetic : bool
        Use synthetic data even when the real dataset is present.

    Returns
    -------
    Workload
    """
    if name not in _SPECS:
        raise ValueError(f"name must be one of {WORKLOAD_NAMES}, got {name!r}")
    if scale not in SIZES:
        raise ValueError(f"scale must be one of {tuple(SIZES)}, got {scale!r}")
    model_name, dataset, channels, size, classes = _SPECS[name]
    n_tr, n_va, batch = SIZES[scale][name]
    n_tr = n_train if n_train is not None else n_tr
    generator = torch.Generator().manual_seed(seed)
    shape = (channels, size) if model_name == "lstm" else (channels, size, size)
    splits, notes = None, f"synthetic uniform inputs of {dataset}'s shape (requested)"
    if not synthetic:
        from lilaw_edu.datasets.core import DataError
        from lilaw_edu.datasets import load_dataset
        try:
            splits = load_dataset(dataset, seed=seed)
        except DataError as err:  # missing or unusable files: fall back, and say so
            notes = f"{dataset} unavailable ({type(err).__name__}: {err}); synthetic data of the same shape"
    if splits is not None:
        x_tr, y_tr = _take(splits.x_train, splits.y_train, n_tr, generator)
        x_va, y_va = _take(splits.x_val, splits.y_val, n_va, generator)
        data, notes = "real", splits.notes
    else:
        x_tr, y_tr = _synthetic(shape, n_tr or 425, classes, generator)
        x_va, y_va = _synthetic(shape, n_va or 75, classes, generator)
        data = "synthetic"
    return Workload(name=name, model_name=model_name, dataset=dataset, in_channels=channels, input_size=size,
                    num_classes=classes, x_train=x_tr, y_train=y_tr, x_val=x_va, y_val=y_va,
                    batch_size=batch, data=data, notes=notes)


def build_workload_model(workload: Workload) -> nn.Module:
    """The workload's model from :func:`lilaw_edu.models.build_model` (random init, CPU)."""
    return build_model(workload.model_name, workload.num_classes, in_channels=workload.in_channels,
                       input_size=workload.input_size)


def init_state(workload: Workload, seed: int = 0) -> dict:
    """Initial weights shared by every variant: the model built under a fixed torch seed.

    ``build_model`` draws its initial weights from torch's global generator; that
    generator is forked and seeded here so the caller's random state is untouched.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_workload_model(workload)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}
