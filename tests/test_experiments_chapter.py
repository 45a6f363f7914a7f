"""Experiment-chapter helpers: a chapter with fewer results than its presets define fails; shown numbers
are recomputed from the files; reading results never imports the trainer; chapter 04 finds its ECG5000 runs."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lilaw_edu.experiments.analysis import compare
from lilaw_edu.experiments.chapter import (COMPACT_COLUMNS, ChapterCheckError, MissingResultsError, check_chapter_table,
                                           check_quoted, compact_comparison, comparison_html, expected_runs,
                                           load_chapter)

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "results"
ROWS = [dict(label="0 %", table="3", metric="top1", paper=dict(dataset="ecg5000"), cpu=("cpu-table3", "ecg5000/none-0")),
        dict(label="30 %", table="3", metric="top1", paper=None, cpu=("cpu-table3", "ecg5000/uniform-0.3"))]


def test_reading_results_never_imports_trainer_or_runner():
    code = ("import sys\n"
            "from lilaw_edu.experiments.chapter import load_chapter\n"
            "from lilaw_edu.experiments import plots\n"
            f"load_chapter(['cpu-table3'], results_dir={str(RESULTS)!r}, log=lambda m: None)\n"
            "bad = [m for m in sys.modules if m in ('lilaw_edu.training.fit', 'lilaw_edu.training.loop', "
            "'lilaw_edu.training.engine', 'lilaw_edu.experiments.runner')]\n"
            "print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"


def test_chapter04_regression_finds_the_ecg5000_runs():
    """Chapter 04 once read records with the wrong schema and printed "0 ECG5000 LiLAW runs found"."""
    ch = load_chapter(["cpu-table3", "paper-table3"], results_dir=RESULTS, log=lambda m: None)
    lilaw = [r for r in ch.records if r["payload"]["config"]["dataset"] == "ecg5000"
             and r["payload"]["result"]["methods"].get("lilaw", {}).get("history")]
    raw = 0  # an independent count straight from the JSON files
    for path in RESULTS.glob("*table3/*.json"):
        payload = json.loads(path.read_text())["payload"]
        raw += payload["config"]["dataset"] == "ecg5000" and bool(payload["result"]["methods"]["lilaw"]["history"])
    assert len(lilaw) == raw >= len(expected_runs("cpu-table3")) == 10


def _copy_preset(tmp_path, preset="cpu-table3") -> Path:
    shutil.copytree(RESULTS / preset, tmp_path / preset)
    return tmp_path


def test_missing_results_fail_instead_of_printing_zero(tmp_path):
    root = _copy_preset(tmp_path)
    load_chapter(["cpu-table3", "paper-table3"], results_dir=root, log=lambda m: None)  # complete: no error
    victim = sorted((root / "cpu-table3").glob("*.json"))[3]
    victim.unlink()
    with pytest.raises(MissingResultsError, match=r"cpu-table3: 9 of 10 runs found .*lilaw-edu sweep cpu-table3"):
        load_chapter(["cpu-table3"], results_dir=root, log=lambda m: None)
    with pytest.raises(MissingResultsError, match="0 of 10"):
        load_chapter(["cpu-table3"], results_dir=tmp_path / "empty", log=lambda m: None)
    # a paper-scale preset is optional by default, required when asked
    with pytest.raises(MissingResultsError, match="paper-table3"):
        load_chapter(["paper-table3"], required=["paper-table3"], results_dir=root, log=lambda m: None)


def test_corrupted_file_is_reported_and_fails_the_check(tmp_path):
    root = _copy_preset(tmp_path)
    path = sorted((root / "cpu-table3").glob("*.json"))[0]
    path.write_text(path.read_text().replace('"top1": 0.', '"top1": 0.0', 1))
    lines = []
    with pytest.raises(MissingResultsError):  # the corrupted file is not used, so one run is missing
        load_chapter(["cpu-table3"], results_dir=root, log=lines.append)
    assert any(line.startswith("PROBLEM (file not used)") and path.name in line for line in lines)


def test_check_chapter_table_recomputes_and_catches_a_wrong_cell(tmp_path):
    ch = load_chapter(["cpu-table3"], results_dir=_copy_preset(tmp_path), log=lambda m: None)
    table = compare(ch.df, ROWS)
    assert check_chapter_table(ch, ROWS, table) == 2
    bad = table.copy()
    bad.loc[1, "ours method"] = "99.99 ± 0.00 (n=5)"
    with pytest.raises(ChapterCheckError, match="30 % top1"):
        check_chapter_table(ch, ROWS, bad)
    bad = table.copy()
    bad.loc[0, "paper Δ"] = "+9.99"
    with pytest.raises(ChapterCheckError, match="paper Δ"):
        check_chapter_table(ch, ROWS, bad)
    check_quoted(table, {"0 %": table.loc[0, "ours Δ [95% CI]"]})
    with pytest.raises(ChapterCheckError, match="prose"):
        check_quoted(table, {("0 %", "top1"): "+1.00 [+0.00, +2.00]"})


def test_show_comparison_keeps_the_page_narrow_and_every_column_collapsed(tmp_path):
    ch = load_chapter(["cpu-table3"], results_dir=_copy_preset(tmp_path), log=lambda m: None)
    table = compare(ch.df, ROWS)
    compact = compact_comparison(table)
    assert list(compact.columns) == ["row", "metric", "paper Δ", "ours Δ [95% CI]", "verdict (Holm-adjusted p)"]
    assert compact["ours Δ [95% CI]"].tolist() == table["ours Δ [95% CI]"].tolist()
    assert len(table.columns) > len(COMPACT_COLUMNS) + 5
    html = comparison_html(table, "t3")
    assert html == comparison_html(table, "t3")  # stable: re-execution changes nothing
    head, details = html.split("<details>")
    assert 'id="t3-compact"' in head and 'id="t3-all"' in details and details.rstrip().endswith("</details>")
    assert re.findall(r"<th>(.*?)</th>", head) == list(compact.columns)
    assert re.findall(r"<th>(.*?)</th>", details) == list(table.columns)
    with pytest.raises(ValueError, match="missing"):
        compact_comparison(table.drop(columns="verdict"))
    with pytest.raises(ValueError, match="name"):
        comparison_html(table, "a b")
