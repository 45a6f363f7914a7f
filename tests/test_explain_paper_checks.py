"""The cross-table checks of the paper notes (chapter 06) against the printed numbers."""
import pytest

from lilaw_edu.explain import paper_checks


def test_table9_zero_noise_rows_are_the_same_setting_but_differ():
    rows = {r["metric"]: r for r in paper_checks.table9_zero_noise()}
    top1 = rows["top1"]
    assert (top1["noisy_val_baseline"], top1["noisy_val_delta"]) == (76.41, 4.34)
    assert (top1["clean_val_baseline"], top1["clean_val_delta"]) == (77.40, 3.33)
    # the LiLAW totals agree to 0.02 points, the baselines differ by about a point
    assert abs(top1["noisy_val_lilaw"] - top1["clean_val_lilaw"]) <= 0.02 + 1e-9
    assert top1["clean_val_baseline"] - top1["noisy_val_baseline"] == pytest.approx(0.99)


def test_table6_single_term_rows_agree_to_a_hundredth():
    rows = {r["setting"]: r for r in paper_checks.table6_changes(0.5)}
    singles = [rows[f"active={k}"]["top1"] for k in "abd"]
    assert max(singles) - min(singles) == pytest.approx(0.01)
    assert {rows[f"active={k}"]["auroc"] for k in "abd"} == {0.0098}
    assert rows["active=ad"]["top1"] == rows["active=b"]["top1"] == 16.48


def test_table12_baseline_moves_while_lilaw_does_not():
    spread = paper_checks.table_spread("12")
    assert spread["baseline"] == (38.21, 61.66)
    lo, hi = spread["lilaw"]
    assert hi - lo < 2.5 < spread["baseline"][1] - spread["baseline"][0]


def test_table7_totals_fall_gracefully():
    spread = paper_checks.table_spread("7")
    rates = {r["rate"]: r for r in spread["rows"]}
    assert rates[0.9]["baseline"] == 1.48 and rates[0.9]["lilaw"] == pytest.approx(55.70)


def test_unknown_selection_is_an_error():
    with pytest.raises(ValueError, match="no row of Table 9"):
        paper_checks.table_spread("9", setting="nonexistent")
