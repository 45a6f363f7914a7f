"""H-CAT-style label and input noise, driven only by an explicit generator.

The paper (§4, Table 1) evaluates LiLAW under the noise kinds of H-CAT
(Seedat et al., 2024). Both injectors select exactly
``round(rate * N)`` samples uniformly without replacement
(``torch.randperm`` with the caller's ``torch.Generator``; Python's
``round``, i.e. halves go to the even integer) and corrupts only those.
It returns new tensors (inputs are never modified in place) together with
``corrupted_mask``, a bool tensor of shape (N,) that is True exactly on the
selected samples.

Label noise (``LABEL_NOISE_KINDS``):

* ``uniform``: new label uniform over all C classes, so a selected sample
  keeps its label with probability 1/C (as in H-CAT); the expected fraction
  actually changed is ``rate * (C - 1) / C``. ``always_change=True`` draws
  from the other C - 1 classes instead. ``noisy != labels`` gives the
  samples whose label really changed.
* ``asymmetric``: one random transition row per class, Dirichlet(1) over
  the other classes, zero on the diagonal (:func:`asymmetric_transition_matrix`).
* ``adjacent``: ``(y - 1) mod C`` or ``(y + 1) mod C`` with probability 1/2
  each (for C = 2 both are the other class).
* ``instance``: new label uniform over a hand-made list of confusable
  classes (``CIFAR10_CONFUSABLE``) or one derived from class similarity
  (:func:`confusable_map_from_features`, :func:`confusable_map_from_confusion`).

The last three always change the label.

Input noise (``INPUT_NOISE_KINDS`` for images, ``SERIES_NOISE_KINDS`` for
series): see :func:`inject_input_noise`.

Pixel convention: images are float in [0, 1] *before* any normalisation,
and noise is injected before normalising. H-CAT normalises CIFAR-10/MNIST to
[-1, 1] first and corrupts afterwards: its Gaussian kinds (``ood_covariate``,
``domain_shift``) then clip to [0, 1], so the whole dark half of the range
(every negative value) collapses to 0 except where the noise lifts it, and
its ``far_ood`` replacements arrive un-normalised in [0, 1]. We deliberately
do it the right way round. One consequence: H-CAT's std ``0.5 * max(x)`` with
max(x) = 1 on a range of width 2 is a quarter of the range, while the same
formula on [0, 1] is half of it; pass ``sigma=0.25`` to match H-CAT's
strength relative to the range.

Other differences from H-CAT's code: it selects ``int(rate * N)`` samples
for most kinds (we always use ``round``), crops ``int(H / 1.75)`` for
``zoom_shift`` (we use ``round``; the same for H = 28, 32 and 224), masks the median-blurred rather than the bilateral-filtered
image in its grey ``domain_shift`` branch, and its adjacent noise breaks for
C = 2.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from numbers import Integral, Real

import torch
import torch.nn.functional as F
from torch import Tensor

from . import image_ops

LABEL_NOISE_KINDS = ("uniform", "asymmetric", "adjacent", "instance")
INPUT_NOISE_KINDS = ("far_ood", "domain_shift", "ood_covariate", "zoom_shift", "crop_shift")
SERIES_NOISE_KINDS = ("gaussian",)
NOISE_KINDS = ("none",) + LABEL_NOISE_KINDS + INPUT_NOISE_KINDS + SERIES_NOISE_KINDS

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
#: Confusable CIFAR-10 classes (index -> list of indices), from the pairs
#: that dominate typical CIFAR-10 confusion matrices: cat<->dog,
#: automobile<->truck, deer<->horse, airplane<->bird/ship. No class lists
#: itself. (H-CAT's own map sends frog and truck to themselves, so those
#: labels never change, and its comments disagree with its entries.)
CIFAR10_CONFUSABLE = {
    0: [2, 8],  # airplane -> bird, ship
    1: [9],  # automobile -> truck
    2: [0, 4, 6],  # bird -> airplane, deer, frog
    3: [5],  # cat -> dog
    4: [7, 2],  # deer -> horse, bird
    5: [3],  # dog -> cat
    6: [2, 3],  # frog -> bird, cat
    7: [4, 5],  # horse -> deer, dog
    8: [0, 1],  # ship -> airplane, automobile
    9: [1],  # truck -> automobile
}


# ---------------------------------------------------------------- validation
def _check_generator(generator) -> None:
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")


def _check_rate(rate) -> None:
    if isinstance(rate, bool) or not isinstance(rate, Real):
        raise TypeError(f"rate must be a real number in [0, 1], got {rate!r}")
    if math.isnan(rate) or not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must be in [0, 1], got {rate}")


def _check_kind(kind, allowed: Sequence[str]) -> None:
    if kind not in allowed:
        raise ValueError(f"kind must be one of {tuple(allowed)}, got {kind!r}")


def _check_num_classes(num_classes) -> None:
    if isinstance(num_classes, bool) or not isinstance(num_classes, Integral):
        raise TypeError(f"num_classes must be an int >= 2, got {num_classes!r}")
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")


def _check_labels(labels, num_classes: int) -> None:
    if not isinstance(labels, Tensor):
        raise TypeError(f"labels must be a torch.Tensor, got {type(labels).__name__}")
    if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
        raise TypeError(f"labels must have an integer dtype (e.g. torch.int64), got {labels.dtype}")
    if labels.ndim != 1 or labels.numel() == 0:
        raise ValueError(f"labels must have shape (N,) with N >= 1, got shape {tuple(labels.shape)}")
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= num_classes:
        raise ValueError(f"labels must be in [0, num_classes={num_classes}), got values in [{low}, {high}]")


def _check_inputs(inputs) -> None:
    if not isinstance(inputs, Tensor):
        raise TypeError(f"inputs must be a torch.Tensor, got {type(inputs).__name__}")
    if not inputs.dtype.is_floating_point:
        raise TypeError(f"inputs must have a floating dtype, got {inputs.dtype}")
    is_series = inputs.ndim == 2 or (inputs.ndim == 3 and inputs.shape[1] == 1)
    if not (is_series or inputs.ndim == 4) or inputs.shape[0] == 0:
        raise ValueError(
            "inputs must have shape (N, C, H, W), (N, T) or (N, 1, T) with N >= 1, "
            f"got shape {tuple(inputs.shape)}"
        )
    if torch.isnan(inputs).any():
        raise ValueError("inputs must not contain NaN, got NaN values")


def _check_unit_range(name: str, images: Tensor) -> None:
    low, high = float(images.min()), float(images.max())
    if low < 0.0 or high > 1.0:
        raise ValueError(
            f"{name} must be in [0, 1] (pixels before normalisation), got values in [{low:.4g}, {high:.4g}]"
        )


def _select(num_samples: int, rate: float, generator: torch.Generator, device) -> tuple[Tensor, Tensor]:
    """Exactly round(rate * N) indices without replacement, and the matching mask."""
    num_selected = int(round(rate * num_samples))
    index = torch.randperm(num_samples, generator=generator, device=generator.device)[:num_selected]
    index = index.to(device)
    mask = torch.zeros(num_samples, dtype=torch.bool, device=device)
    mask[index] = True
    return index, mask


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
    _check_num_classes(num_classes)
    _check_generator(generator)
    shape = (num_classes, num_classes)
    uniform = torch.rand(shape, generator=generator, device=generator.device, dtype=torch.float64)
    exponential = -torch.log1p(-uniform)
    exponential.fill_diagonal_(0.0)
    return exponential / exponential.sum(dim=1, keepdim=True)


def _top_k_other_classes(similarity: Tensor, k: int) -> dict[int, list[int]]:
    num_classes = similarity.shape[0]
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k < num_classes:
        raise ValueError(f"k must be an int in [1, {num_classes - 1}], got {k!r}")
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
    _check_num_classes(num_classes)
    _check_labels(labels, num_classes)
    if not isinstance(features, Tensor) or features.shape[0] != labels.shape[0]:
        shape = tuple(features.shape) if isinstance(features, Tensor) else type(features).__name__
        raise ValueError(f"features must be a tensor of shape (N={labels.shape[0]}, ...), got {shape}")
    flat = features.reshape(features.shape[0], -1)
    if flat.dtype not in (torch.float32, torch.float64):
        flat = flat.float()  # no copy for float32/float64 features (they can be large)
    counts = torch.bincount(labels, minlength=num_classes)
    if (counts == 0).any():
        missing = torch.nonzero(counts == 0).flatten().tolist()
        raise ValueError(f"labels must contain every class in [0, {num_classes}), got none of {missing}")
    one_hot = F.one_hot(labels.to(flat.device).long(), num_classes).to(flat.dtype)
    means = (one_hot.T @ flat).double() / counts.to(flat.device)[:, None]
    means = F.normalize(means, dim=1)
    return _top_k_other_classes(means @ means.T, k)


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


def _class_map_table(class_map: Mapping, num_classes: int) -> tuple[Tensor, Tensor]:
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


# ---------------------------------------------------------------- label noise
def _new_labels(old: Tensor, kind: str, num_classes: int, generator, always_change: bool, table) -> Tensor:
    """New labels for the selected samples; ``old`` lives on the generator's device."""
    n, dev = old.shape[0], generator.device
    if kind == "uniform" and not always_change:
        return torch.randint(0, num_classes, (n,), generator=generator, device=dev)
    if kind == "uniform":
        return (old + torch.randint(1, num_classes, (n,), generator=generator, device=dev)) % num_classes
    if kind == "adjacent":
        step = 2 * torch.randint(0, 2, (n,), generator=generator, device=dev) - 1
        return (old + step) % num_classes
    if kind == "asymmetric":
        rows = asymmetric_transition_matrix(num_classes, generator=generator)[old]
        return torch.multinomial(rows, 1, generator=generator).flatten() if n else old.clone()
    table, lengths = (t.to(dev) for t in table)
    pick = (torch.rand(n, generator=generator, device=dev, dtype=torch.float64) * lengths[old]).long()
    return table[old, pick.clamp(max=table.shape[1] - 1)]


@torch.no_grad()
def inject_label_noise(
    labels: Tensor,
    kind: str,
    rate: float,
    num_classes: int,
    *,
    generator: torch.Generator,
    always_change: bool = False,
    class_map: Mapping[int, Sequence[int]] | None = None,
    features: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Corrupt exactly ``round(rate * N)`` labels, chosen uniformly at random.

    Parameters
    ----------
    labels : Tensor, shape (N,), integer dtype
        Clean labels in [0, C). Not modified.
    kind : str
        One of ``LABEL_NOISE_KINDS``: ``"uniform"``, ``"asymmetric"``,
        ``"adjacent"``, ``"instance"`` (see the module docstring).
    rate : float
        Fraction of samples to corrupt, in [0, 1].
    num_classes : int
        C >= 2.
    generator : torch.Generator
        The only source of randomness; the same seed gives the same result.
    always_change : bool
        ``uniform`` only: draw from the other C - 1 classes so every selected
        label changes. (The other kinds always change the label.)
    class_map : dict[int, list[int]], optional
        ``instance`` only: class -> confusable classes (every class needs a
        non-empty list without itself), e.g. ``CIFAR10_CONFUSABLE``.
    features : Tensor, shape (N, ...), optional
        ``instance`` only, used when ``class_map`` is None: the map is derived
        with :func:`confusable_map_from_features` (k = 1).

    Returns
    -------
    noisy_labels : Tensor, shape (N,)
        New tensor, same dtype and device as ``labels``.
    corrupted_mask : Tensor, shape (N,), bool
        True on the selected samples. For ``uniform`` a selected sample may
        keep its label (expected changed fraction ``rate * (C - 1) / C``);
        ``noisy_labels != labels`` marks those that changed.
    """
    _check_kind(kind, LABEL_NOISE_KINDS)
    _check_rate(rate)
    _check_num_classes(num_classes)
    _check_labels(labels, num_classes)
    _check_generator(generator)
    if kind == "instance" and class_map is None:
        if features is None:
            raise ValueError(
                "class_map must be given for kind='instance' (e.g. CIFAR10_CONFUSABLE), or features "
                "to derive one with confusable_map_from_features; got class_map=None, features=None"
            )
        class_map = confusable_map_from_features(features, labels, num_classes)
    table = _class_map_table(class_map, num_classes) if kind == "instance" else None
    index, mask = _select(labels.shape[0], rate, generator, labels.device)
    old = labels[index].to(device=generator.device, dtype=torch.int64)
    new = _new_labels(old, kind, num_classes, generator, always_change, table)
    noisy = labels.clone()
    noisy[index] = new.to(device=labels.device, dtype=labels.dtype)
    return noisy, mask


# ---------------------------------------------------------------- input noise
def _check_pool(far_ood_pool) -> None:
    if far_ood_pool is None:
        raise ValueError("far_ood_pool must be images (M, C, H, W) in [0, 1] for kind='far_ood', got None")
    if not isinstance(far_ood_pool, Tensor) or not far_ood_pool.dtype.is_floating_point:
        raise TypeError(f"far_ood_pool must be a float tensor, got {type(far_ood_pool).__name__}")
    if far_ood_pool.ndim != 4 or far_ood_pool.shape[0] == 0 or torch.isnan(far_ood_pool).any():
        shape = tuple(far_ood_pool.shape)
        raise ValueError(f"far_ood_pool must have shape (M, C, H, W), M >= 1, no NaN; got {shape}")
    _check_unit_range("far_ood_pool", far_ood_pool)


@torch.no_grad()
def inject_input_noise(
    inputs: Tensor,
    kind: str,
    rate: float,
    *,
    generator: torch.Generator,
    far_ood_pool: Tensor | None = None,
    sigma: float = 0.5,
) -> tuple[Tensor, Tensor]:
    """Corrupt exactly ``round(rate * N)`` inputs, chosen uniformly at random.

    Image kinds (``INPUT_NOISE_KINDS``; inputs (N, C, H, W) in [0, 1]):

    * ``far_ood``: replace with a random image (with replacement) from
      ``far_ood_pool`` (e.g. MNIST for CIFAR, CIFAR for MNIST), resized
      bilinearly and channel-matched (grey -> RGB repeats, RGB -> grey is the
      channel mean).
    * ``ood_covariate``: add Gaussian noise with std ``sigma * max(x)`` (per
      image; H-CAT: 0.5), clip to [0, 1].
    * ``domain_shift``: the ``ood_covariate`` noise, then the cartoon filter
      :func:`lilaw_edu.image_ops.cartoon_filter` (median blur, adaptive
      threshold edge mask, bilateral filter; H-CAT's OpenCV parameters).
    * ``zoom_shift``: centre crop of side ``round(H / 1.75)``, resized back
      bilinearly.
    * ``crop_shift``: shift right by ``round(10 * W / 32)`` pixels, zero fill.

    Series kind (``SERIES_NOISE_KINDS``; inputs (N, T) or (N, 1, T), any
    range, e.g. z-normalised ECG): ``gaussian`` adds noise with std
    ``sigma * std(x)`` per series and does not clip.

    Parameters
    ----------
    inputs : Tensor, shape (N, C, H, W), (N, T) or (N, 1, T), float
        Clean inputs. Not modified.
    kind : str
        One of ``INPUT_NOISE_KINDS`` (images) or ``SERIES_NOISE_KINDS`` (series).
    rate : float
        Fraction of samples to corrupt, in [0, 1].
    generator : torch.Generator
        The only source of randomness (selection, Gaussian noise, far-OOD
        picks); OpenCV and the geometric ops are deterministic.
    far_ood_pool : Tensor, shape (M, C', H', W'), optional
        Float images in [0, 1]; required for ``far_ood``.
    sigma : float
        Relative noise std for ``ood_covariate``, ``domain_shift`` and ``gaussian``.

    Returns
    -------
    noisy_inputs : Tensor, same shape, dtype and device as ``inputs``
        Unselected samples are exact copies; image kinds stay in [0, 1].
    corrupted_mask : Tensor, shape (N,), bool
        True on the selected samples.
    """
    _check_kind(kind, INPUT_NOISE_KINDS + SERIES_NOISE_KINDS)
    _check_rate(rate)
    _check_inputs(inputs)
    _check_generator(generator)
    if isinstance(sigma, bool) or not isinstance(sigma, Real) or not sigma >= 0 or math.isinf(sigma):
        raise ValueError(f"sigma must be a finite number >= 0, got {sigma!r}")
    is_image = inputs.ndim == 4
    if is_image != (kind in INPUT_NOISE_KINDS):
        allowed = INPUT_NOISE_KINDS if is_image else SERIES_NOISE_KINDS
        shape = tuple(inputs.shape)
        raise ValueError(f"kind must be one of {allowed} for inputs of shape {shape}, got {kind!r}")
    if is_image:
        _check_unit_range("inputs", inputs)
    if kind == "far_ood":
        _check_pool(far_ood_pool)
    index, mask = _select(inputs.shape[0], rate, generator, inputs.device)
    noisy = inputs.clone()
    if index.numel() == 0:
        return noisy, mask
    chosen = inputs[index]
    if is_image:
        noisy[index] = image_ops.corrupt_images(
            chosen, kind, generator=generator, far_ood_pool=far_ood_pool, sigma=float(sigma)
        )
    else:
        scale = sigma * chosen.std(dim=-1, keepdim=True, correction=0)
        noisy[index] = chosen + image_ops.gaussian_noise(chosen, scale, generator=generator)
    return noisy, mask


# ---------------------------------------------------------------- dispatch
def inject_noise(
    x: Tensor, y: Tensor, kind: str, rate: float, num_classes: int, *, generator: torch.Generator, **kwargs
) -> tuple[Tensor, Tensor, Tensor]:
    """Apply any noise kind to a dataset: label kinds touch ``y``, input kinds ``x``.

    Parameters
    ----------
    x : Tensor, shape (N, C, H, W), (N, T) or (N, 1, T), float
        Inputs (see :func:`inject_input_noise`).
    y : Tensor, shape (N,), integer dtype
        Labels in [0, C).
    kind : str
        ``"none"`` or one of ``NOISE_KINDS``.
    rate : float
        Fraction of samples to corrupt, in [0, 1].
    num_classes : int
        C >= 2.
    generator : torch.Generator
        The only source of randomness.
    **kwargs
        Passed on: ``always_change``, ``class_map``, ``features`` for label
        kinds; ``far_ood_pool``, ``sigma`` for input kinds.

    Returns
    -------
    x_noisy : Tensor, same shape as ``x``
    y_noisy : Tensor, shape (N,)
    corrupted_mask : Tensor, shape (N,), bool
        All False for ``"none"``. Both returned data tensors are new.
    """
    _check_kind(kind, NOISE_KINDS)
    for name, tensor in (("x", x), ("y", y)):
        if not isinstance(tensor, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y must have the same length N, got {x.shape[0]} and {y.shape[0]}")
    if kind in LABEL_NOISE_KINDS:
        y_noisy, mask = inject_label_noise(y, kind, rate, num_classes, generator=generator, **kwargs)
        return x.clone(), y_noisy, mask
    if kind == "none":
        _check_rate(rate)
        _check_generator(generator)
        return x.clone(), y.clone(), torch.zeros(y.shape[0], dtype=torch.bool, device=y.device)
    x_noisy, mask = inject_input_noise(x, kind, rate, generator=generator, **kwargs)
    return x_noisy, y.clone(), mask
