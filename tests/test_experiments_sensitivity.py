"""Checkpoint-selection sensitivity (issue 16, part 1) and the freezing/weighting decomposition (part 5):
numbers recomputed independently with numpy/scipy from per-seed values; the real records read through tidy."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lilaw_edu.experiments.analysis import OLD_RULE, load_tidy, scale_digits
from lilaw_edu.experiments.confound import PARTS, decomposition, plot_decomposition
from lilaw_edu.experiments.sensitivity import last_epoch_metric, selection_sensitivity, sensitivity_summary

RESULTS = Path(__file__).resolve().parents[1] / "results"
SEEDS = (0, 1, 2, 3, 4)


def _frame(values: dict, preset="p", row="r") -> pd.DataFrame:
    """values: {method: (top1 per seed, top1_last per seed)}."""
    rows = []
    for method, (sel, last) in values.items():
        for seed, a, b in zip(SEEDS, sel, last):
            rows.append(dict(preset=preset, row=row, method=method, seed=seed, top1=a, top1_last=b,
                             select_by="val_loss", best_epoch=seed + 1, epochs_run=10))
    return pd.DataFrame(rows)


def _t_interval(d):
    d = np.asarray(d, float)
    half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
    return d.mean(), d.mean() - half, d.mean() + half


def test_sensitivity_matches_an_independent_paired_t_interval():
    rng = np.random.default_rng(0)
    base_sel, base_last = rng.uniform(0.5, 0.7, 5), rng.uniform(0.5, 0.7, 5)
    lil_sel, lil_last = base_sel + rng.normal(0.03, 0.01, 5), base_last - rng.normal(0.04, 0.01, 5)
    df = _frame({"baseline": (base_sel, base_last), "lilaw": (lil_sel, lil_last)})
    table = selection_sensitivity(df, [dict(label="50 %", metric="top1", cpu=("p", "r"))])
    row = table.iloc[0]
    m, lo, hi = _t_interval(100 * (lil_sel - base_sel))
    assert row["Δ selected [95% CI]"] == f"{m:+.2f} [{lo:+.2f}, {hi:+.2f}]"
    m2, lo2, hi2 = _t_interval(100 * (lil_last - base_last))
    assert row["Δ last epoch [95% CI]"] == f"{m2:+.2f} [{lo2:+.2f}, {hi2:+.2f}]"
    assert row["shift"] == pytest.approx(round(m2 - m, 2))
    assert table["sign kept"].tolist() == [False] and m > 0 > m2  # the planted flip is found
    assert row["rule"] == "val_loss" and row["seeds"] == 5 and row["epoch chosen (method)"] == "3.0 of 10"
    assert sensitivity_summary(table) == (f"Of the 1 differences, 0 keep the sign of their mean at the last epoch and "
                                          f"1 changes it: “50 %”. The largest move is {round(m2 - m, 2):+g} points (“50 %”).")


def test_sensitivity_pairs_across_presets_and_says_when_last_epoch_is_missing():
    base = _frame({"baseline": ([0.5] * 5, [math.nan] * 5)}, preset="ref")
    base["select_by"] = OLD_RULE
    mine = _frame({"lilaw": ([0.6, 0.61, 0.62, 0.6, 0.6], [0.6] * 5)}, preset="mine")
    table = selection_sensitivity(pd.concat([base, mine]), [
        dict(label="x", metric="top1", cpu=("mine", "r"), cpu_ref=("ref", "r")),
        dict(label="gpu only", metric="top1", cpu=None)])
    assert len(table) == 1  # rows without CPU runs are skipped
    row = table.iloc[0]
    assert row["Δ selected [95% CI]"].startswith("+10.60") and row["Δ last epoch [95% CI]"] == "not stored"
    assert table["sign kept"].tolist() == [None] and row["rule"] == f"{OLD_RULE}, val_loss"
    text = sensitivity_summary(table)
    assert text == "No record behind these comparisons stores its last-epoch metrics."


def test_summary_counts_kept_signs_and_the_largest_move():
    table = pd.DataFrame([dict(row="a", metric="top1", shift=1.5, **{"sign kept": True}),
                          dict(row="b", metric="top1", shift=-3.25, **{"sign kept": False}),
                          dict(row="b", metric="auroc", shift=-30.0, **{"sign kept": False}),  # other units: not the largest
                          dict(row="c", metric="auroc", shift=0.01, **{"sign kept": None})])
    assert sensitivity_summary(table) == ("Of the 3 differences, 1 keep the sign of their mean at the last epoch and "
                                          "2 change it: “b”, “b” (auroc). The largest move is -3.25 points (“b”). "
                                          "1 comparison cannot be checked: no last-epoch metrics stored.")


def test_a_difference_that_rounds_to_zero_never_flips():
    base = _frame({"baseline": ([0.5, 0.6, 0.7, 0.6, 0.5], [0.5, 0.6, 0.7, 0.6, 0.5])})
    same = _frame({"lilaw": ([0.52, 0.61, 0.72, 0.6, 0.51], [0.5 + 1e-17, 0.6, 0.7, 0.6, 0.5])})
    table = selection_sensitivity(pd.concat([base, same]), [dict(label="z", metric="top1", cpu=("p", "r"))])
    assert table["Δ last epoch [95% CI]"].iloc[0].startswith("+0.00") and table["sign kept"].tolist() == [True]


def test_last_epoch_metric_names_the_bad_value():
    assert last_epoch_metric("top1_cal") == "top1_last" and last_epoch_metric("auroc") == "auroc_last"
    assert scale_digits("top1_last") == (100.0, 2) and scale_digits("auroc_last") == (1.0, 4)
    with pytest.raises(ValueError, match=r"metric must be one of .*got 'nll'"):
        last_epoch_metric("nll")


def test_tidy_reads_last_epoch_metrics_and_rule_from_the_records():
    df, records, _ = load_tidy(RESULTS, ["cpu-table3"])
    rec = records[0]
    m = rec["payload"]["result"]["methods"]["lilaw"]["metrics"]
    got = df[(df["run_id"] == rec["run_id"]) & (df["method"] == "lilaw")].iloc[0]
    assert got["top1_last"] == m["test_last_epoch"]["top1"] and got["auroc_last"] == m["test_last_epoch"]["auroc"]
    assert got["select_by"] == rec["payload"]["config"]["select_by"] == "val_loss"


def test_decomposition_is_exact_and_matches_per_seed_means():
    rng = np.random.default_rng(1)
    arms = {m: rng.uniform(0.3, 0.6, 5) for m in ("baseline", "baseline-frozen", "lilaw")}
    rows = [dict(preset="c", row="r50", method=m, seed=s, top1=v[k]) for m, v in arms.items()
            for k, s in enumerate(SEEDS)]
    out = decomposition(pd.DataFrame(rows), {0.5: "r50", 0.7: "missing"})
    assert out["noise"].tolist() == ["50%"]  # a rate without runs is left out
    got = out.iloc[0]
    assert got["comparison"] == pytest.approx(100 * (arms["lilaw"] - arms["baseline"]).mean())
    assert got["freezing"] == pytest.approx(100 * (arms["baseline-frozen"] - arms["baseline"]).mean())
    assert got["freezing + weighting"] == pytest.approx(got["comparison"])
    assert got["freezing share (%)"] == pytest.approx(100 * got["freezing"] / got["comparison"])
    fig = plot_decomposition(pd.DataFrame(rows), {0.5: "r50"})
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == [p[0].split(":")[0] for p in PARTS[:3]]


def test_check_selected_agrees_with_compare_on_the_real_records():
    from lilaw_edu.experiments.analysis import compare
    from lilaw_edu.experiments.sensitivity import check_selected
    df, _, _ = load_tidy(RESULTS, ["cpu-table3"])
    rows = [dict(label=f"{r}", table="3", metric=m, paper=None, cpu=("cpu-table3", r))
            for r in ("ecg5000/none-0", "ecg5000/uniform-0.3") for m in ("top1", "auroc_cal")]
    table, sens = compare(df, rows), selection_sensitivity(df, rows)
    assert check_selected(sens, table) == 4
    assert (sens["Δ last epoch [95% CI]"] != "not stored").all()
    sens.loc[1, "Δ selected [95% CI]"] = "+9.99 [+0.00, +1.00]"
    with pytest.raises(AssertionError, match=r"ecg5000/none-0', 'auroc_cal', 'lilaw vs baseline'\): the sensitivity table shows"):
        check_selected(sens, table)


def _history(rng, epochs=8):
    out = []
    for e in range(1, epochs + 1):
        out.append(dict(epoch=e, val_loss=float(rng.choice([0.5, 0.6, 0.7, np.nan])),
                        val_acc=float(rng.choice([0.8, 0.9])), val_loss_clean=float(rng.uniform(0.1, 1)),
                        val_acc_clean=float(rng.choice([0.7, 0.8, 0.9])), test_top1=float(rng.uniform(0.5, 1))))
    return out


@pytest.mark.parametrize("rule", ["val_loss", "val_acc", "val_loss_clean", "val_acc_clean", "last"])
def test_rule_epoch_replays_the_training_loops_own_selection(rule):
    """Oracle: lilaw_edu.training.loop.select_checkpoint fed the same histories (ties, NaN scores included)."""
    from types import SimpleNamespace

    from torch import nn

    from lilaw_edu.experiments.sensitivity import rule_epoch
    from lilaw_edu.training.checkpoint import LoopState
    from lilaw_edu.training.config import config_from_preset
    from lilaw_edu.training.loop import select_checkpoint
    rng = np.random.default_rng(3)
    for _ in range(20):
        history = _history(rng)
        by, on = (rule[:-6], "clean_val") if rule.endswith("_clean") else (rule, "val")
        run = SimpleNamespace(config=config_from_preset("cpu-digits", select_by=by, select_on=on),
                              model=nn.Linear(1, 1))
        state = LoopState(method="m", config={})
        for entry in history:
            select_checkpoint(run, state, entry)
        assert rule_epoch(history, rule) == state.best_epoch


def test_rule_table_pairs_seeds_and_adjusts_over_the_table():
    from lilaw_edu.experiments.sensitivity import rule_epoch, rule_table
    rng = np.random.default_rng(5)
    records = []
    for seed in SEEDS:
        methods = {m: {"history": _history(rng)} for m in ("baseline", "lilaw")}
        records.append({"preset": "p", "row": "r", "run_id": str(seed),
                        "payload": {"spec": {"seed": seed}, "result": {"methods": methods}}})
    table = rule_table(records, [("L − B", "p", "r", "lilaw", "baseline")], rules=("val_acc", "last"))
    assert table["rule"].tolist() == ["val_acc", "last"] and (table["seeds"] == 5).all()
    for rule, shown in zip(("val_acc", "last"), table["Δ [95% CI]"]):
        d = [100 * (h["lilaw"]["history"][rule_epoch(h["lilaw"]["history"], rule) - 1]["test_top1"]
                    - h["baseline"]["history"][rule_epoch(h["baseline"]["history"], rule) - 1]["test_top1"])
             for h in (r["payload"]["result"]["methods"] for r in records)]
        m, lo, hi = _t_interval(d)
        assert shown == f"{m:+.2f} [{lo:+.2f}, {hi:+.2f}]"
    p = table["p"].to_numpy()
    assert table["p Holm"].tolist() == pytest.approx(np.minimum(1, np.maximum.accumulate(
        np.sort(p) * np.array([2, 1])))[np.argsort(np.argsort(p))].tolist())


def test_rules_name_the_bad_value():
    from lilaw_edu.experiments.sensitivity import rule_epoch, rule_values
    with pytest.raises(ValueError, match=r"rule must be one of .*got 'best'"):
        rule_epoch([{"epoch": 1}], "best")
    with pytest.raises(ValueError, match="history must have at least one epoch"):
        rule_epoch([], "last")
    rec = {"preset": "p", "row": "r", "run_id": "x", "payload": {"spec": {"seed": 0}, "result": {"methods": {
        "lilaw": {"history": [{"epoch": 1, "val_loss": 1.0}]}}}}}
    with pytest.raises(ValueError, match="no per-epoch test_top1; the run needs test_each_epoch=True"):
        rule_values([rec], "p", "r", "lilaw", "last")


def test_plot_epoch_curves_marks_the_lowest_mean_validation_loss():
    from lilaw_edu.experiments.plots import plot_epoch_curves
    losses = {"baseline": [1.0, 0.8, 0.9], "lilaw": [0.7, 0.9, 1.1]}
    records = [{"preset": "p", "row": "r", "payload": {"result": {"methods": {
        m: {"history": [dict(val_loss=v + 0.01 * s, val_acc=0.5, test_top1=0.6 + e / 10)
                        for e, v in enumerate(vals)]} for m, vals in losses.items()}}}} for s in range(3)]
    fig = plot_epoch_curves(records, "p", "r", ["baseline", "lilaw"])
    ax = fig.axes[0]
    markers = [line.get_xydata()[0].tolist() for line in ax.lines if line.get_marker() == "o"]
    assert markers == [[2.0, pytest.approx(0.81)], [1.0, pytest.approx(0.71)]]
    with pytest.raises(ValueError, match="no gce runs in preset 'p' row 'r'"):
        plot_epoch_curves(records, "p", "r", ["gce"])
