"""One method's training run: model, optimiser, scheduler, the epoch loop with early
stopping and checkpoints, and the single test evaluation of the selected checkpoint.

:func:`lilaw_edu.training.fit.fit` calls :func:`run_method` once per method with the same
data and initial weights; the building blocks (batches, one epoch, the meta step,
evaluation) are in :mod:`lilaw_edu.training.engine`.
"""
from __future__ import annotations

import dataclasses
import time

import torch
from torch import nn

from lilaw_edu.training import checkpoint as ckpt
from lilaw_edu.training import engine
from lilaw_edu import metrics, models
from lilaw_edu.training.config import TrainConfig, method_overrides
from lilaw_edu.datasets.core import resize_images
from lilaw_edu.scores.recorders import DifficultyRecorders
from lilaw_edu.core.weighting import LiLAW

__all__ = ["initial_model", "effective_freeze", "run_method"]


# ------------------------------------------------------------------ model and optimisation
def initial_model(config: TrainConfig, splits, batch_resize: int | None = None) -> nn.Module:
    """The configured model for ``splits`` (``config.model == "auto"``: the dataset's CPU default),
    with initial weights seeded from ``config.seed`` (the global RNG is left untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(engine.child_seed(config.seed, "model-init"))
        if batch_resize is None:
            name = None if config.model == "auto" else config.model
            return models.model_for_dataset(splits, name=name, pretrained=config.pretrained)
        name = models.default_model_name(splits) if config.model == "auto" else config.model
        return models.build_model(name, splits.num_classes, in_channels=splits.in_channels,
                                  input_size=batch_resize, pretrained=config.pretrained)


def effective_freeze(config: TrainConfig) -> str:
    """Freeze mode of a method's config: LiLAW uses ``freeze``; plain-loss runs ``baseline_freeze``."""
    if config.weighting == "lilaw" or config.baseline_freeze == "same":
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


# ------------------------------------------------------------------ one method
def _batches(splits, noise_info, config, device):
    total = sum(getattr(splits, f"x_{s}").numel() * 4 for s in ("train", "val", "test"))
    resident = total <= config.resident_max_gb * (1 << 30)  # else a DataLoader from host memory
    size = noise_info.get("batch_resize")
    transform = (lambda x: resize_images(x, size)) if size else None
    place = (lambda t: t.to(device)) if resident else (lambda t: t)  # one device copy shared by all views
    x_tr, y_tr = place(splits.x_train), place(splits.y_train)
    make = lambda x, y, bs: engine.Batches(x, y, bs, device, resident, transform)  # noqa: E731
    return {"train": make(x_tr, y_tr, config.batch_size),
            "train_eval": make(x_tr, y_tr, config.eval_batch_size),
            "val": make(place(splits.x_val), place(splits.y_val), config.eval_batch_size),
            "test": make(place(splits.x_test), place(splits.y_test), config.eval_batch_size)}


def _record(values, decimals: int = 6) -> list:
    return [round(float(v), decimals) for v in values.detach().cpu().double().tolist()]


def run_method(config: TrainConfig, method: str, splits, init_state: dict, *, noise_info: dict,
               out_dir=None, resume: bool = False, progress: bool = True, callback=None) -> dict:
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
        Checkpoints go to ``out_dir/checkpoints/<method>.pt`` after every epoch.
    resume : bool
        Continue from that checkpoint when it exists (a finished method is not rerun).
    progress : bool
        Show a tqdm bar (epochs; loss, accuracy, α/β/δ).
    callback : callable, optional
        ``callback(event)`` after every epoch (and its checkpoint), ``event`` a dict with
        ``method``, ``epoch`` (1-based) and ``record`` (that epoch's history entry).

    Returns
    -------
    dict
        ``method``, ``overrides``, ``freeze``, ``init_state_sha256``, ``metrics`` (``test``,
        ``test_calibrated``, ``temperature``, ``best_epoch``, ``best_val_acc``, ``epochs_run``,
        ``stopped_early``), ``lilaw`` (final α, β, δ or None), ``history`` (list of per-epoch
        dicts: ``epoch``, ``train_loss``, ``train_acc``, ``val_loss`` (cross-entropy), ``val_acc``,
        ``val_acc_clean``, ``lr``, ``warmup``, ``alpha``, ``beta``, ``delta``, ``epoch_time_s``,
        ``time_s`` (cumulative)), ``weights`` ({epoch: {w_alpha, w_beta, w_delta, w}} lists over the training set),
        ``scores`` ({epoch: {name: list}}), ``wall_time_s``.
    """
    from tqdm.auto import tqdm

    overrides = method_overrides(method)
    cfg = config.replace(**overrides)
    if splits.kind != "image" and cfg.amp:  # series (LSTM) models are tiny: keep them in fp32
        cfg = dataclasses.replace(cfg, amp=False)
    device = engine.resolve_device(cfg.device)
    weighted = cfg.weighting == "lilaw"
    model = initial_model(cfg, splits, noise_info.get("batch_resize"))
    model.load_state_dict(init_state)
    init_hash = engine.state_dict_sha256(model.state_dict())
    models.apply_freeze(model, effective_freeze(cfg))
    model.to(device)
    if cfg.channels_last and device.type == "cuda" and splits.kind == "image":
        model.to(memory_format=torch.channels_last)
    net = torch.compile(model) if cfg.compile else model
    data = _batches(splits, noise_info, cfg, device)
    optimizer = _optimizer(cfg, model)
    scheduler, per_step = _scheduler(cfg, optimizer, len(data["train"]))
    lilaw = LiLAW(cfg.alpha, cfg.beta, cfg.delta, active=cfg.active, loss=cfg.loss, gamma=cfg.focal_gamma,
                  detach_weights=cfg.detach_weights, meta_lr=cfg.meta_lr, meta_wd=cfg.meta_wd,
                  constraints=cfg.constraints).to(device) if weighted else None
    gens = {name: engine.make_generator(cfg.seed, name, device if data["train"].resident else "cpu")
            for name in ("shuffle", "augment", "meta")}
    recorders = None
    if cfg.record_scores and not weighted:
        recorders = DifficultyRecorders(len(splits.y_train), splits.num_classes)
    torch.manual_seed(engine.child_seed(cfg.seed, "torch-global"))  # dropout etc.: same for every method
    st = {"epoch": 0, "history": [], "best_acc": -1.0, "best_epoch": 0, "bad_epochs": 0, "elapsed": 0.0,
          "best_state": None, "weights": {}, "scores": {}, "stopped_early": False}
    path = ckpt.checkpoint_path(out_dir, method) if out_dir is not None else None
    saved = ckpt.load_checkpoint(path) if (resume and path is not None) else None
    if saved is not None:
        ckpt.check_resume_config(saved["config"], cfg.to_dict(), path)
        if saved.get("result") is not None:
            return saved["result"]
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(saved["scheduler"])
        if lilaw is not None:
            lilaw.load_state_dict(saved["lilaw"])
        recorders = saved["recorders"]
        ckpt.restore_rng(gens, saved["rng"])
        st = saved["loop"]
    select_labels = noise_info["y_val_clean"] if cfg.select_on == "clean_val" else None
    bar = tqdm(total=cfg.epochs, initial=st["epoch"], desc=method, disable=not progress, leave=False)
    stopped = cfg.patience > 0 and st["bad_epochs"] >= cfg.patience  # resumed after an early stop
    for epoch in range(st["epoch"], st["epoch"] if stopped else cfg.epochs):
        t0 = time.perf_counter()
        warm = epoch < cfg.warmup_epochs
        stats = engine.train_one_epoch(net, optimizer, data["train"], lilaw=lilaw, weighted=weighted and not warm,
                                       meta=weighted and cfg.learn_meta and not warm, val=data["val"],
                                       generators=gens, config=cfg, device=device,
                                       step_scheduler=scheduler if per_step else None)
        if scheduler is not None and not per_step:
            scheduler.step()
        ev = engine.evaluate(net, data["val"], device=device, amp=cfg.amp, channels_last=cfg.channels_last)
        val_clean_acc = float((ev["logits"].argmax(1).cpu() == noise_info["y_val_clean"]).double().mean())
        record = {"epoch": epoch + 1, "train_loss": stats["train_loss"], "train_acc": stats["train_acc"],
                  "val_loss": ev["loss"], "val_acc": ev["acc"], "val_acc_clean": val_clean_acc,
                  "lr": optimizer.param_groups[0]["lr"], "warmup": warm,
                  **(lilaw.state() if lilaw is not None else {"alpha": None, "beta": None, "delta": None})}
        _record_training_set(model, lilaw, recorders, data, cfg, device, epoch + 1, st, splits.num_classes)
        select_acc = val_clean_acc if select_labels is not None else ev["acc"]
        if select_acc > st["best_acc"]:
            st.update(best_acc=select_acc, best_epoch=epoch + 1, bad_epochs=0,
                      best_state={k: v.detach().clone() for k, v in model.state_dict().items()})
        else:
            st["bad_epochs"] += 1
        record["epoch_time_s"] = time.perf_counter() - t0
        st["elapsed"] += record["epoch_time_s"]
        record["time_s"] = st["elapsed"]
        st["history"].append(record)
        st["epoch"] = epoch + 1
        stop = cfg.patience > 0 and st["bad_epochs"] >= cfg.patience
        st["stopped_early"] = stop and epoch + 1 < cfg.epochs
        if path is not None:
            ckpt.save_checkpoint(path, {"config": cfg.to_dict(), "method": method, "model": model.state_dict(),
                                        "optimizer": optimizer.state_dict(),
                                        "scheduler": scheduler.state_dict() if scheduler is not None else None,
                                        "lilaw": lilaw.state_dict() if lilaw is not None else None,
                                        "recorders": recorders, "rng": ckpt.capture_rng(gens), "loop": st,
                                        "result": None})
        bar.update(1)
        bar.set_postfix(_postfix(record))
        if callback is not None:
            callback({"method": method, "epoch": epoch + 1, "record": record})
        if stop:
            break
    bar.close()
    result = _finish(model, net, lilaw, data, splits, noise_info, cfg, device, st)
    result.update(method=method, overrides=overrides, freeze=effective_freeze(cfg), init_state_sha256=init_hash)
    if path is not None:
        ckpt.save_checkpoint(path, {"config": cfg.to_dict(), "method": method, "result": result})
    return result


def _postfix(record: dict) -> dict:
    out = {"loss": f"{record['train_loss']:.3f}", "acc": f"{record['train_acc']:.3f}",
           "val": f"{record['val_acc']:.3f}"}
    if record["alpha"] is not None:
        out.update(a=f"{record['alpha']:.2f}", b=f"{record['beta']:.2f}", d=f"{record['delta']:.2f}")
    return out


def _head(model: nn.Module, num_classes: int):
    """The output layer (last ``nn.Linear`` with ``num_classes`` outputs), or None."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear) and m.out_features == num_classes]
    return linears[-1] if linears else None


def _record_training_set(model, lilaw, recorders, data, cfg, device, epoch: int, st: dict,
                         num_classes: int) -> None:
    """Per-sample LiLAW weights / difficulty scores on the (unaugmented) training set, in eval mode.

    Difficulty recorders also get the output layer's inputs (GraNd's last-layer closed form).
    """
    want_weights = lilaw is not None and epoch in cfg.record_weights_epochs
    if not want_weights and recorders is None:
        return
    features, hook = [], None
    head = _head(model, num_classes) if recorders is not None else None
    if head is not None:
        hook = head.register_forward_hook(lambda mod, inp, out: features.append(inp[0].detach().float().flatten(1)))
    try:
        logits = engine.predict_logits(model, data["train_eval"], device=device, amp=cfg.amp)
    finally:
        if hook is not None:
            hook.remove()
    y = data["train_eval"].y.to(logits.device)
    if want_weights:
        st["weights"][str(epoch)] = {k: _record(v) for k, v in lilaw.weights(logits, y).items()}
    if recorders is not None:
        feats = torch.cat(features).cpu() if features else None
        recorders.update(epoch, logits.cpu(), y.cpu(), features=feats)
        if epoch in cfg.record_weights_epochs:
            st["scores"][str(epoch)] = {k: _record(v) for k, v in recorders.scores().items()}


def _finish(model, net, lilaw, data, splits, noise_info, cfg, device, st) -> dict:
    """Load the selected checkpoint and evaluate it once on the test set (plus temperature scaling)."""
    if st["best_state"] is not None:
        model.load_state_dict(st["best_state"])
    test_logits = engine.predict_logits(net, data["test"], device=device, amp=cfg.amp).cpu()
    y_test = splits.y_test
    out = {"test": metrics.evaluate_predictions(torch.softmax(test_logits, 1), y_test, splits.num_classes),
           "best_epoch": st["best_epoch"], "best_val_acc": st["best_acc"], "epochs_run": st["epoch"],
           "stopped_early": st["stopped_early"]}
    if cfg.temperature_scaling:
        val_logits = engine.predict_logits(net, data["val"], device=device, amp=cfg.amp).cpu()
        temperature = metrics.fit_temperature(val_logits.double(), splits.y_val)
        scaled = metrics.apply_temperature(test_logits.double(), temperature)
        out["temperature"] = temperature
        out["test_calibrated"] = metrics.evaluate_predictions(torch.softmax(scaled, 1), y_test, splits.num_classes)
    return {"metrics": out, "lilaw": lilaw.state() if lilaw is not None else None, "history": st["history"],
            "weights": st["weights"], "scores": st["scores"], "wall_time_s": st["elapsed"]}
