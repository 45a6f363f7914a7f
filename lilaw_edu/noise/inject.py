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
  classes (a dataset's ``lilaw_edu.datasets.registry.dataset_info(name).confusable``,
  e.g. ``lilaw_edu.datasets.class_maps.CIFAR10_CONFUSABLE``) or one derived from class similarity
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
from numbers import Real

import torch
from torch import Tensor

from lilaw_edu.noise import image_ops
from lilaw_edu._internal.checks import check_choice, check_class_indices, check_fraction, check_generator, check_num_classes
from lilaw_edu.noise.checks import check_inputs, check_pool, check_unit_range, select_samples
from lilaw_edu.noise.maps import asymmetric_transition_matrix, class_map_table, confusable_map_from_features

LABEL_NOISE_KINDS = ("uniform", "asymmetric", "adjacent", "instance")
INPUT_NOISE_KINDS = ("far_ood", "domain_shift", "ood_covariate", "zoom_shift", "crop_shift")
SERIES_NOISE_KINDS = ("gaussian",)
NOISE_KINDS = ("none",) + LABEL_NOISE_KINDS + INPUT_NOISE_KINDS + SERIES_NOISE_KINDS

__all__ = ["INPUT_NOISE_KINDS", "LABEL_NOISE_KINDS", "NOISE_KINDS", "SERIES_NOISE_KINDS",
           "inject_input_noise", "inject_label_noise", "inject_noise"]



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
        non-empty list without itself), e.g. ``lilaw_edu.datasets.class_maps.CIFAR10_CONFUSABLE``.
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
    check_choice("kind", kind, LABEL_NOISE_KINDS)
    check_fraction("rate", rate)
    check_num_classes(num_classes)
    check_class_indices("labels", labels, num_classes)
    check_generator(generator)
    if kind == "instance" and class_map is None:
        if features is None:
            raise ValueError(
                "class_map must be given for kind='instance' (e.g. lilaw_edu.datasets.class_maps.CIFAR10_CONFUSABLE), "
                "or features "
                "to derive one with confusable_map_from_features; got class_map=None, features=None"
            )
        class_map = confusable_map_from_features(features, labels, num_classes)
    table = class_map_table(class_map, num_classes) if kind == "instance" else None
    index, mask = select_samples(labels.shape[0], rate, generator, labels.device)
    old = labels[index].to(device=generator.device, dtype=torch.int64)
    new = _new_labels(old, kind, num_classes, generator, always_change, table)
    noisy = labels.clone()
    noisy[index] = new.to(device=labels.device, dtype=labels.dtype)
    return noisy, mask


# ---------------------------------------------------------------- input noise
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
      :func:`lilaw_edu.noise.image_ops.cartoon_filter` (median blur, adaptive
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
    check_choice("kind", kind, INPUT_NOISE_KINDS + SERIES_NOISE_KINDS)
    check_fraction("rate", rate)
    check_inputs(inputs)
    check_generator(generator)
    if isinstance(sigma, bool) or not isinstance(sigma, Real) or not sigma >= 0 or math.isinf(sigma):
        raise ValueError(f"sigma must be a finite number >= 0, got {sigma!r}")
    is_image = inputs.ndim == 4
    if is_image != (kind in INPUT_NOISE_KINDS):
        allowed = INPUT_NOISE_KINDS if is_image else SERIES_NOISE_KINDS
        shape = tuple(inputs.shape)
        raise ValueError(f"kind must be one of {allowed} for inputs of shape {shape}, got {kind!r}")
    if is_image:
        check_unit_range("inputs", inputs)
    if kind == "far_ood":
        check_pool(far_ood_pool)
    index, mask = select_samples(inputs.shape[0], rate, generator, inputs.device)
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
    check_choice("kind", kind, NOISE_KINDS)
    for name, tensor in (("x", x), ("y", y)):
        if not isinstance(tensor, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y must have the same length N, got {x.shape[0]} and {y.shape[0]}")
    if kind in LABEL_NOISE_KINDS:
        y_noisy, mask = inject_label_noise(y, kind, rate, num_classes, generator=generator, **kwargs)
        return x.clone(), y_noisy, mask
    if kind == "none":
        check_fraction("rate", rate)
        check_generator(generator)
        return x.clone(), y.clone(), torch.zeros(y.shape[0], dtype=torch.bool, device=y.device)
    x_noisy, mask = inject_input_noise(x, kind, rate, generator=generator, **kwargs)
    return x_noisy, y.clone(), mask
