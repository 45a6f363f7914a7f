"""Pretrain on one half of the training set, fine-tune on the other (issue 16, part 5).

The paper's CIFAR and MNIST rows (§4.2; Tables 7 and 14) fine-tune only the last two
layers of a pretrained ViT with LiLAW, while the baseline fine-tunes the whole network. A
frozen pretrained backbone resists label noise on its own, so part of "LiLAW vs baseline"
may be freezing. ``TrainConfig.pretrain = "other_half"`` builds that situation at CPU scale:

1. The official training split (training + validation of :func:`~lilaw_edu.datasets.load_dataset`,
   pooled in a fixed order) is divided once into two disjoint halves by a generator seeded
   with :data:`HALF_SEED`, independent of the run's seed.
2. A backbone is trained on half A with its clean labels (plain cross-entropy, model seed
   :data:`PRETRAIN_SEED`, ``pretrain_epochs`` epochs, the last epoch kept; :func:`recipe`).
3. The run uses only half B: its validation split, noise and ``max_train`` as usual
   (:func:`half_b_splits`). Every method starts from the backbone; the classification head
   (the model's last layer) keeps the run's seeded random initialisation, as a new task's
   head would.

The backbone is cached in ``cache_dir()/pretrained`` (``$LILAW_CACHE_DIR``, else
``~/.cache/lilaw_edu``): ``<sha256>.pt`` holds the weights, named by the SHA-256 of their
values (:func:`lilaw_edu.training.engine.state_dict_sha256`, checked on every load, which uses
``torch.load(..., weights_only=True)``), and ``recipe-<key>.json`` maps the recipe to that
SHA-256 and to the backbone's test metrics. Both are written atomically while an exclusive
lock is held, so concurrent runs train the backbone once. The SHA-256 goes into every result
(``results["pretrain"]``).
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import io
import json
import pickle
from pathlib import Path

import torch

from lilaw_edu import models
from lilaw_edu._internal.files import atomic_write_bytes
from lilaw_edu.datasets import load_dataset
from lilaw_edu.datasets.core import cache_dir, channel_stats, split_off_validation, subsample
from lilaw_edu.training import engine
from lilaw_edu.training.checkpoint import LoopState
from lilaw_edu.training.config import RUNTIME_FIELDS, TrainConfig
from lilaw_edu.training.loop import build_run, finish, initial_model, select_checkpoint, train_epoch

__all__ = ["HALF_SEED", "PRETRAIN_SEED", "PRETRAIN_VAL_FRACTION", "half_indices", "official_train_halves",
           "half_b_splits", "recipe", "recipe_key", "backbone_dir", "ensure_backbone", "load_backbone",
           "apply_backbone"]

HALF_SEED = 165          # the generator of the A/B division (issue 16, part 5); never the run seed
PRETRAIN_SEED = 1650     # model initialisation and batch order of the backbone's training
PRETRAIN_VAL_FRACTION = 0.1  # of half A, held out to monitor the backbone (its last epoch is kept)


# ------------------------------------------------------------------ the two halves
def half_indices(n: int) -> tuple:
    """Indices (int64, sorted) of halves A (``n // 2``) and B (the rest) of ``n`` samples, from a generator
    seeded with :data:`HALF_SEED` (the same for every run seed and every global RNG state)."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(HALF_SEED))
    return perm[: n // 2].sort().values, perm[n // 2:].sort().values


def official_train_halves(dataset: str, data_dir=None) -> tuple:
    """The official training split, pooled in a fixed order and divided into two disjoint halves.

    Returns
    -------
    splits : DatasetSplits
        As loaded (its test split is the official test split).
    half_a, half_b : tuple of Tensor
        ``(x, y)`` of each half: x (N, ...) float32, y int64 (N,); ``N_a = floor(N / 2)``.
    """
    splits = load_dataset(dataset, data_dir=data_dir, seed=HALF_SEED)  # seeded split -> a fixed pool order
    x, y = torch.cat([splits.x_train, splits.x_val]), torch.cat([splits.y_train, splits.y_val])
    a, b = half_indices(len(y))
    return splits, (x[a], y[a]), (x[b], y[b])


def _with_train_val(splits, x_tr, y_tr, x_va, y_va, note: str):
    mean, std = channel_stats(x_tr)
    return dataclasses.replace(splits, x_train=x_tr, y_train=y_tr, x_val=x_va, y_val=y_va, mean=mean, std=std,
                               notes=splits.notes + note)


def half_b_splits(config: TrainConfig):
    """The run's data with ``pretrain="other_half"``: half B only, split into training and validation by
    ``config.seed`` (``val_fraction`` of half B) and subsampled to ``max_train`` (unnormalised DatasetSplits)."""
    splits, _, (x, y) = official_train_halves(config.dataset, config.data_dir)
    x_tr, y_tr, x_va, y_va = split_off_validation(x, y, config.val_fraction, config.seed)
    x_tr, y_tr = subsample(x_tr, y_tr, config.max_train, config.seed)
    note = (f" Then pooled and halved (seed {HALF_SEED}): half B of the official training split ({len(y)} samples; "
            f"half A pretrained the backbone); {config.val_fraction:.0%} of half B as validation (seed {config.seed})"
            + (f", training subsampled to {len(y_tr)}." if config.max_train is not None else "."))
    return _with_train_val(splits, x_tr, y_tr, x_va, y_va, note)


# ------------------------------------------------------------------ the recipe and the cache
def recipe(config: TrainConfig) -> TrainConfig:
    """The backbone's training config: the run's dataset, model and optimiser settings, clean labels,
    plain cross-entropy, ``pretrain_epochs`` epochs, fixed seed, the last epoch kept."""
    return TrainConfig(dataset=config.dataset, data_dir=config.data_dir, model=config.model,
                       epochs=config.pretrain_epochs, batch_size=config.batch_size, lr=config.lr,
                       weight_decay=config.weight_decay, optimizer=config.optimizer, augment=config.augment,
                       weighting="none", select_by="last", seed=PRETRAIN_SEED, val_fraction=PRETRAIN_VAL_FRACTION,
                       temperature_scaling=False, device=config.device, num_threads=config.num_threads,
                       deterministic=config.deterministic, amp=config.amp, channels_last=config.channels_last)


def recipe_key(config: TrainConfig) -> str:
    """16 hex digits naming the recipe (its config without runtime fields, and the half seed)."""
    fields = {k: v for k, v in recipe(config).to_dict().items() if k not in RUNTIME_FIELDS}
    text = json.dumps({"recipe": fields, "half_seed": HALF_SEED}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def backbone_dir() -> Path:
    """``cache_dir()/pretrained`` (``$LILAW_CACHE_DIR/pretrained`` or ``~/.cache/lilaw_edu/pretrained``)."""
    return cache_dir() / "pretrained"


def _train_backbone(config: TrainConfig, progress: bool) -> tuple:
    """(state_dict of the backbone after ``pretrain_epochs`` epochs on half A, its test metrics); the
    recipe's thread count and determinism apply meanwhile, the caller's RNG and settings are restored."""
    pre, threads, deterministic = recipe(config), torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    try:
        torch.use_deterministic_algorithms(pre.deterministic, warn_only=True)
        torch.set_num_threads(pre.num_threads or threads)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(engine.child_seed(pre.seed, "torch-global"))
            return _train_on_half_a(pre, progress)
    finally:
        torch.use_deterministic_algorithms(deterministic)
        torch.set_num_threads(threads)


def _train_on_half_a(pre: TrainConfig, progress: bool) -> tuple:
    loaded, (x, y), _ = official_train_halves(pre.dataset, pre.data_dir)
    x_tr, y_tr, x_va, y_va = split_off_validation(x, y, PRETRAIN_VAL_FRACTION, PRETRAIN_SEED)
    note = f" Then pooled and halved (seed {HALF_SEED}): half A (backbone pretraining)."
    splits = _with_train_val(loaded, x_tr, y_tr, x_va, y_va, note).normalized()
    noise_info = {"y_val_clean": splits.y_val, "train_corrupted": torch.zeros(len(y_tr), dtype=torch.bool)}
    init = copy.deepcopy(initial_model(pre, splits).state_dict())
    run = build_run(pre, "baseline", splits, init, noise_info)
    state = LoopState(method="baseline", config=pre.to_dict())
    for _ in range(pre.epochs):
        record = train_epoch(run, state)
        select_checkpoint(run, state, record)
        state.history.append(record)
        state.epoch, state.elapsed = record["epoch"], state.elapsed + record["epoch_time_s"]
        if progress:
            print(f"pretrain epoch {state.epoch}/{pre.epochs}: val acc {record['val_acc']:.3f}", flush=True)
    result = finish(run, state)
    weights = {k: v.detach().cpu().clone() for k, v in run.model.state_dict().items()}
    return weights, {"test_top1": result["metrics"]["test"]["top1"], "epochs": pre.epochs,
                     "n_train": len(y_tr), "n_val": len(y_va), "train_time_s": state.elapsed}


def load_backbone(sha256: str) -> dict:
    """The cached weights named ``sha256`` (``weights_only=True``); their SHA-256 is checked.

    Raises
    ------
    ValueError
        The file is missing, or its weights do not hash to its name.
    """
    path = backbone_dir() / f"{sha256}.pt"
    if not path.is_file():
        raise ValueError(f"pretrained backbone {path} is missing; delete the recipe files next to it to retrain")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError) as exc:
        raise ValueError(f"pretrained backbone {path} is corrupted ({type(exc).__name__}); delete it to "
                         f"retrain") from None
    got = engine.state_dict_sha256(state)
    if got != sha256:
        raise ValueError(f"pretrained backbone {path} is corrupted: its weights hash to {got}, not {sha256}; "
                         f"delete it to retrain")
    return state


def ensure_backbone(config: TrainConfig, progress: bool = False) -> dict:
    """The backbone of ``config``'s recipe: read from the cache, else trained once and published.

    Returns
    -------
    dict
        ``mode``, ``recipe_key``, ``sha256`` (of the weights), ``file``, ``test_top1``, ``epochs``,
        ``n_train``, ``n_val``, ``train_time_s``, ``half_seed``, ``seed``.
    """
    import fcntl

    key, folder = recipe_key(config), backbone_dir()
    pointer = folder / f"recipe-{key}.json"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f".recipe-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second process waits here, then reads what the first published
        if not pointer.is_file():
            weights, info = _train_backbone(config, progress)
            sha = engine.state_dict_sha256(weights)
            buffer = io.BytesIO()
            torch.save(weights, buffer)
            atomic_write_bytes(folder / f"{sha}.pt", buffer.getvalue())
            info = {"mode": config.pretrain, "recipe_key": key, "sha256": sha, "file": f"{sha}.pt", **info,
                    "half_seed": HALF_SEED, "seed": PRETRAIN_SEED}
            atomic_write_bytes(pointer, json.dumps(info, indent=1, sort_keys=True).encode())
        return json.loads(pointer.read_text(encoding="utf-8"))


def apply_backbone(config: TrainConfig, model: torch.nn.Module, progress: bool = False) -> dict | None:
    """Load the backbone into ``model`` (in place), all but its last layer (the head keeps its initialisation).

    Returns
    -------
    dict or None
        :func:`ensure_backbone`'s record, or None when ``config.pretrain == "none"``.
    """
    if config.pretrain == "none":
        return None
    info = ensure_backbone(config, progress)
    head = models.last_two_layers(model)[-1]
    head_keys = {name for name, module in model.named_modules() if module is head}
    state = {k: v for k, v in load_backbone(info["sha256"]).items() if k.rsplit(".", 1)[0] not in head_keys}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or any(k.rsplit(".", 1)[0] not in head_keys for k in missing):
        raise ValueError(f"pretrained backbone {info['file']} does not fit the model (missing {missing}, "
                         f"unexpected {unexpected})")
    return info
