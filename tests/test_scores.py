"""Difficulty scores (AUM, EL2N, GraNd, Forgetting, DataMaps, Data-IQ) against hand values."""

import math
from math import sqrt

import pytest
import torch

from lilaw_edu.metrics import mislabel_detection
from lilaw_edu.scores.functional import DATA_IQ_GROUPS, aum, data_iq, datamaps, el2n, forgetting, grand
from lilaw_edu.scores.recorders import DIFFICULTY_SCORES, AUMRecorder, DataIQRecorder, DataMapsRecorder, DifficultyRecorders, EL2NRecorder, ForgettingRecorder, GraNdRecorder, compute_all

# Tiny example: E = 3 epochs, N = 4 samples, C = 3 classes, labels y = [0, 1, 2, 0].
# Correct (argmax == y) per epoch:  s0 T T T | s1 F T F | s2 T F T | s3 F F F
Y = torch.tensor([0, 1, 2, 0])
P = torch.tensor([
    [[0.8, 0.1, 0.1], [0.6, 0.2, 0.2], [0.2, 0.2, 0.6], [0.2, 0.5, 0.3]],    # epoch 1
    [[0.7, 0.2, 0.1], [0.2, 0.5, 0.3], [0.1, 0.5, 0.4], [0.1, 0.8, 0.1]],    # epoch 2
    [[0.9, 0.05, 0.05], [0.4, 0.3, 0.3], [0.1, 0.3, 0.6], [0.3, 0.4, 0.3]],  # epoch 3
], dtype=torch.float64)
# p_y per epoch: s0 .8 .7 .9 | s1 .2 .5 .3 | s2 .6 .4 .6 | s3 .2 .1 .3

# ||p - e_y||^2 per epoch (sum of squared differences):
#   s0: .04+.01+.01=.06 | .09+.04+.01=.14 | .01+.0025+.0025=.015
#   s1: .36+.64+.04=1.04 | .04+.25+.09=.38 | .16+.49+.09=.74
#   s2: .04+.04+.16=.24 | .01+.25+.36=.62 | .01+.09+.16=.26
#   s3: .64+.25+.09=.98 | .81+.64+.01=1.46 | .49+.16+.09=.74
SQ = [[0.06, 0.14, 0.015], [1.04, 0.38, 0.74], [0.24, 0.62, 0.26], [0.98, 1.46, 0.74]]
EL2N = [sum(sqrt(v) for v in row) / 3 for row in SQ]   # s0 = (.24495+.37417+.12247)/3 = .24720


def test_aum_by_hand():
    # y = [0, 2]; margin = z_y - max other
    logits = torch.tensor([
        [[2.0, 1.0, 0.0], [0.0, 0.0, 1.0]],   # margins 2-1 = 1,  1-0 = 1
        [[1.0, 3.0, 0.0], [2.0, -1.0, 0.0]],  # margins 1-3 = -2, 0-2 = -2
        [[4.0, 0.0, 1.0], [1.0, 1.0, 1.0]],   # margins 4-1 = 3,  1-1 = 0
    ])
    y = torch.tensor([0, 2])
    # AUM = (1 - 2 + 3)/3 = 2/3 and (1 - 2 + 0)/3 = -1/3
    assert aum(logits, y).tolist() == pytest.approx([2 / 3, -1 / 3])


def test_el2n_by_hand():
    assert el2n(P, Y).tolist() == pytest.approx(EL2N)
    assert EL2N[0] == pytest.approx(0.24720, abs=1e-5)


def test_grand_without_features_is_logit_gradient_norm():
    assert grand(P, Y).tolist() == pytest.approx(EL2N)


def test_grand_with_features_by_hand():
    # sqrt(||h||^2 + 1): [1,1,1] -> 2, [2,2,0] -> 3, [0,0,0] -> 1
    h111, h220, h000 = [1.0, 1.0, 1.0], [2.0, 2.0, 0.0], [0.0, 0.0, 0.0]
    feats = torch.tensor([
        [h220, h220, h000, h111],   # epoch 1
        [h111, h220, h000, h111],   # epoch 2
        [h111, h220, h000, h111],   # epoch 3
    ])
    expected = [
        (3 * sqrt(0.06) + 2 * sqrt(0.14) + 2 * sqrt(0.015)) / 3,
        3 * EL2N[1],
        EL2N[2],
        2 * EL2N[3],
    ]
    assert grand(P, Y, feats).tolist() == pytest.approx(expected)


def test_grand_closed_form_equals_autograd_last_layer_gradient():
    g = torch.Generator().manual_seed(0)
    layer = torch.nn.Linear(6, 4).double()
    h = torch.randn(5, 6, generator=g, dtype=torch.float64)
    y = torch.tensor([0, 3, 1, 1, 2])
    norms = []
    for i in range(5):
        layer.zero_grad()
        torch.nn.functional.cross_entropy(layer(h[i:i + 1]), y[i:i + 1]).backward()
        norms.append(torch.cat([layer.weight.grad.flatten(), layer.bias.grad]).norm().item())
    with torch.no_grad():
        probs = layer(h).softmax(1)
    assert grand(probs[None], y, h[None]).tolist() == pytest.approx(norms, rel=1e-10)


def test_forgetting_by_hand():
    # s0 always correct: 0 events; s1 F T F: one T->F; s2 T F T: one T->F;
    # s3 never correct: E = 3
    assert forgetting(P, Y).tolist() == [0.0, 1.0, 1.0, 3.0]


def test_datamaps_by_hand():
    out = datamaps(P, Y)
    # confidence = mean p_y
    assert out["confidence"].tolist() == pytest.approx([0.8, 1.0 / 3, 1.6 / 3, 0.2])
    # variability = population std of p_y:
    #   s0 [.8 .7 .9]: mean .8, var (0 + .01 + .01)/3 = .02/3;  s3 [.2 .1 .3]: mean .2, var .02/3
    #   s1 [.2 .5 .3]: mean 1/3, var below;  s2 [.6 .4 .6]: mean 1.6/3, deviations .2/3, .2/3, -.4/3
    var_s1 = ((0.2 - 1 / 3) ** 2 + (0.5 - 1 / 3) ** 2 + (0.3 - 1 / 3) ** 2) / 3   # = .015556
    var_s2 = (2 * (0.2 / 3) ** 2 + (0.4 / 3) ** 2) / 3                              # = .0088889
    assert out["variability"].tolist() == pytest.approx(
        [sqrt(0.02 / 3), sqrt(var_s1), sqrt(var_s2), sqrt(0.02 / 3)])
    assert out["correctness"].tolist() == pytest.approx([1.0, 1 / 3, 2 / 3, 0.0])


def test_data_iq_by_hand():
    out = data_iq(P, Y)
    # aleatoric = mean p_y (1 - p_y):
    #   s0 (.16 + .21 + .09)/3 = .15333   s1 (.16 + .25 + .21)/3 = .20667
    #   s2 (.24 + .24 + .24)/3 = .24      s3 (.16 + .09 + .21)/3 = .15333
    assert out["aleatoric"].tolist() == pytest.approx([0.46 / 3, 0.62 / 3, 0.24, 0.46 / 3])
    assert out["confidence"].tolist() == pytest.approx([0.8, 1.0 / 3, 1.6 / 3, 0.2])
    assert out["epistemic"].tolist() == pytest.approx((datamaps(P, Y)["variability"] ** 2).tolist())
    # s0: conf .8 >= .75, alea .153 < .2 -> easy; s3: conf .2 <= .25, alea < .2 -> hard
    assert [DATA_IQ_GROUPS[g] for g in out["groups"]] == ["easy", "ambiguous", "ambiguous", "hard"]
    # a stricter aleatoric threshold moves s0 and s3 to ambiguous
    strict = data_iq(P, Y, aleatoric_threshold=0.15)
    assert [DATA_IQ_GROUPS[g] for g in strict["groups"]] == ["ambiguous"] * 4


# ----------------------------------------------------------------- recorders
def _random_run(e=4, n=30, c=5, d=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(e, n, c, generator=g, dtype=torch.float64) * 2
    feats = torch.randn(e, n, d, generator=g, dtype=torch.float64)
    y = torch.randint(0, c, (n,), generator=g)
    return logits, feats, y


def test_recorders_match_functional_forms():
    logits, feats, y = _random_run()
    probs = logits.softmax(-1)
    expected = {"aum": aum(logits, y), "el2n": el2n(probs, y), "grand": grand(probs, y, feats),
                "forgetting": forgetting(probs, y), "datamaps": datamaps(probs, y)["confidence"],
                "data_iq": data_iq(probs, y)["confidence"]}
    got = compute_all(logits, y, features=feats)
    assert set(got) == set(DIFFICULTY_SCORES) == set(expected)
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], msg=name)


def test_recorder_details_match_functional_forms():
    logits, _, y = _random_run(seed=1)
    dm, iq = DataMapsRecorder(30, 5), DataIQRecorder(30, 5)
    for e in range(4):
        dm.update(e, logits[e], y)
        iq.update(e, logits[e], y)
    ref_dm, ref_iq = datamaps(logits.softmax(-1), y), data_iq(logits.softmax(-1), y)
    for key in ref_dm:
        torch.testing.assert_close(dm.details()[key], ref_dm[key], msg=key)
    for key in ref_iq:
        torch.testing.assert_close(iq.details()[key], ref_iq[key], msg=key)


def test_recorders_fed_in_shuffled_chunks_equal_full_feed():
    logits, feats, y = _random_run(seed=2)
    full = compute_all(logits, y, features=feats)
    rec = DifficultyRecorders(30, 5)
    g = torch.Generator().manual_seed(3)
    for e in range(4):
        perm = torch.randperm(30, generator=g)
        for chunk in perm.split(8):
            rec.update(e + 1, logits[e, chunk], y[chunk], indices=chunk, features=feats[e, chunk])
    for name, s in rec.scores().items():
        torch.testing.assert_close(s, full[name], msg=name)


def test_recorder_epoch_filter_and_unseen_samples():
    logits, _, y = _random_run(seed=4)
    rec = EL2NRecorder(30, 5, epochs={2})
    for e in range(4):
        rec.update(e, logits[e], y)
    torch.testing.assert_close(rec.scores(), el2n(logits[2:3].softmax(-1), y))
    partial = AUMRecorder(30, 5)
    partial.update(0, logits[0, :10], y[:10], indices=torch.arange(10))
    assert torch.isnan(partial.scores()[10:]).all() and not torch.isnan(partial.scores()[:10]).any()


def test_forgetting_recorder_never_learned_counts_recorded_epochs():
    rec = ForgettingRecorder(4, 3)
    for e in range(3):
        rec.update(e, P[e].log(), Y)  # log-probabilities are valid logits
    assert rec.scores().tolist() == [0.0, 1.0, 1.0, 3.0]


def test_sign_conventions_on_separable_example():
    # mislabeled samples (s1, s3) have low p_y: every score ranks them as noisy
    mask = torch.tensor([False, True, False, True])
    for name, cls in DIFFICULTY_SCORES.items():
        rec = cls(4, 3)
        for e in range(3):
            rec.update(e, P[e].log(), Y)
        out = mislabel_detection(rec.scores(), mask, higher_means=rec.higher_means)
        assert out["auroc"] >= 0.75, name


# ----------------------------------------------------------------- bad input
def test_bad_inputs_name_the_parameter():
    with pytest.raises(ValueError, match="logits"):
        aum(torch.randn(3, 4), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="probs"):
        el2n(torch.randn(2, 3, 4), torch.zeros(3, dtype=torch.long))   # logits, not probs
    with pytest.raises(TypeError, match="targets"):
        el2n(P, Y.double())
    with pytest.raises(ValueError, match="targets"):
        datamaps(P, torch.tensor([0, 1, 3, 0]))
    with pytest.raises(ValueError, match="features"):
        grand(P, Y, torch.randn(3, 5, 2))
    with pytest.raises(ValueError, match="conf_low"):
        data_iq(P, Y, conf_low=0.8, conf_high=0.7)
    with pytest.raises(ValueError, match="num_samples"):
        AUMRecorder(0, 3)
    with pytest.raises(ValueError, match="names"):
        DifficultyRecorders(4, 3, names=["aum", "loss"])


def test_recorder_update_validation():
    rec = GraNdRecorder(4, 3)
    with pytest.raises(ValueError, match="logits"):
        rec.update(0, torch.randn(4, 2), Y)
    with pytest.raises(ValueError, match="num_samples"):
        rec.update(0, torch.randn(3, 3), Y[:3])
    with pytest.raises(ValueError, match="indices"):
        rec.update(0, torch.randn(2, 3), Y[:2], indices=torch.tensor([1, 1]))
    with pytest.raises(TypeError, match="epoch"):
        rec.update(1.0, torch.randn(4, 3), Y)
    rec.update(1, torch.randn(4, 3), Y, features=torch.randn(4, 2))
    with pytest.raises(ValueError, match="epoch must increase"):
        rec.update(1, torch.randn(4, 3), Y, features=torch.randn(4, 2))
    with pytest.raises(ValueError, match="features"):
        rec.update(2, torch.randn(4, 3), Y)  # first update used features
    with pytest.raises(ValueError, match="features"):
        rec.update(2, torch.randn(4, 3), Y, features=torch.randn(3, 2))
    assert rec.uses_features is True
    assert not math.isnan(rec.scores().sum().item())


def test_state_dict_round_trip_resumes_exactly(tmp_path):
    logits, feats, y = _random_run(seed=5)
    full = DifficultyRecorders(30, 5)
    for e in range(4):
        full.update(e, logits[e], y, features=feats[e])
    first = DifficultyRecorders(30, 5)
    for e in range(2):
        first.update(e, logits[e], y, features=feats[e])
    torch.save(first.state_dict(), tmp_path / "rec.pt")
    resumed = DifficultyRecorders(30, 5)
    resumed.load_state_dict(torch.load(tmp_path / "rec.pt", weights_only=True))
    for e in range(2, 4):
        resumed.update(e, logits[e], y, features=feats[e])
    for name, s in resumed.scores().items():
        torch.testing.assert_close(s, full.scores()[name], msg=name)
    with pytest.raises(ValueError, match="epoch must increase"):
        resumed.update(3, logits[3], y, features=feats[3])
    with pytest.raises(ValueError, match="num_samples"):
        AUMRecorder(31, 5).load_state_dict(first.recorders["aum"].state_dict())
