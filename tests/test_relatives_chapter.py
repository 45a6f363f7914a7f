"""The tables of the relatives chapter (lilaw_edu.experiments.relatives), on hand-made records."""
from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from lilaw_edu.experiments import relatives as rel
from lilaw_edu.experiments.plan import expand_preset
from lilaw_edu.experiments.presets import BUDGET_COST_RATIOS, BUDGET_EPOCHS, SWEEP_PRESETS


def _record(row, seed, times, dataset="digits", cleanlab_seconds=None):
    methods = {}
    for m, t in times.items():
        res = {"wall_time_s": t, "init_state_sha256": f"h{seed}"}
        if m == "cleanlab" and cleanlab_seconds is not None:
            res["label_filter"] = {"seconds": cleanlab_seconds, "flagged": 10, "corrupted": 8, "recall": 0.75,
                                   "precision": 0.6, "kept": 90, "fold_epochs": 3}
        methods[m] = res
    return {"row": row, "payload": {"config": {"dataset": dataset, "seed": seed}, "result": {"methods": methods}}}


def test_specs_cover_every_row_and_pair_the_budget_rows_with_lilaw():
    rows = rel.accuracy_rows()
    assert len(rows) == 7 and all("/budget-" not in r for r in rows)
    specs = rel.accuracy_specs()
    assert len(specs) == len(rows) * 2 * 7
    assert {(s["method"], s["reference"]) for s in specs} == {
        ("lilaw", "baseline"), ("l2rw", "baseline"), ("mwnet", "baseline"), ("cleanlab", "baseline"),
        ("l2rw", "lilaw"), ("mwnet", "lilaw"), ("cleanlab", "lilaw")}
    budget = rel.budget_specs()
    assert len(budget) == 2 * len(BUDGET_EPOCHS)
    for s in budget:
        assert s["reference"] == "lilaw" and s["cpu_ref"] == (rel.PRESET, "digits/uniform-0.5")
        assert s["cpu"][1] == f"digits/uniform-0.5/budget-{s['method']}"


def test_budget_rows_differ_from_lilaws_row_only_in_epochs():
    specs = {(s.row, s.seed): s for s in expand_preset(rel.PRESET)}
    for m, epochs in BUDGET_EPOCHS.items():
        assert epochs == round(6 / BUDGET_COST_RATIOS[m]) >= 1
        for seed in range(5):
            budget = dataclasses.asdict(specs[(f"digits/uniform-0.5/budget-{m}", seed)].config())
            main = dataclasses.asdict(specs[("digits/uniform-0.5", seed)].config())
            assert {k for k in main if main[k] != budget[k]} == ({"epochs"} if epochs != 6 else set())
            assert budget["epochs"] == epochs
    assert [r["row"] for r in SWEEP_PRESETS[rel.PRESET]["rows"]][0] == "digits/uniform-0.5"


def test_accuracy_summary_formats_mean_std_and_count():
    df = pd.DataFrame({"row": ["r"] * 4, "method": ["baseline", "baseline", "lilaw", "lilaw"],
                       "seed": [0, 1, 0, 1], "top1": [0.5, 0.7, 0.6, 0.6], "auroc": [0.8, 0.9, 0.85, 0.95]})
    out = rel.accuracy_summary(df, ["r"], methods=("baseline", "lilaw", "l2rw"))
    assert out.loc[("r", "top1"), "baseline"].startswith("60.00 ± 14.14")
    assert out.loc[("r", "top1"), "lilaw"].startswith("60.00 ± 0.00")
    assert out.loc[("r", "auroc"), "lilaw"].startswith("0.9000 ± 0.0707")
    assert out.loc[("r", "top1"), "l2rw"] == "not run yet"


def test_benchmark_costs_reads_ratios_and_memory():
    w = {"n_train": 32, "batch_size": 16, "ratios": {"lilaw": 1.5, "l2rw": 30.0}, "cpu_ratios": {"lilaw": 1.4,
         "l2rw": 27.0}, "memory_ratios": {"lilaw": 1.0, "l2rw": 1.2},
         "memory": {"baseline": {"train_rss_increment_mib": 40}, "lilaw": {"train_rss_increment_mib": 41},
                    "l2rw": {"train_rss_increment_mib": 120}}}
    out = rel.benchmark_costs({"x-peers.json": {"settings": {"repeats": 1}, "workloads": {"lstm": w}}})
    assert list(out["method"]) == ["lilaw", "l2rw"]  # mwnet, cleanlab absent from this file
    row = out.set_index("method").loc["l2rw"]
    ratios = (row["epoch time / baseline"], row["process CPU / baseline"], row["peak RSS / baseline"])
    assert ratios == (30.0, 27.0, 1.2)
    assert (row["training RSS increment (MiB)"], row["baseline's (MiB)"]) == (120, 40)


def test_sweep_costs_add_cross_fitting_and_skip_budget_rows():
    recs = [_record("digits/uniform-0.5", 0, {"baseline": 2.0, "cleanlab": 1.0}, cleanlab_seconds=5.0),
            _record("digits/uniform-0.5", 1, {"baseline": 4.0, "cleanlab": 1.0}, cleanlab_seconds=3.0),
            _record("digits/uniform-0.5/budget-baseline", 0, {"baseline": 100.0})]
    out = rel.sweep_costs(recs)
    assert out.loc[("digits", "baseline"), "mean run time (s)"] == 3.0
    assert out.loc[("digits", "cleanlab"), "mean run time (s)"] == 5.0  # (1 + 5 + 1 + 3) / 2
    assert out.loc[("digits", "cleanlab"), "relative to baseline"] == pytest.approx(5.0 / 3.0, abs=0.005)


def test_budget_table_compares_run_times_with_lilaws():
    recs = [_record("digits/uniform-0.5", s, {"lilaw": 4.0, "l2rw": 12.0}) for s in range(2)]
    recs += [_record("digits/uniform-0.5/budget-l2rw", s, {"l2rw": 5.0}) for s in range(2)]
    out = rel.budget_table(recs)
    assert out.loc["lilaw", "epochs"] == 6 and out.loc["l2rw", "epochs"] == BUDGET_EPOCHS["l2rw"]
    assert out.loc["l2rw", "measured cost / LiLAW (preset)"] == BUDGET_COST_RATIOS["l2rw"]
    assert out.loc["l2rw", "run time / LiLAW's"] == 1.25 and out.loc["l2rw", "runs"] == 2
    assert out.loc["mwnet", "runs"] == 0


def test_cleanlab_quality_and_where_each_wins():
    quality = rel.cleanlab_quality([_record("r", 1, {"cleanlab": 1.0}, cleanlab_seconds=2.0)])
    assert quality.loc[0, "recall"] == 0.75 and quality.loc[0, "kept"] == 90
    df = pd.DataFrame({"row": ["r"] * 4, "method": ["baseline", "baseline", "l2rw", "l2rw"], "seed": [0, 1, 0, 1],
                       "top1": [0.5, 0.7, 0.9, 0.8], "auroc": [0.9, 0.9, 0.8, 0.8]})
    table = pd.DataFrame({"row": ["r", "r"], "metric": ["top1", "auroc"], "method vs reference":
                          ["l2rw vs baseline"] * 2, "ours Δ [95% CI]": ["+25.00 [a, b]", "-0.1000 [c, d]"],
                          "p Holm": ["0.01", "-"]})
    text = rel.where_each_wins(df, ["r"], table)
    assert "**r, top1** (2 seeds): highest mean `l2rw` (85.00), lowest `baseline` (60.00)" in text
    assert "**r, auroc** (2 seeds): highest mean `baseline` (0.9000)" in text
    assert ("over the 1 paired comparisons of this chapter with results: 1: r top1: l2rw vs baseline "
            "+25.00 [a, b]") in text
