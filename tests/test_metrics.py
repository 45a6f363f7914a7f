"""Tests for lilaw_edu.metrics against hand values, scikit-learn and scipy."""

import math

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn.metrics import average_precision_score, log_loss, roc_auc_score

from lilaw_edu.metrics import apply_temperature, evaluate_predictions, expected_calibration_error, fit_temperature, mislabel_detection, paired_difference, topk_accuracy


def _random_probs(n, c, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, generator=g, dtype=torch.float64).mul(2).softmax(1), g


# ----------------------------------------------------------------- top-k
def test_topk_accuracy_by_hand():
    scores = torch.tensor([[0.10, 0.50, 0.40],    # y=2: top1 {1} miss, top2 {1,2} hit
                           [0.80, 0.15, 0.05],    # y=0: top1 hit
                           [0.25, 0.35, 0.40]])   # y=1: top1 {2} miss, top2 {2,1} hit
    y = torch.tensor([2, 0, 1])
    assert topk_accuracy(scores, y, k=1) == pytest.approx(1 / 3)
    assert topk_accuracy(scores, y, k=2) == pytest.approx(1.0)
    # logits give the same ranking as their softmax
    assert topk_accuracy(scores.log() * 3, y, k=1) == pytest.approx(1 / 3)


@pytest.mark.parametrize("k", [0, 4, 1.0, True])
def test_topk_bad_k(k):
    with pytest.raises(ValueError, match="k must be"):
        topk_accuracy(torch.rand(3, 3), torch.tensor([0, 1, 2]), k=k)


# ----------------------------------------------------------------- AUROC / summary
def test_binary_auroc_equals_sklearn():
    p, g = _random_probs(200, 2, 0)
    y = torch.randint(0, 2, (200,), generator=g)
    out = evaluate_predictions(p, y, num_classes=2)
    expected = roc_auc_score(y.numpy(), p[:, 1].numpy())
    assert out["auroc"] == pytest.approx(expected, abs=1e-12)
    assert out["auroc_weighted"] == pytest.approx(expected, abs=1e-12)
    assert out["top5"] is None


def test_multiclass_auroc_all_present_equals_sklearn_ovr():
    p, g = _random_probs(300, 4, 1)
    y = torch.randint(0, 4, (300,), generator=g)
    out = evaluate_predictions(p, y, num_classes=4)
    for key, avg in (("auroc", "macro"), ("auroc_weighted", "weighted")):
        expected = roc_auc_score(y.numpy(), p.numpy(), multi_class="ovr", average=avg)
        assert out[key] == pytest.approx(expected, abs=1e-12)
    assert out["auroc_classes"] == [0, 1, 2, 3]


def test_multiclass_auroc_with_missing_class_uses_present_classes():
    p, g = _random_probs(300, 5, 2)
    y = torch.randint(0, 4, (300,), generator=g)
    y[y == 2] = 3  # classes 2 and 4 absent
    out = evaluate_predictions(p, y, num_classes=5)
    present = [0, 1, 3]
    per_class = [roc_auc_score((y == k).numpy(), p[:, k].numpy()) for k in present]
    prevalence = [(y == k).double().mean().item() for k in present]
    assert out["auroc_classes"] == present
    assert out["auroc"] == pytest.approx(np.mean(per_class), abs=1e-12)
    assert out["auroc_weighted"] == pytest.approx(np.dot(per_class, prevalence), abs=1e-12)


def test_auroc_single_present_class_is_nan():
    p, _ = _random_probs(10, 3, 3)
    out = evaluate_predictions(p, torch.zeros(10, dtype=torch.long), num_classes=3)
    assert math.isnan(out["auroc"]) and math.isnan(out["auroc_weighted"])
    assert out["top1"] == pytest.approx((p.argmax(1) == 0).double().mean().item())


def test_top5_nll_ece_against_independent_oracles():
    p, g = _random_probs(500, 10, 4)
    y = torch.randint(0, 10, (500,), generator=g)
    out = evaluate_predictions(p, y, num_classes=10)
    top5 = np.mean([int(y[i]) in np.argsort(-p[i].numpy())[:5] for i in range(500)])
    assert out["top5"] == pytest.approx(top5)
    assert out["nll"] == pytest.approx(log_loss(y.numpy(), p.numpy(), labels=list(range(10))), rel=1e-9)
    assert 0 <= out["ece"] <= 1


def test_ece_by_hand():
    # conf .90 correct -> bin (13/15, 14/15]: |1 - .90| = .10
    # conf .82 wrong   -> bin (12/15, 13/15]: |0 - .82| = .82
    # conf .60, .55 both correct -> bin (8/15, 9/15]: |1 - .575| = .425
    # ECE = (.10 + .82) / 4 + 2 * .425 / 4 = .4425
    p = torch.tensor([[0.90, 0.10], [0.82, 0.18], [0.60, 0.40], [0.55, 0.45]], dtype=torch.float64)
    y = torch.tensor([0, 1, 0, 0])
    assert expected_calibration_error(p, y) == pytest.approx(0.4425, abs=1e-12)
    assert evaluate_predictions(p, y, 2)["ece"] == pytest.approx(0.4425, abs=1e-12)


def test_evaluate_rejects_logits_and_bad_targets():
    logits = torch.randn(4, 3)
    with pytest.raises(ValueError, match="probs"):
        evaluate_predictions(logits, torch.tensor([0, 1, 2, 0]), 3)
    p, _ = _random_probs(4, 3, 5)
    with pytest.raises(ValueError, match="targets"):
        evaluate_predictions(p, torch.tensor([0, 1, 3, 0]), 3)
    with pytest.raises(TypeError, match="targets"):
        evaluate_predictions(p, torch.tensor([0.0, 1.0, 2.0, 0.0]), 3)
    with pytest.raises(ValueError, match="num_classes"):
        evaluate_predictions(p, torch.tensor([0, 1, 2, 0]), 4)
    with pytest.raises(ValueError, match="probs"):
        evaluate_predictions(torch.full((2, 3), float("nan")), torch.tensor([0, 1]), 3)
    with pytest.raises(ValueError, match="probs"):
        evaluate_predictions(torch.empty(0, 3), torch.empty(0, dtype=torch.long), 3)


# ----------------------------------------------------------------- temperature scaling
def test_temperature_scaling_recovers_known_temperature():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(5000, 5, generator=g, dtype=torch.float64) * 2
    y = torch.multinomial(z.softmax(1), 1, generator=g).squeeze(1)  # labels drawn from softmax(z)
    t_true = 2.5
    logits = t_true * z  # over-confident by a factor 2.5
    t_hat = fit_temperature(logits, y)
    assert t_hat == pytest.approx(t_true, rel=0.06)
    nll_before = torch.nn.functional.cross_entropy(logits, y).item()
    nll_after = torch.nn.functional.cross_entropy(apply_temperature(logits, t_hat), y).item()
    assert nll_after < nll_before - 0.1
    # accuracy is unchanged by temperature
    assert torch.equal(apply_temperature(logits, t_hat).argmax(1), logits.argmax(1))


def test_fit_temperature_works_under_no_grad():
    g = torch.Generator().manual_seed(1)
    z = torch.randn(500, 3, generator=g)
    y = torch.multinomial(z.softmax(1), 1, generator=g).squeeze(1)
    with torch.no_grad():
        t = fit_temperature(z * 0.5, y)  # under-confident: T < 1
    assert 0.35 < t < 0.7


@pytest.mark.parametrize("t", [0.0, -1.0, float("nan"), float("inf")])
def test_apply_temperature_bad(t):
    with pytest.raises(ValueError, match="temperature"):
        apply_temperature(torch.randn(2, 3), t)


def test_fit_temperature_bad_input():
    with pytest.raises(ValueError, match="val_logits"):
        fit_temperature(torch.randn(5), torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="val_targets"):
        fit_temperature(torch.randn(5, 3), torch.zeros(4, dtype=torch.long))


# ----------------------------------------------------------------- mislabel detection
def test_mislabel_detection_perfect_separation():
    mask = torch.tensor([True, False, True, False, False, False])
    noisiness = torch.tensor([0.9, 0.1, 0.8, 0.2, 0.3, 0.0])
    out = mislabel_detection(noisiness, mask, higher_means="noisy")
    assert out["auroc"] == 1.0 and out["auprc"] == 1.0 and out["auprc_paper"] == 1.0
    assert out["frac_mislabeled"] == pytest.approx(2 / 6)
    flipped = mislabel_detection(-noisiness, mask, higher_means="clean")
    assert flipped == out
    wrong_way = mislabel_detection(noisiness, mask, higher_means="clean")
    assert wrong_way["auroc"] == 0.0


def test_mislabel_detection_matches_sklearn_both_conventions():
    g = torch.Generator().manual_seed(0)
    mask = torch.rand(400, generator=g) < 0.3
    clean_score = torch.randn(400, generator=g) - 1.5 * mask  # high = clean
    out = mislabel_detection(clean_score, mask, higher_means="clean")
    assert out["auroc"] == pytest.approx(roc_auc_score(mask.numpy(), -clean_score.numpy()))
    # paper convention: flag 1 = correctly labeled is the positive class
    flags = (~mask).numpy().astype(int)
    assert out["auroc"] == pytest.approx(roc_auc_score(flags, clean_score.numpy()))
    assert out["auprc_paper"] == pytest.approx(average_precision_score(flags, clean_score.numpy()))
    assert out["auprc"] == pytest.approx(average_precision_score(mask.numpy(), -clean_score.numpy()))
    assert out["auprc"] != pytest.approx(out["auprc_paper"], abs=1e-3)


def test_mislabel_detection_degenerate_and_bad_input():
    out = mislabel_detection(torch.rand(5), torch.zeros(5, dtype=torch.bool))
    assert math.isnan(out["auroc"]) and math.isnan(out["auprc"])
    with pytest.raises(ValueError, match="higher_means"):
        mislabel_detection(torch.rand(5), torch.zeros(5, dtype=torch.bool), higher_means="low")
    with pytest.raises(TypeError, match="corrupted_mask"):
        mislabel_detection(torch.rand(5), torch.zeros(5))
    with pytest.raises(ValueError, match="corrupted_mask"):
        mislabel_detection(torch.rand(5), torch.zeros(4, dtype=torch.bool))
    with pytest.raises(ValueError, match="scores"):
        mislabel_detection(torch.tensor([0.1, float("nan")]), torch.tensor([True, False]))


# ----------------------------------------------------------------- paired comparison
def test_paired_difference_matches_scipy():
    a = np.array([0.71, 0.74, 0.69, 0.77, 0.73])
    b = np.array([0.70, 0.70, 0.68, 0.72, 0.71])
    out = paired_difference(a, b)
    d = a - b
    assert out["n"] == 5
    assert out["mean"] == pytest.approx(d.mean())
    assert out["std"] == pytest.approx(d.std(ddof=1))
    assert out["p_value"] == pytest.approx(stats.ttest_rel(a, b).pvalue, rel=1e-12)
    lo, hi = stats.t.interval(0.95, df=4, loc=d.mean(), scale=stats.sem(d))
    assert (out["ci_low"], out["ci_high"]) == (pytest.approx(lo), pytest.approx(hi))
    wider = paired_difference(torch.tensor(a), torch.tensor(b), confidence=0.99)
    assert wider["ci_low"] < out["ci_low"] and wider["ci_high"] > out["ci_high"]


def test_paired_difference_small_n():
    one = paired_difference([0.8], [0.7])
    assert one["mean"] == pytest.approx(0.1) and one["n"] == 1
    assert all(math.isnan(one[k]) for k in ("std", "ci_low", "ci_high", "p_value"))
    const = paired_difference([1.0, 2.0, 3.0], [0.5, 1.5, 2.5])
    assert const["ci_low"] == pytest.approx(0.5) and const["ci_high"] == pytest.approx(0.5)


def test_paired_difference_bad_input():
    with pytest.raises(ValueError, match="same length"):
        paired_difference([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="at least one"):
        paired_difference([], [])
    with pytest.raises(ValueError, match="confidence"):
        paired_difference([1, 2], [1, 2], confidence=95)
    with pytest.raises(ValueError, match="a must be finite"):
        paired_difference([1, float("nan")], [1, 2])
