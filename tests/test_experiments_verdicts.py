"""Verdicts: multiplicity adjustment (Holm, BH) against independent computations, zero differences,
small paper changes, capitals only where the interval excludes the paper's value."""
from __future__ import annotations

import math

import numpy as np
import pytest

from lilaw_edu.experiments.verdicts import adjust, benjamini_hochberg, findings, holm, verdict
from lilaw_edu.metrics import paired_difference


def _holm_by_definition(p):
    """Adjusted p_i = max over j with p_j <= p_i (in sorted order) of min(1, (m - rank_j + 1) p_j)."""
    m = len(p)
    ranked = sorted(range(m), key=lambda i: (p[i], i))
    rank = {i: r for r, i in enumerate(ranked, start=1)}
    return [max(min(1.0, (m - rank[j] + 1) * p[j]) for j in range(m) if rank[j] <= rank[i]) for i in range(m)]


def _bh_by_definition(p):
    """Adjusted p_i = min over k >= rank_i of min(1, m p_(k) / k)."""
    m = len(p)
    s = sorted(p)
    return [min(min(1.0, m * s[k - 1] / k) for k in range(r, m + 1))
            for r in (sorted(p).index(v) + 1 + sum(1 for w in p[:i] if w == v) for i, v in enumerate(p))]


@pytest.mark.parametrize("seed", range(5))
def test_holm_and_bh_match_their_definitions(seed):
    rng = np.random.default_rng(seed)
    p = list(rng.uniform(0, 0.2, size=12)) + [0.001, 0.04, 0.9]
    np.testing.assert_allclose(holm(p), _holm_by_definition(p), rtol=0, atol=1e-15)
    np.testing.assert_allclose(benjamini_hochberg(p), _bh_by_definition(p), rtol=0, atol=1e-15)


def test_textbook_example_and_missing_tests():
    # Holm (1979)-style worked example: 0.01, 0.04, 0.03, 0.005 -> 0.03, 0.06, 0.06, 0.02
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(benjamini_hochberg([0.01, 0.04, 0.03, 0.005]), [0.02, 0.04, 0.04, 0.02])
    h, b = adjust([0.01, None, float("nan"), 0.04])  # rows without a test are not in the family
    assert math.isnan(h[1]) and math.isnan(b[2])
    np.testing.assert_allclose([h[0], h[3]], [0.02, 0.04])


def test_multiplicity_turns_a_nominal_hit_into_no_detectable_difference():
    a = [0.80, 0.82, 0.81, 0.83, 0.80]
    b = [0.79, 0.80, 0.80, 0.81, 0.79]
    diff = paired_difference(a, b)
    assert diff["p_value"] < 0.05
    raw = verdict(diff, scale=100, method="lilaw")
    assert raw.startswith("lilaw higher, adjusted p = ")
    family = [diff["p_value"]] + [0.3, 0.5, 0.7, 0.9] * 5     # 21 tests
    holm_p = adjust(family)[0][0]
    assert holm_p == pytest.approx(min(1.0, 21 * diff["p_value"]))
    assert verdict(diff, scale=100, p_adjusted=holm_p, method="lilaw").startswith("no detectable difference")


def test_zero_difference_is_never_disagreement():
    same = [0.5, 0.6, 0.7]
    diff = paired_difference(same, same)
    diff["mean"] = 8.7e-16  # floating-point residue, as in a committed row
    text = verdict(diff, paper_delta=3.2, scale=100)
    assert "DISAGREES" not in text and "opposite sign" not in text and "zero difference (paper +3.2)" in text
    assert "×" not in text


def test_small_paper_delta_gets_no_ratio_and_capitals_only_outside_interval():
    diff = paired_difference([0.90, 0.91, 0.93, 0.92], [0.91, 0.91, 0.92, 0.93])  # mean 0, CI spans 0
    diff["mean"] = -0.0025
    text = verdict(diff, paper_delta=0.05, scale=100)     # paper +0.05 points: inside our CI, no ratio
    assert "consistent with paper" in text and "opposite sign to paper" in text and "×" not in text
    assert "DISAGREES" not in text
    assert "× paper's size" in verdict(diff, paper_delta=0.5, scale=100)
    auroc = paired_difference([0.80, 0.81, 0.82], [0.70, 0.70, 0.71])  # +0.107, CI excludes +0.0005
    text = verdict(auroc, paper_delta=0.0005, scale=1.0)
    assert text.count("DISAGREES") == 1 and "same sign as paper" in text and "×" not in text


def test_findings_says_rows_share_baselines():
    import pandas as pd
    table = pd.DataFrame([dict(row="r", metric="top1", **{"method vs reference": "lilaw vs baseline"},
                               **{"paper Δ": "+3.20", "ours Δ [95% CI]": "-1.00 [-2.00, -0.50]", "p": "0.01",
                                  "p Holm": "0.02", "seeds": 5},
                               verdict=verdict(paired_difference([1, 2, 3, 4.0], [2.2, 2.9, 4.1, 5.2]), 3.2,
                                               1.0, 0.02, "lilaw"))])
    text = findings(table)
    assert "not independent" in text and "DISAGREES) in 1" in text and "**r**" in text
