"""Deterministic image transforms behind the H-CAT input-noise kinds.

The transforms take a batch of images, shape (n, C, H, W), float in [0, 1]
(the pixel convention of :mod:`lilaw_edu.noise.inject`), and return a new batch of
the same dtype and device. They are deterministic; the only random draws
(Gaussian noise, far-OOD picks) are in :func:`gaussian_noise` and
:func:`corrupt_images` and go through the caller's ``torch.Generator``.
Which samples get corrupted is decided in :mod:`lilaw_edu.noise.inject`.

Parameters follow H-CAT (Seedat et al., 2024, ``src/perturbations.py`` and
``src/dataloader.py``): zoom factor 1.75, a 10-pixel shift at width 32,
and the cartoon filter's median blur 5, adaptive threshold (mean, block 9,
C 9) and bilateral filter (d 9, sigma colour 250, sigma space 250).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

ZOOM_FACTOR = 1.75
SHIFT_PIXELS_AT_32 = 10
MEDIAN_KSIZE = 5
THRESHOLD_BLOCK = 9
THRESHOLD_C = 9
BILATERAL_D = 9
BILATERAL_SIGMA_COLOR = 250
BILATERAL_SIGMA_SPACE = 250


def zoom_crop_box(height: int, width: int, factor: float = ZOOM_FACTOR) -> tuple[int, int, int, int]:
    """Centre-crop box used by :func:`zoom_shift`.

    Parameters
    ----------
    height, width : int
        Image size H, W.
    factor : float
        Zoom factor; the crop has sides ``round(H / factor)``, ``round(W / factor)``.

    Returns
    -------
    (top, left, crop_h, crop_w) : tuple of int
        ``top = (H - crop_h) // 2`` and ``left = (W - crop_w) // 2`` as in H-CAT.
    """
    crop_h = max(1, round(height / factor))
    crop_w = max(1, round(width / factor))
    return (height - crop_h) // 2, (width - crop_w) // 2, crop_h, crop_w


@torch.no_grad()
def zoom_shift(images: Tensor, factor: float = ZOOM_FACTOR) -> Tensor:
    """Zoom in: centre crop of side H / factor, resized back bilinearly.

    Parameters
    ----------
    images : Tensor, shape (n, C, H, W)
        Float images in [0, 1].
    factor : float
        Zoom factor (H-CAT: 1.75).

    Returns
    -------
    Tensor, shape (n, C, H, W)
        Zoomed images; bilinear interpolation with ``align_corners=False``
        keeps values inside the input's range.
    """
    height, width = images.shape[-2:]
    top, left, crop_h, crop_w = zoom_crop_box(height, width, factor)
    crop = images[..., top : top + crop_h, left : left + crop_w]
    return F.interpolate(crop, size=(height, width), mode="bilinear", align_corners=False)


def shift_pixels(width: int) -> int:
    """Number of pixels :func:`crop_shift` moves an image of this width.

    H-CAT shifts by 10 pixels at width 32; we scale: ``round(10 * W / 32)``.

    Parameters
    ----------
    width : int
        Image width W.

    Returns
    -------
    int
        Shift in pixels, in [0, W].
    """
    return min(width, round(SHIFT_PIXELS_AT_32 * width / 32))


@torch.no_grad()
def crop_shift(images: Tensor) -> Tensor:
    """Shift images right by :func:`shift_pixels` columns, filling with zeros.

    Parameters
    ----------
    images : Tensor, shape (n, C, H, W)
        Float images.

    Returns
    -------
    Tensor, shape (n, C, H, W)
        ``out[..., s:] = images[..., :W - s]`` and ``out[..., :s] = 0``.
    """
    width = images.shape[-1]
    shift = shift_pixels(width)
    out = torch.zeros_like(images)
    out[..., shift:] = images[..., : width - shift]
    return out


@torch.no_grad()
def match_channels_and_size(pool_images: Tensor, channels: int, height: int, width: int) -> Tensor:
    """Make far-OOD images look like the target batch: same channels and size.

    Grey to RGB repeats the single channel; RGB to grey takes the plain mean
    of the three channels (as H-CAT does). The size is matched with bilinear
    interpolation (antialiased when shrinking, like PIL's resize in H-CAT).

    Parameters
    ----------
    pool_images : Tensor, shape (n, C_pool, H_pool, W_pool)
        Float images in [0, 1]; C_pool must equal ``channels`` or be 1 or 3.
    channels, height, width : int
        Target C, H, W.

    Returns
    -------
    Tensor, shape (n, channels, height, width)
        Values clipped to [0, 1].
    """
    pool_channels = pool_images.shape[1]
    if pool_channels != channels:
        if pool_channels == 1:
            pool_images = pool_images.expand(-1, channels, -1, -1)
        elif pool_channels == 3 and channels == 1:
            pool_images = pool_images.mean(dim=1, keepdim=True)
        else:
            raise ValueError(
                f"far_ood_pool must have {channels} channels (as the inputs), 1, or 3 when the "
                f"inputs are grey; got {pool_channels}"
            )
    if pool_images.shape[-2:] != (height, width):
        pool_images = F.interpolate(
            pool_images, size=(height, width), mode="bilinear", align_corners=False, antialias=True
        )
    return pool_images.clamp(0.0, 1.0)


def _to_uint8_hwc(image: Tensor) -> np.ndarray:
    """(C, H, W) float in [0, 1] -> contiguous (H, W, C) or (H, W) uint8 array."""
    array = (image.detach().cpu().float() * 255.0).round().clamp(0, 255).to(torch.uint8)
    array = array.permute(1, 2, 0).numpy()
    return np.ascontiguousarray(array[..., 0] if array.shape[-1] == 1 else array)


def import_cv2():
    """Import OpenCV (an optional extra, only the ``domain_shift`` cartoon filter needs it).

    Raises
    ------
    ImportError
        One line naming the extra to install when ``cv2`` is missing.
    """
    try:
        import cv2
    except ImportError as err:  # also raised when sys.modules["cv2"] is None
        raise ImportError("domain_shift noise needs OpenCV (cv2), which is not installed; install it with "
                          "`pip install 'lilaw-edu[images]'` (or `pip install opencv-python-headless`)") from err
    return cv2


def _cartoon_one(image: np.ndarray, cv2) -> np.ndarray:
    """Cartoon filter on one uint8 image, (H, W) grey or (H, W, 3) RGB, with the ``cv2`` module given."""
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    grey = cv2.medianBlur(grey, MEDIAN_KSIZE)
    edges = cv2.adaptiveThreshold(
        grey, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, THRESHOLD_BLOCK, THRESHOLD_C
    )
    smooth = cv2.bilateralFilter(image, BILATERAL_D, BILATERAL_SIGMA_COLOR, BILATERAL_SIGMA_SPACE)
    return cv2.bitwise_and(smooth, smooth, mask=edges)


@torch.no_grad()
def cartoon_filter(images: Tensor) -> Tensor:
    """H-CAT's cartoon-style texture change (the second half of ``domain_shift``).

    Per image: grey version, median blur (5), edge mask by adaptive mean
    threshold (block 9, C 9), bilateral filter of the image (d 9, sigmas
    250), then keep the smoothed pixels where the mask is set and black
    elsewhere. Images go through uint8 (rounded), so the output is
    quantised to multiples of 1/255. For grey images we mask the
    bilateral-filtered image; H-CAT's grey branch computes the bilateral
    filter but then masks the median-blurred image instead (a bug).

    Parameters
    ----------
    images : Tensor, shape (n, C, H, W)
        Float images in [0, 1] with C = 1 or 3.

    Returns
    -------
    Tensor, shape (n, C, H, W)
        Cartoon images in [0, 1], same dtype and device as ``images``.
    """
    channels = images.shape[1]
    if channels not in (1, 3):
        raise ValueError(f"inputs must have 1 or 3 channels for domain_shift, got {channels}")
    cv2 = import_cv2()
    out = []
    for image in images:
        cartoon = _cartoon_one(_to_uint8_hwc(image), cv2)
        cartoon = torch.from_numpy(cartoon).reshape(image.shape[1], image.shape[2], channels)
        out.append(cartoon.permute(2, 0, 1))
    stacked = torch.stack(out).to(device=images.device, dtype=images.dtype)
    return stacked / 255.0


def gaussian_noise(like: Tensor, scale: Tensor | float, *, generator: torch.Generator) -> Tensor:
    """Zero-mean Gaussian noise shaped like ``like``, drawn through ``generator``.

    Parameters
    ----------
    like : Tensor, shape (n, ...)
        Gives the shape, dtype and device of the result.
    scale : Tensor broadcastable to ``like`` (e.g. shape (n, 1, 1, 1)), or float
        Standard deviation.
    generator : torch.Generator
        Source of the draws (on its own device; the result is moved).

    Returns
    -------
    Tensor, same shape as ``like``
    """
    noise = torch.randn(like.shape, generator=generator, device=generator.device, dtype=like.dtype)
    return noise.to(like.device) * scale


@torch.no_grad()
def corrupt_images(
    images: Tensor,
    kind: str,
    *,
    generator: torch.Generator,
    far_ood_pool: Tensor | None = None,
    sigma: float = 0.5,
) -> Tensor:
    """Apply one image noise kind to every image given (the selected ones).

    Parameters
    ----------
    images : Tensor, shape (n, C, H, W)
        Float images in [0, 1].
    kind : str
        ``"far_ood"``, ``"domain_shift"``, ``"ood_covariate"``, ``"zoom_shift"``
        or ``"crop_shift"`` (see :func:`lilaw_edu.noise.inject_input_noise`).
    generator : torch.Generator
        Source of the Gaussian noise and the far-OOD picks.
    far_ood_pool : Tensor, shape (M, C', H', W'), optional
        Replacement images in [0, 1] for ``far_ood`` (picked with replacement).
    sigma : float
        Noise std relative to each image's maximum (H-CAT: 0.5).

    Returns
    -------
    Tensor, shape (n, C, H, W)
        Corrupted images in [0, 1], same dtype and device.
    """
    n, channels, height, width = images.shape
    if kind in ("ood_covariate", "domain_shift"):
        peak = images.amax(dim=(1, 2, 3), keepdim=True)
        images = (images + gaussian_noise(images, sigma * peak, generator=generator)).clamp(0.0, 1.0)
        return images if kind == "ood_covariate" else cartoon_filter(images)
    if kind == "zoom_shift":
        return zoom_shift(images)
    if kind == "crop_shift":
        return crop_shift(images)
    if kind != "far_ood" or far_ood_pool is None:
        raise ValueError(f"kind must be an image noise kind (far_ood needs far_ood_pool), got {kind!r}")
    pick = torch.randint(0, far_ood_pool.shape[0], (n,), generator=generator, device=generator.device)
    chosen = far_ood_pool[pick.to(far_ood_pool.device)]
    work_dtype = torch.promote_types(images.dtype, torch.float32)  # resizing needs >= float32 on CPU
    chosen = chosen.to(device=images.device, dtype=work_dtype)
    return match_channels_and_size(chosen, channels, height, width).to(images.dtype)
