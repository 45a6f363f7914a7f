"""Reading sweep results back: tidy tables, paired comparisons, verdicts (never trains).

The experiment chapters of the book use these functions on the committed
``results/<preset>/*.json`` files. This module imports :mod:`lilaw_edu.experiments.store`
(to read and validate records) and never the runner or the trainer
(:mod:`lilaw_edu.training.fit`, ``loop``, ``engine``); what a record keeps of a fit is
decided in :mod:`lilaw_edu.experiments.summary`.

* :func:`load_results` reads a preset's files; corrupted ones are returned as
  problems (never used).
* :func:`tidy` flattens records to one row per (run, method).
* :func:`paired` compares two methods over seeds with :func:`lilaw_edu.metrics.paired_difference`;
  :func:`compare` builds a chapter's table, its verdicts from :mod:`lilaw_edu.experiments.verdicts`
  (p-values adjusted within the chapter's family).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from lilaw_edu.experiments.store import CorruptResultError, read_record
from lilaw_edu.metrics import paired_difference

__all__ = ["load_results", "tidy", "paired", "fmt_mean_std", "fmt_mean_ci", "fmt_diff", "find_results_dir",
           "load_tidy", "compare", "row_diff", "family_size", "raw_metric_values", "ACC_METRICS", "scale_digits",
           "OLD_RULE"]

OLD_RULE = "first best val_acc (old rule)"
"""The selection rule of records written before ``select_by`` existed (issue 16): the *first* epoch reaching
the best validation accuracy."""


def load_results(results_dir, preset: str) -> tuple:
    """All result files of one preset.

    Returns
    -------
    records : list of dict
        Valid records, sorted by file name; of several for the same (row, seed, methods),
        only the most recently finished.
    problems : list of str
        One message per corrupted file (and per ``*.json.corrupt`` set aside by a sweep).
    """
    folder = Path(results_dir) / preset
    records, problems = [], []
    for path in sorted(folder.glob("*.json")):
        try:
            record = read_record(path)
            record["file"] = str(path)
            records.append(record)
        except CorruptResultError as exc:
            problems.append(str(exc))
    problems += [f"{p} was set aside as corrupted by a sweep" for p in sorted(folder.glob("*.json.corrupt"))]
    return _latest_per_seed(records), problems


def _latest_per_seed(records: list) -> list:
    """Keep one record per (row, seed, methods): the most recently finished. Older ones come from a previous
    version of the preset or of TrainConfig (a different run id) and are superseded, not mixed in."""
    latest = {}
    for rec in records:
        spec = rec["payload"]["spec"]
        key = (rec["row"], spec["seed"], tuple(spec["methods"]))
        finished = rec["payload"].get("provenance", {}).get("finished", "")
        if key not in latest or finished >= latest[key][0]:
            latest[key] = (finished, rec)
    kept = {id(r) for _, r in latest.values()}
    return [r for r in records if id(r) in kept]


def _num(value):
    return float("nan") if value is None else float(value)


def tidy(records: list):
    """One row per (run, method): spec fields, test metrics, calibrated metrics, final alpha/beta/delta.

    Returns
    -------
    pandas.DataFrame
        Columns: preset, row, tables, dataset, noise, rate, seed, method, top1, top5, auroc,
        auroc_weighted, top1_cal, auroc_cal, auroc_weighted_cal, top1_last, top5_last, auroc_last,
        auroc_weighted_last, select_by, best_epoch, epochs_run, wall_time_s, alpha, beta, delta, device, run_id, file.
        Accuracies are fractions in [0, 1]. ``select_by`` is the checkpoint-selection rule (:data:`OLD_RULE`
        for records written before it was recorded). ``*_last`` are the test metrics of the last epoch run (issue 16;
        NaN for records written before they were stored), the others those of the selected checkpoint.
    """
    import pandas as pd
    rows = []
    for rec in records:
        p = rec["payload"]
        cfg, spec = p["config"], p["spec"]
        env = (p["result"].get("environment") or {})
        for method in spec["methods"]:
            res = p["result"]["methods"][method]
            m = res["metrics"]
            test, cal, last = m["test"], m.get("test_calibrated") or {}, m.get("test_last_epoch") or {}
            lilaw = res.get("lilaw") or {}
            rows.append(dict(preset=rec["preset"], row=rec["row"], tables=",".join(rec["tables"]),
                             dataset=cfg["dataset"], noise=cfg["noise"], rate=cfg["rate"], seed=cfg["seed"],
                             method=method, top1=_num(test.get("top1")), top5=_num(test.get("top5")),
                             auroc=_num(test.get("auroc")), auroc_weighted=_num(test.get("auroc_weighted")),
                             top1_cal=_num(cal.get("top1")), auroc_cal=_num(cal.get("auroc")),
                             auroc_weighted_cal=_num(cal.get("auroc_weighted")),
                             top1_last=_num(last.get("top1")), top5_last=_num(last.get("top5")),
                             auroc_last=_num(last.get("auroc")), auroc_weighted_last=_num(last.get("auroc_weighted")),
                             select_by=m.get("select_by") or cfg.get("select_by") or OLD_RULE,
                             best_epoch=m.get("best_epoch"), epochs_run=m.get("epochs_run"),
                             wall_time_s=_num(res.get("wall_time_s")), alpha=_num(lilaw.get("alpha")),
                             beta=_num(lilaw.get("beta")), delta=_num(lilaw.get("delta")),
                             device=env.get("device", "?"), run_id=rec["run_id"], file=rec.get("file")))
    columns = ["preset", "row", "tables", "dataset", "noise", "rate", "seed", "method", "top1", "top5", "auroc",
               "auroc_weighted", "top1_cal", "auroc_cal", "auroc_weighted_cal", "top1_last", "top5_last", "auroc_last",
               "auroc_weighted_last", "select_by", "best_epoch", "epochs_run",
               "wall_time_s", "alpha", "beta", "delta", "device", "run_id", "file"]
    return pd.DataFrame(rows, columns=columns)


def paired(df, row: str, method: str, reference: str, metric: str) -> dict | None:
    """Paired difference ``method - reference`` of ``metric`` over the seeds where both ran.

    Returns
    -------
    dict or None
        :func:`~lilaw_edu.metrics.paired_difference` output plus ``seeds`` (list) and the two
        per-seed value lists ``a``, ``b``; ``None`` when no seed has both (or values are NaN).
    """
    sub = df[df["row"] == row]
    a = sub[sub["method"] == method].set_index("seed")[metric]
    b = sub[sub["method"] == reference].set_index("seed")[metric]
    seeds = sorted(set(a.index) & set(b.index))
    seeds = [s for s in seeds if not (math.isnan(a[s]) or math.isnan(b[s]))]
    if not seeds:
        return None
    av, bv = [float(a[s]) for s in seeds], [float(b[s]) for s in seeds]
    return {**paired_difference(av, bv), "seeds": seeds, "a": av, "b": bv}


def fmt_mean_std(values, scale: float = 1.0, digits: int = 2) -> str:
    """``"mean ± std (n)"`` of finite values times ``scale``; ``"not run yet"`` when empty."""
    vals = [float(v) * scale for v in values if v is not None and not math.isnan(float(v))]
    if not vals:
        return "not run yet"
    mean = sum(vals) / len(vals)
    std = (sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) ** 0.5 if len(vals) > 1 else float("nan")
    return f"{mean:.{digits}f} ± {std:.{digits}f} (n={len(vals)})"


def fmt_mean_ci(values, scale: float = 1.0, digits: int = 2) -> str:
    """``"mean [lo, hi] (n)"``: the mean of finite ``values`` times ``scale`` with its 95 % t-interval (the
    one-sample case of :func:`~lilaw_edu.metrics.paired_difference`); ``"not run yet"`` when empty."""
    vals = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if not vals:
        return "not run yet"
    d = paired_difference(vals, [0.0] * len(vals))
    if d["n"] < 2:
        return f"{d['mean'] * scale:.{digits}f} (n=1)"
    lo, hi = d["ci_low"] * scale, d["ci_high"] * scale
    return f"{d['mean'] * scale:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}] (n={d['n']})"


def fmt_diff(diff: dict | None, scale: float = 1.0, digits: int = 2) -> str:
    """``"+m [lo, hi]"`` of a paired difference times ``scale``."""
    if diff is None:
        return "not run yet"
    if diff["n"] < 2:
        return f"{diff['mean'] * scale:+.{digits}f} (n=1)"
    return (f"{diff['mean'] * scale:+.{digits}f} [{diff['ci_low'] * scale:+.{digits}f}, "
            f"{diff['ci_high'] * scale:+.{digits}f}]")


# ------------------------------------------------------------------ book helpers
ACC_METRICS = ("top1", "top5", "top1_cal", "top1_last", "top5_last")


def scale_digits(metric: str) -> tuple:
    """``(scale, digits)`` a metric is shown with: accuracies (:data:`ACC_METRICS`) in % with 2 decimals,
    AUROC in [0, 1] with 4."""
    return (100.0, 2) if metric in ACC_METRICS else (1.0, 4)


def find_results_dir(start=None) -> Path:
    """``$LILAW_RESULTS_DIR``, else the first ``results/`` folder next to a ``lilaw_edu/`` package
    in ``start`` (default: the working directory) or a parent of it."""
    import os
    if os.environ.get("LILAW_RESULTS_DIR"):
        return Path(os.environ["LILAW_RESULTS_DIR"])
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "lilaw_edu").is_dir() and (folder / "results").is_dir():
            return folder / "results"
    return here / "results"


def load_tidy(results_dir, presets) -> tuple:
    """:func:`tidy` over several presets; returns ``(df, records, problems)``."""
    import pandas as pd
    records, problems = [], []
    for preset in presets:
        recs, probs = load_results(results_dir, preset)
        records += recs
        problems += probs
    df = tidy(records)
    return (df if len(df) else pd.DataFrame(columns=df.columns)), records, problems


def row_diff(df, spec: dict, metric: str | None = None) -> tuple:
    """The CPU runs behind one :func:`compare` row spec and their paired difference.

    Parameters
    ----------
    df : pandas.DataFrame
        From :func:`tidy`.
    spec : dict
        A row spec of :func:`compare` (``cpu``, optional ``cpu_ref``, ``method``, ``reference``, ``metric``).
    metric : str, optional
        A tidy column to compare instead of ``spec["metric"]`` (e.g. its last-epoch ``*_last`` column).

    Returns
    -------
    method_rows, reference_rows : pandas.DataFrame
        The tidy rows of ``spec["cpu"]`` and of ``spec["cpu_ref"]`` (default ``spec["cpu"]``); empty without ``cpu``.
    diff : dict or None
        :func:`paired` of ``method`` against ``reference``, paired by seed across the two sides.
    """
    import pandas as pd
    metric = metric or spec["metric"]
    method, ref = spec.get("method", "lilaw"), spec.get("reference", "baseline")
    sub, ref_sub = _pick(df, spec.get("cpu")), _pick(df, spec.get("cpu_ref") or spec.get("cpu"))
    if not (len(sub) and len(ref_sub)):
        return sub, ref_sub, None
    both = pd.concat([sub[sub["method"] == method].assign(row="x"), ref_sub[ref_sub["method"] == ref]
                      .assign(row="x", method="__ref__")])
    return sub, ref_sub, paired(both, "x", method, "__ref__", metric)


def _family_adjust(diffs: list) -> tuple:
    """Holm and BH p-values of a family; rows with identical paired data (the same runs shown under two
    presets or tables) are one test, counted once."""
    from lilaw_edu.experiments.verdicts import adjust
    keys = [None if d is None or d["n"] < 2 else (tuple(d["a"]), tuple(d["b"])) for d in diffs]
    unique = list(dict.fromkeys(k for k in keys if k is not None))
    p_of = {k: d["p_value"] for k, d in zip(keys, diffs) if k is not None}
    holm_u, bh_u = adjust([p_of[k] for k in unique])
    holm_of, bh_of = dict(zip(unique, holm_u)), dict(zip(unique, bh_u))
    nan = float("nan")
    return [holm_of.get(k, nan) for k in keys], [bh_of.get(k, nan) for k in keys]


def family_size(df, family: list) -> int:
    """Number of distinct paired tests in a chapter's family (rows with identical paired data count once)."""
    diffs = [row_diff(df, spec)[2] for spec in family]
    return len({(tuple(d["a"]), tuple(d["b"])) for d in diffs if d is not None and d["n"] >= 2})


def _fmt_p(p) -> str:
    return "-" if p is None or not math.isfinite(p) else f"{p:.3g}"


def compare(df, rows: list, family: list | None = None):
    """The side-by-side table of an experiment chapter, with family-adjusted p-values.

    Parameters
    ----------
    df : pandas.DataFrame
        From :func:`tidy` (CPU and paper-scale presets together).
    rows : list of dict
        Each: ``label``; ``table`` and ``paper`` (a key for :func:`lilaw_edu.core.paper.paper_lookup`,
        or None); ``metric`` (ours) and optionally ``paper_metric`` (default: ``metric`` without
        ``_cal``); ``cpu`` = (preset, row) or None, optionally ``cpu_ref`` = (preset, row) for the
        reference method (paired by seed) and ``gpu`` = (preset, row); ``method`` (default "lilaw")
        and ``reference`` (default "baseline").
    family : list of dict, optional
        Every row spec of the chapter (``rows`` among them): the raw p-values of all of them are
        adjusted together (Holm and Benjamini-Hochberg); rows with identical paired data count as
        one test. Default: ``rows`` alone.

    Returns
    -------
    pandas.DataFrame
        Columns: row, table, metric, method vs reference, paper baseline, paper Δ, ours reference,
        ours method, ours Δ [95% CI], p (raw), p Holm, p BH, verdict (from the Holm p), paper-scale Δ,
        seeds. Accuracies in %, AUROC in [0, 1].
    """
    import pandas as pd

    from lilaw_edu.core.paper import paper_lookup
    from lilaw_edu.experiments.verdicts import verdict
    family = rows if family is None else family
    missing = [r["label"] for r in rows if r not in family]
    if missing:
        raise ValueError(f"family must contain every row of rows; missing {missing}")
    holm_p, bh_p = _family_adjust([row_diff(df, spec)[2] for spec in family])
    out = []
    for spec in rows:
        k = family.index(spec)
        metric, method, ref = spec["metric"], spec.get("method", "lilaw"), spec.get("reference", "baseline")
        scale, digits = scale_digits(metric)
        paper_metric = spec.get("paper_metric", metric.replace("_cal", ""))
        paper = paper_lookup(spec["table"], paper_metric, **spec["paper"]) if spec.get("paper") else None
        sub, ref_sub, diff = row_diff(df, spec)
        gpu = "not run yet"
        if spec.get("gpu"):
            gsub = df[(df["preset"] == spec["gpu"][0]) & (df["row"] == spec["gpu"][1])]
            gpu = fmt_diff(paired(gsub, spec["gpu"][1], method, ref, metric), scale, digits)
            if len(gsub):  # say where the paper-scale runs ran (a GPU, or a CPU for the cheap ECG5000 rows)
                gpu += f" on {'/'.join(sorted(set(gsub['device'])))}"
        out.append({
            "row": spec["label"], "table": spec["table"], "metric": metric, "method vs reference": f"{method} vs {ref}",
            "paper baseline": "-" if paper is None else f"{paper['baseline']:.{digits}f}",
            "paper Δ": "-" if paper is None else f"{paper['delta']:+.{digits}f}",
            "ours reference": fmt_mean_std(ref_sub[ref_sub["method"] == ref][metric] if len(ref_sub) else [],
                                           scale, digits),
            "ours method": fmt_mean_std(sub[sub["method"] == method][metric] if len(sub) else [], scale, digits),
            "ours Δ [95% CI]": fmt_diff(diff, scale, digits),
            "p": "-" if diff is None or diff["n"] < 2 else _fmt_p(diff["p_value"]),
            "p Holm": _fmt_p(holm_p[k]), "p BH": _fmt_p(bh_p[k]),
            "verdict": verdict(diff, None if paper is None else paper["delta"], scale, holm_p[k], method),
            "paper-scale Δ": gpu, "seeds": 0 if diff is None else diff["n"]})
    return pd.DataFrame(out)


def _pick(df, where):
    if where is None:
        return df.iloc[0:0]
    return df[(df["preset"] == where[0]) & (df["row"] == where[1])]


def raw_metric_values(results_dir, preset: str, row: str, method: str, metric: str) -> list:
    """Test metric of ``method`` in every result file of one row, read straight from the JSON.

    An independent path to the numbers (no ``tidy``, no de-duplication) that the experiment
    chapters use in their consistency checks. A metric ending in ``_cal`` is read from the
    temperature-scaled test metrics.

    Returns
    -------
    list of float
        One value per result file holding the row and method (None values skipped).
    """
    values = []
    for path in sorted((Path(results_dir) / preset).glob("*.json")):
        rec = json.loads(path.read_text())
        if rec["row"] == row and method in rec["payload"]["spec"]["methods"]:
            metrics = rec["payload"]["result"]["methods"][method]["metrics"]
            test = metrics["test_calibrated"] if metric.endswith("_cal") else metrics["test"]
            value = test[metric.replace("_cal", "")]
            if value is not None:
                values.append(value)
    return values
