"""`lilaw-edu run --method baseline,lilaw,l2rw,mwnet,cleanlab` on every CPU dataset (issue 11).

Tiny settings (one epoch, a few dozen training samples, two cross-fitting folds) so the five
datasets take seconds each. ECG5000, digits, BreastMNIST and PneumoniaMNIST are the real files in
``../shared/data`` (skipped when absent); the CIFAR-10 JPEG set is a tiny zip in the official layout
(its real 10 000-image test set alone would take a minute to evaluate five times on a CPU).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from lilaw_edu.cli import main
from lilaw_edu.datasets import image
from test_data import write_jpeg_zip

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
RELATIVES = ("baseline", "lilaw", "l2rw", "mwnet", "cleanlab")
REAL = {"ecg5000": ("cpu-ecg5000", "ecg5000/ECG5000_TRAIN.tsv"), "digits": ("cpu-digits", None),
        "breastmnist": ("cpu-medmnist", "medmnist/breastmnist.npz"),
        "pneumoniamnist": ("cpu-medmnist", "medmnist/pneumoniamnist.npz")}


def _run(dataset: str, preset: str, data_dir: Path, out: Path, capsys, max_train: int) -> dict:
    code = main(["run", "--preset", preset, "--dataset", dataset, "--noise", "uniform", "--rate", "0.4",
                 "--seed", "0", "--method", ",".join(RELATIVES), "--epochs", "1", "--max-train", str(max_train),
                 "--batch-size", "64",
                 "--data-dir", str(data_dir), "--out", str(out), "--quiet", "--set", "cl_folds=2",
                 "--set", "num_threads=1", "--set", "temperature_scaling=false"])
    err = capsys.readouterr().err
    assert code == 0, err
    return json.loads((out / "results.json").read_text())


def _check(results: dict, max_train: int) -> None:
    assert tuple(results["methods"]) == RELATIVES or set(results["methods"]) == set(RELATIVES)
    assert results["data"]["sizes"]["train"] == max_train
    hashes = {run["init_state_sha256"] for run in results["methods"].values()}
    assert len(hashes) == 1  # paired: every method starts from the same weights
    for method, run in results["methods"].items():
        assert run["overrides"]["weighting"] == {"l2rw": "l2rw", "mwnet": "mwnet", "lilaw": "lilaw"}.get(
            method, "none"), method
        assert len(run["history"]) == 1 and 0.0 <= run["metrics"]["test"]["top1"] <= 1.0, method
    flagged = results["methods"]["cleanlab"]["label_filter"]
    assert flagged["kept"] + flagged["flagged"] == max_train and flagged["fold_epochs"] == 1


@pytest.mark.parametrize("dataset", sorted(REAL))
def test_relatives_run_on_real_cpu_dataset(dataset, tmp_path, capsys):
    preset, needed = REAL[dataset]
    if needed is not None and not (SHARED / needed).exists():
        pytest.skip(f"{needed} not in ../shared/data")
    _check(_run(dataset, preset, SHARED, tmp_path / dataset, capsys, max_train=48), 48)


def test_relatives_run_on_cifar10_jpeg_layout(tmp_path, capsys, monkeypatch):
    path = write_jpeg_zip(tmp_path / "data", per_class=4)
    # the fixture is not the published zip: accept its own digest instead of the real one
    monkeypatch.setattr(image, "JPEG_ZIP_SHA256", hashlib.sha256(path.read_bytes()).hexdigest())
    results = _run("cifar10-jpeg", "cpu-cifar10", tmp_path / "data", tmp_path / "out", capsys, max_train=24)
    _check(results, 24)
    assert results["data"]["sizes"]["test"] == 40
