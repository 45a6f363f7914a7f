"""Every bad input -> exit 2, exactly one line on stderr, no traceback, no file left behind (CLI);
TypeError/ValueError naming the parameter and the value (API)."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from lilaw_edu.cli import main

RUN = ["run", "--dataset", "digits", "--out", "o"]
SWEEP = ["sweep", "cpu-table9", "--allow-dirty", "--results-dir", "r"]
# (argv, fragments the one line must contain); "o" / "r" are inside the test's empty working folder
CLI_CASES = [
    (RUN + ["--set", "milestones=5"], ["milestones", "5"]),
    (RUN + ["--set", "record_weights_epochs=3"], ["record_weights_epochs", "3"]),
    (RUN + ["--set", "alpha=abc"], ["alpha", "'abc'"]),
    (RUN + ["--set", "alpha=[1,2]"], ["alpha", "(1, 2)"]),
    (RUN + ["--lr", "inf"], ["lr", "inf"]),
    (RUN + ["--lr", "-1"], ["lr", "-1"]),
    (RUN + ["--set", "meta_lr=inf"], ["meta_lr", "inf"]),
    (RUN + ["--set", "beta=nan"], ["beta", "nan"]),
    (RUN + ["--set", "delta=Infinity"], ["delta", "inf"]),
    (RUN + ["--rate", "0.3"], ["rate", "0.3", "noise"]),
    (RUN + ["--noise", "none", "--rate", "0.3"], ["rate", "0.3", "noise"]),
    (RUN + ["--set", "constraints=no"], ["constraints", "'no'"]),
    (RUN + ["--seed", "99999999999999999999"], ["seed", "99999999999999999999"]),
    (RUN + ["--seed", "-1"], ["seed", "-1"]),
    (RUN + ["--epochs", "0"], ["epochs", "0"]),
    (RUN + ["--epochs", "zero"], ["--epochs", "'zero'"]),
    (RUN + ["--batch-size", "0"], ["batch_size", "0"]),
    (RUN + ["--max-train", "1"], ["max_train", "1"]),
    (RUN + ["--set", "patience=-1"], ["patience", "-1"]),
    (RUN + ["--set", "bogus=1"], ["bogus"]),
    (RUN + ["--set", "noequals"], ["FIELD=VALUE", "'noequals'"]),
    (RUN + ["--rate", "1.5"], ["rate", "1.5"]),
    (RUN + ["--noise", "uniform", "--rate", "-0.1"], ["rate", "-0.1"]),
    (RUN + ["--method", "magic"], ["method", "'magic'"]),
    (RUN + ["--noise", "gaussian-blur"], ["noise", "'gaussian-blur'"]),
    (RUN + ["--device", "tpu"], ["--device", "'tpu'"]),
    (["run", "--dataset", "imagenet", "--out", "o"], ["dataset", "'imagenet'"]),
    (["run", "--dataset", "ecg5000", "--noise", "zoom_shift", "--out", "o"], ["zoom_shift", "series"]),
    (["run", "--preset", "paper-imagenet", "--out", "o"], ["preset", "'paper-imagenet'"]),
    (["run", "--noise", "uniform", "--out", "o"], ["--dataset", "--preset"]),
    (["run", "--dataset", "digits", "--out", ""], ["--out", "''"]),
    (["run", "--dataset", "digits", "--out", "a_file"], ["a_file", "not a folder"]),
    (["run", "--dataset", "digits", "--out", "a_file/sub"], ["a_file", "is a file"]),
    (["run", "--dataset", "digits"], ["--out"]),
    (SWEEP + ["--threads", "-1"], ["threads", "-1"]),
    (SWEEP + ["--threads", "0"], ["threads", "0"]),
    (SWEEP + ["--jobs", "0"], ["jobs", "0"]),
    (SWEEP + ["--seeds", "a,b"], ["--seeds", "'a,b'"]),
    (SWEEP + ["--seeds", "-1"], ["--seeds", "'-1'"]),
    (SWEEP + ["--limit", "-1"], ["--limit", "-1"]),
    (SWEEP + ["--on-corrupt", "ignore"], ["--on-corrupt", "'ignore'"]),
    (SWEEP + ["--executor", "dask"], ["--executor", "'dask'"]),
    (["sweep", "no-such-preset", "--allow-dirty", "--results-dir", "r"], ["preset", "'no-such-preset'"]),
    (["sweep", "cpu-table9", "--allow-dirty", "--results-dir", ""], ["--results-dir", "''"]),
    (["sweep", "cpu-table9", "--allow-dirty", "--results-dir", "a_file"], ["a_file", "is a file"]),
    (["sweep", "cpu-table9", "--allow-dirty", "--work-dir", " ", "--results-dir", "r"], ["--work-dir"]),
    (["download", "imagenet"], ["dataset", "'imagenet'"]),
    (["frobnicate"], ["frobnicate"]),
    ([], ["required", "{run,sweep"]),
]


@pytest.mark.parametrize("argv,fragments", CLI_CASES, ids=[" ".join(a) or "(none)" for a, _ in CLI_CASES])
def test_cli_bad_input(argv, fragments, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_file").write_text("planted")
    code = main(argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("lilaw-edu: error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"], "a file was left behind"


def test_unexpected_error_is_not_swallowed(monkeypatch, capsys, tmp_path):
    import lilaw_edu.cli as cli

    def boom(args):
        raise KeyError("internal bug")
    monkeypatch.setattr(cli, "_datasets", boom)
    assert main(["datasets"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error: KeyError" in err and "--debug" in err
    with pytest.raises(KeyError):
        main(["--debug", "datasets"])


def test_version_and_help_lists(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.startswith("lilaw-edu ")
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    assert "(default: both)" in out and "cpu-ecg5000" in out and "ecg5000" in out and "asymmetric" in out


def _api_cases():
    from lilaw_edu.experiments.chapter import load_chapter
    from lilaw_edu.experiments.runner import run_sweep
    from lilaw_edu.training.config import config_from_preset
    return [
        ("alpha", "abc", lambda: config_from_preset("cpu-digits", alpha="abc")),
        ("lr", "inf", lambda: config_from_preset("cpu-digits", lr=math.inf)),
        ("rate", "2", lambda: config_from_preset("cpu-digits", noise="uniform", rate=2)),
        ("constraints", "'no'", lambda: config_from_preset("cpu-digits", constraints="no")),
        ("seed", "-1", lambda: config_from_preset("cpu-digits", seed=-1)),
        ("jobs", "0", lambda: run_sweep(["cpu-table9"], jobs=0)),
        ("threads", "-1", lambda: run_sweep(["cpu-table9"], threads=-1)),
        ("on_corrupt", "'skip'", lambda: run_sweep(["cpu-table9"], on_corrupt="skip")),
        ("preset", "'nope'", lambda: load_chapter(["nope"], required=["nope"], log=lambda m: None)),
    ]


@pytest.mark.parametrize("index", range(9))
def test_api_bad_input_names_parameter_and_value(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    name, value, call = _api_cases()[index]
    with pytest.raises((TypeError, ValueError)) as exc:
        call()
    assert name in str(exc.value) and value in str(exc.value), str(exc.value)
    assert not list(Path(tmp_path).iterdir())


def _plant(tmp_path, what):
    """Files a user (or an attacker) left in the output or results folder."""
    import json
    from lilaw_edu.experiments.plan import expand_preset
    from lilaw_edu.experiments.store import _canonical, _sha256  # noqa: F401 - the store's own checksum
    if what in ("checkpoints-file", "results-json-folder"):
        (tmp_path / "o").mkdir()
        if what == "checkpoints-file":
            (tmp_path / "o" / "checkpoints").write_text("x")
        else:
            (tmp_path / "o" / "results.json").mkdir()
        return ["run", "--dataset", "digits", "--out", "o"], ["o/", "choose another --out"]
    folder = tmp_path / "r" / "cpu-table9"
    folder.mkdir(parents=True)
    target = folder / f"{expand_preset('cpu-table9')[0].run_id}.json"
    if what == "json-folder":
        target.mkdir()
    elif what == "deep-json":
        target.write_text("[" * 100000 + "]" * 100000)
    else:  # crafted: valid checksum, nonsense payload
        payload = {"spec": [], "config": 1, "result": None, "provenance": "x"}
        target.write_text(json.dumps({"schema": "lilaw-edu/sweep-result/1", "run_id": target.stem, "preset": "cpu-table9",
                                      "row": "r", "tables": [], "payload_sha256": _sha256(_canonical(payload)),
                                      "payload": payload}))
    return ["sweep", "cpu-table9", "--allow-dirty", "--results-dir", "r", "--on-corrupt", "error"], [target.name]


@pytest.mark.parametrize("what", ["checkpoints-file", "results-json-folder", "json-folder", "deep-json", "crafted"])
def test_planted_files_one_line_exit_2(what, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv, fragments = _plant(tmp_path, what)
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before


def test_disk_full_is_one_line(monkeypatch, capsys):
    import errno

    import lilaw_edu.cli as cli

    def full(args):
        raise OSError(errno.ENOSPC, "No space left on device", "results/x.json")
    monkeypatch.setattr(cli, "_datasets", full)
    assert main(["datasets"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no space left on the device writing results/x.json" in err
