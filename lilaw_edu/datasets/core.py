"""Shared pieces of the dataset loaders: the splits container, errors, checksums,
data-directory lookup and the seeded "-M" validation split.

Pixel convention: image inputs are float32 in [0, 1], shape (N, C, H, W), *not*
normalised, so that input noise (lilaw_edu.noise.inject) is applied before
normalisation. ``DatasetSplits.mean``/``std`` (per channel, computed on the
training split) are there for the normalisation that follows.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from lilaw_edu._internal.checks import check_choice, check_fraction, check_int

IMAGE_DTYPES = (torch.float32, torch.uint8)  # how loaders can return images

__all__ = [
    "DataError", "DatasetNotFoundError", "DatasetSplits", "normalize",
    "resolve_data_dir", "candidate_data_dirs", "file_digest", "verify_checksum",
    "split_off_validation", "subsample", "channel_stats", "cache_dir", "to_image_tensor",
    "resize_images", "resize_batch", "to_unit_float", "to_uint8", "IMAGE_DTYPES",
]


class DataError(ValueError):
    """A data file exists but is unusable: checksum mismatch, truncated or corrupted."""


class DatasetNotFoundError(DataError, FileNotFoundError):
    """The files of a dataset are not in any data directory that was searched."""


@dataclass
class DatasetSplits:
    """Train / validation / test tensors of one dataset.

    Attributes
    ----------
    x_train, x_val, x_test : Tensor, float32
        Images: shape (N, C, H, W), values in [0, 1], unnormalised.
        Series: shape (N, 1, T), z-normalised per series (UCR convention).
    y_train, y_val, y_test : Tensor, int64, shape (N,)
        Class ids in ``0 .. num_classes - 1``.
    num_classes : int
    class_names : list of str, length num_classes
    name : str
        Registry name, e.g. ``"ecg5000"``.
    kind : str
        ``"image"`` or ``"series"``.
    mean, std : Tensor, shape (C,)
        Per-channel mean and standard deviation of ``x_train``.
    notes : str
        Provenance and caveats (split used, "lossy JPEG", subsampling, ...).
    """

    x_train: Tensor
    y_train: Tensor
    x_val: Tensor
    y_val: Tensor
    x_test: Tensor
    y_test: Tensor
    num_classes: int
    class_names: list
    name: str
    kind: str
    mean: Tensor
    std: Tensor
    notes: str = ""

    @property
    def input_shape(self) -> tuple:
        """Shape of one input, e.g. ``(1, 28, 28)`` or ``(1, 140)``."""
        return tuple(self.x_train.shape[1:])

    @property
    def in_channels(self) -> int:
        """Number of input channels C."""
        return int(self.x_train.shape[1])

    def sizes(self) -> dict:
        """Number of samples per split: ``{"train": int, "val": int, "test": int}``."""
        return {"train": len(self.y_train), "val": len(self.y_val), "test": len(self.y_test)}

    def class_counts(self, split: str = "train") -> Tensor:
        """Samples per class in ``split`` (``"train"``, ``"val"`` or ``"test"``), shape (num_classes,)."""
        if split not in ("train", "val", "test"):
            raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
        labels = getattr(self, f"y_{split}")
        return torch.bincount(labels, minlength=self.num_classes)

    def normalized(self) -> "DatasetSplits":
        """Copy with every ``x_*`` normalised by the training ``mean``/``std`` (uint8 pixels read as / 255)."""
        return dataclasses.replace(
            self,
            x_train=normalize(to_unit_float(self.x_train), self.mean, self.std),
            x_val=normalize(to_unit_float(self.x_val), self.mean, self.std),
            x_test=normalize(to_unit_float(self.x_test), self.mean, self.std),
            notes=(self.notes + " Normalised with training mean/std.").strip(),
        )


def normalize(x: Tensor, mean: Tensor, std: Tensor, *, inplace: bool = False) -> Tensor:
    """Per-channel ``(x - mean) / std``.

    Parameters
    ----------
    x : Tensor, shape (N, C, H, W) or (N, C, T)
    mean, std : Tensor or sequence of float, shape (C,)
    inplace : bool
        Overwrite ``x`` (a float tensor the caller owns) instead of allocating the result.

    Returns
    -------
    Tensor, same shape as ``x``.
    """
    mean = torch.as_tensor(mean, dtype=x.dtype, device=x.device)
    std = torch.as_tensor(std, dtype=x.dtype, device=x.device)
    if x.dim() < 3 or mean.shape != (x.shape[1],) or std.shape != mean.shape:
        raise ValueError(
            f"normalize needs x of shape (N, C, ...) and mean/std of shape (C,), "
            f"got x {tuple(x.shape)}, mean {tuple(mean.shape)}, std {tuple(std.shape)}")
    if bool((std <= 0).any()):
        raise ValueError(f"std must be > 0 in every channel, got {std.tolist()}")
    view = (1, -1) + (1,) * (x.dim() - 2)
    if inplace:
        return x.sub_(mean.view(view)).div_(std.view(view))
    return (x - mean.view(view)) / std.view(view)


def channel_stats(x: Tensor) -> tuple:
    """Per-channel mean and std (population) of ``x``, shape (N, C, ...) -> two (C,) tensors.

    uint8 images are read as pixels / 255 and counted exactly, a chunk at a time
    (no float copy of the data). A channel with zero spread gets std 1 so that
    normalising never divides by zero.
    """
    if x.dtype == torch.uint8:
        return _uint8_channel_stats(x)
    flat = x.transpose(0, 1).reshape(x.shape[1], -1).double()
    mean, std = flat.mean(dim=1), flat.std(dim=1, unbiased=False)
    std = torch.where(std > 0, std, torch.ones_like(std))
    return mean.float(), std.float()


def _uint8_channel_stats(x: Tensor, chunk_bytes: int = 1 << 24) -> tuple:
    """Exact per-channel mean/std of uint8 pixels / 255 from per-channel histograms."""
    channels = x.shape[1]
    counts = torch.zeros(channels, 256, dtype=torch.float64)
    step = max(1, chunk_bytes // max(1, x[:1].numel()))
    for start in range(0, x.shape[0], step):
        part = x[start:start + step].transpose(0, 1).reshape(channels, -1)
        counts += torch.stack([torch.bincount(row, minlength=256) for row in part]).double()
    levels = torch.arange(256, dtype=torch.float64) / 255.0
    n = counts.sum(dim=1)
    mean = (counts * levels).sum(dim=1) / n
    std = ((counts * (levels - mean[:, None]) ** 2).sum(dim=1) / n).sqrt()
    std = torch.where(std > 0, std, torch.ones_like(std))
    return mean.float(), std.float()


# ----------------------------------------------------------------- directories

def _repo_shared_data() -> Path:
    return Path(__file__).resolve().parents[2].parent / "shared" / "data"


def cache_dir() -> Path:
    """``$LILAW_CACHE_DIR`` or ``~/.cache/lilaw_edu`` (not created here)."""
    return Path(os.environ.get("LILAW_CACHE_DIR", Path.home() / ".cache" / "lilaw_edu"))


def candidate_data_dirs(data_dir=None) -> list:
    """Data directories in lookup order.

    Order: ``data_dir`` argument, then ``$LILAW_DATA_DIR``, then
    ``<repo>/../shared/data`` if it exists, then ``~/.cache/lilaw_edu``.
    When ``data_dir`` is given only it is searched, so an explicit choice is never
    silently replaced by another copy.
    """
    if data_dir is not None:
        return [Path(data_dir).expanduser()]
    dirs = []
    if os.environ.get("LILAW_DATA_DIR"):
        dirs.append(Path(os.environ["LILAW_DATA_DIR"]).expanduser())
    shared = _repo_shared_data()
    if shared.is_dir():
        dirs.append(shared)
    dirs.append(cache_dir())
    return dirs


def resolve_data_dir(data_dir=None) -> Path:
    """The directory downloads go to: ``data_dir``, else ``$LILAW_DATA_DIR``, else the cache."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    if os.environ.get("LILAW_DATA_DIR"):
        return Path(os.environ["LILAW_DATA_DIR"]).expanduser()
    return cache_dir()


def find_file(relative_paths, data_dir=None):
    """First existing ``dir / rel`` over the candidate dirs and ``relative_paths``, else None."""
    for base in candidate_data_dirs(data_dir):
        for rel in relative_paths:
            path = base / rel
            if path.exists():
                return path
    return None


def not_found(name: str, expected: list, data_dir, fetch: str) -> DatasetNotFoundError:
    """Build the one-line 'missing dataset' error naming the paths and the fetch command.

    ``expected`` holds paths relative to a data directory; ``DIR`` in ``fetch``
    is replaced by the directory the files should go to.
    """
    target = resolve_data_dir(data_dir)
    searched = ", ".join(str(d) for d in candidate_data_dirs(data_dir))
    where = " and ".join(str(target / rel) for rel in expected)
    return DatasetNotFoundError(
        f"dataset {name!r} not found (searched: {searched}). Put the files at {where} "
        f"(or set LILAW_DATA_DIR / pass data_dir to a folder holding them); on a machine with "
        f"internet fetch them with: {fetch.replace('DIR', str(target))}")


# ------------------------------------------------------------------ checksums

def file_digest(path, algorithm: str = "sha256") -> str:
    """Hex digest (``"sha256"`` or ``"md5"``) of the file at ``path``."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_checksum(path, expected, algorithm: str, fix: str) -> None:
    """Raise DataError unless the ``algorithm`` digest of ``path`` equals ``expected``.

    ``expected=None`` skips the check (unknown file, e.g. a user-made fixture).
    """
    if expected is None:
        return
    got = file_digest(path, algorithm)
    if got != expected:
        raise DataError(
            f"{algorithm} mismatch for {path}: expected {expected}, got {got}. "
            f"The file is corrupted, truncated or a different version. Fix: {fix}")


# ---------------------------------------------------------------------- splits

def split_off_validation(x: Tensor, y: Tensor, val_fraction: float, seed: int,
                         stratify: bool = False) -> tuple:
    """Hold out a seeded ``val_fraction`` of ``(x, y)`` as validation (the paper's "-M" split).

    Parameters
    ----------
    x : Tensor, shape (N, ...)
    y : Tensor, int64, shape (N,)
    val_fraction : float in (0, 1)
        ``round(val_fraction * N)`` samples go to validation (per class when
        ``stratify``, so the total may differ from the global rounding by a few).
    seed : int
        Seeds a ``torch.Generator``; same seed, same split.
    stratify : bool
        Keep class proportions in both parts.

    Returns
    -------
    x_train, y_train, x_val, y_val : Tensor
        Both parts keep the original order of the samples they contain.
    """
    check_fraction("val_fraction", val_fraction, open_interval=True)
    seed = check_int("seed", seed)
    gen = torch.Generator().manual_seed(int(seed))
    if stratify:
        val_parts = []
        for c in torch.unique(y).tolist():
            idx = torch.nonzero(y == c).flatten()
            k = int(round(val_fraction * len(idx)))
            val_parts.append(idx[torch.randperm(len(idx), generator=gen)[:k]])
        val_idx = torch.cat(val_parts)
    else:
        n_val = int(round(val_fraction * len(y)))
        val_idx = torch.randperm(len(y), generator=gen)[:n_val]
    is_val = torch.zeros(len(y), dtype=torch.bool)
    is_val[val_idx] = True
    if is_val.all() or not is_val.any():
        raise ValueError(f"val_fraction={val_fraction} leaves an empty split of {len(y)} samples")
    return x[~is_val], y[~is_val], x[is_val], y[is_val]


def subsample(x: Tensor, y: Tensor, max_count, seed: int) -> tuple:
    """Seeded random subset of at most ``max_count`` samples (original order kept)."""
    if max_count is None:
        return x, y
    if check_int("max_train", max_count, low=1) >= len(y):
        return x, y
    gen = torch.Generator().manual_seed(int(seed) + 1)
    keep = torch.randperm(len(y), generator=gen)[:max_count].sort().values
    return x[keep], y[keep]


def to_image_tensor(arr: np.ndarray, dtype: torch.dtype = torch.float32) -> Tensor:
    """uint8 images (N, H, W) or (N, H, W, C) -> (N, C, H, W).

    ``dtype=torch.float32``: values in [0, 1]. ``dtype=torch.uint8``: the pixels
    0..255 without a copy (a channels-last view of ``arr``).
    """
    check_choice("dtype", dtype, IMAGE_DTYPES)
    if arr.ndim == 3:
        arr = arr[:, :, :, None]
    if dtype == torch.uint8:
        return torch.from_numpy(arr).permute(0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(0, 3, 1, 2))).float().div_(255.0)


def to_unit_float(x: Tensor) -> Tensor:
    """uint8 pixels (0..255) -> float32 in [0, 1]; float tensors are returned unchanged."""
    if x.dtype == torch.uint8:
        return x.float().div_(255.0)
    if not x.is_floating_point():
        raise TypeError(f"images must be uint8 or floating point, got dtype {x.dtype}")
    return x


def to_uint8(x: Tensor) -> Tensor:
    """Float pixels in [0, 1] -> uint8 (rounded to the nearest of 0..255)."""
    return x.mul(255.0).round_().clamp_(0, 255).to(torch.uint8)


def resize_batch(x: Tensor, size) -> Tensor:
    """Bilinear (antialiased) resize of float pixels (N, C, H, W) in [0, 1] to ``size``, clamped to [0, 1].

    ``size=None`` or an equal size returns ``x`` unchanged. No size limit: see :func:`resize_images`.
    """
    if size is None or tuple(x.shape[-2:]) == (size, size):
        return x
    check_int("size", size, low=1)
    out = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear",
                                          align_corners=False, antialias=True)
    return out.clamp_(0.0, 1.0)


def resize_images(x: Tensor, size) -> Tensor:
    """Bilinear (antialiased) resize of (N, C, H, W) in [0, 1] to (N, C, size, size), clamped to [0, 1].

    Refuses results over 2 GiB: resize per batch in the training loop instead.
    """
    if size is None or tuple(x.shape[-2:]) == (size, size):
        return x
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive int or None, got {size!r}")
    nbytes = x.shape[0] * x.shape[1] * size * size * 4
    if nbytes > 2 * 2**30:
        raise ValueError(
            f"size={size} would need {nbytes / 2**30:.1f} GiB for {x.shape[0]} images; "
            "keep the images stored and resize each batch instead (lilaw_edu.datasets.inputs.InputTransform)")
    return resize_batch(x, size)
