"""Paired training of the baseline and LiLAW (paper Algorithm 1) from one config.

>>> from lilaw_edu.training.config import config_from_preset
>>> from lilaw_edu.training.fit import fit
>>> results = fit(config_from_preset("cpu-digits", noise="uniform", rate=0.4))   # doctest: +SKIP
>>> results["methods"]["lilaw"]["metrics"]["test"]["top1"]                       # doctest: +SKIP

:func:`fit` loads the data once, injects the noise once (training and
validation splits, never test), builds the model once and gives every method a
copy of the *same* initial weights, so differences between methods come from
the method alone. :func:`run_method` trains one method: the checkpoint is selected
by ``select_by`` (validation loss, accuracy or the last epoch; ties go to the later
epoch), optionally with early stopping (``patience``), and the test set is evaluated
on the selected checkpoint and on the last epoch.
"""
from __future__ import annotations

import copy
import dataclasses
import os

import torch

from lilaw_edu.training import engine, pretrain
from lilaw_edu.training.config import METHODS, TrainConfig, resolve_methods, validate_config
from lilaw_edu.datasets import load_dataset
from lilaw_edu.datasets.core import resize_images, to_uint8, to_unit_float
from lilaw_edu.datasets.inputs import InputTransform, streamed
from lilaw_edu.datasets.registry import dataset_info
from lilaw_edu.training.loop import initial_model, run_method
from lilaw_edu.noise.inject import LABEL_NOISE_KINDS, inject_noise
from lilaw_edu.noise.maps import confusable_map_from_features

__all__ = ["prepare_data", "fit", "check_out_dir"]

# ------------------------------------------------------------------ data
def _noise_kwargs(config: TrainConfig, x_train: torch.Tensor, y_train: torch.Tensor, num_classes: int) -> dict:
    """Extra arguments some noise kinds need (instance class map, far-OOD pool), shared by train and val."""
    if config.noise == "instance":
        class_map = dataset_info(config.dataset).confusable  # the registry's hand-made map, if any
        if class_map is not None:
            return {"class_map": class_map}
        # no hand-made map: each class -> its most similar class by mean training input (noise/maps.py documents how)
        return {"class_map": confusable_map_from_features(x_train, y_train, num_classes)}
    if config.noise == "far_ood":  # the registry's pool: digits for CIFAR/MedMNIST, CIFAR-10 JPEG for MNIST-like sets
        pool = load_dataset(dataset_info(config.dataset).far_ood_pool, data_dir=config.data_dir, seed=0)
        return {"far_ood_pool": pool.x_test[:1000]}
    return {}


def _load(config: TrainConfig) -> tuple:
    """``(splits, stream, batch_resize)``: float images resized and normalised once, or (large sets,
    :func:`lilaw_edu.datasets.inputs.streamed`) uint8 images converted per batch on the device."""
    size, family = config.image_size, dataset_info(config.dataset).family
    if config.pretrain != "none":  # half B of the training split (the backbone trains on half A)
        return pretrain.half_b_splits(config), False, None
    load = dict(data_dir=config.data_dir, val_fraction=config.val_fraction, seed=config.seed,
                max_train=config.max_train)
    if streamed(config.dataset, size):  # MedMNIST+: the file at `size`; others: stored size, resized per batch
        medmnist = family == "medmnist"
        splits = load_dataset(config.dataset, size=size if medmnist else None, dtype=torch.uint8, **load)
        return splits, True, None if medmnist else size
    if size is None or family in ("medmnist", "ucr"):
        return load_dataset(config.dataset, size=size, **load), False, None  # MedMNIST: file resolution
    splits = load_dataset(config.dataset, **load)
    return dataclasses.replace(splits, **{f"x_{s}": resize_images(getattr(splits, f"x_{s}"), size)
                                          for s in ("train", "val", "test")}), False, None


def _inject(x, y, kind, rate, num_classes, generator, kwargs) -> tuple:
    """:func:`inject_noise`; on uint8 images label kinds leave ``x`` uncopied and input kinds
    corrupt the pixels in [0, 1] and store them re-quantised to uint8."""
    if x.dtype != torch.uint8:
        return inject_noise(x, y, kind, rate, num_classes, generator=generator, **kwargs)
    if kind in LABEL_NOISE_KINDS or kind == "none":  # an empty (N, 0, H, W) view stands in for x
        _, y_noisy, mask = inject_noise(x[:, :0], y, kind, rate, num_classes, generator=generator, **kwargs)
        return x, y_noisy, mask
    x_noisy, y_noisy, mask = inject_noise(to_unit_float(x), y, kind, rate, num_classes, generator=generator, **kwargs)
    return to_uint8(x_noisy), y_noisy, mask


def prepare_data(config: TrainConfig) -> tuple:
    """Load the dataset, inject the configured noise and normalise.

    Noise hits the training split and, unless ``clean_val``, the validation
    split (each with its own generator derived from ``config.seed``); the test
    split is never corrupted. Images are corrupted in [0, 1] and normalised
    afterwards with the training mean/std. Large image sets
    (:func:`lilaw_edu.datasets.inputs.streamed`) stay uint8 and are resized (if needed)
    and normalised per batch by ``noise_info["input_transform"]``.

    Parameters
    ----------
    config : TrainConfig

    Returns
    -------
    splits : DatasetSplits
        Normalised (streamed sets: uint8 pixels); ``y_train``/``y_val`` are the labels trained
        and selected on.
    noise_info : dict
        ``kind``, ``rate``, ``clean_val``; ``train_corrupted``/``val_corrupted`` (bool (N,)),
        ``y_train_clean``/``y_val_clean`` (int64 (N,)), ``batch_resize`` (model input side when
        batches are resized, else None), ``input_transform`` (streamed sets: the
        :class:`~lilaw_edu.datasets.inputs.InputTransform` every batch goes through, else None).
    """
    validate_config(config)
    splits, stream, batch_resize = _load(config)
    y_train_clean, y_val_clean = splits.y_train.clone(), splits.y_val.clone()
    kind, rate = config.noise, float(config.rate)
    kwargs = _noise_kwargs(config, splits.x_train, splits.y_train, splits.num_classes)
    gen = engine.make_generator(config.seed, "noise-train")
    x_tr, y_tr, m_tr = _inject(splits.x_train, splits.y_train, kind, rate, splits.num_classes, gen, kwargs)
    val_kind = "none" if config.clean_val else kind
    gen = engine.make_generator(config.seed, "noise-val")
    x_va, y_va, m_va = _inject(splits.x_val, splits.y_val, val_kind, rate if val_kind != "none" else 0.0,
                               splits.num_classes, gen, kwargs)
    if config.train_on_clean_only:
        keep = ~m_tr
        x_tr, y_tr, y_train_clean, m_tr = x_tr[keep], y_tr[keep], y_train_clean[keep], m_tr[keep]
    if config.val_shift:
        if splits.kind != "image":
            raise ValueError(f"val_shift applies to image datasets only, got dataset {config.dataset!r} "
                             f"of kind {splits.kind!r}")
        shifted = engine.shift_distribution(to_unit_float(x_va), engine.make_generator(config.seed, "val-shift"))
        x_va = to_uint8(shifted) if stream else shifted
    splits = dataclasses.replace(splits, x_train=x_tr, y_train=y_tr, x_val=x_va, y_val=y_va)
    transform = InputTransform(tuple(splits.mean.tolist()), tuple(splits.std.tolist()), batch_resize) if stream else None
    splits = splits if stream else splits.normalized()
    noise_info = {"kind": kind, "rate": rate, "clean_val": config.clean_val, "label_noise": kind in LABEL_NOISE_KINDS,
                  "train_corrupted": m_tr, "val_corrupted": m_va, "y_train_clean": y_train_clean,
                  "y_val_clean": y_val_clean, "batch_resize": batch_resize, "input_transform": transform}
    return splits, noise_info


# ------------------------------------------------------------------ paired comparison
def check_out_dir(out_dir) -> None:
    """Before any work: ``out_dir`` must be a writable folder or creatable as one (nothing is created),
    and its ``checkpoints`` must be no file and its ``results.json``, ``table.txt``, ``curves.png`` no folders.

    Raises
    ------
    ValueError
        One line naming the path and what is wrong.
    """
    from pathlib import Path

    from lilaw_edu._internal.files import check_writable

    out = check_writable(out_dir, "out_dir")
    bad = [p for p in (out / "results.json", out / "table.txt", out / "curves.png") if p.is_dir()]
    if (out / "checkpoints").exists() and not (out / "checkpoints").is_dir():
        bad.append(out / "checkpoints")
    if bad:
        kind = "file" if bad[0].is_file() else "folder"
        raise ValueError(f"out_dir {Path(out)} holds {bad[0].name!r} of the wrong kind (a {kind}); "
                         f"remove it or choose another output folder")


def fit(config: TrainConfig, methods=METHODS, out_dir=None, resume: bool = False, progress: bool = True,
        callback=None, data=None, distributed=None) -> dict:
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
    distributed : lilaw_edu.training.ddp.Distributed, optional
        Under torchrun: DDP training; rank 0 alone writes (see :mod:`lilaw_edu.training.ddp`).

    Returns
    -------
    dict
        ``config`` (dict), ``methods`` ({name: :func:`run_method` result}), ``data`` (sizes, classes,
        notes), ``noise`` (kind, rate, counts, per-sample corrupted masks), ``init_state_sha256``,
        ``environment``; ``pretrain`` when ``config.pretrain`` is set (the backbone's SHA-256 and
        recipe, :func:`lilaw_edu.training.pretrain.ensure_backbone`). The same dict is written to ``out_dir/results.json``.
    """
    from lilaw_edu.training import results as report

    validate_config(config)
    methods = resolve_methods(methods)
    device = engine.resolve_device(config.device)
    if resume and out_dir is None:
        raise ValueError("resume=True needs out_dir (the folder holding the checkpoints)")
    if out_dir is not None:
        check_out_dir(out_dir)
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
            backbone = pretrain.apply_backbone(config, initial, progress)  # None unless config.pretrain
            init_state = copy.deepcopy(initial.state_dict())
            del initial
            runs = {m: run_method(config, m, splits, init_state, noise_info=noise_info, out_dir=out_dir,
                                  resume=resume, progress=progress, callback=callback,
                                  distributed=distributed) for m in methods}
    finally:
        torch.use_deterministic_algorithms(was_deterministic)
        torch.set_num_threads(threads)
    results = report.build_results(config, runs, splits, noise_info, engine.state_dict_sha256(init_state), device)
    if backbone is not None:
        results["pretrain"] = backbone  # the identity (SHA-256) of the pretrained weights (issue 16, part 3)
    if out_dir is not None and (distributed is None or distributed.is_writer):
        report.write_results(out_dir, results)
    return results
