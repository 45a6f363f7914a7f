"""Dataset loaders: one call per dataset returns train / validation / test tensors.

>>> from lilaw_edu.datasets import load_dataset
>>> splits = load_dataset("ecg5000")        # doctest: +SKIP
>>> splits.x_train.shape, splits.sizes()    # doctest: +SKIP
(torch.Size([425, 1, 140]), {'train': 425, 'val': 75, 'test': 4500})

Splits (documented choice):

* "-M" split (paper §4.1): a seeded ``val_fraction`` of the *official training
  set* is held out as validation (``torch.Generator().manual_seed(seed)``); the
  official test set is untouched. Used for ECG5000, CIFAR-10/100, MNIST,
  FashionMNIST and the CIFAR-10 JPEG subset.
* MedMNIST keeps its official validation split (as MedMNIST and the paper do).
  With ``use_official_val=False`` the official train and val are pooled and a
  seeded ``val_fraction`` of the pool becomes validation.
* digits has no official split: a fixed 25 % test set (seed 0, the same for all
  seeds), then ``val_fraction`` of the *whole* set (15 % by default) drawn with
  ``seed`` from the rest: 60/15/25 by default.

Nothing here downloads unless ``download=True`` is passed (or
``data_scripts/download.py`` is run on a connected machine).
"""
from __future__ import annotations

import torch

from lilaw_edu._internal.checks import check_choice, check_fraction

from .core import (DataError, DatasetNotFoundError, DatasetSplits, cache_dir, candidate_data_dirs,
                   IMAGE_DTYPES, channel_stats, find_file, normalize, resize_images, split_off_validation, subsample)
from .ecg import ecg5000_parts, locate_ecg5000
from .image import JPEG_ZIP, cifar10_jpeg_parts, cifar_parts, digits_parts, mnist_parts
from .medmnist import locate_medmnist, medmnist_parts
from .registry import DATASET_NAMES, REGISTRY, dataset_info

__all__ = ["DatasetSplits", "DataError", "DatasetNotFoundError", "load_dataset", "list_datasets",
           "normalize", "resize_images", "DATASET_NAMES", "split_off_validation",
           "candidate_data_dirs", "cache_dir"]


def _parts(name, data_dir, size, verify, download, dtype):
    family = REGISTRY[name].family
    check_choice("dtype", dtype, IMAGE_DTYPES)
    if dtype != torch.float32 and family in ("ucr", "sklearn"):
        raise ValueError(f"dtype must be torch.float32 for {name!r} (not stored as 8-bit images), got {dtype}")
    if family == "ucr":
        if size is not None:
            raise ValueError(f"size must be None for ecg5000 (fixed length 140), got {size!r}")
        return ecg5000_parts(data_dir, verify=verify, download=download)
    if family == "medmnist":
        return medmnist_parts(name, data_dir, size=size, verify=verify, download=download, dtype=dtype)
    if family == "sklearn":
        return digits_parts()
    if family == "cifar-jpeg":
        return cifar10_jpeg_parts(data_dir, verify=verify, dtype=dtype)
    if family == "cifar":
        return cifar_parts(name, data_dir, verify=verify, download=download, dtype=dtype)
    return mnist_parts(name, data_dir, verify=verify, download=download, dtype=dtype)


def _digits_split(parts, val_fraction, seed, stratify):
    x, y = parts.pop("x_all"), parts.pop("y_all")
    rest_x, rest_y, x_te, y_te = split_off_validation(x, y, 0.25, seed=0, stratify=stratify)
    if check_fraction("val_fraction", val_fraction, open_interval=True) >= 0.75:
        raise ValueError(f"val_fraction for digits must be in (0, 0.75), got {val_fraction!r}")
    x_tr, y_tr, x_va, y_va = split_off_validation(rest_x, rest_y, val_fraction / 0.75, seed, stratify)
    parts.update(x_train=x_tr, y_train=y_tr, x_val=x_va, y_val=y_va, x_test=x_te, y_test=y_te)
    parts["notes"] += (f" No official split: fixed 25% test (seed 0), {val_fraction:.0%} of all "
                       f"samples as validation (seed {seed}).")


def load_dataset(name: str, *, data_dir=None, val_fraction: float = 0.15, seed: int = 0,
                 size=None, use_official_val: bool = True, max_train=None,
                 stratify: bool = False, verify: bool = True, download: bool = False,
                 dtype: torch.dtype = torch.float32) -> DatasetSplits:
    """Load one dataset as train / validation / test tensors.

    Parameters
    ----------
    name : str
        One of :data:`DATASET_NAMES`: ``"digits"``, ``"ecg5000"``, ``"cifar10-jpeg"``,
        ``"cifar10"``, ``"cifar100"``, ``"mnist"``, ``"fashionmnist"`` or a MedMNIST
        flag (``"breastmnist"``, ``"pneumoniamnist"``, ``"pathmnist"``, ...).
    data_dir : path-like, optional
        Searched alone when given; otherwise ``$LILAW_DATA_DIR``,
        ``<repo>/../shared/data``, ``~/.cache/lilaw_edu`` in that order.
    val_fraction : float in (0, 1)
        Share of the official training set held out as validation ("-M" split).
        Ignored for MedMNIST unless ``use_official_val=False``.
    seed : int
        Seeds the validation split (and ``max_train`` subsampling).
    size : int, optional
        MedMNIST: file resolution, one of 28, 64, 128, 224 (MedMNIST+).
        Other images: eager bilinear resize to ``size x size`` (refused above 2 GiB;
        resize per batch with :func:`resize_images` instead). Not allowed for ECG5000.
    use_official_val : bool
        MedMNIST only: keep the official validation split (default) or pool
        train+val and hold out ``val_fraction`` with ``seed``.
    max_train : int, optional
        Keep a seeded random subset of at most this many training samples
        (after the validation split).
    stratify : bool
        Keep class proportions when splitting off validation.
    verify : bool
        Check file checksums (sha256/MD5) against the official values.
    download : bool
        Fetch missing files into the data directory (needs internet).
    dtype : torch.dtype
        Images: ``torch.float32`` (values in [0, 1]) or ``torch.uint8`` (pixels 0..255,
        a quarter of the memory; not with ``size`` except MedMNIST's file resolution,
        and not for digits or ECG5000). See :mod:`lilaw_edu.datasets.inputs`.

    Returns
    -------
    DatasetSplits
        ``x_*`` float32: images (N, C, H, W) in [0, 1] unnormalised (uint8 0..255 with
        ``dtype=torch.uint8``); series (N, 1, T) z-normalised. ``y_*`` int64 (N,).
        ``mean``/``std`` (C,) of the pixels in [0, 1] of ``x_train``.

    Raises
    ------
    DatasetNotFoundError
        Files missing; the message names the expected paths and the fetch command.
    DataError
        Checksum mismatch, truncated or corrupted file.
    ValueError
        Unknown name or bad argument.
    """
    info = dataset_info(name, param="name")
    if dtype == torch.uint8 and size is not None and info.family != "medmnist":
        raise ValueError(f"size must be None with dtype=torch.uint8 for {name!r} (resize each batch with "
                         f"lilaw_edu.datasets.inputs.InputTransform), got {size!r}")
    parts = _parts(name, data_dir, size, verify, download, dtype)
    if name == "digits":
        _digits_split(parts, val_fraction, seed, stratify)
    elif info.family == "medmnist":
        if use_official_val:
            parts["notes"] += " Official MedMNIST validation split."
        else:
            x = torch.cat([parts["x_train"], parts["x_val"]])
            y = torch.cat([parts["y_train"], parts["y_val"]])
            parts["x_train"], parts["y_train"], parts["x_val"], parts["y_val"] = \
                split_off_validation(x, y, val_fraction, seed, stratify)
            parts["notes"] += f" Official train+val pooled, {val_fraction:.0%} held out (seed {seed})."
    else:
        parts["x_train"], parts["y_train"], parts["x_val"], parts["y_val"] = split_off_validation(
            parts["x_train"], parts["y_train"], val_fraction, seed, stratify)
        parts["notes"] += f" '-M' split: {val_fraction:.0%} of official train as validation (seed {seed})."
    if max_train is not None and max_train < len(parts["y_train"]):
        parts["x_train"], parts["y_train"] = subsample(parts["x_train"], parts["y_train"], max_train, seed)
        parts["notes"] += f" Training set subsampled to {max_train}."
    if size is not None and parts["kind"] == "image" and info.family != "medmnist":
        for split in ("train", "val", "test"):
            parts[f"x_{split}"] = resize_images(parts[f"x_{split}"], size)
        parts["notes"] += f" Resized to {size}x{size} (bilinear, antialiased)."
    mean, std = channel_stats(parts["x_train"])
    return DatasetSplits(name=name, mean=mean, std=std, **parts)


def _available(name, data_dir) -> bool:
    if name == "digits":
        return True
    if name == "ecg5000":
        return locate_ecg5000(data_dir) is not None
    if REGISTRY[name].family == "medmnist":
        return locate_medmnist(name, 28, data_dir) is not None
    if name == "cifar10-jpeg":
        return find_file([JPEG_ZIP, JPEG_ZIP.name], data_dir) is not None
    folders = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python",
               "mnist": "MNIST/raw", "fashionmnist": "FashionMNIST/raw"}
    return find_file([f"{name}/{folders[name]}", folders[name]], data_dir) is not None


def list_datasets(data_dir=None) -> list:
    """Every known dataset and whether its files are present (nothing is read or downloaded).

    Returns
    -------
    list of dict
        Keys ``name``, ``kind``, ``num_classes``, ``available`` (bool), ``source``, ``licence``.
    """
    return [dict(name=name, kind=info.kind, num_classes=info.num_classes, available=_available(name, data_dir),
                 source=info.source, licence=info.licence) for name, info in REGISTRY.items()]
