"""Consistency checks across the paper's own tables (book chapter 06, notes 15-18).

Every number comes from :func:`lilaw_edu.core.paper.paper_rows`, the transcription of the
printed tables (baseline, change with LiLAW, and their sum ``lilaw``); nothing is typed here.
"""
from __future__ import annotations

from lilaw_edu.core.paper import paper_rows

METRICS = ("top1", "top5", "auroc")


def _pick(table: str, **where) -> list[dict]:
    rows = [r for r in paper_rows(table) if all(r.get(k) == v for k, v in where.items())]
    if not rows:
        raise ValueError(f"no row of Table {table} matches {where}")
    return rows


def table9_zero_noise() -> list[dict]:
    """Table 9 at 0 % noise: the "noisy" and the "clean" validation rows, which are the same setting.

    Returns
    -------
    list of dict
        One row per metric: ``metric``, and ``baseline``, ``delta``, ``lilaw`` for ``noisy_val`` and ``clean_val``.
    """
    out = []
    for metric in METRICS:
        row = {"metric": metric}
        for setting in ("noisy_val", "clean_val"):
            (r,) = _pick("9", metric=metric, rate=0.0, setting=setting)
            row.update({f"{setting}_{k}": r[k] for k in ("baseline", "delta", "lilaw")})
        out.append(row)
    return out


def table6_changes(rate: float = 0.5) -> list[dict]:
    """Table 6: the change with LiLAW of every ablation at one noise rate.

    Returns
    -------
    list of dict
        One row per ablation (``setting`` such as ``active=ad``) with the change in each metric.
    """
    by_setting: dict[str, dict] = {}
    for r in _pick("6", rate=rate):
        by_setting.setdefault(r["setting"], {"setting": r["setting"]})[r["metric"]] = r["delta"]
    return list(by_setting.values())


def table_spread(table: str, metric: str = "top1", **where) -> dict:
    """Range of the baseline and of baseline + change over the rows of a table.

    Returns
    -------
    dict
        ``rows`` (the matching rows), ``baseline`` and ``lilaw``: (min, max) each.
    """
    rows = _pick(table, metric=metric, **where)
    return {"rows": rows, "baseline": (min(r["baseline"] for r in rows), max(r["baseline"] for r in rows)),
            "lilaw": (min(r["lilaw"] for r in rows), max(r["lilaw"] for r in rows))}
