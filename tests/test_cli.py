"""The `lilaw-edu` command: end to end on real ECG5000, and every bad input -> one line, exit 2."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lilaw_edu.cli import main
from lilaw_edu.datasets import DATASET_NAMES
from lilaw_edu.datasets.ecg import locate_ecg5000

REPO = Path(__file__).resolve().parents[1]
ECG_DIR = REPO.parent / "shared" / "data"
HAVE_ECG = (ECG_DIR / "ecg5000" / "ECG5000_TRAIN.tsv").exists()


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code, err, *fragments):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("lilaw-edu: error: ")
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.mark.skipif(not HAVE_ECG, reason="real ECG5000 not in ../shared/data")
def test_run_end_to_end_on_real_ecg5000(tmp_path, capsys):
    out = tmp_path / "runs" / "ecg"
    code, stdout, err = run_cli(capsys, "run", "--preset", "cpu-ecg5000", "--dataset", "ecg5000", "--noise", "uniform",
                                "--rate", "0.3", "--seed", "0", "--method", "both", "--epochs", "2",
                                "--max-train", "120", "--data-dir", ECG_DIR, "--out", out, "--quiet")
    assert code == 0, err
    assert "baseline" in stdout and "lilaw" in stdout and "top-1 (%)" in stdout and "AUROC" in stdout
    results = json.loads((out / "results.json").read_text())
    assert set(results["methods"]) == {"baseline", "lilaw"}
    assert results["data"]["sizes"] == {"train": 120, "val": 75, "test": 4500}
    assert results["noise"]["n_train_corrupted"] == round(0.3 * 120)
    for run in results["methods"].values():
        assert 0.0 <= run["metrics"]["test"]["top1"] <= 1.0 and len(run["history"]) == 2
        assert run["metrics"]["test"]["top5"] is None  # C = 5: top-5 not defined
    assert results["config"]["epochs"] == 2 and results["environment"]["torch"] == torch.__version__
    assert (out / "curves.png").stat().st_size > 1000 and (out / "table.txt").exists()
    assert not [p for p in out.rglob("*.tmp")]


def test_datasets_lists_every_dataset(capsys):
    code, stdout, _ = run_cli(capsys, "datasets")
    assert code == 0
    names = [line.split()[0] for line in stdout.splitlines()[1:]]
    assert names == list(DATASET_NAMES)
    digits = next(line for line in stdout.splitlines() if line.startswith("digits"))
    assert " yes " in digits


BAD_INPUTS = [
    (["--dataset", "imagenet"], ["dataset must be one of", "'imagenet'"]),
    (["--dataset", "digits", "--noise", "gaussian-blur"], ["noise must be one of", "'gaussian-blur'", "uniform"]),
    (["--dataset", "ecg5000", "--noise", "zoom_shift"], ["does not apply to series", "gaussian"]),
    (["--preset", "paper-imagenet"], ["preset must be one of", "cpu-ecg5000"]),
    (["--dataset", "digits", "--rate", "1.5"], ["rate must be in [0, 1], got 1.5"]),
    (["--dataset", "digits", "--rate", "-0.1"], ["rate must be", "got -0.1"]),
    (["--dataset", "digits", "--method", "magic"], ["method must be one of", "'magic'"]),
    (["--dataset", "digits", "--set", "bogus=1"], ["unknown TrainConfig field(s) ['bogus']"]),
    (["--dataset", "digits", "--epochs", "zero"], ["--epochs", "invalid int value"]),
    (["--noise", "uniform"], ["give --dataset NAME or --preset NAME"]),
]


@pytest.mark.parametrize("args,fragments", BAD_INPUTS, ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_bad_input_one_line_exit_2_nothing_written(tmp_path, capsys, args, fragments):
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "run", *args, "--out", out)
    assert_one_line_error(code, err, *fragments)
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_without_gpu(tmp_path, capsys):
    code, _, err = run_cli(capsys, "run", "--dataset", "digits", "--device", "cuda", "--out", tmp_path / "o")
    assert_one_line_error(code, err, "no CUDA GPU", "'cpu'")
    assert not (tmp_path / "o").exists()


def test_missing_data(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run_cli(capsys, "run", "--dataset", "ecg5000", "--data-dir", empty, "--out", tmp_path / "o")
    assert_one_line_error(code, err, "not found", "ECG5000_TRAIN.tsv")
    assert not (tmp_path / "o").exists()


def test_unwritable_output_folder(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    code, _, err = run_cli(capsys, "run", "--dataset", "digits", "--out", blocker / "sub")
    assert_one_line_error(code, err, "cannot be created", "choose another --out")
    code, _, err = run_cli(capsys, "run", "--dataset", "digits", "--out", blocker)
    assert_one_line_error(code, err, "is not a folder")
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        code, _, err = run_cli(capsys, "run", "--dataset", "digits", "--out", locked / "o")
        assert_one_line_error(code, err, "not writable")


def _ecg_copy(tmp_path, mutate) -> Path:
    data = tmp_path / "data"
    (data / "ecg5000").mkdir(parents=True)
    for split in ("TRAIN", "TEST"):
        name = f"ECG5000_{split}.tsv"
        src = ECG_DIR / "ecg5000" / name
        (data / "ecg5000" / name).write_bytes(mutate(src.read_bytes() if src.exists() else b""))
    return data


@pytest.mark.parametrize("what,mutate,fragment", [
    ("truncated", lambda b: b[: len(b) // 2], "sha256"),
    ("checksum", lambda b: b.replace(b"\t", b"\t0", 1) if b else b"1\t0.5\n", "sha256"),
    ("corrupted", lambda b: b"\x00\xff garbage \x13" * 50, "ecg5000"),
])
def test_bad_data_files(tmp_path, capsys, what, mutate, fragment):
    if what != "corrupted" and not HAVE_ECG:
        pytest.skip("needs the real ECG5000 files to alter")
    data = _ecg_copy(tmp_path, mutate)
    assert locate_ecg5000(data) is not None
    out = tmp_path / "o"
    code, _, err = run_cli(capsys, "run", "--dataset", "ecg5000", "--data-dir", data, "--out", out)
    assert_one_line_error(code, err, fragment)
    assert not out.exists()


def test_python_dash_m_entry_point_reports_one_line(tmp_path):
    out = tmp_path / "o"
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-m", "lilaw_edu", "run", "--dataset", "nope", "--out", str(out)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and proc.stderr.startswith("lilaw-edu: error: dataset must be one of")
    assert "Traceback" not in proc.stderr and not out.exists()
