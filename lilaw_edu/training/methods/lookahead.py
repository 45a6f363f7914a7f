"""The look-ahead shared by L2RW and Meta-Weight-Net, written with ``torch.func``.

Both methods take a *virtual* SGD step of the network, θ' = θ − η ∇θ L_train(θ),
differentiate a validation loss at θ' with respect to something the training loss
depends on (L2RW: per-sample weights ε; MW-Net: the weighting network's parameters ψ),
and throw θ' away. With :func:`torch.func.functional_call` the network is evaluated at
θ' without copying the module.

Buffers (batch norm)
--------------------
A forward pass in train mode updates batch-norm running statistics in place. The
virtual passes must not touch the real model, and ``torch.func`` transforms forbid
in-place writes to tensors captured from outside, so every train-mode virtual pass gets
fresh *clones* of the buffers (made inside the transformed function): it normalises with
batch statistics, as the real step does, and its running-statistics update lands in the
clones, which are discarded. The validation forward at θ' runs in the mode the caller
asks for (eval by default, as LiLAW's meta step) and reads the real running statistics
(never written). The real buffers are updated once per step, by the real training
forward. Parameters with ``requires_grad=False`` (frozen layers) are passed along
unchanged and get no virtual update.

Recurrent layers
----------------
Second-order gradients through ``nn.LSTM`` on CPU cannot use the fused oneDNN kernel
(its backward is not differentiable, and forward-mode AD is not implemented for it),
so :func:`lookahead_context` disables oneDNN inside the look-ahead of a model with
recurrent layers: PyTorch then runs the LSTM step by step, which is exact but slow
(about 25 times a plain training step for the 140-step ECG5000 LSTM on one CPU
thread). On CUDA, cuDNN's RNN does not support double backward, so cuDNN is disabled
there in the same way (for models with recurrent layers only).
"""
from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.func import functional_call

__all__ = ["StateSplit", "split_state", "call", "virtual_sgd", "lookahead_context", "full_precision"]


@dataclass
class StateSplit:
    """A model's state split for ``functional_call``.

    Attributes
    ----------
    params : dict of str -> Tensor
        Trainable parameters, detached (the look-ahead differentiates with respect to them).
    frozen : dict of str -> Tensor
        Parameters with ``requires_grad=False``, detached; never updated.
    buffers : dict of str -> Tensor
        Detached copies of the buffers (read by eval-mode passes; cloned again by train-mode passes).
    """

    params: dict
    frozen: dict
    buffers: dict


def split_state(model: nn.Module) -> StateSplit:
    """Detached trainable parameters, frozen parameters and buffer copies of ``model``."""
    params, frozen = {}, {}
    for name, p in model.named_parameters():
        (params if p.requires_grad else frozen)[name] = p.detach()
    return StateSplit(params, frozen, {k: b.detach().clone() for k, b in model.named_buffers()})


def call(model: nn.Module, state: StateSplit, params: dict, x: Tensor, *, train: bool) -> Tensor:
    """``model(x)`` with ``params`` (and ``state``'s frozen parameters and buffers), in train or eval mode.

    Parameters
    ----------
    model : nn.Module
    state : StateSplit
    params : dict of str -> Tensor
        The trainable parameters to use (e.g. θ or the virtual θ').
    x : Tensor, shape (N, ...)
    train : bool
        Mode of the pass (batch norm, dropout); the model's own mode is restored afterwards.
        Train-mode passes write running statistics into fresh clones of the buffers.

    Returns
    -------
    Tensor, shape (N, C)
        Logits.
    """
    was_training = model.training
    model.train(train)
    try:
        buffers = {k: b.clone() for k, b in state.buffers.items()} if train else state.buffers
        return functional_call(model, (params, state.frozen, buffers), (x,))
    finally:
        model.train(was_training)


def virtual_sgd(params: dict, grads: dict, lr: float) -> dict:
    """θ' = θ − lr · g for every trainable parameter (no momentum: the look-ahead of both papers)."""
    return {name: p - lr * grads[name] for name, p in params.items()}


def lookahead_context(model: nn.Module, device: torch.device):
    """Disable the fused RNN kernels that have no double backward when ``model`` holds an RNN.

    oneDNN on CPU, cuDNN on CUDA; models without recurrent layers are left on the fast kernels.
    """
    stack = contextlib.ExitStack()
    if any(isinstance(m, nn.RNNBase) for m in model.modules()):
        stack.enter_context(warnings.catch_warnings())  # torch warns about TF32 on oneDNN when flags change
        warnings.filterwarnings("ignore", message="TF32 acceleration on top of oneDNN")
        stack.enter_context(torch.backends.mkldnn.flags(enabled=False))
        if device.type == "cuda":
            stack.enter_context(torch.backends.cudnn.flags(enabled=False))
    return stack


def full_precision(logits: Tensor) -> Tensor:
    """Half/bfloat16 logits (autocast) as float32; float32 and float64 logits unchanged."""
    return logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
