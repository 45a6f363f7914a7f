"""Training configuration: one typed dataclass, named presets and method variants.

A :class:`TrainConfig` describes one *paired* experiment: a dataset, its noise,
a model and the optimisation settings. :func:`lilaw_edu.training.fit.fit` trains every
requested method (``"baseline"``, ``"lilaw"``, or a variant from
:data:`VARIANTS`) from the same seed, split, noise and initial weights. A
method is nothing more than a few config overrides (:func:`method_overrides`).

Presets
-------
``paper-*`` presets hold the paper's settings (§4.2) for a GPU; ``cpu-*``
presets are sized to run in seconds to minutes on two CPU cores.
"""
from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass

from lilaw_edu._internal.checks import check_choice, check_fraction, check_int

__all__ = ["TrainConfig", "PRESETS", "METHODS", "VARIANTS", "RUNTIME_FIELDS", "SELECT_BY", "config_from_preset",
           "method_overrides", "validate_config", "resolve_methods"]

OPTIMIZERS = ("adam", "sgd")
SCHEDULERS = ("none", "linear", "multistep")
FREEZE_MODES = ("none", "last2")
BASELINE_FREEZE_MODES = ("same",) + FREEZE_MODES
META_VAL_MODES = ("eval", "train")
WEIGHTINGS = ("none", "lilaw", "l2rw", "mwnet")  # l2rw, mwnet: training/methods (issue 11)
LABEL_FILTERS = ("none", "cleanlab")
CL_FILTER_BY = ("prune_by_noise_rate", "prune_by_class", "both", "confident_learning", "predicted_neq_given")
LOSSES = ("ce", "focal", "gce", "sce")
DEVICES = ("auto", "cpu", "cuda")
SELECT_ON = ("val", "clean_val")
SELECT_BY = ("val_loss", "val_acc", "last")
# Fields that do not change a result: ignored by run ids (experiments.store) and may differ on resume.
# num_threads is NOT one of them: the thread count shifts CPU results by up to ~4e-5.
RUNTIME_FIELDS = ("device", "data_dir", "compile", "eval_batch_size", "resident_max_gb")


@dataclass
class TrainConfig:
    """Everything one paired experiment needs. Units are in the comments.

    Methods (baseline, LiLAW, variants) override a few of these fields, see
    :func:`method_overrides`; the rest is shared so the comparison is paired.
    """

    # ---- data
    dataset: str = "digits"            # registry name, see lilaw_edu.datasets.list_datasets()
    data_dir: str | None = None        # folder searched first for data files (None: LILAW_DATA_DIR, ../shared/data)
    image_size: int | None = None      # pixels (side); None = the dataset's native size
    noise: str = "none"                # "none" or a kind from lilaw_edu.noise.inject (label or input noise)
    rate: float = 0.0                  # fraction of samples corrupted, in [0, 1]
    clean_val: bool = False            # True: the validation split is not corrupted
    val_fraction: float = 0.15         # fraction of the official training set held out as validation
    val_shift: bool = False            # validation from a shifted distribution (flip, rotation, colour jitter; Tab. 13)
    train_on_clean_only: bool = False  # drop corrupted training samples (Table 9, last row)
    max_train: int | None = None       # samples; subsample the training split (None = all)
    seed: int = 0                      # seeds split, noise, initial weights, batch order
    # ---- model
    model: str = "auto"                # "auto" = the dataset's default model, else a lilaw_edu.models name
    pretrained: bool = False           # load pretrained weights (needs them cached locally)
    freeze: str = "none"               # "none" | "last2": train only the last two layers
    baseline_freeze: str = "same"      # freeze for weighting="none" methods: "same" as `freeze`, "none", "last2"
    pretrain: str = "none"             # "none" | "other_half": backbone trained on half A, run on half B (pretrain.py)
    pretrain_epochs: int = 5           # epochs of that backbone's training (clean labels, plain cross-entropy)
    # ---- optimisation
    epochs: int = 20                   # epochs (upper bound with early stopping)
    batch_size: int = 64               # training samples per step
    val_batch_size: int | None = None  # samples per meta-step validation batch (None = batch_size)
    eval_batch_size: int = 1024        # samples per batch for evaluation passes
    lr: float = 1e-3                   # learning rate of the network
    weight_decay: float = 0.0          # L2 weight decay of the network optimiser
    optimizer: str = "adam"            # "adam" | "sgd" (momentum 0.9)
    scheduler: str = "none"            # "none" | "linear" (to 0, per step) | "multistep" (per epoch)
    milestones: tuple = ()             # epochs at which "multistep" multiplies the lr by gamma_lr
    gamma_lr: float = 0.1              # multistep decay factor
    select_by: str = "val_loss"        # "val_loss" (lowest) | "val_acc" (highest) | "last"; ties: the later epoch
    patience: int = 0                  # epochs without a strict select_by gain before stopping; 0 = never (not "last")
    select_on: str = "val"             # validation labels for selection: "val" (noisy as given) | "clean_val"
    warmup_epochs: int = 1             # epochs of plain loss before LiLAW weighting and meta steps start
    # ---- LiLAW (paper §4.2 defaults)
    weighting: str = "lilaw"           # "lilaw" | "none" (plain loss); normally set per method
    alpha: float = 10.0                # initial alpha
    beta: float = 2.0                  # initial beta
    delta: float = 6.0                 # initial delta
    meta_lr: float = 0.005             # SGD learning rate of alpha, beta, delta
    meta_wd: float = 1e-4              # weight decay of alpha, beta, delta
    active: str = "abd"                # active weight terms, non-empty subset of "abd" (Table 6)
    constraints: bool = True           # enforce alpha >= 1, delta >= beta after each meta step
    detach_weights: bool = False       # detach W from the model's graph in the training loss
    meta_val_mode: str = "eval"        # model mode for the meta-step validation forward: "eval" | "train"
    learn_meta: bool = True            # False: alpha, beta, delta stay at their initial values (no meta step)
    loss: str = "ce"                   # per-sample loss: "ce" | "focal" | "gce" | "sce"
    focal_gamma: float = 2.0           # focal-loss gamma (Table 11)
    # ---- cost of the meta step (issue 13; lilaw_edu.training.meta_schedule)
    meta_every: int = 1                # k: a meta step after training steps k, 2k, ... of the run (1 = Algorithm 1)
    meta_lr_scale_with_k: bool = False  # True: the meta step's learning rate is meta_lr * meta_every
    meta_val_divisor: int = 1          # r: meta-step validation batch of ceil(batch_size / r) (val_batch_size None)
    meta_fused_forward: bool = False   # one forward of [train; val batch], split (no batch norm; pre-step val logits)
    meta_cuda_stream: bool = False     # CUDA: meta step on a second stream, overlapping the next forward (CPU: no-op)
    meta_cuda_graph: bool = False      # CUDA: validation forward + meta step replayed as a CUDA graph (CPU: no-op)
    # ---- relatives (issue 11; lilaw_edu.training.methods; defaults from each paper)
    label_filter: str = "none"         # "none" | "cleanlab": drop the training labels confident learning flags
    mwnet_hidden: int = 100            # Meta-Weight-Net hidden width (Shu et al. 2019: 1-100-1 MLP)
    mwnet_lr: float = 1e-3             # Adam learning rate of the Meta-Weight-Net (paper)
    mwnet_wd: float = 1e-4             # its weight decay (paper)
    cl_folds: int = 5                  # confident learning: K of the K-fold cross-fitting (cleanlab default)
    cl_fold_epochs: float = 0.5        # fraction of `epochs` each fold's model trains (rounded up), in (0, 1]
    cl_filter_by: str = "prune_by_noise_rate"  # cleanlab.filter.find_label_issues filter_by (its default)
    # ---- recording
    record_weights_epochs: tuple = ()  # 1-based epochs after which per-sample weights on the training set are saved
    record_scores: bool = False        # feed difficulty-score recorders (AUM, EL2N, ...) during weighting="none" runs
    temperature_scaling: bool = True   # also report test metrics after temperature scaling fitted on validation
    test_each_epoch: bool = False      # also test after every epoch (history test_top1/_auroc); never selects
    # ---- runtime
    augment: bool = False              # random crop (padding) + horizontal flip on training images
    device: str = "auto"               # "auto" | "cpu" | "cuda"
    amp: bool = True                   # bf16 autocast on CUDA for image models (no-op on CPU and for series)
    channels_last: bool = True         # channels_last memory format for images on CUDA (no-op on CPU)
    compile: bool = False              # torch.compile the model
    deterministic: bool = True         # torch.use_deterministic_algorithms during training
    resident_max_gb: float = 4.0       # GiB; keep data on the device when at most this large, else DataLoader
    num_threads: int | None = None     # CPU torch threads during fit (None: as is); 1 avoids oversubscription

    def replace(self, **overrides) -> "TrainConfig":
        """Copy with some fields changed, validated. Unknown fields raise ``ValueError``."""
        _check_fields(overrides)
        new = dataclasses.replace(self, **overrides)
        validate_config(new)
        return new

    def to_dict(self) -> dict:
        """Plain JSON-serialisable dict of every field (tuples become lists)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        """Inverse of :meth:`to_dict` (lists become tuples), validated; unknown keys raise ``ValueError``."""
        _check_fields(data)
        values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items()}
        config = cls(**values)
        validate_config(config)
        return config


# ------------------------------------------------------------------ presets
# §4.2: "All models use the Adam optimizer with early stopping". The paper names neither the criterion
# nor the patience: we select by validation loss and stop after ~10 % of the epochs without a gain.
_PAPER_COMMON = dict(optimizer="adam", weight_decay=0.0, warmup_epochs=1, select_by="val_loss")

PRESETS: dict = {
    # ViT-B/16 at 224 px, ImageNet-21K weights; LiLAW fine-tunes the last two layers,
    # the baseline the whole network (the paper's set-up; see the "baseline-frozen" variant).
    "paper-cifar": dict(_PAPER_COMMON, dataset="cifar10", model="vit_b16", image_size=224, pretrained=True,
                        freeze="last2", baseline_freeze="none", epochs=10, batch_size=16, lr=2e-4,
                        scheduler="linear", device="cuda", eval_batch_size=256, patience=2),
    # ResNet-18 at 224 px, 100 epochs, x0.1 at 50 and 75 (Yang et al. 2023).
    "paper-medmnist": dict(_PAPER_COMMON, dataset="pneumoniamnist", model="resnet18", image_size=224,
                           pretrained=True, epochs=100, batch_size=128, lr=1e-4, scheduler="multistep",
                           milestones=(50, 75), gamma_lr=0.1, device="cuda", eval_batch_size=512, patience=10),
    # Stacked LSTM from scratch, 500 epochs, batch 512.
    "paper-ecg5000": dict(_PAPER_COMMON, dataset="ecg5000", model="auto", epochs=500, batch_size=512,
                          lr=1e-3, device="auto", patience=50),
    # CPU presets: seconds to minutes on two cores. Measured per method on a busy 2-core machine
    # (load ~5): ecg5000 ~1 s/epoch, digits ~1.3 s/epoch, pneumoniamnist ~45 s/epoch, cifar10-jpeg ~90 s/epoch.
    # cpu-ecg5000 is also the sweep's ECG5000 setting (experiments.presets inherits it): 30 epochs, the
    # value every committed sweep record used.
    "cpu-ecg5000": dict(dataset="ecg5000", model="auto", epochs=30, batch_size=32, lr=2e-3,
                        patience=0, device="cpu", num_threads=1),
    "cpu-digits": dict(dataset="digits", model="auto", epochs=15, batch_size=32, lr=2e-3, device="cpu",
                       num_threads=1),
    "cpu-medmnist": dict(dataset="pneumoniamnist", model="auto", epochs=8, batch_size=64, lr=1e-3,
                         scheduler="multistep", milestones=(4, 6), gamma_lr=0.1, device="cpu"),
    # the lossy 20 000-image JPEG subset of CIFAR-10 (full CIFAR-10 is not available offline here)
    "cpu-cifar10": dict(dataset="cifar10-jpeg", model="auto", epochs=8, batch_size=128, lr=2e-3,
                        augment=True, device="cpu"),
}

# ------------------------------------------------------------------ methods
METHODS = ("baseline", "lilaw")

VARIANTS: dict = {
    "baseline": dict(weighting="none"),
    "lilaw": dict(weighting="lilaw"),
    "lilaw-frozen": dict(weighting="lilaw", learn_meta=False),       # alpha, beta, delta fixed at init
    "lilaw-detached": dict(weighting="lilaw", detach_weights=True),  # W carries no model gradient
    "lilaw-trainmode": dict(weighting="lilaw", meta_val_mode="train"),
    "lilaw-focal": dict(weighting="lilaw", loss="focal"),
    "baseline-focal": dict(weighting="none", loss="focal"),
    "gce": dict(weighting="none", loss="gce"),                       # generalized cross-entropy
    "sce": dict(weighting="none", loss="sce"),                       # symmetric cross-entropy
    "baseline-frozen": dict(weighting="none", baseline_freeze="same"),  # baseline with LiLAW's freeze
    "baseline-cleanstop": dict(weighting="none", select_on="clean_val"),  # early stop on clean val labels
    "l2rw": dict(weighting="l2rw"),                                  # Ren et al. 2018 (methods/l2rw.py)
    "mwnet": dict(weighting="mwnet"),                                # Shu et al. 2019 (methods/mwnet.py)
    "cleanlab": dict(weighting="none", label_filter="cleanlab"),     # Northcutt et al. 2021 (methods/confident.py)
    # cheaper meta steps (issue 13; training/meta_schedule.py): k = meta_every, r = meta_val_divisor, "s" = lr * k
    "lilaw-cheap": dict(weighting="lilaw", meta_every=4, meta_val_divisor=2, meta_lr_scale_with_k=True),
    "lilaw-k4": dict(weighting="lilaw", meta_every=4),
    "lilaw-k4s": dict(weighting="lilaw", meta_every=4, meta_lr_scale_with_k=True),
    "lilaw-k8s": dict(weighting="lilaw", meta_every=8, meta_lr_scale_with_k=True),
    "lilaw-full": dict(weighting="lilaw", freeze="none"),            # LiLAW fine-tuning every layer (issue 16.5)
    "lilaw-mlr100": dict(weighting="lilaw", meta_lr=0.5), "lilaw-mlr1000": dict(weighting="lilaw", meta_lr=5.0),
}
_ABLATION = re.compile(r"^lilaw-([abd]{1,3})$")


def method_overrides(method: str) -> dict:
    """Config overrides that turn a shared config into one method's run.

    Parameters
    ----------
    method : str
        A key of :data:`VARIANTS`, or ``"lilaw-<subset>"`` with a subset of
        ``"abd"`` (ablation, e.g. ``"lilaw-ab"``; paper Table 6).

    Returns
    -------
    dict
        Field name -> value, to pass to :meth:`TrainConfig.replace`.
    """
    if not isinstance(method, str):
        raise TypeError(f"method must be a str, got {type(method).__name__}")
    if method in VARIANTS:
        return dict(VARIANTS[method])
    match = _ABLATION.match(method)
    if match and len(set(match.group(1))) == len(match.group(1)):
        return dict(weighting="lilaw", active="".join(c for c in "abd" if c in match.group(1)))
    raise ValueError(f"method must be one of {sorted(VARIANTS)} or 'lilaw-<subset of abd>' "
                     f"(e.g. 'lilaw-ab'), got {method!r}")


def resolve_methods(methods) -> tuple:
    """Normalise a method spec: ``"both"`` -> ``METHODS``, a comma list or sequence -> tuple, validated."""
    if isinstance(methods, str):
        methods = METHODS if methods == "both" else tuple(m.strip() for m in methods.split(",") if m.strip())
    methods = tuple(methods)
    if not methods:
        raise ValueError("methods must name at least one method, got an empty list")
    if len(set(methods)) != len(methods):
        raise ValueError(f"methods must not repeat, got {list(methods)}")
    for m in methods:
        method_overrides(m)
    return methods


# ------------------------------------------------------------------ validation
FLOAT32_MAX = 3.4028234663852886e38
MAX_SEED = 2 ** 32 - 1  # numpy's RandomState (used by the data splits) takes seeds below 2**32
_BOOL_FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.type in ("bool", bool))
_CHOICES = (("optimizer", OPTIMIZERS), ("scheduler", SCHEDULERS), ("freeze", FREEZE_MODES),
            ("baseline_freeze", BASELINE_FREEZE_MODES), ("select_by", SELECT_BY), ("select_on", SELECT_ON),
            ("weighting", WEIGHTINGS), ("meta_val_mode", META_VAL_MODES), ("loss", LOSSES), ("device", DEVICES),
            ("label_filter", LABEL_FILTERS), ("cl_filter_by", CL_FILTER_BY), ("pretrain", ("none", "other_half")))
# (name, minimum, None allowed)
_INTS = (("seed", 0, False), ("epochs", 1, False), ("batch_size", 1, False), ("eval_batch_size", 1, False),
         ("val_batch_size", 1, True), ("max_train", 2, True), ("num_threads", 1, True), ("image_size", 4, True),
         ("patience", 0, False), ("warmup_epochs", 0, False), ("meta_every", 1, False), ("meta_val_divisor", 1, False),
         ("mwnet_hidden", 1, False), ("cl_folds", 2, False), ("pretrain_epochs", 1, False))
# (name, "> 0" or ">= 0" or "any"): finite real numbers
_FLOATS = (("lr", ">0"), ("meta_lr", ">0"), ("gamma_lr", ">0"), ("weight_decay", ">=0"), ("meta_wd", ">=0"),
           ("focal_gamma", ">=0"), ("resident_max_gb", ">=0"), ("alpha", "any"), ("beta", "any"), ("delta", "any"),
           ("mwnet_lr", ">0"), ("mwnet_wd", ">=0"), ("cl_fold_epochs", ">0"))


def _check_fields(values: dict) -> None:
    allowed = [f.name for f in dataclasses.fields(TrainConfig)]
    unknown = [k for k in values if k not in allowed]
    if unknown:
        raise ValueError(f"unknown TrainConfig field(s) {unknown}; allowed fields: {allowed}")


def _type_error(name: str, value, what: str) -> TypeError:
    return TypeError(f"{name} must be {what}, got {value!r} ({type(value).__name__})")


def _check_float(name: str, value, sign: str) -> None:
    """Real, finite and within float32 range (parameters, learning rates and LiLAW's scalars are float32)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _type_error(name, value, "a real number")
    finite = math.isfinite(value) and abs(value) <= FLOAT32_MAX
    if not finite or (sign == ">0" and not value > 0) or (sign == ">=0" and value < 0):
        allowed = {">0": "a finite number > 0", ">=0": "a finite number >= 0", "any": "a finite number"}[sign]
        allowed += " within float32 range (|x| <= 3.4e38)" if math.isfinite(value) and finite is False else ""
        raise ValueError(f"{name} must be {allowed}, got {value!r}")


def _check_epochs(name: str, value, epochs: int) -> None:
    if not isinstance(value, (tuple, list)):
        raise _type_error(name, value, "a tuple of epoch numbers such as (3, 10)")
    if any(isinstance(e, bool) or not isinstance(e, int) or e < 1 for e in value) or \
            list(value) != sorted(set(value)):
        raise ValueError(f"{name} must hold increasing 1-based epoch numbers, got {value!r}")
    if name == "record_weights_epochs" and value and value[-1] > epochs:
        raise ValueError(f"record_weights_epochs must be epochs <= epochs ({epochs}), got {value!r}")


def _check_lilaw(c: TrainConfig) -> None:
    """alpha, beta, delta: finite; with ``constraints`` they must satisfy alpha >= 1 and delta >= beta
    (paper §3), which the meta step enforces afterwards; an initial value outside is refused, not clamped."""
    if c.constraints and c.alpha < 1:
        raise ValueError(f"alpha must be >= 1 when constraints=True (paper §3: alpha >= 1), got {c.alpha!r}")
    if c.constraints and c.delta < c.beta:
        raise ValueError(f"delta must be >= beta when constraints=True (paper §3: delta >= beta), "
                         f"got delta={c.delta!r}, beta={c.beta!r}")
    if not isinstance(c.active, str) or not c.active or set(c.active) - set("abd") or \
            len(set(c.active)) != len(c.active):
        raise ValueError(f"active must be a non-empty subset of 'abd' such as 'ab', got {c.active!r}")
    if c.val_batch_size is not None and c.meta_val_divisor != 1:
        raise ValueError(f"meta_val_divisor must be 1 when val_batch_size is set (both size the meta step's "
                         f"validation batch), got meta_val_divisor={c.meta_val_divisor!r}, "
                         f"val_batch_size={c.val_batch_size!r}")


def _check_data(c: TrainConfig) -> None:
    from lilaw_edu.datasets.registry import DATASET_NAMES, dataset_info
    from lilaw_edu.models import MODEL_NAMES
    from lilaw_edu.noise.inject import NOISE_KINDS

    for name, allowed in (("dataset", DATASET_NAMES), ("noise", NOISE_KINDS), ("model", ("auto",) + MODEL_NAMES)):
        check_choice(name, getattr(c, name), allowed)
    if c.noise == "none" and c.rate > 0:
        raise ValueError(f"rate must be 0 when noise='none' (rate {c.rate!r} would train on clean labels); "
                         f"choose a noise kind from {list(NOISE_KINDS[1:])}")
    if c.data_dir is not None and (not isinstance(c.data_dir, str) or not c.data_dir):
        raise _type_error("data_dir", c.data_dir, "None or a non-empty path string")
    if c.train_on_clean_only and c.noise == "none":
        raise ValueError("train_on_clean_only needs a noise kind (noise='none' leaves nothing to drop)")
    if c.pretrain != "none" and (c.pretrained or c.image_size is not None or dataset_info(c.dataset).n_val):
        raise ValueError(f"pretrain={c.pretrain!r} needs pretrained=False, image_size=None and a dataset without an "
                         f"official validation split, got {c.pretrained=}, {c.image_size=}, {c.dataset=}")


def validate_config(config: TrainConfig) -> None:
    """Check every field's type and range (no data or device access).

    Raises
    ------
    TypeError
        A field of the wrong type (naming the field, the value and the type allowed).
    ValueError
        A value out of range or an inconsistent combination (naming field, value and what is allowed).
    """
    c = config
    if not isinstance(c, TrainConfig):
        raise _type_error("config", c, "a TrainConfig")
    for name in _BOOL_FIELDS:
        if not isinstance(getattr(c, name), bool):
            raise _type_error(name, getattr(c, name), "True or False")
    for name, minimum, optional in _INTS:
        value = getattr(c, name)
        if not (optional and value is None):
            check_int(name, value, low=minimum, high=MAX_SEED if name == "seed" else None)
    for name, sign in _FLOATS:
        _check_float(name, getattr(c, name), sign)
    for name, allowed in _CHOICES:
        check_choice(name, getattr(c, name), allowed)
    check_fraction("rate", c.rate)
    check_fraction("val_fraction", c.val_fraction, open_interval=True)
    _check_epochs("milestones", c.milestones, c.epochs)
    _check_epochs("record_weights_epochs", c.record_weights_epochs, c.epochs)
    if c.cl_fold_epochs > 1:
        raise ValueError(f"cl_fold_epochs must be in (0, 1] (a fraction of epochs), got {c.cl_fold_epochs!r}")
    if c.select_by == "last" and c.patience > 0:
        raise ValueError(f"patience must be 0 when select_by='last' (early stopping needs a validation score), "
                         f"got patience={c.patience!r}")
    _check_lilaw(c)
    _check_data(c)


def config_from_preset(name: str | None = None, **overrides) -> TrainConfig:
    """Build a validated config from a named preset plus overrides.

    Parameters
    ----------
    name : str or None
        A key of :data:`PRESETS`; ``None`` starts from the dataclass defaults.
    **overrides
        Field values that replace the preset's (``None`` values are ignored,
        which lets a CLI pass unset options straight through).

    Returns
    -------
    TrainConfig

    Raises
    ------
    ValueError
        Unknown preset or field (the message lists the allowed ones) or a bad value.
    """
    if name is not None and name not in PRESETS:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {name!r}")
    values = dict(PRESETS[name]) if name is not None else {}
    values.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig.from_dict(values)
