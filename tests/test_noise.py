"""Tests for lilaw_edu.noise.inject and lilaw_edu.noise.image_ops (CPU, a few seconds)."""

import math
import re

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from scipy import stats

from lilaw_edu.noise import image_ops
from lilaw_edu.datasets.class_maps import CIFAR10_CLASSES, CIFAR10_CONFUSABLE
from lilaw_edu.noise.inject import INPUT_NOISE_KINDS, LABEL_NOISE_KINDS, SERIES_NOISE_KINDS, inject_input_noise, inject_label_noise, inject_noise
from lilaw_edu.noise.maps import asymmetric_transition_matrix, confusable_map_from_confusion, confusable_map_from_features

RATES = (0.0, 0.1, 0.5, 0.9)
C = 10


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def labels(n=1000, num_classes=C, seed=123):
    return torch.randint(0, num_classes, (n,), generator=gen(seed))


def images(n=40, channels=3, size=16, seed=7, dtype=torch.float32):
    return torch.rand(n, channels, size, size, generator=gen(seed), dtype=dtype)


def grey_pool():
    """Eight constant grey 28x28 images with distinct values, like an MNIST stand-in."""
    values = torch.linspace(0.1, 0.8, 8)
    return values[:, None, None, None].expand(8, 1, 28, 28).clone()


def label_kw(kind):
    return {"class_map": CIFAR10_CONFUSABLE} if kind == "instance" else {}


def input_kw(kind):
    return {"far_ood_pool": grey_pool()} if kind == "far_ood" else {}


# ---------------------------------------------------------------- label noise
@pytest.mark.parametrize("kind", LABEL_NOISE_KINDS)
@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("n", [1000, 37])
def test_label_noise_selects_exact_count_and_keeps_the_rest(kind, rate, n):
    y = labels(n)
    y_before = y.clone()
    noisy, mask = inject_label_noise(y, kind, rate, C, generator=gen(), **label_kw(kind))
    assert mask.dtype == torch.bool and mask.shape == (n,)
    assert int(mask.sum()) == round(rate * n)
    assert noisy.dtype == y.dtype and noisy.shape == y.shape
    assert torch.equal(noisy[~mask], y[~mask])
    assert torch.equal(y, y_before)  # input untouched
    assert noisy.data_ptr() != y.data_ptr()
    assert int(noisy.min()) >= 0 and int(noisy.max()) < C


@pytest.mark.parametrize("kind", ["asymmetric", "adjacent", "instance"])
@pytest.mark.parametrize("rate", RATES)
def test_these_kinds_always_change_the_label(kind, rate):
    y = labels()
    noisy, mask = inject_label_noise(y, kind, rate, C, generator=gen(), **label_kw(kind))
    assert torch.equal(noisy != y, mask)


def test_uniform_always_change_option_changes_every_selected_label():
    y = labels(5000)
    noisy, mask = inject_label_noise(y, "uniform", 0.9, C, generator=gen(), always_change=True)
    assert torch.equal(noisy != y, mask)
    # the new label is uniform over the other C - 1 classes
    from_zero = noisy[mask & (y == 0)]
    counts = np.bincount(from_zero.numpy(), minlength=C)
    assert counts[0] == 0
    assert stats.chisquare(counts[1:]).pvalue > 1e-3


def test_uniform_new_labels_are_uniform_over_all_classes():
    y = labels(100_000, seed=5)
    noisy, mask = inject_label_noise(y, "uniform", 1.0, C, generator=gen(11))
    counts = np.bincount(noisy.numpy(), minlength=C)
    assert stats.chisquare(counts).pvalue > 1e-3
    # a selected label stays the same with probability 1/C
    kept = int((noisy == y).sum())
    assert stats.binomtest(kept, len(y), 1 / C).pvalue > 1e-3


def test_uniform_changed_fraction_is_rate_times_c_minus_1_over_c():
    y = labels(50_000, seed=3)
    rate = 0.5
    noisy, mask = inject_label_noise(y, "uniform", rate, C, generator=gen(4))
    changed = int((noisy != y).sum())
    assert stats.binomtest(changed, int(mask.sum()), (C - 1) / C).pvalue > 1e-3


@pytest.mark.parametrize("num_classes", [2, 3, 10])
def test_adjacent_moves_one_step_either_way(num_classes):
    y = labels(20_000, num_classes)
    noisy, mask = inject_label_noise(y, "adjacent", 0.5, num_classes, generator=gen())
    step = ((noisy - y) % num_classes)[mask]
    assert set(step.tolist()) <= {1, num_classes - 1}
    if num_classes > 2:  # the two directions are equally likely
        ups = int((step == 1).sum())
        assert stats.binomtest(ups, len(step), 0.5).pvalue > 1e-3


def test_asymmetric_transition_matrix_rows_sum_to_one_with_zero_diagonal():
    for num_classes in (2, 5, 100):
        t = asymmetric_transition_matrix(num_classes, generator=gen(num_classes))
        assert t.shape == (num_classes, num_classes)
        assert torch.allclose(t.sum(dim=1), torch.ones(num_classes, dtype=t.dtype))
        assert torch.all(t.diagonal() == 0) and torch.all(t >= 0)
    t2 = asymmetric_transition_matrix(2, generator=gen())
    assert torch.equal(t2, torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=t2.dtype))


def test_asymmetric_rows_are_dirichlet_one():
    # a Dirichlet(1) row over K = C - 1 classes has Beta(1, K - 1) marginals
    g = gen(9)
    entries = [float(asymmetric_transition_matrix(5, generator=g)[0, 1]) for _ in range(3000)]
    assert stats.kstest(entries, stats.beta(1, 3).cdf).pvalue > 1e-3


def test_asymmetric_flips_follow_the_drawn_matrix():
    # Draw order inside inject_label_noise: selection (randperm), then the matrix.
    n, num_classes, seed = 60_000, 4, 21
    y = labels(n, num_classes)
    noisy, mask = inject_label_noise(y, "asymmetric", 1.0, num_classes, generator=gen(seed))
    g = gen(seed)
    torch.randperm(n, generator=g)
    t = asymmetric_transition_matrix(num_classes, generator=g)
    for c in range(num_classes):
        counts = np.bincount(noisy[y == c].numpy(), minlength=num_classes)
        others = [j for j in range(num_classes) if j != c]
        assert counts[c] == 0
        expected = t[c, others].numpy() * counts.sum()
        assert stats.chisquare(counts[others], expected).pvalue > 1e-3


def test_instance_noise_draws_from_the_class_map_uniformly():
    y = labels(30_000)
    noisy, mask = inject_label_noise(y, "instance", 1.0, C, generator=gen(), class_map=CIFAR10_CONFUSABLE)
    for c, confusable in CIFAR10_CONFUSABLE.items():
        new = noisy[y == c].numpy()
        assert set(new.tolist()) == set(confusable)
        counts = np.array([(new == o).sum() for o in confusable])
        if len(confusable) > 1:
            assert stats.chisquare(counts).pvalue > 1e-3


def test_cifar10_confusable_map_has_the_expected_pairs():
    idx = {name: i for i, name in enumerate(CIFAR10_CLASSES)}
    assert set(CIFAR10_CONFUSABLE) == set(range(10))
    for c, confusable in CIFAR10_CONFUSABLE.items():
        assert confusable and c not in confusable
    pairs = [("cat", "dog"), ("automobile", "truck"), ("deer", "horse"), ("airplane", "bird"), ("airplane", "ship")]
    for a, b in pairs:
        assert idx[b] in CIFAR10_CONFUSABLE[idx[a]] and idx[a] in CIFAR10_CONFUSABLE[idx[b]]


def test_confusable_map_from_features_matches_a_numpy_cosine_oracle():
    g = gen(2)
    num_classes, n = 6, 600
    y = torch.arange(n) % num_classes
    centres = torch.randn(num_classes, 8, generator=g)
    features = centres[y] + 0.3 * torch.randn(n, 8, generator=g)
    got = confusable_map_from_features(features, y, num_classes, k=2)
    f, yy = features.double().numpy(), y.numpy()
    means = np.stack([f[yy == c].mean(0) for c in range(num_classes)])
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    sim = means @ means.T
    np.fill_diagonal(sim, -np.inf)
    for c in range(num_classes):
        assert got[c] == list(np.argsort(-sim[c])[:2])


def test_confusable_map_from_hand_made_features_and_confusion():
    angles = torch.tensor([0.0, 10.0, 90.0, 100.0]) * math.pi / 180
    features = torch.stack([angles.cos(), angles.sin()], dim=1)
    y = torch.arange(4)
    assert confusable_map_from_features(features, y, 4) == {0: [1], 1: [0], 2: [3], 3: [2]}
    confusion = torch.tensor([[90, 2, 8], [1, 95, 4], [30, 20, 50]])
    assert confusable_map_from_confusion(confusion, k=1) == {0: [2], 1: [2], 2: [0]}


def test_instance_noise_can_derive_its_map_from_features():
    y = torch.arange(400) % 4
    angles = torch.tensor([0.0, 10.0, 90.0, 100.0]) * math.pi / 180
    features = torch.stack([angles.cos(), angles.sin()], dim=1)[y]
    noisy, mask = inject_label_noise(y, "instance", 0.5, 4, generator=gen(), features=features)
    pairs = {0: 1, 1: 0, 2: 3, 3: 2}
    assert all(pairs[int(a)] == int(b) for a, b in zip(y[mask], noisy[mask]))


@pytest.mark.parametrize("kind", LABEL_NOISE_KINDS)
def test_label_noise_is_reproducible_from_the_seed(kind):
    y = labels()
    a = inject_label_noise(y, kind, 0.5, C, generator=gen(1), **label_kw(kind))
    b = inject_label_noise(y, kind, 0.5, C, generator=gen(1), **label_kw(kind))
    c = inject_label_noise(y, kind, 0.5, C, generator=gen(2), **label_kw(kind))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1]) and not torch.equal(a[0], c[0])


# ---------------------------------------------------------------- input noise
@pytest.mark.parametrize("kind", INPUT_NOISE_KINDS)
@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("channels", [1, 3])
def test_input_noise_changes_only_masked_samples(kind, rate, channels):
    x = images(channels=channels)
    x_before = x.clone()
    noisy, mask = inject_input_noise(x, kind, rate, generator=gen(), **input_kw(kind))
    assert int(mask.sum()) == round(rate * len(x))
    assert noisy.shape == x.shape and noisy.dtype == x.dtype and noisy.device == x.device
    assert torch.equal(noisy[~mask], x[~mask])
    assert torch.equal((noisy != x).flatten(1).any(dim=1), mask)
    assert float(noisy.min()) >= 0.0 and float(noisy.max()) <= 1.0
    assert torch.equal(x, x_before)


@pytest.mark.parametrize("kind", INPUT_NOISE_KINDS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
def test_input_noise_keeps_the_dtype(kind, dtype):
    x = images(n=6, dtype=torch.float64).to(dtype)
    noisy, mask = inject_input_noise(x, kind, 0.5, generator=gen(), **input_kw(kind))
    assert noisy.dtype == dtype and torch.equal(noisy[~mask], x[~mask])
    assert float(noisy.min()) >= 0.0 and float(noisy.max()) <= 1.0


@pytest.mark.parametrize("kind", INPUT_NOISE_KINDS + SERIES_NOISE_KINDS)
def test_input_noise_is_reproducible_from_the_seed(kind):
    x = torch.randn(20, 1, 50, generator=gen(3)) if kind == "gaussian" else images(n=20)
    a = inject_input_noise(x, kind, 0.5, generator=gen(1), **input_kw(kind))
    b = inject_input_noise(x, kind, 0.5, generator=gen(1), **input_kw(kind))
    c = inject_input_noise(x, kind, 0.5, generator=gen(2), **input_kw(kind))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


@pytest.mark.parametrize("shape", [(30, 200), (30, 1, 200)])
@pytest.mark.parametrize("rate", RATES)
def test_series_gaussian_noise(shape, rate):
    x = 3.0 * torch.randn(*shape, generator=gen(4)) + 1.0
    noisy, mask = inject_input_noise(x, "gaussian", rate, generator=gen(), sigma=0.2)
    assert noisy.shape == x.shape and int(mask.sum()) == round(rate * 30)
    assert torch.equal(noisy[~mask], x[~mask])
    if rate > 0:  # noise std is sigma times each series' std
        diff = (noisy - x)[mask].flatten(1)
        ratio = diff.std(dim=1) / (0.2 * x[mask].flatten(1).std(dim=1))
        assert torch.allclose(ratio.mean(), torch.tensor(1.0), atol=0.05)


def test_ood_covariate_noise_std_is_half_the_max():
    x = torch.full((4, 1, 64, 64), 0.5)
    noisy, mask = inject_input_noise(x, "ood_covariate", 1.0, generator=gen())
    diff = (noisy - x).flatten()
    # std 0.5 * max = 0.25; clipping at 2 std trims the tails only slightly
    assert 0.23 < float(diff.std()) < 0.25
    assert abs(float(diff.mean())) < 0.01


def test_zoom_shift_geometry():
    size = 35  # crop side round(35 / 1.75) = 20, top = left = (35 - 20) // 2 = 7
    assert image_ops.zoom_crop_box(size, size) == (7, 7, 20, 20)
    outside = torch.zeros(1, 1, size, size)
    outside[0, 0, 2, 30] = 1.0
    assert torch.count_nonzero(image_ops.zoom_shift(outside)) == 0
    inside = torch.zeros(1, 1, size, size)
    inside[0, 0, 7 + 10, 7 + 4] = 1.0
    zoomed = image_ops.zoom_shift(inside)
    row, col = divmod(int(zoomed.argmax()), size)
    # output pixel o samples crop coordinate (o + 0.5) / 1.75 - 0.5; nearest to 10 and 4
    def nearest(src):
        return min(range(size), key=lambda o: abs((o + 0.5) * 20 / size - 0.5 - src))

    assert (row, col) == (nearest(10), nearest(4))
    x = images(n=3, size=32)
    oracle = TF.resized_crop(x, 7, 7, 18, 18, [32, 32], interpolation=TF.InterpolationMode.BILINEAR)
    assert torch.allclose(image_ops.zoom_shift(x), oracle, atol=1e-6)


@pytest.mark.parametrize("width,shift", [(32, 10), (64, 20), (28, 9)])
def test_crop_shift_moves_a_pixel_right(width, shift):
    assert image_ops.shift_pixels(width) == shift
    x = torch.zeros(1, 3, 8, width)
    x[0, :, 4, 3] = 1.0
    x[0, :, 5, width - 1] = 1.0  # falls off the right edge
    out = image_ops.crop_shift(x)
    expected = torch.zeros_like(x)
    expected[0, :, 4, 3 + shift] = 1.0
    assert torch.equal(out, expected)


def test_far_ood_grey_pool_becomes_rgb_of_the_right_size():
    x = images(n=30, channels=3, size=32)
    noisy, mask = inject_input_noise(x, "far_ood", 0.5, generator=gen(), far_ood_pool=grey_pool())
    replaced = noisy[mask]
    assert replaced.shape == (15, 3, 32, 32)
    assert torch.equal(replaced[:, 0], replaced[:, 1]) and torch.equal(replaced[:, 1], replaced[:, 2])
    pool_values = grey_pool()[:, 0, 0, 0]
    for image in replaced:  # each replacement is one of the constant pool images
        assert torch.allclose(image, image.flatten()[0].expand_as(image))
        assert torch.isclose(pool_values, image.flatten()[0], atol=1e-6).any()


def test_far_ood_rgb_pool_becomes_grey_by_channel_mean():
    pool = torch.tensor([0.9, 0.3, 0.0])[None, :, None, None].expand(2, 3, 32, 32).clone()
    x = images(n=10, channels=1, size=28)
    noisy, mask = inject_input_noise(x, "far_ood", 1.0, generator=gen(), far_ood_pool=pool)
    assert noisy.shape == (10, 1, 28, 28)
    assert torch.allclose(noisy, torch.full_like(noisy, 0.4))


def test_cartoon_filter_on_flat_and_edged_images():
    flat = torch.full((2, 3, 16, 16), 0.4)
    assert torch.allclose(image_ops.cartoon_filter(flat), torch.full_like(flat, round(0.4 * 255) / 255))
    edged = torch.full((1, 1, 32, 32), 0.2)
    edged[..., 16:] = 0.8
    out = image_ops.cartoon_filter(edged)[0, 0]
    assert torch.all(out[:, 15] == 0)  # dark side of the edge becomes a black outline
    assert torch.allclose(out[:, :8], torch.full((32, 8), round(0.2 * 255) / 255))
    assert torch.allclose(out[:, 20:], torch.full((32, 12), round(0.8 * 255) / 255))
    # mild noise stays above the adaptive threshold (C = 9 / 255), so no outline
    # appears, and the bilateral filter (d 9, sigmas 250) smooths it away
    mild = 0.5 + 0.02 * torch.randn(2, 3, 32, 32, generator=gen())
    smoothed = image_ops.cartoon_filter(mild)
    assert smoothed.min() > 0 and smoothed.std() < 0.3 * mild.std()
    quantised = image_ops.cartoon_filter(images(n=2)) * 255
    assert torch.allclose(quantised, quantised.round(), atol=1e-4)


# ---------------------------------------------------------------- dispatch
def test_inject_noise_dispatches_and_copies():
    x, y = images(n=20), labels(20)
    xn, yn, mask = inject_noise(x, y, "none", 0.5, C, generator=gen())
    assert torch.equal(xn, x) and torch.equal(yn, y) and not mask.any()
    assert xn.data_ptr() != x.data_ptr() and yn.data_ptr() != y.data_ptr()
    xn, yn, mask = inject_noise(x, y, "adjacent", 0.5, C, generator=gen())
    assert torch.equal(xn, x) and int(mask.sum()) == 10 and torch.equal(yn != y, mask)
    xn, yn, mask = inject_noise(x, y, "crop_shift", 0.5, C, generator=gen())
    assert torch.equal(yn, y) and int(mask.sum()) == 10
    assert torch.equal(xn, inject_input_noise(x, "crop_shift", 0.5, generator=gen())[0])


# ---------------------------------------------------------------- bad input
def _label(**kw):
    args = dict(labels=labels(20), kind="uniform", rate=0.5, num_classes=C, generator=gen())
    args.update(kw)
    positional = [args.pop(name) for name in ("labels", "kind", "rate", "num_classes")]
    return lambda: inject_label_noise(*positional, **args)


def _input(**kw):
    args = dict(inputs=images(n=4), kind="zoom_shift", rate=0.5, generator=gen())
    args.update(kw)
    positional = [args.pop(name) for name in ("inputs", "kind", "rate")]
    return lambda: inject_input_noise(*positional, **args)


LONG = torch.long
BAD = {  # case: (call, error type, text the message must contain)
    "rate too high": (_label(rate=1.5), ValueError, "rate must be in [0, 1], got 1.5"),
    "rate negative": (_input(rate=-0.1), ValueError, "rate must be in [0, 1], got -0.1"),
    "rate nan": (_label(rate=float("nan")), ValueError, "rate must be in [0, 1], got nan"),
    "rate string": (_label(rate="0.5"), TypeError, "rate"),
    "unknown label kind": (_label(kind="gaussian"), ValueError, "kind must be one of"),
    "unknown input kind": (_input(kind="blur"), ValueError, "got 'blur'"),
    "float labels": (_label(labels=torch.zeros(5)), TypeError, "labels must have an integer dtype"),
    "labels too big": (
        _label(labels=torch.tensor([0, 10])), ValueError, "labels must lie in [0, num_classes=10)"),
    "labels negative": (_label(labels=torch.tensor([-1, 3])), ValueError, "got values in [-1, 3]"),
    "labels 2-d": (_label(labels=torch.zeros(2, 2, dtype=LONG)), ValueError, "labels must have shape (N,)"),
    "empty labels": (_label(labels=torch.zeros(0, dtype=LONG)), ValueError, "labels"),
    "one class": (_label(num_classes=1, labels=torch.zeros(3, dtype=LONG)), ValueError, "num_classes"),
    "no generator": (_label(generator=None), TypeError, "generator must be a torch.Generator, got NoneType"),
    "numpy generator": (_input(generator=np.random.default_rng(0)), TypeError, "generator"),
    "instance without map": (_label(kind="instance"), ValueError, "class_map"),
    "map lists itself": (
        _label(kind="instance", class_map={**CIFAR10_CONFUSABLE, 6: [6]}), ValueError, "class_map[6]"),
    "map misses a class": (_label(kind="instance", class_map={0: [1]}), ValueError, "class_map[1]"),
    "nan inputs": (_input(inputs=torch.full((2, 1, 4, 4), float("nan"))), ValueError, "inputs"),
    "inputs above 1": (_input(inputs=torch.full((2, 1, 4, 4), 2.0)), ValueError, "inputs must be in [0, 1]"),
    "normalised inputs": (_input(inputs=torch.full((2, 1, 4, 4), -0.5)), ValueError, "inputs must be in [0, 1]"),
    "int inputs": (_input(inputs=torch.zeros(2, 1, 4, 4, dtype=torch.uint8)), TypeError, "inputs"),
    "empty inputs": (_input(inputs=torch.zeros(0, 1, 4, 4)), ValueError, "inputs"),
    "5-d inputs": (_input(inputs=torch.zeros(2, 1, 1, 4, 4)), ValueError, "inputs"),
    "gaussian on images": (_input(kind="gaussian"), ValueError, "kind must be one of ('far_ood',"),
    "image kind on series": (_input(inputs=torch.randn(3, 50)), ValueError, "kind must be one of ('gaussian',)"),
    "far_ood without pool": (_input(kind="far_ood"), ValueError, "far_ood_pool"),
    "far_ood pool 4 channels": (
        _input(kind="far_ood", far_ood_pool=torch.rand(2, 4, 8, 8)), ValueError, "far_ood_pool must have 3 channels"),
    "far_ood pool out of range": (
        _input(kind="far_ood", far_ood_pool=torch.full((2, 1, 8, 8), 3.0)), ValueError, "far_ood_pool"),
    "negative sigma": (_input(kind="ood_covariate", sigma=-1.0), ValueError, "sigma"),
    "domain shift 2 channels": (_input(kind="domain_shift", inputs=torch.rand(2, 2, 8, 8)), ValueError, "inputs"),
    "k too large": (lambda: confusable_map_from_confusion(torch.eye(3), k=3), ValueError, "k must be"),
    "features wrong length": (
        lambda: confusable_map_from_features(torch.zeros(3, 2), torch.arange(4) % 2, 2), ValueError, "features"),
    "class missing for features": (
        lambda: confusable_map_from_features(torch.zeros(4, 2), torch.zeros(4, dtype=LONG), 2),
        ValueError, "labels must contain every class"),
    "dispatch length mismatch": (
        lambda: inject_noise(images(n=3), labels(4), "uniform", 0.5, C, generator=gen()), ValueError, "x and y"),
    "dispatch unknown kind": (
        lambda: inject_noise(images(n=3), labels(3), "salt", 0.5, C, generator=gen()), ValueError, "kind"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_input_raises_naming_the_parameter(case):
    call, error, text = BAD[case]
    with pytest.raises(error, match=re.escape(text)) as info:
        call()
    assert "got" in str(info.value)  # the message shows the offending value
