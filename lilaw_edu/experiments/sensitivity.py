"""How a chapter's differences move with the checkpoint-selection rule (issue 16, part 1).

A run reports the test metrics of one checkpoint, the one its rule selects (``TrainConfig.select_by``,
e.g. the epoch with the lowest validation loss). Every record written since the rule became configurable
also stores the test metrics of the *last* epoch it ran (``metrics["test_last_epoch"]``; the
``*_last`` columns of :func:`lilaw_edu.experiments.analysis.tidy`). :func:`selection_sensitivity` puts the
paired difference of a chapter's comparisons at both checkpoints side by side, so a reader sees which
conclusions depend on the rule; :func:`sensitivity_summary` says it in one sentence.

The last epoch has no temperature-scaled metrics: a ``*_cal`` row is compared with the plain last-epoch
metric (top-1 is unchanged by temperature scaling, AUROC may move slightly).
"""
from __future__ import annotations

import math

from lilaw_edu.experiments.analysis import fmt_diff, row_diff, scale_digits
from lilaw_edu.training.selection import epoch_score

__all__ = ["last_epoch_metric", "selection_sensitivity", "sensitivity_summary", "check_selected", "RULES", "rule_epoch",
           "rule_values", "rule_table", "replay_errors"]

_LAST = {"top1": "top1_last", "top1_cal": "top1_last", "top5": "top5_last", "auroc": "auroc_last",
         "auroc_cal": "auroc_last", "auroc_weighted": "auroc_weighted_last",
         "auroc_weighted_cal": "auroc_weighted_last"}


def last_epoch_metric(metric: str) -> str:
    """The :func:`~lilaw_edu.experiments.analysis.tidy` column holding ``metric`` at the last epoch."""
    if metric not in _LAST:
        raise ValueError(f"metric must be one of {sorted(_LAST)}, got {metric!r}")
    return _LAST[metric]


def _mean_epoch(rows, method) -> str:
    epochs = rows[rows["method"] == method]["best_epoch"].dropna()
    runs = rows[rows["method"] == method]["epochs_run"].dropna()
    if not len(epochs):
        return "-"
    return f"{epochs.mean():.1f} of {runs.max():.0f}" if len(runs) else f"{epochs.mean():.1f}"


def selection_sensitivity(df, rows: list):
    """The paired difference of each comparison at the selected checkpoint and at the last epoch.

    Parameters
    ----------
    df : pandas.DataFrame
        From :func:`~lilaw_edu.experiments.analysis.tidy`.
    rows : list of dict
        Comparison specs as for :func:`~lilaw_edu.experiments.analysis.compare` (``label``, ``metric``,
        ``cpu``, optional ``cpu_ref``, ``method`` (default "lilaw"), ``reference`` (default "baseline"));
        rows without ``cpu`` are skipped.

    Returns
    -------
    pandas.DataFrame
        One row per comparison. Columns: row, metric, method vs reference, rule (the ``select_by`` of the
        records behind it), epoch chosen (method), epoch chosen (reference) (mean selected epoch "of" the
        most epochs run),
        Δ selected [95% CI], Δ last epoch [95% CI], shift (last − selected, display units), sign kept
        (False when the two means have opposite signs; a mean that rounds to zero in display units has
        none, so it never flips; None when the last epoch was not stored), seeds. Accuracies in %,
        AUROC in [0, 1].
    """
    import pandas as pd
    out = []
    for spec in rows:
        if not spec.get("cpu"):
            continue
        metric, method, ref = spec["metric"], spec.get("method", "lilaw"), spec.get("reference", "baseline")
        scale, digits = scale_digits(metric)
        mine, theirs, chosen = row_diff(df, spec)
        last = row_diff(df, spec, last_epoch_metric(metric))[2]
        rules = sorted(set(mine[mine["method"] == method]["select_by"])
                       | set(theirs[theirs["method"] == ref]["select_by"]))
        shift = (last["mean"] - chosen["mean"]) * scale if chosen and last else math.nan
        kept = None if not (chosen and last) else \
            _sign(chosen["mean"] * scale, digits) * _sign(last["mean"] * scale, digits) >= 0
        out.append({"row": spec["label"], "metric": metric, "method vs reference": f"{method} vs {ref}",
                    "rule": ", ".join(rules) or "-",
                    "epoch chosen (method)": _mean_epoch(mine, method),
                    "epoch chosen (reference)": _mean_epoch(theirs, ref),
                    "Δ selected [95% CI]": fmt_diff(chosen, scale, digits),
                    "Δ last epoch [95% CI]": fmt_diff(last, scale, digits) if last else "not stored",
                    "shift": round(shift, digits),
                    "sign kept": kept,
                    "seeds": 0 if chosen is None else chosen["n"]})
    return pd.DataFrame(out)


def _sign(value: float, digits: int) -> int:
    """-1, 0 or +1; 0 for a value that rounds to zero at ``digits`` decimals (e.g. 8.7e-16)."""
    return 0 if abs(value) < 0.5 * 10 ** -digits else (1 if value > 0 else -1)


def _name(row) -> str:
    pair = row.get("method vs reference", "")
    named = pair.split(" vs ")[0].lower() in str(row["row"]).lower()  # the label already names the method
    extra = [pair] if pair and pair != "lilaw vs baseline" and not named else []
    extra += [] if row["metric"] == "top1" else [row["metric"]]
    return f"“{row['row']}”" + (f" ({', '.join(extra)})" if extra else "")


def sensitivity_summary(table) -> str:
    """One plain sentence about a :func:`selection_sensitivity` table: how many differences keep their sign
    at the last epoch, which flip, and the largest shift of an accuracy (else of any) row."""
    known = table[table["sign kept"].notna()]
    if not len(known):
        return "No record behind these comparisons stores its last-epoch metrics."
    flipped = known[known["sign kept"] == False]  # noqa: E712  (a pandas mask, not a truth test)
    text = f"Of the {len(known)} differences, {len(known) - len(flipped)} keep the sign of their mean at the last epoch"
    if len(flipped):
        text += (f" and {len(flipped)} change it: " if len(flipped) > 1 else " and 1 changes it: ") + \
            ", ".join(_name(r) for _, r in flipped.iterrows())
    accuracy = known[known["metric"].str.startswith("top")]
    pool = accuracy if len(accuracy) else known
    biggest = pool.loc[pool["shift"].abs().idxmax()]
    unit = " points" if len(accuracy) else ""
    text += f". The largest move is {biggest['shift']:+g}{unit} ({_name(biggest)})."
    missing = len(table) - len(known)
    if missing:
        text += f" {missing} comparison{'s' if missing > 1 else ''} cannot be checked: no last-epoch metrics stored."
    return text


def check_selected(sensitivity, comparison) -> int:
    """Check that every "Δ selected" of a :func:`selection_sensitivity` table is the "ours Δ [95% CI]" cell
    that :func:`~lilaw_edu.experiments.analysis.compare` shows for the same row, metric and pair of methods:
    the sensitivity table describes the comparisons the chapter shows, on the same records.

    Returns
    -------
    int
        The number of rows checked.

    Raises
    ------
    AssertionError
        Naming the first row that differs or is missing from ``comparison``.
    """
    shown = {(r["row"], r["metric"], r["method vs reference"]): r["ours Δ [95% CI]"] for _, r in comparison.iterrows()}
    for _, r in sensitivity.iterrows():
        key = (r["row"], r["metric"], r["method vs reference"])
        if shown.get(key) != r["Δ selected [95% CI]"]:
            raise AssertionError(f"row {key}: the sensitivity table shows {r['Δ selected [95% CI]']!r}, "
                                 f"the comparison table {shown.get(key, 'nothing')!r}")
    return len(sensitivity)


# ------------------------------------------------------------------ every rule, replayed from per-epoch test metrics
RULES = ("val_loss", "val_acc", "val_loss_clean", "val_acc_clean", "last")
"""Rules :func:`rule_epoch` replays: lowest validation cross-entropy, highest validation accuracy (on the noisy
labels, as in training), the same two on the validation set's clean labels (an oracle a practitioner lacks), and the
last epoch."""


def rule_epoch(history: list, rule: str) -> int:
    """The 1-based epoch ``rule`` selects from a run's per-epoch history, as ``select_checkpoint`` does (ties to
    the later epoch, a NaN score never wins, no early stopping).

    Parameters
    ----------
    history : list of dict
        A record's per-epoch entries (``epoch``, ``val_loss``, ``val_acc``, ``val_loss_clean``, ``val_acc_clean``).
    rule : str
        One of :data:`RULES`.
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    if not history:
        raise ValueError("history must have at least one epoch, got an empty list")
    select_by, select_on = (rule[:-len("_clean")], "clean_val") if rule.endswith("_clean") else (rule, "val")
    best, best_score = None, -math.inf
    for entry in history:
        score = epoch_score(entry, select_by, select_on)
        if best is None or score >= best_score:
            best, best_score = entry["epoch"], score
    return best


def rule_values(records: list, preset: str, row: str, method: str, rule: str, metric: str = "top1") -> dict:
    """``{seed: (test metric at the epoch rule selects, that epoch)}`` of one method in one row, from records
    written with ``test_each_epoch`` (history ``test_<metric>``)."""
    out = {}
    for rec in records:
        if (rec["preset"], rec["row"]) != (preset, row) or method not in rec["payload"]["result"]["methods"]:
            continue
        history = rec["payload"]["result"]["methods"][method]["history"]
        if f"test_{metric}" not in history[0]:
            raise ValueError(f"{rec.get('file', rec['run_id'])}: no per-epoch test_{metric}; the run needs "
                             f"test_each_epoch=True")
        epoch = rule_epoch(history, rule)
        out[int(rec["payload"]["spec"]["seed"])] = (history[epoch - 1][f"test_{metric}"], epoch)
    return out


def rule_table(records: list, comparisons: list, rules=RULES, metric: str = "top1"):
    """Each comparison's paired difference under every rule, with Holm and BH p-values over the whole table.

    Parameters
    ----------
    records : list of dict
        Valid records written with ``test_each_epoch``.
    comparisons : list of tuple
        ``(label, preset, row, method, reference)``.
    rules : sequence of str
        From :data:`RULES`.

    Returns
    -------
    pandas.DataFrame
        Columns: comparison, rule, epoch (method), epoch (reference) (mean selected epochs), Δ [95% CI],
        p, p Holm, p BH, seeds. Accuracies in points.
    """
    import pandas as pd

    from lilaw_edu.experiments.verdicts import adjust
    from lilaw_edu.metrics import paired_difference
    scale, digits = scale_digits(metric)
    rows, pvals = [], []
    for label, preset, row, method, ref in comparisons:
        for rule in rules:
            a, b = (rule_values(records, preset, row, m, rule, metric) for m in (method, ref))
            seeds = sorted(set(a) & set(b))
            diff = paired_difference([a[s][0] for s in seeds], [b[s][0] for s in seeds]) if len(seeds) > 1 else None
            pvals.append(diff["p_value"] if diff else math.nan)
            rows.append({"comparison": label, "rule": rule,
                         "epoch (method)": sum(a[s][1] for s in seeds) / max(len(seeds), 1),
                         "epoch (reference)": sum(b[s][1] for s in seeds) / max(len(seeds), 1),
                         "Δ [95% CI]": fmt_diff(diff, scale, digits), "p": pvals[-1], "seeds": len(seeds)})
    for r, holm, bh in zip(rows, *adjust(pvals)):
        r["p Holm"], r["p BH"] = holm, bh
    return pd.DataFrame(rows, columns=["comparison", "rule", "epoch (method)", "epoch (reference)", "Δ [95% CI]",
                                       "p", "p Holm", "p BH", "seeds"])


def replay_errors(records: list) -> list:
    """Where replaying a record's own rule disagrees with what it recorded: the epoch, the selected test top-1
    or the last epoch's test top-1 (records with per-epoch test metrics and ``select_on="val"`` only).

    Returns
    -------
    list of str
        One message per disagreement; empty when every replay matches exactly.
    """
    errors = []
    for rec in records:
        cfg = rec["payload"]["config"]
        for method, res in rec["payload"]["result"]["methods"].items():
            history, m = res["history"], res["metrics"]
            if "test_top1" not in history[0] or m.get("select_on", cfg.get("select_on")) != "val":
                continue
            name = f"{rec.get('file', rec['run_id'])} {method}"
            epoch = rule_epoch(history, m["select_by"])
            if epoch != m["best_epoch"]:
                errors.append(f"{name}: replayed epoch {epoch}, recorded {m['best_epoch']}")
            elif history[epoch - 1]["test_top1"] != m["test"]["top1"]:
                errors.append(f"{name}: test top-1 {history[epoch - 1]['test_top1']} at epoch {epoch}, "
                              f"recorded {m['test']['top1']}")
            if history[-1]["test_top1"] != m["test_last_epoch"]["top1"]:
                errors.append(f"{name}: last-epoch test top-1 {history[-1]['test_top1']}, "
                              f"recorded {m['test_last_epoch']['top1']}")
    return errors
