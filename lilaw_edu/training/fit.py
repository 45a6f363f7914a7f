"""Paired training of the baseline and LiLAW (paper Algorithm 1) from one config.

>>> from lilaw_edu.training.config import config_from_preset
>>> from lilaw_edu.training.fit import fit
>>> results = fit(config_from_preset("cpu-digits", noise="uniform", rate=0.4))   # doctest: +SKIP
>>> results["methods"]["lilaw"]["metrics"]["test"]["top1"]                       # doctest: +SKIP

:func:`fit` loads the data once, injects the noise once (training and
validation splits, never test), builds the model once and gives every method a
copy of the *same* initial weights, so differences between methods come from
the method alone. :func:`run_method` trains one method: early stopping on
validation accuracy, the test set evaluated once on the selected checkpoint.
"""
from __future__ import annotations

import copy
import dataclasses
import os

import torch

from lilaw_edu.training import engine
from lilaw_edu.training.config import METHODS, TrainConfig, resolve_methods, validate_config
from lilaw_edu.datasets import load_dataset
from lilaw_edu.datasets.core import resize_images
from lilaw_edu.datasets.registry import dataset_info
from lilaw_edu.training.loop import initial_model, run_method
from lilaw_edu.noise.inject import LABEL_NOISE_KINDS, inject_noise
from lilaw_edu.noise.maps import confusable_map_from_features

__all__ = ["prepare_data", "fit"]

_BATCH_RESIZE_BYTES = 1 << 30  # resize images per batch above 1 GiB at the target size


# ------------------------------------------------------------------ data
def _noise_kwargs(config: TrainConfig, x_train: torch.Tensor, y_train: torch.Tensor, num_classes: int) -> dict:
    """Extra arguments some noise kinds need (instance class map, far-OOD pool), shared by train and val."""
    if config.noise == "instance":
        class_map = dataset_info(config.dataset).confusable  # the registry's hand-made map, if any
        if class_map is not None:
            return {"class_map": class_map}
        # no hand-made map: each class -> its most similar class by mean training input (noise/maps.py documents how)
        return {"class_map": confusable_map_from_features(x_train.flatten(1), y_train, num_classes)}
    if config.noise == "far_ood":  # MNIST-like digits for other images; CIFAR-10 JPEG for digits
        other = "cifar10-jpeg" if config.dataset == "digits" else "digits"
        pool = load_dataset(other, data_dir=config.data_dir, seed=0)
        return {"far_ood_pool": pool.x_test[:1000]}
    return {}


def prepare_data(config: TrainConfig) -> tuple:
    """Load the dataset, inject the configured noise and normalise.

    Noise hits the training split and, unless ``clean_val``, the validation
    split (each with its own generator derived from ``config.seed``); the test
    split is never corrupted. Images are corrupted in [0, 1] and normalised
    afterwards with the training mean/std.

    Parameters
    ----------
    config : TrainConfig

    Returns
    -------
    splits : DatasetSplits
        Normalised; ``y_train``/``y_val`` are the labels trained and selected on.
    noise_info : dict
        ``kind``, ``rate``, ``clean_val``; ``train_corrupted``/``val_corrupted`` (bool (N,)),
        ``y_train_clean``/``y_val_clean`` (int64 (N,)), ``batch_resize`` (int or None).
    """
    validate_config(config)
    size, batch_resize = config.image_size, None
    load = dict(data_dir=config.data_dir, val_fraction=config.val_fraction, seed=config.seed,
                max_train=config.max_train)
    if size is None or dataset_info(config.dataset).family in ("medmnist", "ucr"):
        splits = load_dataset(config.dataset, size=size, **load)  # MedMNIST: file resolution
    else:
        splits = load_dataset(config.dataset, **load)
        n = sum(splits.sizes().values())
        if n * splits.in_channels * size * size * 4 > _BATCH_RESIZE_BYTES:
            batch_resize = size  # too big to resize eagerly: resize each batch on the device
        else:
            splits = dataclasses.replace(splits, **{f"x_{s}": resize_images(getattr(splits, f"x_{s}"), size)
                                                    for s in ("train", "val", "test")})
    y_train_clean, y_val_clean = splits.y_train.clone(), splits.y_val.clone()
    kind, rate = config.noise, float(config.rate)
    kwargs = _noise_kwargs(config, splits.x_train, splits.y_train, splits.num_classes)
    gen = engine.make_generator(config.seed, "noise-train")
    x_tr, y_tr, m_tr = inject_noise(splits.x_train, splits.y_train, kind, rate, splits.num_classes,
                                    generator=gen, **kwargs)
    val_kind = "none" if config.clean_val else kind
    gen = engine.make_generator(config.seed, "noise-val")
    x_va, y_va, m_va = inject_noise(splits.x_val, splits.y_val, val_kind, rate if val_kind != "none" else 0.0,
                                    splits.num_classes, generator=gen, **kwargs)
    if config.train_on_clean_only:
        keep = ~m_tr
        x_tr, y_tr, y_train_clean, m_tr = x_tr[keep], y_tr[keep], y_train_clean[keep], m_tr[keep]
    if config.val_shift:
        if splits.kind != "image":
            raise ValueError(f"val_shift applies to image datasets only, got dataset {config.dataset!r} "
                             f"of kind {splits.kind!r}")
        x_va = engine.shift_distribution(x_va, engine.make_generator(config.seed, "val-shift"))
    splits = dataclasses.replace(splits, x_train=x_tr, y_train=y_tr, x_val=x_va, y_val=y_va).normalized()
    noise_info = {"kind": kind, "rate": rate, "clean_val": config.clean_val, "label_noise": kind in LABEL_NOISE_KINDS,
                  "train_corrupted": m_tr, "val_corrupted": m_va, "y_train_clean": y_train_clean,
                  "y_val_clean": y_val_clean, "batch_resize": batch_resize}
    return splits, noise_info


# ------------------------------------------------------------------ paired comparison
def fit(config: TrainConfig, methods=METHODS, out_dir=None, resume: bool = False, progress: bool = True,
        callback=None, data=None) -> dict:
    """Train every method from the same seed, split, noise and initial weights.

    Parameters
    ----------
    config : TrainConfig
    methods : sequence of str or str
        Method names (``"both"`` or a comma list also accepted), see :func:`lilaw_edu.training.config.method_overrides`.
    out_dir : path-like, optional
        Checkpoints, ``results.json``, ``table.txt`` and ``curves.png`` go here.
    resume : bool
        Continue from the checkpoints in ``out_dir`` (needs ``out_dir``).
    progress : bool
        tqdm progress bars.
    callback : callable, optional
        Passed to :func:`run_method` (called after every epoch).
    data : tuple, optional
        ``(splits, noise_info)`` from :func:`prepare_data`, to skip loading again.

    Returns
    -------
    dict
        ``config`` (dict), ``methods`` ({name: :func:`run_method` result}), ``data`` (sizes, classes,
        notes), ``noise`` (kind, rate, counts, per-sample corrupted masks), ``init_state_sha256``,
        ``environment``. The same dict is written to ``out_dir/results.json``.
    """
    from lilaw_edu.training import results as report

    validate_config(config)
    methods = resolve_methods(methods)
    device = engine.resolve_device(config.device)
    if resume and out_dir is None:
        raise ValueError("resume=True needs out_dir (the folder holding the checkpoints)")
    was_deterministic, threads = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    devices = [torch.cuda.current_device()] if device.type == "cuda" else []
    if config.deterministic and device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS
    try:
        torch.use_deterministic_algorithms(config.deterministic, warn_only=True)
        if config.num_threads is not None:
            torch.set_num_threads(config.num_threads)
        with torch.random.fork_rng(devices=devices):
            splits, noise_info = data if data is not None else prepare_data(config)
            initial = initial_model(config, splits, noise_info.get("batch_resize"))
            init_state = copy.deepcopy(initial.state_dict())
            del initial
            runs = {m: run_method(config, m, splits, init_state, noise_info=noise_info, out_dir=out_dir,
                                  resume=resume, progress=progress, callback=callback) for m in methods}
    finally:
        torch.use_deterministic_algorithms(was_deterministic)
        torch.set_num_threads(threads)
    results = report.build_results(config, runs, splits, noise_info, engine.state_dict_sha256(init_state), device)
    if out_dir is not None:
        report.write_results(out_dir, results)
    return results
