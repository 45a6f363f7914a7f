"""One method's training run: model, optimiser, scheduler, the epoch loop with checkpoint
selection and early stopping, and the test evaluation of the selected checkpoint.

:func:`lilaw_edu.training.fit.fit` calls :func:`run_method` once per method with the same
data and initial weights. The run is a few steps over two objects: :class:`MethodRun`
(the live model, optimiser, LiLAW module, generators and batches; never saved) and
:class:`~lilaw_edu.training.checkpoint.LoopState` (everything carried from one epoch to the
next; saved as the checkpoint after every epoch). The building blocks (batches, one
epoch, the meta step, evaluation) are in :mod:`lilaw_edu.training.engine`.
"""
from __future__ import annotations

import dataclasses
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from lilaw_edu import metrics, models
from lilaw_edu.core.weighting import LiLAW
from lilaw_edu.datasets.registry import default_model
from lilaw_edu.scores.recorders import DifficultyRecorders
from lilaw_edu.training import checkpoint as ckpt
from lilaw_edu.training import engine
from lilaw_edu.training.checkpoint import LoopState
from lilaw_edu.training.config import TrainConfig, method_overrides
from lilaw_edu.training.recording import record_training_set
from lilaw_edu.training.selection import epoch_score
from lilaw_edu.training.meta_schedule import check_fusable, effective_meta_lr
from lilaw_edu.training.methods.harness import Reweighter, filter_training_labels, make_reweighter

__all__ = ["TrainingDiverged", "MethodRun", "initial_model", "effective_freeze", "build_run", "run_method"]


class TrainingDiverged(ValueError):
    """The training loss became NaN or infinite; the message names method, epoch and step."""


# ------------------------------------------------------------------ model and optimisation
def initial_model(config: TrainConfig, splits, batch_resize: int | None = None) -> nn.Module:
    """The configured model for ``splits`` (``config.model == "auto"``: the dataset's CPU default),
    with initial weights seeded from ``config.seed`` (the global RNG is left untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(engine.child_seed(config.seed, "model-init"))
        size = batch_resize or int(splits.x_train.shape[-1])
        name = default_model(splits.name, input_size=size) if config.model == "auto" else config.model
        return models.build_model(name, splits.num_classes, in_channels=splits.in_channels,
                                  input_size=size, pretrained=config.pretrained)


def effective_freeze(config: TrainConfig) -> str:
    """Freeze mode of a method's config: weighted runs (LiLAW, L2RW, MW-Net) use ``freeze``; plain-loss
    runs ``baseline_freeze``."""
    if config.weighting != "none" or config.baseline_freeze == "same":
        return config.freeze
    return config.baseline_freeze


def _optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=0.9, weight_decay=config.weight_decay)
    return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)


def _scheduler(config: TrainConfig, optimizer, steps_per_epoch: int):
    """(scheduler or None, per_step: bool). "linear" decays to 0 over all steps."""
    if config.scheduler == "linear":
        total = max(1, config.epochs * steps_per_epoch)
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: max(0.0, 1.0 - s / total)), True
    if config.scheduler == "multistep":
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, list(config.milestones), config.gamma_lr), False
    return None, False


# ------------------------------------------------------------------ the live objects of one run
@dataclass
class MethodRun:
    """Live objects of one method's run (rebuilt on resume; their states go into a LoopState)."""

    method: str
    config: TrainConfig            # the method's config (overrides applied)
    splits: object                 # DatasetSplits
    noise_info: dict
    device: torch.device
    model: nn.Module
    net: nn.Module                 # ``model`` or its torch.compile wrapper
    optimizer: torch.optim.Optimizer
    scheduler: object
    per_step: bool                 # scheduler stepped per optimiser step (else per epoch)
    lilaw: LiLAW | None
    recorders: DifficultyRecorders | None
    generators: dict
    data: dict
    path: Path | None              # checkpoint file
    init_hash: str
    reweighter: Reweighter | None = None   # L2RW / MW-Net step (issue 11)
    label_filter: dict | None = None       # confident learning's outcome (issue 11)

    def capture(self, state: LoopState) -> LoopState:
        """Copy every component's state into ``state`` (before saving it)."""
        state.model = self.model.state_dict()
        state.optimizer = self.optimizer.state_dict()
        state.scheduler = self.scheduler.state_dict() if self.scheduler is not None else None
        state.lilaw = self.lilaw.state_dict() if self.lilaw is not None else None
        state.recorders = self.recorders.state_dict() if self.recorders is not None else None
        state.peer = self.reweighter.state_dict() if self.reweighter is not None else None
        state.rng = ckpt.capture_rng(self.generators)
        state.torch_threads = torch.get_num_threads()
        return state

    def restore(self, state: LoopState) -> None:
        """Inverse of :meth:`capture`; a different torch thread count is recorded and warned about."""
        self.model.load_state_dict(state.model)
        self.optimizer.load_state_dict(state.optimizer)
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state.scheduler)
        if self.lilaw is not None:
            self.lilaw.load_state_dict(state.lilaw)
        if self.recorders is not None:
            self.recorders.load_state_dict(state.recorders)
        if self.reweighter is not None:
            self.reweighter.load_state_dict(state.peer)
        ckpt.restore_rng(self.generators, state.rng)
        threads = torch.get_num_threads()
        if state.torch_threads is not None and state.torch_threads != threads:
            state.thread_changes.append({"epoch": state.epoch, "from": state.torch_threads, "to": threads})
            warnings.warn(f"{self.method}: resumed at epoch {state.epoch} with {threads} torch threads, the "
                          f"checkpoint used {state.torch_threads}; CPU results may shift by ~1e-5 "
                          f"(recorded in the result's thread_changes)", RuntimeWarning, stacklevel=3)


def build_run(config: TrainConfig, method: str, splits, init_state: dict, noise_info: dict,
              out_dir=None) -> MethodRun:
    """Model (from ``init_state``, frozen as the method says), optimiser, scheduler, LiLAW, recorders,
    generators and batches of one method."""
    cfg = config.replace(**method_overrides(method))
    if splits.kind != "image" and cfg.amp:  # series (LSTM) models are tiny: keep them in fp32
        cfg = dataclasses.replace(cfg, amp=False)
    device = engine.resolve_device(cfg.device)
    label_filter = None
    if cfg.label_filter != "none":  # confident learning: train on the labels it does not flag (issue 11)
        splits, label_filter = filter_training_labels(
            cfg, splits, noise_info, device, lambda: _fresh_model(cfg, splits, noise_info, init_state, device))
    weighted = cfg.weighting == "lilaw"
    model = initial_model(cfg, splits, noise_info.get("batch_resize"))
    model.load_state_dict(init_state)
    init_hash = engine.state_dict_sha256(model.state_dict())
    if weighted and cfg.meta_fused_forward:  # refuse before training, not at the first meta step
        check_fusable(model, cfg.meta_val_mode)
    models.apply_freeze(model, effective_freeze(cfg))
    model.to(device)
    if cfg.channels_last and device.type == "cuda" and splits.kind == "image":
        model.to(memory_format=torch.channels_last)
    data = engine.make_batches(splits, cfg, device, noise_info.get("input_transform"))
    optimizer = _optimizer(cfg, model)
    scheduler, per_step = _scheduler(cfg, optimizer, len(data["train"]))
    lilaw = LiLAW(cfg.alpha, cfg.beta, cfg.delta, active=cfg.active, loss=cfg.loss, gamma=cfg.focal_gamma,
                  detach_weights=cfg.detach_weights, meta_lr=effective_meta_lr(cfg), meta_wd=cfg.meta_wd,
                  constraints=cfg.constraints).to(device) if weighted else None
    gen_device = device if data["train"].resident else "cpu"
    gens = {name: engine.make_generator(cfg.seed, name, gen_device) for name in ("shuffle", "augment", "meta")}
    recorders = (DifficultyRecorders(len(splits.y_train), splits.num_classes)
                 if cfg.record_scores and not weighted else None)
    return MethodRun(method=method, config=cfg, splits=splits, noise_info=noise_info, device=device,
                     model=model, net=torch.compile(model) if cfg.compile else model, optimizer=optimizer,
                     scheduler=scheduler, per_step=per_step, lilaw=lilaw, recorders=recorders, generators=gens,
                     data=data, path=ckpt.checkpoint_path(out_dir, method) if out_dir is not None else None,
                     init_hash=init_hash, reweighter=make_reweighter(cfg, device), label_filter=label_filter)


def _fresh_model(cfg: TrainConfig, splits, noise_info: dict, init_state: dict, device: torch.device) -> tuple:
    """(model with the run's initial weights on ``device``, its optimiser): one fold of confident learning."""
    model = initial_model(cfg, splits, noise_info.get("batch_resize"))
    model.load_state_dict(init_state)
    models.apply_freeze(model, effective_freeze(cfg))
    model.to(device)
    return model, _optimizer(cfg, model)


# ------------------------------------------------------------------ one epoch
def train_epoch(run: MethodRun, state: LoopState) -> dict:
    """Train epoch ``state.epoch + 1``, evaluate on validation, record weights/scores; return its history entry.

    Raises
    ------
    TrainingDiverged
        The training loss was NaN or infinite at some step (``state`` is left unchanged,
        so the checkpoint of the previous epoch stays the last good one).
    """
    cfg, lilaw, epoch = run.config, run.lilaw, state.epoch + 1
    t0 = time.perf_counter()
    warm = epoch <= cfg.warmup_epochs
    weighted = lilaw is not None
    stats = engine.train_one_epoch(run.net, run.optimizer, run.data["train"], lilaw=lilaw,
                                   weighted=weighted and not warm, meta=weighted and cfg.learn_meta and not warm,
                                   val=run.data["val"], generators=run.generators, config=cfg, device=run.device,
                                   step_scheduler=run.scheduler if run.per_step else None,
                                   reweighter=run.reweighter, step_offset=state.epoch * len(run.data["train"]))
    if stats["diverged_step"] is not None:
        kept = f"the checkpoint of epoch {state.epoch} in {run.path} is kept" if run.path and state.epoch \
            else "no checkpoint was written"
        raise TrainingDiverged(f"{run.method} diverged: non-finite training loss at epoch {epoch}, step "
                               f"{stats['diverged_step']} of {stats['steps']}; {kept}; try a smaller lr "
                               f"(now {cfg.lr:g})")
    if run.scheduler is not None and not run.per_step:
        run.scheduler.step()
    ev = engine.evaluate(run.net, run.data["val"], device=run.device, amp=cfg.amp, channels_last=cfg.channels_last)
    y_clean = run.noise_info["y_val_clean"].to(ev["logits"].device)
    record = {"epoch": epoch, "train_loss": stats["train_loss"], "train_acc": stats["train_acc"],
              "val_loss": ev["loss"], "val_acc": ev["acc"],
              "val_loss_clean": float(F.cross_entropy(ev["logits"], y_clean)),
              "val_acc_clean": float((ev["logits"].argmax(1) == y_clean).double().mean()),
              "lr": run.optimizer.param_groups[0]["lr"], "warmup": warm,
              **(lilaw.state() if weighted else {"alpha": None, "beta": None, "delta": None}),
              "skipped_meta_steps": lilaw.pop_skipped_meta_steps() if weighted else 0}
    if record["skipped_meta_steps"]:
        warnings.warn(f"{run.method}: epoch {epoch} skipped {record['skipped_meta_steps']} meta step(s) whose "
                      f"validation loss or gradients were not finite", RuntimeWarning, stacklevel=2)
    record_training_set(run.model, run.data["train_eval"], epoch, lilaw=lilaw, recorders=run.recorders,
                        config=cfg, device=run.device, num_classes=run.splits.num_classes,
                        weights=state.weights, scores=state.scores)
    record["epoch_time_s"] = time.perf_counter() - t0
    if cfg.test_each_epoch:  # after the timing: a study aid, not part of training
        test, _ = _test_metrics(run)
        record["test_top1"], record["test_auroc"] = test["top1"], test["auroc"]
    return record


def select_checkpoint(run: MethodRun, state: LoopState, record: dict) -> bool:
    """Update the selection with epoch ``record`` (ties go to the later epoch); return True to stop early.

    ``select_by="val_loss"`` scores ``-val_loss``, ``"val_acc"`` ``val_acc`` (the ``_clean`` ones
    with ``select_on="clean_val"``), ``"last"`` every epoch equally. ``bad_epochs`` counts epochs
    since the score last strictly improved; the run stops once it reaches ``patience`` (> 0).
    """
    cfg = run.config
    score = epoch_score(record, cfg.select_by, cfg.select_on)  # a NaN validation score never wins
    improved = state.best_score is None or score > state.best_score
    if state.best_score is None or score >= state.best_score:
        state.best_score, state.best_epoch = score, record["epoch"]
        state.best_model = {k: v.detach().clone() for k, v in run.model.state_dict().items()}
    state.bad_epochs = 0 if improved else state.bad_epochs + 1
    stop = cfg.patience > 0 and state.bad_epochs >= cfg.patience
    state.stopped_early = stop and record["epoch"] < cfg.epochs
    return stop


# ------------------------------------------------------------------ the test evaluation
def _test_metrics(run: MethodRun) -> tuple[dict, torch.Tensor]:
    logits = engine.predict_logits(run.net, run.data["test"], device=run.device, amp=run.config.amp).cpu()
    probs = torch.softmax(logits, 1)
    return metrics.evaluate_predictions(probs, run.splits.y_test, run.splits.num_classes), logits


def finish(run: MethodRun, state: LoopState) -> dict:
    """Test metrics of the last epoch, then of the selected checkpoint (plus temperature scaling)."""
    from lilaw_edu.training.results import pretrained_identity

    cfg, splits = run.config, run.splits
    last, _ = _test_metrics(run)
    if state.best_model is not None:
        run.model.load_state_dict(state.best_model)
    test, test_logits = _test_metrics(run)
    selected = state.history[state.best_epoch - 1] if state.best_epoch else {}
    out = {"test": test, "test_last_epoch": last, "select_by": cfg.select_by, "select_on": cfg.select_on,
           "patience": cfg.patience, "best_epoch": state.best_epoch, "best_val_acc": selected.get("val_acc"),
           "best_val_loss": selected.get("val_loss"), "epochs_run": state.epoch,
           "stopped_early": state.stopped_early, "skipped_meta_steps": state.skipped_meta_steps}
    if cfg.temperature_scaling:
        val_logits = engine.predict_logits(run.net, run.data["val"], device=run.device, amp=cfg.amp).cpu()
        temperature = metrics.fit_temperature(val_logits.double(), splits.y_val)
        scaled = metrics.apply_temperature(test_logits.double(), temperature)
        out["temperature"] = temperature
        out["test_calibrated"] = metrics.evaluate_predictions(torch.softmax(scaled, 1), splits.y_test,
                                                              splits.num_classes)
    return {"method": run.method, "overrides": method_overrides(run.method), "freeze": effective_freeze(cfg),
            "init_state_sha256": run.init_hash, "pretrained_weights": pretrained_identity(cfg, run.model),
            "metrics": out, "lilaw": run.lilaw.state() if run.lilaw is not None else None,
            "history": state.history, "weights": state.weights, "scores": state.scores,
            "wall_time_s": state.elapsed, "thread_changes": state.thread_changes}


# ------------------------------------------------------------------ one method
def _postfix(record: dict) -> dict:
    out = {"loss": f"{record['train_loss']:.3f}", "acc": f"{record['train_acc']:.3f}",
           "val": f"{record['val_acc']:.3f}"}
    if record["alpha"] is not None:
        out.update(a=f"{record['alpha']:.2f}", b=f"{record['beta']:.2f}", d=f"{record['delta']:.2f}")
    return out


def _start(run: MethodRun, resume: bool) -> LoopState:
    """A fresh loop state, or the saved one (components restored) when resuming from a checkpoint."""
    saved = ckpt.load_checkpoint(run.path) if (resume and run.path is not None) else None
    if saved is None:
        return LoopState(method=run.method, config=run.config.to_dict())
    ckpt.check_resume_config(saved.config, run.config.to_dict(), run.path)
    if saved.result is None:
        try:
            run.restore(saved)
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
            first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
            raise ckpt.CheckpointError(f"checkpoint {run.path} does not fit this run ({type(exc).__name__}: "
                                       f"{first}); delete it to restart that method, or run without "
                                       f"--resume") from None
    return saved


def run_method(config: TrainConfig, method: str, splits, init_state: dict, *, noise_info: dict,
               out_dir=None, resume: bool = False, progress: bool = True, callback=None,
               distributed=None) -> dict:
    """Train one method from ``init_state`` and evaluate its selected checkpoint on the test set.

    Parameters
    ----------
    config : TrainConfig
        Shared config; ``method_overrides(method)`` is applied on top.
    method : str
        ``"baseline"``, ``"lilaw"`` or a variant (see :data:`lilaw_edu.training.config.VARIANTS`).
    splits : DatasetSplits
        From :func:`prepare_data`.
    init_state : dict
        Initial model ``state_dict`` shared by all methods.
    noise_info : dict
        From :func:`prepare_data`.
    out_dir : path-like, optional
        The loop state goes to ``out_dir/checkpoints/<method>.pt`` after every epoch.
    resume : bool
        Continue from that checkpoint when it exists (a finished method is not rerun).
    progress : bool
        Show a tqdm bar (epochs; loss, accuracy, α/β/δ).
    callback : callable, optional
        ``callback(event)`` after every epoch (and its checkpoint), ``event`` a dict with
        ``method``, ``epoch`` (1-based) and ``record`` (that epoch's history entry).
    distributed : lilaw_edu.training.ddp.Distributed, optional
        This process's rank in a torchrun DDP run (see :mod:`lilaw_edu.training.ddp`).

    Returns
    -------
    dict
        ``method``, ``overrides``, ``freeze``, ``init_state_sha256``, ``pretrained_weights``,
        ``metrics`` (``test`` of the selected epoch, ``test_last_epoch``, ``test_calibrated``,
        ``temperature``, ``select_by``, ``select_on``, ``patience``, ``best_epoch``, ``best_val_acc``,
        ``best_val_loss``, ``epochs_run``, ``stopped_early``, ``skipped_meta_steps``), ``lilaw`` (final
        α, β, δ or None), ``history`` (per-epoch dicts: ``epoch``, ``train_loss``, ``train_acc``,
        ``val_loss`` (cross-entropy), ``val_acc``, ``val_loss_clean``, ``val_acc_clean``, ``lr``, ``warmup``,
        ``alpha``, ``beta``, ``delta``, ``skipped_meta_steps``, ``epoch_time_s``, ``time_s`` (cumulative); with
        ``test_each_epoch`` also ``test_top1``, ``test_auroc``),
        ``weights`` ({epoch: {w_alpha, w_beta, w_delta, w}} lists over the training set), ``scores``
        ({epoch: {name: list}}), ``wall_time_s``, ``thread_changes``.

    Raises
    ------
    TrainingDiverged
        Non-finite training loss; the last good checkpoint is kept.
    """
    from tqdm.auto import tqdm

    run = build_run(config, method, splits, init_state, noise_info, out_dir)
    torch.manual_seed(engine.child_seed(run.config.seed, "torch-global"))  # dropout etc.: same for every method
    state = _start(run, resume)
    if state.result is not None:
        return state.result
    if distributed is not None:
        distributed.prepare(run)  # DDP net, sharded batches, all-reduced meta-gradients, rank 0 writes
    cfg = run.config
    stopped = cfg.patience > 0 and state.bad_epochs >= cfg.patience  # resumed after an early stop
    bar = tqdm(total=cfg.epochs, initial=state.epoch, desc=method, disable=not progress, leave=False)
    while not stopped and state.epoch < cfg.epochs:
        record = train_epoch(run, state)
        stopped = select_checkpoint(run, state, record)
        state.elapsed += record["epoch_time_s"]
        record["time_s"] = state.elapsed
        state.skipped_meta_steps += record["skipped_meta_steps"]
        state.history.append(record)
        state.epoch = record["epoch"]
        if run.path is not None:
            ckpt.save_checkpoint(run.path, run.capture(state))
        bar.update(1)
        bar.set_postfix(_postfix(record))
        if callback is not None:
            callback({"method": method, "epoch": state.epoch, "record": record})
    bar.close()
    result = finish(run, state)
    if run.label_filter is not None:
        result["label_filter"] = run.label_filter
    if run.path is not None:
        ckpt.save_checkpoint(run.path, LoopState(method=method, config=cfg.to_dict(), result=result))
    return result
