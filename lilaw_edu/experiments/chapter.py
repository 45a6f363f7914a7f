"""What every experiment chapter of the book does, written once.

* :func:`load_chapter` reads the chapter's presets, prints how many files it read and
  every problem, and **raises** :class:`MissingResultsError` when a required preset has
  fewer runs than it defines (a chapter never shows "0 runs" or "not run yet" for a
  CPU preset that should be there).
* :func:`check_chapter_table` recomputes every shown "ours" number straight from the
  JSON files, checks that no row comes from two files and that the paper's numbers
  are the printed ones; :func:`check_quoted` checks the numbers quoted in a chapter's
  prose against its tables.
* :func:`show_comparison` displays a comparison table that fits the page: the few columns a
  reader needs, and every column in a collapsed block below it.
* :func:`run_paper_row_on_colab` is the body of each chapter's (never executed in the
  build) Colab cell: run the first pending paper-scale run of a preset on a GPU.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from lilaw_edu.core.paper import paper_lookup
from lilaw_edu.experiments.analysis import OLD_RULE, find_results_dir, load_tidy, raw_metric_values, scale_digits
from lilaw_edu.experiments.presets import SWEEP_PRESETS

__all__ = ["Chapter", "MissingResultsError", "ChapterCheckError", "expected_runs", "old_rule", "selection_rules",
           "load_chapter",
           "check_chapter_table", "quoted_cell", "check_quoted", "COMPACT_COLUMNS", "compact_comparison",
           "comparison_html", "show_comparison", "run_paper_row_on_colab"]


class MissingResultsError(RuntimeError):
    """A chapter found fewer result files than its presets define."""


class ChapterCheckError(AssertionError):
    """A number shown in a chapter does not match the result files (fails the book build)."""


@dataclass
class Chapter:
    """The results a chapter shows.

    Attributes
    ----------
    results_dir : Path
    presets : tuple of str
    df : pandas.DataFrame
        :func:`lilaw_edu.experiments.analysis.tidy` of every valid record (one row per run and method).
    records : list of dict
        The valid records.
    problems : list of str
        One message per corrupted file (never used).
    """

    results_dir: Path
    presets: tuple
    df: object
    records: list
    problems: list


def expected_runs(preset: str) -> set:
    """Every (row, seed) that ``preset`` defines (from :data:`~lilaw_edu.experiments.presets.SWEEP_PRESETS`)."""
    if preset not in SWEEP_PRESETS:
        raise ValueError(f"preset must be one of {sorted(SWEEP_PRESETS)}, got {preset!r}")
    return {(r["row"], int(s)) for r in SWEEP_PRESETS[preset]["rows"] for s in r["seeds"]}


def _missing(records: list, preset: str) -> list:
    found = {(r["row"], int(r["payload"]["spec"]["seed"])) for r in records if r["preset"] == preset}
    return sorted(expected_runs(preset) - found)


def old_rule(record: dict) -> bool:
    """True for a record written before checkpoint selection was configurable (issue 16): no ``select_by``
    in its config or its metrics; such runs kept the *first* epoch reaching the best validation accuracy."""
    payload = record["payload"]
    return "select_by" not in payload["config"] and not any(
        "select_by" in m["metrics"] for m in payload["result"]["methods"].values())


def selection_rules(records: list) -> dict:
    """``{preset: {rule: number of records}}``; rule is the config's ``select_by`` or ``"first best val_acc
    (old rule)"`` for :func:`old_rule` records."""
    rules: dict = {}
    for rec in records:
        rule = OLD_RULE if old_rule(rec) else rec["payload"]["config"]["select_by"]
        counts = rules.setdefault(rec["preset"], {})
        counts[rule] = counts.get(rule, 0) + 1
    return rules


def load_chapter(presets, *, required=None, results_dir=None, log=print) -> Chapter:
    """Read a chapter's results and fail loudly when some are missing (and set pandas' display
    options for the chapter's wide tables).

    Parameters
    ----------
    presets : sequence of str
        Sweep presets the chapter shows (CPU and paper scale).
    required : sequence of str, optional
        Presets whose every (row, seed) must have a valid record. Default: the ``cpu-*``
        presets of ``presets`` (paper-scale presets may be partly or not run).
    results_dir : path-like, optional
        Default :func:`~lilaw_edu.experiments.analysis.find_results_dir`.
    log : callable
        Receives the summary line and one line per problem.

    Returns
    -------
    Chapter

    Raises
    ------
    MissingResultsError
        Naming each incomplete preset, how many runs it defines and found, the first missing
        (row, seed) and the command that adds them.
    """
    import pandas as pd

    pd.set_option("display.max_colwidth", None)  # the chapters' tables: whole cells, rows up to 250 characters
    pd.set_option("display.width", 250)
    presets = tuple(presets)
    required = tuple(p for p in presets if p.startswith("cpu-")) if required is None else tuple(required)
    results = Path(results_dir) if results_dir is not None else find_results_dir()
    df, records, problems = load_tidy(results, presets)
    dirty = sum(bool((r["payload"].get("provenance") or {}).get("git_dirty")) for r in records)
    log(f"{len(records)} result files read from results/ for {', '.join(presets)}; {len(problems)} problem(s); "
        f"{dirty} written from a working tree with uncommitted changes (git_dirty).")
    rules = selection_rules(records)
    log("Checkpoint selection: " + "; ".join(
        f"{p} " + ", ".join(f"{rule} ({n})" for rule, n in sorted(rules[p].items())) for p in presets if p in rules) + ".")
    for problem in problems:
        log("PROBLEM (file not used): " + problem.replace(str(results), "results"))
    short = []
    for preset in required:
        missing = _missing(records, preset)
        if missing:
            total = len(expected_runs(preset))
            row, seed = missing[0]
            short.append(f"{preset}: {total - len(missing)} of {total} runs found in {results / preset} "
                         f"(first missing: {row} seed {seed}); add them with 'lilaw-edu sweep {preset}'")
    if short:
        raise MissingResultsError("; ".join(short))
    return Chapter(results, presets, df, records, problems)


def _shows_mean(cell: str, mean, digits: int) -> bool:
    """Does ``cell`` ("12.34 ± ..." or "not run yet") show ``mean`` rounded to ``digits``? Within half a unit
    of the last digit (plus float slack), so a mean on a rounding tie may be shown either way."""
    if mean is None:
        return cell.startswith("not run yet")
    try:
        shown = float(cell.split()[0])
    except (ValueError, IndexError):
        return False
    return abs(shown - mean) <= 0.5 * 10 ** -digits + 1e-9


def check_chapter_table(chapter: Chapter, rows: list, table) -> int:
    """Recompute a :func:`~lilaw_edu.experiments.analysis.compare` table from the files.

    Checks: no (preset, row, seed, method) comes from two files and every shown row has its
    file; no corrupted file exists; every "ours method" mean equals the mean of the values read
    straight from the JSON files (:func:`~lilaw_edu.experiments.analysis.raw_metric_values`,
    no de-duplication, no pandas); every "paper Δ" is the printed number.

    Parameters
    ----------
    chapter : Chapter
    rows : list of dict
        The row specs given to ``compare``, in order.
    table : pandas.DataFrame
        Its output (same order).

    Returns
    -------
    int
        Number of "ours" cells recomputed.

    Raises
    ------
    ChapterCheckError
        Listing every mismatch.
    """
    df, errors, checked = chapter.df, [], 0
    if len(df) and df.duplicated(["preset", "row", "seed", "method"]).any():
        errors.append("some (preset, row, seed, method) comes from two result files")
    errors += [f"shown row has no result file: {f}" for f in df["file"] if not Path(f).is_file()]
    errors += [f"corrupted result file: {p}" for p in chapter.problems]
    if len(rows) != len(table):
        errors.append(f"{len(rows)} row specs but {len(table)} table rows")
    for spec, (_, shown) in zip(rows, table.iterrows()):
        scale, digits = scale_digits(spec["metric"])
        if spec.get("cpu"):
            vals = raw_metric_values(chapter.results_dir, *spec["cpu"], spec.get("method", "lilaw"), spec["metric"])
            mean = sum(vals) / len(vals) * scale if vals else None
            if not _shows_mean(shown["ours method"], mean, digits):
                expect = "not run yet" if mean is None else f"{mean:.{digits}f}"
                errors.append(f"{spec['label']} {spec['metric']}: shows {shown['ours method']!r}, files give {expect}")
            checked += bool(vals)
        if spec.get("paper"):
            p = paper_lookup(spec["table"], spec.get("paper_metric", spec["metric"].replace("_cal", "")),
                             **spec["paper"])
            printed = f"{p['delta']:+.{scale_digits(p['metric'])[1]}f}"
            if shown["paper Δ"] != printed:
                errors.append(f"{spec['label']}: paper Δ shown {shown['paper Δ']!r}, printed {printed}")
    if errors:
        raise ChapterCheckError("; ".join(errors))
    return checked


def quoted_cell(table, label: str, metric: str = "top1", column: str = "ours Δ [95% CI]") -> str:
    """The one cell of ``column`` in the row with this label and metric (error if not exactly one)."""
    hit = table[(table["row"] == label) & (table["metric"] == metric)][column]
    if len(hit) != 1:
        raise ChapterCheckError(f"{len(hit)} table rows have label {label!r} and metric {metric!r}, expected 1")
    return hit.item()


def check_quoted(table, quoted: dict, column: str = "ours Δ [95% CI]") -> None:
    """Check the numbers a chapter's prose quotes.

    Parameters
    ----------
    table : pandas.DataFrame
    quoted : dict
        ``label`` or ``(label, metric)`` -> the exact text of ``column`` (metric default "top1").

    Raises
    ------
    ChapterCheckError
        Listing every quoted number that differs from the table.
    """
    errors = []
    for key, text in quoted.items():
        label, metric = key if isinstance(key, tuple) else (key, "top1")
        got = quoted_cell(table, label, metric, column)
        if got != text:
            errors.append(f"{label} {metric}: table {got!r}, prose {text!r}")
    if errors:
        raise ChapterCheckError("quoted numbers differ from the table: " + "; ".join(errors))


#: The columns of a comparison table shown on the page (the verdict holds the Holm-adjusted p).
COMPACT_COLUMNS = ("row", "metric", "paper Δ", "ours Δ [95% CI]", "verdict")


def compact_comparison(table):
    """The columns of :data:`COMPACT_COLUMNS` of a :func:`~lilaw_edu.experiments.analysis.compare` table.

    Parameters
    ----------
    table : pandas.DataFrame
        Output of ``compare`` (one row per row spec).

    Returns
    -------
    pandas.DataFrame
        A copy with only those columns, in that order; ``verdict`` renamed "verdict (Holm-adjusted p)".

    Raises
    ------
    ValueError
        If ``table`` lacks one of the columns.
    """
    missing = [c for c in COMPACT_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"table must have the columns {list(COMPACT_COLUMNS)} of compare(); missing {missing}")
    return table[list(COMPACT_COLUMNS)].rename(columns={"verdict": "verdict (Holm-adjusted p)"})


def comparison_html(table, name: str = "comparison") -> str:
    """HTML of the compact table and, below it, the full table in a collapsed ``<details>`` block.

    Parameters
    ----------
    table : pandas.DataFrame
        Output of :func:`~lilaw_edu.experiments.analysis.compare`.
    name : str
        Stem of the two HTML ids (``<name>-compact``, ``<name>-all``): unique on the page and the
        same on every execution, so re-running a chapter leaves its outputs unchanged.

    Returns
    -------
    str
    """
    if not isinstance(name, str) or not name.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"name must be a non-empty string of letters, digits, '-' and '_', got {name!r}")
    compact = compact_comparison(table).to_html(index=False, table_id=f"{name}-compact", border=0)
    full = table.to_html(index=False, table_id=f"{name}-all", border=0)
    return (f"{compact}\n<details><summary>All columns ({len(table.columns)})</summary>\n"
            f"<div style=\"overflow-x: auto\">\n{full}\n</div>\n</details>")


def show_comparison(table, name: str = "comparison") -> None:
    """Display a comparison table that fits the page (see :func:`comparison_html`)."""
    from IPython.display import HTML, display  # only in a notebook

    display(HTML(comparison_html(table, name)))


def run_paper_row_on_colab(preset: str, datasets, load_kwargs=None, drive_folder="/content/drive/MyDrive/lilaw-edu"):
    """Run the first pending run of a paper-scale ``preset`` on a Colab GPU; results go to Google Drive.

    Rerun after a disconnect: finished runs are skipped and the run in progress continues from its
    last epoch checkpoint in the work folder.

    Parameters
    ----------
    preset : str
        A ``paper-*`` sweep preset.
    datasets : sequence of str
        Datasets to download first (checksum-verified) into ``<drive_folder>/data``.
    load_kwargs : dict, optional
        Extra arguments of :func:`lilaw_edu.datasets.load_dataset` (e.g. ``size=224``).
    drive_folder : str

    Returns
    -------
    pandas.DataFrame or None
        Tidy rows of the runs in ``<drive_folder>/results/<preset>``; copy that folder into the
        repository's ``results/`` to show them in the chapter. ``None`` (nothing run) unless on
        Colab or ``$LILAW_RUN_PAPER_ROW`` is ``1``: the book build and nbval never train.
    """
    import os
    import subprocess

    if "google.colab" not in sys.modules and os.environ.get("LILAW_RUN_PAPER_ROW") != "1":
        print(f"not on Colab: nothing run (set LILAW_RUN_PAPER_ROW=1 to run {preset} here)")
        return None
    from google.colab import drive  # only on Colab

    from lilaw_edu.datasets import load_dataset
    drive.mount("/content/drive")
    out, data = f"{drive_folder}/results", f"{drive_folder}/data"
    os.environ["LILAW_DATA_DIR"] = data
    for name in datasets:
        load_dataset(name, data_dir=data, download=True, **(load_kwargs or {}))
    command = [sys.executable, "-m", "lilaw_edu", "sweep", preset, "--results-dir", out]
    subprocess.run(command + ["--dry-run"], check=True)
    subprocess.run(command + ["--work-dir", out + "/.work", "--device", "cuda", "--limit", "1"], check=True)
    return load_tidy(out, [preset])[0]
