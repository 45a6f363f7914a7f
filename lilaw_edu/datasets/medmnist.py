"""The ten MedMNIST v2 2D sets of the paper, read from the official ``.npz`` files.

Files: ``<data_dir>/medmnist/<flag>.npz`` (28 px) or ``<flag>_<size>.npz``
(MedMNIST+ sizes 64, 128, 224), also accepted flat in the data directory.
Each file is MD5-checked against ``medmnist.INFO`` (or the copy below when the
``medmnist`` package is not importable).
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch

from .core import DataError, find_file, not_found, resolve_data_dir, to_image_tensor, verify_checksum
from .registry import REGISTRY

MEDMNIST_SIZES = (28, 64, 128, 224)
# Official 28-px MD5s (medmnist 3.0.2 INFO), used when medmnist is not importable.
MEDMNIST_MD5_28 = {
    "pathmnist": "a8b06965200029087d5bd730944a56c1", "dermamnist": "0744692d530f8e62ec473284d019b0c7",
    "octmnist": "c68d92d5b585d8d81f7112f81e2d0842", "pneumoniamnist": "28209eda62fecd6e6a2d98b1501bb15f",
    "breastmnist": "750601b1f35ba3300ea97c75c52ff8f6", "bloodmnist": "7053d0359d879ad8a5505303e11de1dc",
    "tissuemnist": "ebe78ee8b05294063de985d821c1c34b", "organamnist": "68e3f8846a6bd62f0c9bf841c0d9eacc",
    "organcmnist": "b9ceb9546e10131b32923c5bbeaea2b1", "organsmnist": "9ab87b696fb54e2a387ebe992d6ed5f1",
}
NPZ_KEYS = ("train_images", "train_labels", "val_images", "val_labels", "test_images", "test_labels")


def _info(flag):
    try:
        from medmnist import INFO
    except ImportError:
        return None
    return INFO.get(flag)


def expected_md5(flag: str, size: int = 28):
    """Official MD5 of ``<flag>[_<size>].npz``, or None when unknown."""
    info = _info(flag)
    if info is not None:
        return info["MD5"] if size == 28 else info.get(f"MD5_{size}")
    return MEDMNIST_MD5_28.get(flag) if size == 28 else None


def class_names(flag: str, num_classes: int) -> list:
    """Class names from ``medmnist.INFO``, else ``"0" .. "C-1"``."""
    info = _info(flag)
    if info is None:
        return [str(i) for i in range(num_classes)]
    return [info["label"][str(i)] for i in range(len(info["label"]))]


def npz_name(flag: str, size: int = 28) -> str:
    """File name of a MedMNIST npz: ``breastmnist.npz`` or ``breastmnist_224.npz``."""
    return f"{flag}.npz" if size == 28 else f"{flag}_{size}.npz"


def fetch_command(flag: str, size: int = 28) -> str:
    """Command that downloads ``flag`` on a connected machine."""
    extra = "" if size == 28 else f" --size {size}"
    return f"python data_scripts/download.py {flag}{extra} --data-dir DIR"


def read_medmnist_npz(path, flag: str, size: int = 28, *, verify=True) -> dict:
    """Official splits of one MedMNIST npz as uint8 arrays.

    Returns
    -------
    dict with the six :data:`NPZ_KEYS`; images (N, H, W) or (N, H, W, 3) uint8,
    labels (N,) int64.
    """
    fix = f"delete {path} and run `{fetch_command(flag, size)}`"
    if verify:
        verify_checksum(path, expected_md5(flag, size), "md5", fix)
    try:
        with np.load(path) as npz:
            missing = [k for k in NPZ_KEYS if k not in npz.files]
            if missing:
                raise DataError(f"{path} lacks keys {missing}; a MedMNIST npz has {list(NPZ_KEYS)}. "
                                f"Fix: {fix}")
            arrays = {k: npz[k] for k in NPZ_KEYS}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
        if isinstance(err, DataError):
            raise
        raise DataError(f"{path} is truncated or corrupted ({type(err).__name__}: {err}). "
                        f"Fix: {fix}") from err
    for split in ("train", "val", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if labels.ndim == 2 and labels.shape[1] != 1:
            raise DataError(f"{path}: {split}_labels has shape {labels.shape}; only single-label "
                            "multi-class/binary sets are supported")
        labels = labels.reshape(-1).astype(np.int64)
        if images.dtype != np.uint8 or len(images) != len(labels) or images.ndim not in (3, 4):
            raise DataError(f"{path}: {split}_images must be uint8 (N, H, W[, 3]) matching "
                            f"{len(labels)} labels, got {images.dtype} {images.shape}. Fix: {fix}")
        arrays[f"{split}_labels"] = labels
    return arrays


def locate_medmnist(flag: str, size: int = 28, data_dir=None):
    """Path of ``<flag>[_<size>].npz`` in the data directories, else None."""
    name = npz_name(flag, size)
    return find_file([Path("medmnist") / name, Path(name)], data_dir)


def download_medmnist(flag: str, data_dir, size: int = 28) -> Path:
    """Download one MedMNIST npz to ``data_dir/medmnist/`` with the ``medmnist`` package (internet)."""
    import medmnist
    from medmnist import INFO

    root = Path(data_dir) / "medmnist"
    root.mkdir(parents=True, exist_ok=True)
    cls = getattr(medmnist, INFO[flag]["python_class"])
    cls(split="train", download=True, root=str(root), size=size)
    return root / npz_name(flag, size)


def medmnist_parts(flag: str, data_dir=None, *, size=None, verify=True, download=False,
                   dtype=torch.float32) -> dict:
    """One MedMNIST set as tensors (N, C, H, W), official splits: float32 in [0, 1], or uint8 pixels."""
    size = 28 if size is None else size
    if size not in MEDMNIST_SIZES:
        raise ValueError(f"size for {flag} must be one of {MEDMNIST_SIZES}, got {size!r}")
    path = locate_medmnist(flag, size, data_dir)
    if path is None and download:
        download_medmnist(flag, resolve_data_dir(data_dir), size)
        path = locate_medmnist(flag, size, data_dir)
    if path is None:
        raise not_found(flag, [f"medmnist/{npz_name(flag, size)}"], data_dir, fetch_command(flag, size))
    arrays = read_medmnist_npz(path, flag, size, verify=verify)
    num_classes = REGISTRY[flag].num_classes
    found = int(max(arrays[f"{s}_labels"].max() for s in ("train", "val", "test"))) + 1
    if found > num_classes:
        raise DataError(f"{path}: labels reach {found - 1}, but {flag} has {num_classes} classes. "
                        f"Fix: delete it and run `{fetch_command(flag, size)}`")
    names = class_names(flag, num_classes)
    return dict(
        x_train=to_image_tensor(arrays["train_images"], dtype), y_train=torch.from_numpy(arrays["train_labels"]),
        x_val=to_image_tensor(arrays["val_images"], dtype), y_val=torch.from_numpy(arrays["val_labels"]),
        x_test=to_image_tensor(arrays["test_images"], dtype), y_test=torch.from_numpy(arrays["test_labels"]),
        num_classes=len(names), class_names=names, kind="image",
        notes=f"MedMNIST v2 {flag} at {size}x{size} from {Path(path).name} (MD5 {'checked' if verify else 'not checked'}).")
