"""From stored images to the model input, one batch at a time (the paper-scale input path).

Small data sets are normalised once, in memory (``DatasetSplits.normalized``). Large
ones (MedMNIST+ at 224 px, CIFAR/MNIST resized to 224 px for the ViT) are *streamed*:
the images stay uint8 at their stored size (on the device when they fit, else in
pinned host memory) and every batch goes through :class:`InputTransform` on the
device:

1. uint8 -> float32 in [0, 1] (``x / 255``, the same values as the eager path);
2. bilinear, antialiased resize to ``size`` and clamp to [0, 1], *in pixel space*;
3. per-channel normalisation with the training mean/std.

Resizing before normalising matters: the old per-batch path normalised first and
then resized with ``clamp(0, 1)``, which set every negative normalised value to 0
(about 58 % exact zeros and 15 % exact ones at 224 px on CIFAR-like data).
Memory: ``N·C·H·W`` bytes for the stored set plus a few float batches, instead of
two float32 copies (about 60 GiB each for PathMNIST at 224 px).
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from .core import normalize, resize_batch, to_unit_float
from .registry import dataset_info

__all__ = ["InputTransform", "model_input", "stored_nbytes", "streamed", "STREAM_ABOVE_BYTES"]

#: Stream a data set (uint8 storage, per-batch conversion) when its float32 copy at the
#: model's input size would exceed this many bytes.
STREAM_ABOVE_BYTES = 1 << 30


def stored_nbytes(*tensors: Tensor) -> int:
    """Bytes held by ``tensors`` (``numel * element_size``)."""
    return sum(t.numel() * t.element_size() for t in tensors)


def model_input(x: Tensor, mean, std, size: int | None = None) -> Tensor:
    """Turn a stored batch into the model input, on ``x``'s device.

    Parameters
    ----------
    x : Tensor, shape (B, C, H, W)
        uint8 pixels 0..255, or float pixels in [0, 1] (not normalised).
    mean, std : sequence of float or Tensor, shape (C,)
        Training-set statistics of the pixels in [0, 1].
    size : int, optional
        Output side; the batch is resized (bilinear, antialiased, clamped to [0, 1])
        *before* normalising. None: keep the stored size.

    Returns
    -------
    Tensor, float32, shape (B, C, size, size) (or (B, C, H, W))
        ``(pixels - mean) / std``: values in ``[-mean/std, (1 - mean)/std]`` per channel.
    """
    pixels = resize_batch(to_unit_float(x), size)
    return normalize(pixels, mean, std, inplace=pixels is not x)  # a fresh tensor is normalised in place


def streamed(name: str, size: int | None) -> bool:
    """Whether dataset ``name`` fed at ``size`` px is kept as uint8 and converted per batch.

    True for 8-bit image sets whose float32 copy at ``size`` (all official splits,
    counted from the registry) exceeds :data:`STREAM_ABOVE_BYTES`, e.g. every
    MedMNIST+ set but BreastMNIST at 224 px and CIFAR/MNIST at 224 px. ``size=None``
    (native size, the CPU presets): False.
    """
    info = dataset_info(name)
    if size is None or info.kind != "image" or info.family == "sklearn":
        return False
    count = info.n_train + (info.n_val or 0) + (info.n_test or 0)
    return count * info.channels * size * size * 4 > STREAM_ABOVE_BYTES


@dataclass(frozen=True)
class InputTransform:
    """:func:`model_input` with fixed statistics and size: ``transform(batch) -> model input``.

    Attributes
    ----------
    mean, std : tuple of float, length C
    size : int or None
    """

    mean: tuple
    std: tuple
    size: int | None = None

    def __call__(self, x: Tensor) -> Tensor:
        return model_input(x, self.mean, self.std, self.size)
