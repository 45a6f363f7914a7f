"""Cheaper meta steps (issue 13): how often, on how much validation data, and how the
validation forward is launched.

LiLAW's meta step (Algorithm 1, lines 12-20) updates three scalars from the network's
outputs on one validation mini-batch; its whole cost is that forward pass. The levers,
all :class:`~lilaw_edu.training.config.TrainConfig` fields:

``meta_every`` (k)
    A meta step after training steps k, 2k, 3k, ... (1-based, counted over the whole run
    from the epoch number, so a resumed run counts the same). k = 1 is Algorithm 1.
``meta_lr_scale_with_k``
    The meta step's learning rate is ``meta_lr * k`` (the same drift of α, β, δ per
    epoch for a gradient that changes slowly), see :func:`effective_meta_lr`.
``meta_val_divisor`` (r)
    The validation mini-batch holds ``ceil(batch_size / r)`` samples (when
    ``val_batch_size`` is None), see :func:`meta_val_batch_size`.
``meta_fused_forward``
    One forward of the concatenated training and validation batches, outputs split
    (:func:`fused_forward`); only for models without batch norm (:func:`check_fusable`).
    The validation outputs are then those of the parameters *before* the optimiser
    step (Algorithm 1 uses the parameters after it): a one-step-stale meta-gradient.
``meta_cuda_stream``, ``meta_cuda_graph``
    CUDA only (exact no-ops elsewhere): the validation forward and meta step run on a
    second stream, overlapping the next training step's forward up to its loss
    (:class:`MetaSchedule`); the validation forward and meta step are captured once as
    a CUDA graph and replayed (:class:`GraphedMetaStep`).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["meta_val_batch_size", "effective_meta_lr", "meta_due", "training_dependent_modules", "check_fusable",
           "fused_forward", "draw_val_batch", "GraphedMetaStep", "MetaSchedule"]

_BATCH_NORMS = (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm)


def meta_val_batch_size(config) -> int:
    """Samples in the meta step's validation batch: ``val_batch_size`` or ``ceil(batch_size / meta_val_divisor)``."""
    if config.val_batch_size is not None:
        return int(config.val_batch_size)
    return math.ceil(config.batch_size / config.meta_val_divisor)


def effective_meta_lr(config) -> float:
    """The meta step's learning rate: ``meta_lr``, times ``meta_every`` when ``meta_lr_scale_with_k``."""
    return config.meta_lr * (config.meta_every if config.meta_lr_scale_with_k else 1)


def meta_due(step: int, every: int) -> bool:
    """True when a meta step is due after the 1-based training step ``step`` (``step % every == 0``)."""
    return step % every == 0


def training_dependent_modules(model: nn.Module) -> dict:
    """Modules whose output depends on the batch or on train/eval mode.

    Returns
    -------
    dict
        ``"batch_norm"``: names of batch/instance-norm modules (they normalise with statistics of the
        whole batch in train mode, so a fused batch would mix training and validation samples);
        ``"dropout"``: names of dropout modules and RNNs with ``p > 0`` (active in train mode only).
    """
    found = {"batch_norm": [], "dropout": []}
    for name, module in model.named_modules():
        if isinstance(module, _BATCH_NORMS) and (module.training or module.track_running_stats):
            found["batch_norm"].append(name or type(module).__name__)
        elif isinstance(module, nn.modules.dropout._DropoutNd) and module.p > 0:
            found["dropout"].append(name)
        elif isinstance(module, nn.RNNBase) and module.dropout > 0:
            found["dropout"].append(name)
    return found


def check_fusable(model: nn.Module, meta_val_mode: str) -> None:
    """Refuse ``meta_fused_forward`` for a model whose fused outputs would differ from separate forwards.

    Raises
    ------
    ValueError
        The model has batch norm (any ``meta_val_mode``), or dropout while ``meta_val_mode`` is
        ``"eval"`` (the fused forward runs in train mode); the message names the modules.
    """
    found = training_dependent_modules(model)
    if found["batch_norm"]:
        raise ValueError(f"meta_fused_forward=True needs a model without batch norm (a fused batch would share "
                         f"batch statistics between training and validation samples), but "
                         f"{type(model).__name__} has {found['batch_norm'][:4]}; use meta_fused_forward=False")
    if found["dropout"] and meta_val_mode == "eval":
        raise ValueError(f"meta_fused_forward=True runs the validation samples in train mode, but "
                         f"meta_val_mode='eval' and {type(model).__name__} has active dropout "
                         f"{found['dropout'][:4]}; use meta_val_mode='train' or meta_fused_forward=False")


def fused_forward(model: nn.Module, x: Tensor, x_val: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """Training logits and (detached) validation logits from one forward of ``cat([x, x_val])``.

    Parameters
    ----------
    model : nn.Module
        Checked with :func:`check_fusable` by the caller.
    x : Tensor, shape (N, ...)
    x_val : Tensor, shape (M, ...) or None
        None: a plain ``model(x)``.

    Returns
    -------
    logits : Tensor, shape (N, C), attached to the graph
    val_logits : Tensor, shape (M, C), detached, or None
    """
    if x_val is None:
        return model(x), None
    out = model(torch.cat([x, x_val.to(x.dtype)]))
    return out[:x.shape[0]], out[x.shape[0]:].detach()


def draw_val_batch(val, batch_size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """One random validation mini-batch of ``min(batch_size, val.n)`` samples, as ``engine.meta_update`` draws it."""
    idx = torch.randperm(val.n, generator=generator, device=generator.device)[:batch_size]
    return val.take(idx)


class GraphedMetaStep:
    """``step_fn(x_val, y_val)`` (validation forward + meta step) captured as a CUDA graph, replayed per call.

    Inputs are copied into static buffers; a batch of another shape runs ``step_fn`` eagerly.
    The warm-up and capture do not change α, β, δ: their state is saved before and restored after.

    Parameters
    ----------
    step_fn : callable
        ``step_fn(x_val, y_val) -> dict`` of 0-d tensors (no host synchronisation inside).
    lilaw : nn.Module
        The module ``step_fn`` updates (its state is restored after the capture).
    x_val : Tensor, shape (M, ...) ; y_val : Tensor, shape (M,)
        A first batch on the CUDA device (shapes and dtypes of the static buffers).
    """

    def __init__(self, step_fn, lilaw: nn.Module, x_val: Tensor, y_val: Tensor):
        self.step_fn = step_fn
        self.static_x, self.static_y = x_val.clone(), y_val.clone()
        saved = {k: v.detach().clone() for k, v in lilaw.state_dict(keep_vars=True).items()}
        saved_skips = lilaw.skipped_meta_steps.clone()
        side = torch.cuda.Stream(device=x_val.device)
        side.wait_stream(torch.cuda.current_stream(x_val.device))
        with torch.cuda.stream(side):
            for _ in range(3):  # warm-up (allocator, cuDNN/cuBLAS workspaces) outside the capture
                step_fn(self.static_x, self.static_y)
        torch.cuda.current_stream(x_val.device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.static_out = step_fn(self.static_x, self.static_y)
        with torch.no_grad():
            for key, value in lilaw.state_dict(keep_vars=True).items():
                if key in saved:
                    value.copy_(saved[key])
            lilaw.skipped_meta_steps.copy_(saved_skips)

    def __call__(self, x_val: Tensor, y_val: Tensor) -> dict:
        if x_val.shape != self.static_x.shape or y_val.shape != self.static_y.shape:
            return self.step_fn(x_val, y_val)
        self.static_x.copy_(x_val)
        self.static_y.copy_(y_val)
        self.graph.replay()
        return self.static_out


class MetaSchedule:
    """When and how one epoch's meta steps run (see the module docstring).

    Parameters
    ----------
    model : nn.Module
    lilaw : nn.Module
    config : TrainConfig
    device : torch.device
    step_fn : callable
        ``step_fn(x_val, y_val) -> dict``: the validation forward and meta step on one batch.

    Raises
    ------
    ValueError
        ``meta_fused_forward`` on a model that cannot be fused (:func:`check_fusable`).
    """

    def __init__(self, model: nn.Module, lilaw: nn.Module, config, device: torch.device, step_fn):
        self.every, self.fused = int(config.meta_every), bool(config.meta_fused_forward)
        if self.fused:
            check_fusable(model, config.meta_val_mode)
        cuda = device.type == "cuda"
        self.lilaw, self.step_fn, self.graph = lilaw, step_fn, None
        self.use_graph = cuda and config.meta_cuda_graph
        self.stream = torch.cuda.Stream(device=device) if cuda and config.meta_cuda_stream else None
        self.event, self.meta_steps = None, 0

    def due(self, step: int) -> bool:
        """A meta step after the 1-based training step ``step`` (counted over the run)?"""
        return meta_due(step, self.every)

    def _run(self, x_val: Tensor, y_val: Tensor) -> dict:
        if self.use_graph and self.graph is None:
            self.graph = GraphedMetaStep(self.step_fn, self.lilaw, x_val, y_val)
        return (self.graph or self.step_fn)(x_val, y_val)

    def fused_step(self, val_logits: Tensor, y_val: Tensor) -> None:
        """The meta step on validation logits from :func:`fused_forward` (always on the current stream)."""
        self.meta_steps += 1
        self.lilaw.meta_step(val_logits.float(), y_val, sync=False)

    def launch(self, x_val: Tensor, y_val: Tensor) -> None:
        """Run the meta step on ``(x_val, y_val)``: here, or on the side stream (CUDA, ``meta_cuda_stream``)."""
        self.meta_steps += 1
        if self.stream is None:
            self._run(x_val, y_val)
            return
        main = torch.cuda.current_stream(self.stream.device)
        self.stream.wait_stream(main)  # after the optimiser step that wrote the parameters
        for t in (x_val, y_val):
            t.record_stream(self.stream)
        with torch.cuda.stream(self.stream):
            self._run(x_val, y_val)
            self.event = torch.cuda.Event()
            self.event.record(self.stream)

    def wait(self) -> None:
        """Make the current stream wait for a meta step launched on the side stream (no-op otherwise)."""
        if self.event is not None:
            torch.cuda.current_stream(self.stream.device).wait_event(self.event)
            self.event = None
