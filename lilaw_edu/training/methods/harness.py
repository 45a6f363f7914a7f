"""How the training loop runs the relatives: a per-step :class:`Reweighter` for L2RW and
Meta-Weight-Net, and :func:`filter_training_labels` for confident learning.

:mod:`lilaw_edu.training.loop` builds them from the method's config
(``weighting="l2rw" | "mwnet"``, ``label_filter="cleanlab"``) and
:func:`lilaw_edu.training.engine.train_one_epoch` calls :meth:`Reweighter.step` in place
of its own forward/backward/step. Neither method has a warm-up (``warmup_epochs`` is
LiLAW's); both draw their validation batch per step exactly as LiLAW's meta step does.
"""
from __future__ import annotations

import dataclasses
import time

import torch
from torch import Tensor, nn

from lilaw_edu.training import engine
from lilaw_edu.training.methods import confident
from lilaw_edu.training.methods.l2rw import l2rw_step
from lilaw_edu.training.methods.mwnet import make_mwnet, mwnet_step

__all__ = ["Reweighter", "make_reweighter", "filter_training_labels"]


class Reweighter:
    """One training step of L2RW or MW-Net, with the state a checkpoint needs.

    Parameters
    ----------
    kind : {"l2rw", "mwnet"}
    config : TrainConfig
        The method's config (loss, focal γ, ``meta_val_mode``, MW-Net's ``mwnet_*`` fields, seed).
    device : torch.device
    """

    def __init__(self, kind: str, config, device: torch.device):
        if kind not in ("l2rw", "mwnet"):
            raise ValueError(f"kind must be 'l2rw' or 'mwnet', got {kind!r}")
        self.kind, self.config = kind, config
        self.vnet = self.vnet_optimizer = None
        if kind == "mwnet":
            self.vnet, self.vnet_optimizer = make_mwnet(config.mwnet_hidden, config.mwnet_lr, config.mwnet_wd,
                                                        seed=engine.child_seed(config.seed, "mwnet-init"),
                                                        device=device)

    def step(self, model: nn.Module, optimizer: torch.optim.Optimizer, x: Tensor, y: Tensor, x_val: Tensor,
             y_val: Tensor) -> dict:
        """One step on batch ``(x, y)`` with validation batch ``(x_val, y_val)``.

        Returns
        -------
        dict
            ``loss`` (0-d, the optimised loss, detached), ``logits`` ((N, C), detached), ``weights`` ((N,)).
        """
        c = self.config
        options = dict(loss=c.loss, gamma=c.focal_gamma, val_train_mode=c.meta_val_mode == "train")
        if self.kind == "l2rw":
            return l2rw_step(model, optimizer, x, y, x_val, y_val, **options)
        return mwnet_step(model, optimizer, self.vnet, self.vnet_optimizer, x, y, x_val, y_val, **options)

    def state_dict(self) -> dict:
        """``{}`` for L2RW (stateless); the net's and its optimiser's state for MW-Net."""
        if self.vnet is None:
            return {}
        return {"vnet": self.vnet.state_dict(), "optimizer": self.vnet_optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        """Inverse of :meth:`state_dict`."""
        if self.vnet is not None:
            self.vnet.load_state_dict(state["vnet"])
            self.vnet_optimizer.load_state_dict(state["optimizer"])


def make_reweighter(config, device: torch.device) -> Reweighter | None:
    """A :class:`Reweighter` when ``config.weighting`` is ``"l2rw"`` or ``"mwnet"``, else None."""
    return Reweighter(config.weighting, config, device) if config.weighting in ("l2rw", "mwnet") else None


def filter_training_labels(config, splits, noise_info: dict, device: torch.device, make_model) -> tuple:
    """Confident learning: flag training labels by K-fold cross-fitting + cleanlab, drop them.

    Parameters
    ----------
    config : TrainConfig
        ``cl_folds``, ``cl_fold_epochs``, ``cl_filter_by``, ``epochs``, batch size, loss, seed.
    splits : DatasetSplits
        Normalised splits; only the training split is filtered.
    noise_info : dict
        From :func:`lilaw_edu.training.fit.prepare_data` (``train_corrupted`` scores the flags).
    device : torch.device
    make_model : callable
        ``make_model() -> (model, optimizer)`` with the run's initial weights on ``device``.

    Returns
    -------
    splits : DatasetSplits
        ``x_train``, ``y_train`` without the flagged samples.
    info : dict
        ``filter_by``, ``folds``, ``fold_epochs``, ``kept``, ``seconds`` (wall time of the cross-fitting
        and cleanlab; not in the method's ``wall_time_s``), ``flagged_indices`` (positions in the
        unfiltered training split) and :func:`confident.detection_quality` against the planted noise.
    """
    if len(splits.y_train) < 2 * config.cl_folds:
        raise ValueError(f"cl_folds={config.cl_folds} needs at least {2 * config.cl_folds} training samples, "
                         f"got {len(splits.y_train)}")
    start = time.perf_counter()
    epochs = confident.fold_epochs(config.epochs, config.cl_fold_epochs)
    fold_config = dataclasses.replace(config, weighting="none", label_filter="none")
    fit_predict = confident.network_fit_predict(make_model, splits.x_train, splits.y_train, fold_config, device,
                                                epochs)
    probs = confident.cross_fit_probabilities(splits.y_train, splits.num_classes, fit_predict,
                                              folds=config.cl_folds, seed=engine.child_seed(config.seed, "cleanlab"))
    flagged = confident.find_label_issues(splits.y_train, probs, filter_by=config.cl_filter_by)
    keep = ~flagged
    info = {"filter_by": config.cl_filter_by, "folds": config.cl_folds, "fold_epochs": epochs,
            "kept": int(keep.sum()), "seconds": time.perf_counter() - start,
            "flagged_indices": torch.nonzero(flagged).flatten().tolist(),
            **confident.detection_quality(flagged, noise_info["train_corrupted"])}
    return dataclasses.replace(splits, x_train=splits.x_train[keep], y_train=splits.y_train[keep]), info
