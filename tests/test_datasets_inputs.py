"""The paper-scale input path (issue 16 part 4): resize before normalising, uint8 storage, per-batch conversion.

All on CPU with synthetic data: CIFAR-like 32 px images fed at 224 px, and a synthetic
PathMNIST+ 224 px file whose peak memory is measured in a fresh interpreter.
"""
from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from lilaw_edu.datasets import image, inputs, medmnist
from lilaw_edu.datasets.class_maps import CIFAR10_CLASSES
from lilaw_edu.datasets.core import channel_stats, normalize, resize_images, to_uint8
from lilaw_edu.datasets.inputs import InputTransform, model_input, streamed


def cifar_like(n=16, seed=0) -> torch.Tensor:
    """uint8 (n, 3, 32, 32) images with smooth structure (upsampled 8x8 noise) plus pixel noise."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 8, 8, generator=g)
    smooth = torch.nn.functional.interpolate(coarse, size=(32, 32), mode="bilinear", align_corners=False)
    return to_uint8((0.8 * smooth + 0.2 * torch.rand(n, 3, 32, 32, generator=g)).clamp(0, 1))


def check_normalised_224(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> None:
    low, high = (-mean / std).view(1, 3, 1, 1), ((1 - mean) / std).view(1, 3, 1, 1)
    assert x.shape[-2:] == (224, 224) and x.dtype == torch.float32
    assert ((x >= low - 1e-5) & (x <= high + 1e-5)).all()        # inside the normalised pixel range
    assert float((x == 0).double().mean()) < 1e-3                 # no exact-zero mass (was 58 %)
    assert float((x == 1).double().mean()) < 1e-3                 # no exact-one mass (was 15 %)
    assert 0.3 < float((x < 0).double().mean()) < 0.7             # the dark half of the range survives
    assert x.mean(dim=(0, 2, 3)).abs().max() < 0.15


def test_model_input_at_224_resizes_before_normalising():
    x = cifar_like()
    mean, std = channel_stats(x)
    out = InputTransform(tuple(mean.tolist()), tuple(std.tolist()), 224)(x)
    check_normalised_224(out, mean, std)
    reference = normalize(resize_images(x.float() / 255, 224), mean, std)  # eager order, float input
    assert torch.allclose(out, reference, atol=1e-5)
    # the old per-batch order (normalise, then resize with clamp to [0, 1]) fails these checks
    old = resize_images(normalize(x.float() / 255, mean, std), 224)
    assert float((old == 0).double().mean()) > 0.3
    with pytest.raises(AssertionError):
        check_normalised_224(old, mean, std)


def test_model_input_keeps_float_batches_and_size():
    x = torch.rand(2, 1, 28, 28)
    out = model_input(x, [0.5], [0.25])
    assert torch.allclose(out, (x - 0.5) / 0.25) and torch.equal(x, x.clone())  # input not modified
    with pytest.raises(TypeError, match="uint8 or floating point"):
        model_input(torch.zeros(1, 1, 4, 4, dtype=torch.int32), [0.5], [0.25])


def test_uint8_channel_stats_are_exact():
    x = cifar_like(n=40, seed=3)
    mean, std = channel_stats(x)
    ref = x.double().div(255).transpose(0, 1).reshape(3, -1)
    assert torch.allclose(mean.double(), ref.mean(1), atol=1e-7)
    assert torch.allclose(std.double(), ref.std(1, unbiased=False), atol=1e-7)


def test_streamed_rule_reads_the_registry():
    assert streamed("pathmnist", 224) and streamed("cifar100", 224) and streamed("pneumoniamnist", 224)
    assert not streamed("breastmnist", 224)            # 780 images: 0.15 GiB as float32
    assert not streamed("pathmnist", None) and not streamed("digits", 224) and not streamed("ecg5000", None)


def _write_cifar10(root, per_batch=20):
    rng = np.random.default_rng(0)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        data = cifar_like(per_batch, seed=i).permute(0, 1, 2, 3).reshape(per_batch, -1).numpy()
        with open(folder / name, "wb") as fh:
            pickle.dump({"data": data, "labels": [int(v) for v in rng.integers(0, 10, per_batch)]}, fh)
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({"label_names": list(CIFAR10_CLASSES)}, fh)


def test_prepare_data_streams_cifar_at_224_and_matches_the_eager_path(tmp_path, monkeypatch):
    from lilaw_edu.training.config import config_from_preset
    from lilaw_edu.training.fit import prepare_data

    _write_cifar10(tmp_path)
    monkeypatch.setattr(image, "verify_checksum", lambda *a, **k: None)
    config = config_from_preset("cpu-digits", dataset="cifar10", noise="uniform", rate=0.3, image_size=224,
                                data_dir=str(tmp_path))
    splits, info = prepare_data(config)
    assert splits.x_train.dtype == torch.uint8 and splits.x_train.shape[1:] == (3, 32, 32)
    assert info["batch_resize"] == 224 and info["input_transform"].size == 224
    batch = info["input_transform"](splits.x_train[:16])
    check_normalised_224(batch, splits.mean, splits.std)
    monkeypatch.setattr(inputs, "STREAM_ABOVE_BYTES", 1 << 62)   # force the eager path
    eager, eager_info = prepare_data(config)
    assert eager.x_train.dtype == torch.float32 and eager_info["input_transform"] is None
    assert torch.equal(eager.y_train, splits.y_train)
    assert torch.allclose(eager.x_train[:16], batch, atol=1e-5)


PROBE = """
import sys
import torch
torch.set_num_threads(1)
from lilaw_edu.datasets import inputs, medmnist
from lilaw_edu.training import engine, fit
from lilaw_edu.training.config import config_from_preset

def status(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key))

medmnist.expected_md5 = lambda *a, **k: None                 # synthetic file: no official MD5
medmnist.class_names("pathmnist", 9)                         # import the optional medmnist package now
if sys.argv[2] == "eager":
    inputs.STREAM_ABOVE_BYTES = 1 << 62
config = config_from_preset("cpu-medmnist", dataset="pathmnist", image_size=224, noise="uniform", rate=0.3,
                            data_dir=sys.argv[1], batch_size=32, eval_batch_size=32)
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")                                             # reset the peak RSS (VmHWM) to the current RSS
base = status("VmRSS:")
splits, info = fit.prepare_data(config)
data = engine.make_batches(splits, config, torch.device("cpu"), info["input_transform"])
for name in ("train", "val", "test"):
    for xb, yb, ib in data[name].epoch(None):
        assert xb.dtype == torch.float32 and xb.shape[1:] == (3, 224, 224)
stored = sum(t.numel() * t.element_size() for t in (splits.x_train, splits.x_val, splits.x_test))
print(status("VmHWM:") - base, stored)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self (Linux)")
def test_medmnist_224_peak_memory_is_uint8_size_plus_a_few_batches(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 240), ("val", 40), ("test", 40)):
        arrays[f"{split}_images"] = rng.integers(0, 256, size=(n, 224, 224, 3), dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(n) % 9).astype(np.uint8)[:, None]
    (tmp_path / "medmnist").mkdir()
    np.savez(tmp_path / "medmnist" / medmnist.npz_name("pathmnist", 224), **arrays)
    uint8_bytes = sum(arrays[f"{s}_images"].nbytes for s in ("train", "val", "test"))
    batch_bytes = 32 * 3 * 224 * 224 * 4
    peaks = {}
    for mode in ("stream", "eager"):
        proc = subprocess.run([sys.executable, "-c", textwrap.dedent(PROBE), str(tmp_path), mode],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        peaks[mode], stored = (int(v) for v in proc.stdout.split())
        if mode == "stream":
            assert stored == uint8_bytes                        # kept as uint8, no float copy
    assert peaks["stream"] < uint8_bytes + 8 * batch_bytes, peaks  # ~1.5x uint8 + ~4 batches measured
    assert peaks["eager"] > 4 * uint8_bytes, peaks                 # float32 + normalised copy: the old path
