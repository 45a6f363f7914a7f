"""Class maps for label noise: maps derived from class similarity, transition matrices.

Used by :func:`lilaw_edu.noise.inject.inject_label_noise` (``asymmetric`` and
``instance`` kinds). Hand-made maps of specific datasets (CIFAR-10, CIFAR-100)
are dataset facts: :mod:`lilaw_edu.datasets.class_maps`, reached through each
dataset's registry record (``dataset_info(name).confusable``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from lilaw_edu._internal.checks import check_class_indices, check_generator, check_int, check_num_classes

# ---------------------------------------------------------------- class maps
@torch.no_grad()
def asymmetric_transition_matrix(num_classes: int, *, generator: torch.Generator) -> Tensor:
    """Random class-dependent transition matrix for ``asymmetric`` noise.

    Row c is a Dirichlet(1) draw over the C - 1 classes other than c
    (normalised Exp(1) variables, ``-log(1 - U)``), with zero on the diagonal.

    Parameters
    ----------
    num_classes : int
        C >= 2.
    generator : torch.Generator
        Source of all randomness.

    Returns
    -------
    Tensor, shape (C, C), float64
        Rows sum to 1; ``T[c, c] = 0``. On ``generator``'s device.
    """
    check_num_classes(num_classes)
    check_generator(generator)
    shape = (num_classes, num_classes)
    uniform = torch.rand(shape, generator=generator, device=generator.device, dtype=torch.float64)
    exponential = -torch.log1p(-uniform)
    exponential.fill_diagonal_(0.0)
    return exponential / exponential.sum(dim=1, keepdim=True)


def _top_k_other_classes(similarity: Tensor, k: int) -> dict[int, list[int]]:
    num_classes = similarity.shape[0]
    check_int("k", k, low=1, high=num_classes - 1)
    similarity = similarity.clone().double()
    similarity.fill_diagonal_(-math.inf)
    top = similarity.topk(k, dim=1).indices
    return {c: top[c].tolist() for c in range(num_classes)}


@torch.no_grad()
def confusable_map_from_features(
    features: Tensor, labels: Tensor, num_classes: int, k: int = 1
) -> dict[int, list[int]]:
    """Derive an ``instance``-noise class map from class similarity.

    Each class is represented by the mean of its samples' features (for
    images, e.g. flattened pixels or a pretrained network's embeddings);
    its confusable classes are the ``k`` other classes whose means have the
    highest cosine similarity to it.

    Parameters
    ----------
    features : Tensor, shape (N, ...)
        Per-sample features; flattened to (N, D).
    labels : Tensor, shape (N,), int64
        Class of each sample; every class in [0, C) must occur.
    num_classes : int
        C.
    k : int
        Confusable classes per class, 1 <= k < C.

    Returns
    -------
    dict[int, list[int]]
        Class -> its k most similar other classes, most similar first.
    """
    check_num_classes(num_classes)
    check_class_indices("labels", labels, num_classes)
    if not isinstance(features, Tensor) or features.shape[0] != labels.shape[0]:
        shape = tuple(features.shape) if isinstance(features, Tensor) else type(features).__name__
        raise ValueError(f"features must be a tensor of shape (N={labels.shape[0]}, ...), got {shape}")
    counts = torch.bincount(labels, minlength=num_classes)
    if (counts == 0).any():
        missing = torch.nonzero(counts == 0).flatten().tolist()
        raise ValueError(f"labels must contain every class in [0, {num_classes}), got none of {missing}")
    means = _class_sums(features, labels, num_classes) / counts.to(features.device)[:, None]
    means = F.normalize(means, dim=1)
    return _top_k_other_classes(means @ means.T, k)


def _class_sums(features: Tensor, labels: Tensor, num_classes: int, chunk_bytes: int = 1 << 24) -> Tensor:
    """Per-class sums of the flattened features, (C, D) float64.

    float32/float64 features: one matrix product, no copy. Other dtypes (e.g. uint8
    images of a large data set): a chunk of rows at a time in float64, so no float
    copy of the whole set is ever made.
    """
    if features.dtype in (torch.float32, torch.float64):
        flat = features.reshape(features.shape[0], -1)
        one_hot = F.one_hot(labels.to(flat.device).long(), num_classes).to(flat.dtype)
        return (one_hot.T @ flat).double()
    step = max(1, chunk_bytes // (8 * max(1, features[:1].numel())))
    sums = None
    for start in range(0, features.shape[0], step):
        part = features[start:start + step].reshape(-1, features[:1].numel()).double()
        one_hot = F.one_hot(labels[start:start + step].to(part.device).long(), num_classes).double()
        sums = one_hot.T @ part if sums is None else sums + one_hot.T @ part
    return sums


def confusable_map_from_confusion(confusion: Tensor, k: int = 1) -> dict[int, list[int]]:
    """Derive an ``instance``-noise class map from a confusion matrix.

    Parameters
    ----------
    confusion : Tensor, shape (C, C)
        ``confusion[i, j]`` = how often true class i is predicted as j
        (counts or rates, e.g. from a model trained on clean data).
    k : int
        Confusable classes per class, 1 <= k < C.

    Returns
    -------
    dict[int, list[int]]
        Class -> the k classes it is most often mistaken for (diagonal ignored).
    """
    if not isinstance(confusion, Tensor) or confusion.ndim != 2 or confusion.shape[0] != confusion.shape[1]:
        shape = tuple(confusion.shape) if isinstance(confusion, Tensor) else type(confusion).__name__
        raise ValueError(f"confusion must be a square tensor of shape (C, C), got {shape}")
    return _top_k_other_classes(confusion, k)


def class_map_table(class_map: Mapping, num_classes: int) -> tuple[Tensor, Tensor]:
    """Check a class map and pack it as (C, L) padded table + (C,) lengths."""
    if not isinstance(class_map, Mapping):
        raise TypeError(f"class_map must be a dict class -> list of classes, got {type(class_map).__name__}")
    lists = []
    for c in range(num_classes):
        others = list(class_map.get(c, []))
        if not others or c in others or any(not 0 <= int(o) < num_classes for o in others):
            raise ValueError(
                f"class_map[{c}] must be a non-empty list of other classes "
                f"in [0, {num_classes}), got {others}"
            )
        lists.append([int(o) for o in others])
    width = max(len(o) for o in lists)
    table = torch.tensor([o + [o[0]] * (width - len(o)) for o in lists], dtype=torch.int64)
    return table, torch.tensor([len(o) for o in lists], dtype=torch.int64)

