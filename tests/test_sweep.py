"""Sweep machinery: stable run ids, atomic result files, resume after a kill, corruption
detection, dry runs of every preset, and the paper's printed tables."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lilaw_edu.experiments import plan, presets as presets_sweep, runner as sweep
from lilaw_edu.core.paper import RAW_TABLES, TABLE16, paper_lookup, paper_rows
from lilaw_edu.experiments.analysis import load_results, paired, tidy
from lilaw_edu.experiments.verdicts import findings, verdict
from lilaw_edu.experiments.summary import mislabel_summary
from lilaw_edu.experiments.store import CorruptResultError, read_record, run_id_of

REPO = Path(__file__).resolve().parents[1]
PAPER = REPO.parent / "shared" / "paper" / "lilaw-paper.txt"


class FakeFit:
    """Stands in for lilaw_edu.training.fit.fit: deterministic metrics from the seed, no training.

    ``fail_after``: raise KeyboardInterrupt (a kill) on that call (0-based), after ``fail_after`` successes.
    """

    def __init__(self, fail_after=None):
        self.calls, self.fail_after = [], fail_after

    def __call__(self, config, methods, out_dir=None, resume=False, progress=True):
        if self.fail_after is not None and len(self.calls) == self.fail_after:
            raise KeyboardInterrupt("simulated kill")
        self.calls.append((config.seed, config.rate, tuple(methods), config.to_dict()))
        base = 0.5 + 0.01 * config.seed
        runs = {m: {"metrics": {"test": {"top1": base + 0.02 * i, "top5": None, "auroc": 0.7, "auroc_weighted": 0.71},
                                "best_epoch": 1, "epochs_run": config.epochs},
                    "lilaw": None, "history": [], "wall_time_s": 0.01, "weights": {}, "scores": {}}
                for i, m in enumerate(methods)}
        return {"config": config.to_dict(), "methods": runs, "data": {"sizes": {"train": 100, "val": 10, "test": 10}},
                "noise": {"kind": config.noise, "rate": config.rate}, "init_state_sha256": "x", "environment": {}}


def _files(root: Path, preset: str) -> list:
    return sorted((root / preset).glob("*.json"))


# ------------------------------------------------------------------ run ids
def test_run_id_stable_across_processes_and_key_order():
    spec = plan.expand_preset("cpu-table3")[0]
    code = ("from lilaw_edu.experiments.plan import expand_preset; print(expand_preset('cpu-table3')[0].run_id)")
    env = dict(os.environ, PYTHONHASHSEED="12345", PYTHONPATH=str(REPO))
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO, check=True)
    assert other.stdout.strip() == spec.run_id
    assert re.fullmatch(r"[0-9a-f]{16}", spec.run_id)
    config = spec.config().to_dict()
    reordered = dict(reversed(list(config.items())))
    assert run_id_of(reordered, spec.methods) == spec.run_id


def test_run_id_changes_with_config_and_methods_but_not_device():
    spec = plan.expand_preset("cpu-table3")[0]
    config = spec.config().to_dict()
    assert run_id_of(dict(config, seed=config["seed"] + 1), spec.methods) != spec.run_id
    assert run_id_of(dict(config, rate=0.25), spec.methods) != spec.run_id
    assert run_id_of(config, spec.methods[:-1]) != spec.run_id
    assert run_id_of(config, tuple(reversed(spec.methods))) != spec.run_id
    assert run_id_of(dict(config, device="cuda", data_dir="/elsewhere"), spec.methods) == spec.run_id


def test_ids_unique_within_each_preset_and_rows_paired():
    for name in presets_sweep.SWEEP_PRESETS:
        specs = plan.expand_preset(name)
        assert len({s.run_id for s in specs}) == len(specs), name
        for r in presets_sweep.SWEEP_PRESETS[name]["rows"]:
            if name.startswith("cpu-"):
                assert len(r["seeds"]) >= 5, (name, r["row"])


# ------------------------------------------------------------------ dry runs
@pytest.mark.parametrize("name", sorted(presets_sweep.SWEEP_PRESETS))
def test_every_preset_dry_run(name, tmp_path):
    lines = []
    summary = sweep.run_sweep([name], results_dir=tmp_path, dry_run=True, log=lines.append)
    assert summary["total"] == len(plan.expand_preset(name)) > 0
    assert summary["ran"] == 0 and not list(tmp_path.rglob("*.json"))
    assert summary["estimated_s"] > 0
    assert lines[-1].startswith(f"{summary['total']} runs: 0 done, {summary['total']} to run")


def test_cli_dry_run_and_bad_preset(tmp_path, capsys):
    from lilaw_edu.cli import main
    assert main(["sweep", "cpu-table3", "--dry-run", "--results-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "ecg5000/uniform-0.3" in out and "10 runs: 0 done, 10 to run" in out
    assert main(["sweep", "no-such-preset", "--dry-run"]) == 2
    assert "no-such-preset" in capsys.readouterr().err
    assert main(["sweep", "--list"]) == 0
    assert "cpu-table16" in capsys.readouterr().out


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="jobs"):
        sweep.run_sweep(["cpu-table9"], results_dir=tmp_path, jobs=0)
    with pytest.raises(ValueError, match="on_corrupt"):
        sweep.run_sweep(["cpu-table9"], results_dir=tmp_path, on_corrupt="ignore")
    with pytest.raises(ValueError, match="fit_fn"):
        sweep.run_sweep(["cpu-table9"], results_dir=tmp_path, jobs=2, allow_dirty=True, fit_fn=FakeFit())


# ------------------------------------------------------------------ resume
def test_kill_then_resume_neither_reruns_nor_duplicates(tmp_path):
    preset = "cpu-table9"
    specs = plan.expand_preset(preset)
    killed = FakeFit(fail_after=3)
    with pytest.raises(KeyboardInterrupt):
        sweep.run_sweep([preset], results_dir=tmp_path, allow_dirty=True, fit_fn=killed, progress=False, log=lambda m: None)
    first = _files(tmp_path, preset)
    assert [p.stem for p in first] == sorted(s.run_id for s in specs[:3])
    before = {p: p.read_bytes() for p in first}
    (tmp_path / preset / ".stray.json.tmp-999999").write_text('{"half": ')  # a write cut off by a kill
    resumed = FakeFit()
    summary = sweep.run_sweep([preset], results_dir=tmp_path, allow_dirty=True, fit_fn=resumed, progress=False, log=lambda m: None)
    assert summary["done_before"] == 3 and summary["ran"] == len(specs) - 3
    ran_keys = [(c[0], c[3]["train_on_clean_only"], c[2]) for c in resumed.calls]
    expected = [(s.seed, dict(s.overrides).get("train_on_clean_only", False), s.methods) for s in specs[3:]]
    assert ran_keys == expected
    files = _files(tmp_path, preset)
    assert sorted(p.stem for p in files) == sorted(s.run_id for s in specs)
    assert all(before[p] == p.read_bytes() for p in first)  # finished files untouched
    again = FakeFit()
    summary = sweep.run_sweep([preset], results_dir=tmp_path, allow_dirty=True, fit_fn=again, progress=False, log=lambda m: None)
    assert again.calls == [] and summary["ran"] == 0 and summary["done_before"] == len(specs)


def test_limit_and_reuse_across_presets(tmp_path):
    fake = FakeFit()
    sweep.run_sweep(["cpu-table14"], results_dir=tmp_path, allow_dirty=True, fit_fn=fake, limit=4, progress=False, log=lambda m: None)
    assert len(fake.calls) == 4 and len(_files(tmp_path, "cpu-table14")) == 4
    fake2 = FakeFit()
    summary = sweep.run_sweep(["cpu-table8"], results_dir=tmp_path, allow_dirty=True, fit_fn=fake2, progress=False, log=lambda m: None)
    assert summary["reused"] == 4 and len(fake2.calls) == len(plan.expand_preset("cpu-table8")) - 4
    for path in _files(tmp_path, "cpu-table8"):
        record = read_record(path)
        assert record["preset"] == "cpu-table8" and record["payload"]["spec"]["preset"] == "cpu-table8"
    reused = [read_record(p)["payload"]["provenance"].get("reused_from") for p in _files(tmp_path, "cpu-table8")]
    assert sorted(r for r in reused if r) == sorted(f"cpu-table14/{p.name}" for p in _files(tmp_path, "cpu-table14")
                                                    if p.name in {Path(r).name for r in reused if r})
    assert len([r for r in reused if r]) == 4 and not any(str(tmp_path) in r for r in reused if r)


# ------------------------------------------------------------------ corruption
def _corrupt_three(folder: Path) -> list:
    files = sorted(folder.glob("*.json"))
    text = files[0].read_text()
    files[0].write_text(text[: len(text) // 2])                                 # truncated
    record = json.loads(files[1].read_text())
    record["payload"]["result"]["methods"]["baseline"]["metrics"]["test"]["top1"] = 0.99  # edited number
    files[1].write_text(json.dumps(record))
    files[2].write_text(files[2].read_text().replace('"schema": "lilaw-edu/sweep-result/1"', '"schema": "x"'))
    return files[:3]


def test_corrupted_files_detected_reported_and_rerun(tmp_path):
    preset = "cpu-table9"
    sweep.run_sweep([preset], results_dir=tmp_path, allow_dirty=True, fit_fn=FakeFit(), progress=False, log=lambda m: None)
    bad = _corrupt_three(tmp_path / preset)
    reasons = ["not valid JSON", "SHA-256", "schema"]
    for path, why in zip(bad, reasons):
        with pytest.raises(CorruptResultError, match=why) as info:
            read_record(path)
        assert str(path) in str(info.value)
    planned = plan.plan_sweep([preset], tmp_path)
    assert len(planned["corrupt"]) == 3 and len(planned["done"]) == len(planned["specs"]) - 3
    records, problems = load_results(tmp_path, preset)
    assert len(records) == len(planned["specs"]) - 3 and len(problems) == 3
    with pytest.raises(CorruptResultError, match="on-corrupt rerun"):
        sweep.run_sweep([preset], results_dir=tmp_path, allow_dirty=True, fit_fn=FakeFit(), on_corrupt="error", progress=False,
                        log=lambda m: None)
    log, fake = [], FakeFit()
    summary = sweep.run_sweep([preset], results_dir=tmp_path, allow_dirty=True, fit_fn=fake, progress=False, log=log.append)
    assert len(fake.calls) == 3 and summary["ran"] == 3 and len(summary["corrupt"]) == 3
    assert sum("REPORT" in line for line in log) >= 3
    assert all(p.with_name(p.name + ".corrupt").exists() for p in bad)
    assert all(read_record(p)["run_id"] == p.stem for p in bad)               # rewritten, valid
    _, problems = load_results(tmp_path, preset)
    assert len(problems) == 3 and all("set aside" in p for p in problems)


def test_renamed_file_id_mismatch_detected(tmp_path):
    preset = "cpu-table9"
    sweep.run_sweep([preset], results_dir=tmp_path, allow_dirty=True, fit_fn=FakeFit(), limit=1, progress=False, log=lambda m: None)
    (path,) = _files(tmp_path, preset)
    moved = path.with_name("0123456789abcdef.json")
    path.rename(moved)
    with pytest.raises(CorruptResultError, match="run id mismatch"):
        read_record(moved)


# ------------------------------------------------------------------ summaries and verdicts
def test_mislabel_summary_orientation():
    changed = [1, 1, 0, 0, 0, 0]
    w_alpha = [0.1, 0.2, 0.9, 0.8, 0.95, 0.7]       # high for clean: perfect separation
    el2n = [0.9, 0.8, 0.1, 0.2, 0.3, 0.1]            # high for mislabeled: perfect
    results = {"noise": {"train_label_changed": changed},
               "methods": {"lilaw": {"weights": {"3": {"w_alpha": w_alpha, "w_beta": el2n, "w_delta": el2n,
                                                       "w": el2n}}},
                           "baseline": {"scores": {"3": {"el2n": el2n, "aum": w_alpha}}}}}
    out = mislabel_summary(results)
    assert out["lilaw"]["3"]["w_alpha"]["auroc"] == 1.0
    assert out["lilaw"]["3"]["w_beta"]["auroc"] == 1.0
    assert out["baseline"]["3"]["el2n"]["auroc"] == 1.0 and out["baseline"]["3"]["aum"]["auroc"] == 1.0
    assert out["baseline"]["3"]["el2n"]["frac_mislabeled"] == pytest.approx(2 / 6)


def test_paired_and_verdict(tmp_path):
    sweep.run_sweep(["cpu-table9"], results_dir=tmp_path, allow_dirty=True, fit_fn=FakeFit(), progress=False, log=lambda m: None)
    records, _ = load_results(tmp_path, "cpu-table9")
    df = tidy(records)
    diff = paired(df, "digits/uniform-0.5/clean-val", "lilaw", "baseline", "top1")
    assert diff["n"] == 5 and diff["mean"] == pytest.approx(0.02)          # FakeFit: lilaw = baseline + 0.02
    assert "same sign as paper" in verdict(diff, paper_delta=21.07, scale=100)
    assert "opposite sign to paper" in verdict(diff, paper_delta=-1.0, scale=100)  # zero spread: no interval claim
    assert verdict(None) == "not run yet"


# ------------------------------------------------------------------ paper tables
def test_paper_tables_parse():
    row = paper_lookup("2", "top1", dataset="breastmnist", rate=0.4)
    assert (row["baseline"], row["delta"]) == (74.78, 6.75)
    row = paper_lookup("15", "auroc", dataset="breastmnist", rate=0.5)
    assert (row["baseline"], row["delta"]) == (0.7562, -0.0010)
    assert paper_lookup("6", "top1", rate=0.5, setting="active=ab")["delta"] == 17.52
    assert len(paper_rows("7")) == 30 and len(paper_rows("2")) == 60 and TABLE16["w_alpha"][0] == 0.9838


@pytest.mark.skipif(not PAPER.exists(), reason="paper text not available")
def test_paper_tables_verbatim_in_paper():
    text = PAPER.read_text().replace("\\uparrow", "↑").replace("\\downarrow", "↓")
    lines = {line.strip() for line in text.splitlines()}
    for table, body in RAW_TABLES.items():
        for line in body.split("\n"):
            assert line.strip() in lines, (table, line)
    for name, values in TABLE16.items():
        assert "\t".join(f"{v:.4f}" for v in values) in text, name


# ------------------------------------------------------------------ one real run
def test_real_fit_end_to_end(tmp_path, monkeypatch):
    """One tiny real run through fit: the stored summary has metrics, history and mislabel AUROCs."""
    tiny = presets_sweep.row("digits/uniform-0.4/rec", ("16",), dict(presets_sweep.CPU_DATA["digits"], epochs=3),
                             ("baseline", "lilaw"), (0,), noise="uniform", rate=0.4,
                             record_weights_epochs=(2, 3), record_scores=True)
    monkeypatch.setitem(presets_sweep.SWEEP_PRESETS, "test-tiny",
                        dict(description="tiny", tables=("16",), rows=[tiny]))
    torch.set_num_threads(1)
    summary = sweep.run_sweep(["test-tiny"], results_dir=tmp_path, work_dir=tmp_path / "work", allow_dirty=True, progress=False,
                              log=lambda m: None)
    assert summary["ran"] == 1 and not summary["failed"]
    (path,) = _files(tmp_path, "test-tiny")
    payload = read_record(path)["payload"]
    res = payload["result"]
    assert 0 <= res["methods"]["lilaw"]["metrics"]["test"]["top1"] <= 1
    assert len(res["methods"]["lilaw"]["history"]) == 3
    assert set(res["mislabel"]["lilaw"]["3"]) == {"w_alpha", "w_beta", "w_delta", "w"}
    assert "aum" in res["mislabel"]["baseline"]["3"]
    assert payload["provenance"]["wall_time_s"] > 0 and payload["provenance"]["torch"] == torch.__version__
    assert not (tmp_path / "work" / "test-tiny" / path.stem).exists()     # checkpoints cleaned up


def test_superseded_runs_are_not_mixed_in(tmp_path):
    """A file from an older config of the same row and seed (another run id) is shadowed by the newer one."""
    from lilaw_edu.experiments.store import RunSpec, make_record, write_record
    preset = "cpu-table9"
    sweep.run_sweep([preset], results_dir=tmp_path, allow_dirty=True, fit_fn=FakeFit(), limit=1, progress=False, log=lambda m: None)
    (path,) = _files(tmp_path, preset)
    payload = read_record(path)["payload"]
    old = json.loads(json.dumps(payload))
    old["config"]["lr"] = 0.5                                   # an older config: different run id
    old["provenance"]["finished"] = "2000-01-01T00:00:00+00:00"
    spec = plan.expand_preset(preset)[0]
    fake_spec = RunSpec(spec.preset, spec.row, spec.tables, spec.base,
                        tuple(sorted(dict(spec.overrides, lr=0.5).items())), spec.methods, spec.seed)
    assert fake_spec.run_id == run_id_of(old["config"], spec.methods) != spec.run_id
    write_record(tmp_path / preset / f"{fake_spec.run_id}.json", make_record(fake_spec, old))
    records, problems = load_results(tmp_path, preset)
    assert not problems and [r["run_id"] for r in records] == [spec.run_id]


def test_compare_table_and_findings(tmp_path):
    from lilaw_edu.experiments.analysis import compare, load_tidy
    sweep.run_sweep(["cpu-table9"], results_dir=tmp_path, allow_dirty=True, fit_fn=FakeFit(), progress=False, log=lambda m: None)
    df, records, problems = load_tidy(tmp_path, ["cpu-table9", "paper-table9"])
    rows = [dict(label="clean val", table="9", metric="top1", paper=dict(rate=0.5, setting="clean_val"),
                 cpu=("cpu-table9", "digits/uniform-0.5/clean-val"), gpu=("paper-table9", "x")),
            dict(label="cross-row", table="9", metric="top1", paper=None, method="lilaw",
                 cpu=("cpu-table9", "digits/uniform-0.5/clean-val"),
                 cpu_ref=("cpu-table9", "digits/uniform-0.5/clean-only")),
            dict(label="missing", table="9", metric="top1", paper=dict(rate=0.0, setting="clean_val"),
                 cpu=("cpu-table9", "no-such-row"))]
    table = compare(df, rows)
    assert list(table["seeds"]) == [5, 5, 0]
    assert table.loc[0, "paper Δ"] == "+21.07" and table.loc[0, "paper-scale Δ"] == "not run yet"
    assert table.loc[0, "ours Δ [95% CI]"].startswith("+2.00")      # FakeFit: lilaw = baseline + 0.02
    # cross-row: lilaw (second method, +0.02) of one row against the baseline (first method) of the other
    assert table.loc[1, "ours Δ [95% CI]"].startswith("+2.00")
    assert table.loc[2, "verdict"] == "not run yet"
    text = findings(table)
    assert text.startswith("2 of 3 rows have results, 1 of them with a paper row") and "not independent" in text


def test_unresumable_checkpoint_restarts_run_once(tmp_path):
    """A work folder the current code refuses to resume from is cleared and the run starts over."""
    class Refuses(FakeFit):
        def __call__(self, config, methods, out_dir=None, resume=False, progress=True):
            if out_dir is not None and (Path(out_dir) / "old.pt").exists():
                raise ValueError("checkpoint was made with a different config")
            return super().__call__(config, methods, out_dir, resume, progress)

    spec = plan.expand_preset("cpu-table9")[0]
    work = tmp_path / "work"
    (work / spec.preset / spec.run_id).mkdir(parents=True)
    (work / spec.preset / spec.run_id / "old.pt").write_bytes(b"x")
    fake = Refuses()
    summary = sweep.run_sweep(["cpu-table9"], results_dir=tmp_path / "res", work_dir=work, allow_dirty=True, fit_fn=fake, limit=1,
                              progress=False, log=lambda m: None)
    assert summary["ran"] == 1 and not summary["failed"] and len(fake.calls) == 1
    record = read_record(tmp_path / "res" / "cpu-table9" / f"{spec.run_id}.json")
    assert "different config" in record["payload"]["provenance"]["restarted_after"]
