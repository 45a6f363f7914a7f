"""The dataset registry: one record per dataset, read by loaders, noise set-up, models and planner.

Includes the regression test of issue 9 bug 2 (CIFAR-100 instance noise got the 10-class
CIFAR-10 map through ``dataset.startswith("cifar10")`` and raised).
"""
from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pytest
import torch

from lilaw_edu.datasets import core, image, list_datasets, load_dataset
from lilaw_edu.datasets.class_maps import (CIFAR10_CONFUSABLE, CIFAR100_CLASSES, CIFAR100_CONFUSABLE,
                                           CIFAR100_SUPERCLASSES, superclass_confusable)
from lilaw_edu.datasets.registry import (DATASET_NAMES, MEDMNIST_FLAGS, REGISTRY, dataset_info, default_model,
                                         default_train_size)
from lilaw_edu.noise.inject import inject_label_noise

# CIFAR-100 coarse label of each fine label 0..99, as stored in the dataset's "coarse_labels"
# (an independent transcription: the registry derives its map from superclass *names*).
CIFAR100_COARSE = [4, 1, 14, 8, 0, 6, 7, 7, 18, 3, 3, 14, 9, 18, 7, 11, 3, 9, 7, 11, 6, 11, 5, 10, 7, 6, 13, 15,
                   3, 15, 0, 11, 1, 10, 12, 14, 16, 9, 11, 5, 5, 19, 8, 8, 15, 13, 14, 17, 18, 10, 16, 4, 17, 4,
                   2, 0, 17, 4, 18, 17, 10, 3, 2, 12, 12, 16, 12, 1, 9, 19, 2, 10, 0, 1, 16, 12, 9, 13, 15, 13,
                   16, 19, 2, 4, 6, 19, 5, 5, 8, 19, 18, 1, 2, 15, 6, 0, 17, 8, 14, 13]


def test_records_are_frozen_and_complete():
    info = dataset_info("cifar100")
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.num_classes = 10
    assert DATASET_NAMES == tuple(r["name"] for r in list_datasets())
    assert len(MEDMNIST_FLAGS) == 10 and all(REGISTRY[f].paper_model == "resnet18" for f in MEDMNIST_FLAGS)
    for name, info in REGISTRY.items():
        assert info.name == name and info.kind in ("image", "series") and info.num_classes >= 2
        if info.class_names is not None:
            assert len(info.class_names) == info.num_classes
        if info.confusable is not None:  # a valid map: every label can change, only to other classes
            y = torch.arange(info.num_classes)
            noisy, mask = inject_label_noise(y, "instance", 1.0, info.num_classes,
                                             generator=torch.Generator().manual_seed(0), class_map=info.confusable)
            assert mask.all() and (noisy != y).all()
    with pytest.raises(ValueError, match=r"dataset must be one of \[.*'cifar100'.*\], got 'cifar1000'"):
        dataset_info("cifar1000")


def test_medmnist_records_match_the_medmnist_package():
    info_table = pytest.importorskip("medmnist").INFO
    for flag in MEDMNIST_FLAGS:
        rec, ref = REGISTRY[flag], info_table[flag]
        assert (rec.num_classes, rec.channels) == (len(ref["label"]), ref["n_channels"])
        assert (rec.n_train, rec.n_val, rec.n_test) == tuple(ref["n_samples"][s] for s in ("train", "val", "test"))
        assert rec.licence == ref["license"]


def test_paper_facts_are_recorded_and_match_the_paper_presets():
    """§4.2: ViT-B/16 and ResNet-18 with ImageNet-21K pretraining at 224 px; what is loaded here is stated."""
    from lilaw_edu.training.config import PRESETS

    assert dataset_info("cifar100").paper_pretraining == "ImageNet-21K"
    assert "ImageNet-1K" in dataset_info("pneumoniamnist").pretrained_here
    assert dataset_info("digits").paper_model is None and dataset_info("ecg5000").pretrained_here is None
    for preset in ("paper-cifar", "paper-medmnist", "paper-ecg5000"):
        cfg = PRESETS[preset]
        info = dataset_info(cfg["dataset"])
        assert cfg["model"] in (info.paper_model, "auto") and cfg.get("image_size") == info.paper_input_size
        assert cfg.get("freeze", "none") == info.paper_lilaw_freeze
        assert cfg.get("baseline_freeze", "none") in (info.paper_baseline_freeze, "same")


def test_far_ood_pools_are_other_datasets():
    for name, info in REGISTRY.items():
        if info.kind == "image":
            assert info.far_ood_pool in REGISTRY and info.far_ood_pool != name
    assert dataset_info("mnist").far_ood_pool == "cifar10-jpeg" and dataset_info("cifar10").far_ood_pool == "digits"


@pytest.mark.parametrize("name", ["digits", "ecg5000", "breastmnist"])
def test_default_train_size_matches_the_loader(name):
    try:
        splits = load_dataset(name)
    except core.DatasetNotFoundError:
        pytest.skip(f"{name} not present")
    assert default_train_size(name) == len(splits.y_train)
    assert splits.num_classes == dataset_info(name).num_classes


def test_default_model_rule():
    assert [default_model(n) for n in ("digits", "ecg5000", "cifar10", "pathmnist")] == \
        ["small_cnn", "lstm", "small_cnn", "small_cnn"]
    assert default_model("pathmnist", input_size=224) == "resnet18"
    assert default_model("mnist", scale="paper") == "vit_b16"


def test_cifar100_superclass_map_matches_the_coarse_labels():
    assert len(CIFAR100_CLASSES) == 100 and len(set(CIFAR100_CLASSES)) == 100
    assert all(len(members) == 5 for members in CIFAR100_SUPERCLASSES.values()) and len(CIFAR100_SUPERCLASSES) == 20
    for fine, others in CIFAR100_CONFUSABLE.items():
        expected = [c for c in range(100) if CIFAR100_COARSE[c] == CIFAR100_COARSE[fine] and c != fine]
        assert list(others) == expected
    assert [CIFAR100_CLASSES[c] for c in CIFAR100_CONFUSABLE[CIFAR100_CLASSES.index("maple_tree")]] == \
        ["oak_tree", "palm_tree", "pine_tree", "willow_tree"]
    with pytest.raises(ValueError, match="partition"):
        superclass_confusable({"a": ("x",)}, ("x", "y"))


def test_cifar10_map_unchanged_and_separate_from_cifar100():
    assert dataset_info("cifar10").confusable is CIFAR10_CONFUSABLE
    assert dataset_info("cifar10-jpeg").confusable is CIFAR10_CONFUSABLE
    assert dataset_info("cifar100").confusable is CIFAR100_CONFUSABLE


def _write_cifar100(root, n_train=300, n_test=100):
    rng = np.random.default_rng(0)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    for name, n in (("train", n_train), ("test", n_test)):
        fine = [i % 100 for i in range(n)]
        with open(folder / name, "wb") as fh:
            pickle.dump({"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8), "fine_labels": fine,
                         "coarse_labels": [CIFAR100_COARSE[f] for f in fine]}, fh)
    with open(folder / "meta", "wb") as fh:
        pickle.dump({"fine_label_names": list(CIFAR100_CLASSES)}, fh)


def test_cifar100_instance_noise_runs_through_prepare_data(tmp_path, monkeypatch):
    """Issue 9 bug 2: CIFAR-100 instance noise uses its own 100-class map (it raised before)."""
    from lilaw_edu.training.config import config_from_preset
    from lilaw_edu.training.fit import prepare_data

    _write_cifar100(tmp_path / "cifar100")
    monkeypatch.setattr(image, "verify_checksum", lambda *a, **k: None)  # synthetic files, no official MD5
    config = config_from_preset("cpu-digits", dataset="cifar100", noise="instance", rate=0.5,
                                data_dir=str(tmp_path))
    splits, info = prepare_data(config)
    assert splits.num_classes == 100
    clean, noisy = info["y_train_clean"], splits.y_train
    changed = noisy != clean
    assert int(info["train_corrupted"].sum()) == round(0.5 * len(clean)) and torch.equal(changed, info["train_corrupted"])
    coarse = torch.tensor(CIFAR100_COARSE)
    assert torch.equal(coarse[noisy[changed]], coarse[clean[changed]])  # flips stay in the superclass
