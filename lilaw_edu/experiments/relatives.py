"""The tables of the chapter "LiLAW among its relatives" (issue 11), read from ``cpu-relatives`` records
and the ``benchmarks/overhead.py --peers`` JSON files (never trains).

* :func:`accuracy_specs` / :func:`budget_specs`: the row specs given to
  :func:`lilaw_edu.experiments.analysis.compare` (one family: every paired test of the chapter is
  adjusted together, Holm and Benjamini-Hochberg).
* :func:`accuracy_summary`: mean ± std over seeds per row, metric and method.
* :func:`benchmark_costs` and :func:`sweep_costs`: time per epoch relative to the baseline and peak
  memory (the interleaved benchmark), and the sweep's own whole-run times.
* :func:`budget_table`: the epochs each method got in the compute-matched rows and the cost ratios
  that set them.
* :func:`cleanlab_quality`: how many planted flips confident learning flagged.
* :func:`where_each_wins`: the plain-words summary (best mean, Holm-significant differences).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from lilaw_edu.experiments.analysis import fmt_mean_std, scale_digits

__all__ = ["PRESET", "METHODS", "RELATIVES_ONLY", "METRICS", "accuracy_rows", "accuracy_specs", "budget_specs",
           "accuracy_summary", "read_benchmarks", "benchmark_costs", "sweep_costs", "budget_table",
           "cleanlab_quality", "where_each_wins"]

PRESET = "cpu-relatives"
METHODS = ("baseline", "lilaw", "l2rw", "mwnet", "cleanlab")
RELATIVES_ONLY = ("l2rw", "mwnet", "cleanlab")
METRICS = ("top1", "auroc")
BUDGET_TAG = "/budget-"


def accuracy_rows(preset: str = PRESET) -> list:
    """Labels of the preset's rows that run every method (the accuracy grid), in preset order."""
    from lilaw_edu.experiments.presets import SWEEP_PRESETS
    return [r["row"] for r in SWEEP_PRESETS[preset]["rows"] if set(METHODS) <= set(r["methods"])]


def _spec(label, metric, cpu, method, reference, cpu_ref=None) -> dict:
    spec = {"label": label, "table": "relatives", "paper": None, "metric": metric, "cpu": cpu,
            "method": method, "reference": reference}
    if cpu_ref is not None:
        spec["cpu_ref"] = cpu_ref
    return spec


def accuracy_specs(preset: str = PRESET, rows=None, metrics=METRICS) -> list:
    """Paired comparisons of every accuracy row: each method against the baseline, each relative against LiLAW.

    Returns
    -------
    list of dict
        Specs for :func:`~lilaw_edu.experiments.analysis.compare` (``label`` = the row label).
    """
    rows = accuracy_rows(preset) if rows is None else rows
    pairs = [(m, "baseline") for m in METHODS[1:]] + [(m, "lilaw") for m in RELATIVES_ONLY]
    return [_spec(row, metric, (preset, row), m, ref) for row in rows for metric in metrics for m, ref in pairs]


def budget_specs(preset: str = PRESET, metrics=METRICS) -> list:
    """Compute-matched comparisons: each ``<row>/budget-<method>`` row's method against LiLAW's runs of ``<row>``
    (paired by seed: same split, noise and initial weights)."""
    from lilaw_edu.experiments.presets import SWEEP_PRESETS
    specs = []
    for r in SWEEP_PRESETS[preset]["rows"]:
        if BUDGET_TAG in r["row"]:
            main, method = r["row"].split(BUDGET_TAG)
            specs += [_spec(r["row"], metric, (preset, r["row"]), method, "lilaw", cpu_ref=(preset, main))
                      for metric in metrics]
    return specs


def accuracy_summary(df, rows, methods=METHODS, metrics=METRICS):
    """``mean ± std (n)`` over seeds (accuracy in %, AUROC in [0, 1]).

    Parameters
    ----------
    df : pandas.DataFrame
        :func:`lilaw_edu.experiments.analysis.tidy` rows of the preset.
    rows : sequence of str
    methods, metrics : sequence of str

    Returns
    -------
    pandas.DataFrame
        Index (row, metric), one column per method.
    """
    import pandas as pd
    out = []
    for row in rows:
        sub = df[df["row"] == row]
        for metric in metrics:
            scale, digits = scale_digits(metric)
            out.append({"row": row, "metric": metric,
                        **{m: fmt_mean_std(sub[sub["method"] == m][metric], scale, digits) for m in methods}})
    return pd.DataFrame(out).set_index(["row", "metric"])


def read_benchmarks(folder) -> dict:
    """``benchmarks/overhead.py --peers`` result files in ``folder`` (name -> parsed JSON), sorted by name."""
    out = {}
    for path in sorted(Path(folder).glob("*peers*.json")):
        bench = json.loads(path.read_text())
        if any("l2rw" in w.get("ratios", {}) for w in bench.get("workloads", {}).values()):
            out[path.name] = bench
    return out


def benchmark_costs(benchmarks: dict, methods=("lilaw",) + RELATIVES_ONLY):
    """Time per epoch and peak memory relative to the baseline, one row per (file, workload, method).

    Parameters
    ----------
    benchmarks : dict
        From :func:`read_benchmarks`.

    Returns
    -------
    pandas.DataFrame
        Columns: file, workload, training samples, batch, timed epochs, method, epoch time / baseline,
        process CPU / baseline, peak RSS / baseline, training RSS increment (MiB), baseline's (MiB).
    """
    import pandas as pd
    out = []
    for name, bench in benchmarks.items():
        for workload, w in bench["workloads"].items():
            for m in methods:
                if m not in w["ratios"]:
                    continue
                out.append({"file": name, "workload": workload, "training samples": w["n_train"],
                            "batch": w["batch_size"], "timed epochs": bench["settings"]["repeats"], "method": m,
                            "epoch time / baseline": w["ratios"][m], "process CPU / baseline": w["cpu_ratios"][m],
                            "peak RSS / baseline": w["memory_ratios"][m],
                            "training RSS increment (MiB)": w["memory"][m].get("train_rss_increment_mib"),
                            "baseline's (MiB)": w["memory"]["baseline"].get("train_rss_increment_mib")})
    return pd.DataFrame(out)


def _run_seconds(result: dict):
    """Whole-run seconds of one method: its training loop plus confident learning's cross-fitting."""
    extra = (result.get("label_filter") or {}).get("seconds")
    return result["wall_time_s"] + (extra or 0.0)


def sweep_costs(records: list, methods=METHODS):
    """Mean whole-run wall time per dataset and method in the accuracy rows, and its ratio to the baseline's.

    The methods of one run train one after another on a shared machine, not interleaved: loads differ
    between them, so these ratios are rougher than :func:`benchmark_costs`.

    Returns
    -------
    pandas.DataFrame
        Index (dataset, method); columns: runs, mean run time (s), relative to baseline.
    """
    import pandas as pd
    times = {}
    for rec in records:
        if BUDGET_TAG in rec["row"]:
            continue
        dataset = rec["payload"]["config"]["dataset"]
        for m, res in rec["payload"]["result"]["methods"].items():
            times.setdefault((dataset, m), []).append(_run_seconds(res))
    out = []
    for (dataset, m), vals in sorted(times.items()):
        if m not in methods:
            continue
        base = times.get((dataset, "baseline"))
        mean = sum(vals) / len(vals)
        out.append({"dataset": dataset, "method": m, "runs": len(vals), "mean run time (s)": round(mean, 1),
                    "relative to baseline": round(mean / (sum(base) / len(base)), 2) if base else math.nan})
    return pd.DataFrame(out).set_index(["dataset", "method"]) if out else pd.DataFrame()


def budget_table(records: list, preset: str = PRESET):
    """The compute-matched rows: epochs per method, the measured cost ratio that set them, and the run times
    the sweep recorded (mean over seeds, against LiLAW's runs of the main row).

    Returns
    -------
    pandas.DataFrame
        Index method; columns: epochs, measured cost / LiLAW (preset), runs, mean run time (s),
        run time / LiLAW's.
    """
    import pandas as pd

    from lilaw_edu.experiments.presets import BUDGET_COST_RATIOS, SWEEP_PRESETS
    budget_rows = [r for r in SWEEP_PRESETS[preset]["rows"] if BUDGET_TAG in r["row"]]
    main = budget_rows[0]["row"].split(BUDGET_TAG)[0]
    main_epochs = next(r for r in SWEEP_PRESETS[preset]["rows"] if r["row"] == main)["overrides"]["epochs"]
    times = {}
    for rec in records:
        for m, res in rec["payload"]["result"]["methods"].items():
            if rec["row"] == main and m == "lilaw" or rec["row"].endswith(BUDGET_TAG + m):
                times.setdefault(m, []).append(_run_seconds(res))
    lilaw = sum(times["lilaw"]) / len(times["lilaw"]) if times.get("lilaw") else math.nan
    out = [{"method": "lilaw", "epochs": main_epochs, "measured cost / LiLAW (preset)": 1.0}]
    out += [{"method": r["methods"][0], "epochs": r["overrides"]["epochs"],
             "measured cost / LiLAW (preset)": BUDGET_COST_RATIOS[r["methods"][0]]} for r in budget_rows]
    for entry in out:
        vals = times.get(entry["method"], [])
        entry["runs"] = len(vals)
        entry["mean run time (s)"] = round(sum(vals) / len(vals), 1) if vals else math.nan
        entry["run time / LiLAW's"] = round(sum(vals) / len(vals) / lilaw, 2) if vals else math.nan
    return pd.DataFrame(out).set_index("method")


def cleanlab_quality(records: list):
    """Per run: samples confident learning flagged, planted flips, recall, precision, kept, fold epochs."""
    import pandas as pd
    out = []
    for rec in records:
        info = rec["payload"]["result"]["methods"].get("cleanlab", {}).get("label_filter")
        if info:
            out.append({"row": rec["row"], "seed": rec["payload"]["config"]["seed"], "flagged": info["flagged"],
                        "planted flips": info["corrupted"], "recall": info["recall"],
                        "precision": info["precision"], "kept": info["kept"], "fold epochs": info["fold_epochs"]})
    return pd.DataFrame(out).sort_values(["row", "seed"]).reset_index(drop=True) if out else pd.DataFrame()


def where_each_wins(df, rows, table, metrics=METRICS) -> str:
    """Markdown: per row and metric the highest and lowest mean, then every comparison of ``table`` whose
    Holm-adjusted p is below 0.05, in words.

    Parameters
    ----------
    df : pandas.DataFrame
        Tidy rows.
    rows : sequence of str
        Accuracy rows.
    table : pandas.DataFrame
        :func:`~lilaw_edu.experiments.analysis.compare` output over the chapter's family.
    """
    lines = []
    for row in rows:
        sub = df[df["row"] == row]
        if not len(sub):
            continue
        for metric in metrics:
            scale, digits = scale_digits(metric)
            means = sub.groupby("method")[metric].mean()
            n = sub.groupby("method")["seed"].nunique().min()
            lines.append(f"* **{row}, {metric}** ({n} seeds): highest mean `{means.idxmax()}` "
                         f"({means.max() * scale:.{digits}f}), lowest `{means.idxmin()}` "
                         f"({means.min() * scale:.{digits}f}).")
    holm = table["p Holm"].map(lambda p: float(p) if p not in ("-", None) else math.nan)
    sig = table[holm < 0.05]
    lines.append(f"* Differences that remain detectable after Holm's adjustment over the {int(holm.notna().sum())} "
                 f"paired comparisons of this chapter with results: {len(sig)}"
                 + ("." if not len(sig) else ": " + "; ".join(
                     f"{r['row']} {r['metric']}: {r['method vs reference']} {r['ours Δ [95% CI]']} "
                     f"(Holm p = {r['p Holm']})" for _, r in sig.iterrows()) + "."))
    return "\n".join(lines)
