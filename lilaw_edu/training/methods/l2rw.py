"""Learning to Reweight Examples (L2RW; Ren, Zeng, Yang and Urtasun, ICML 2018), Algorithm 1.

Per training batch (n samples, per-sample losses ℓᵢ(θ)) and validation batch:

1. look-ahead: θ'(ε) = θ − η ∇θ Σᵢ εᵢ ℓᵢ(θ), evaluated at ε = 0;
2. the validation loss at θ': L_val(θ'(ε)) = mean_j ℓ(f(x_j^val; θ'(ε)), y_j^val);
3. weights: w̃ᵢ = max(−∂L_val/∂εᵢ |_{ε=0}, 0), wᵢ = w̃ᵢ / Σⱼ w̃ⱼ (all zero -> all weights zero,
   as in the authors' code);
4. the real step on Σᵢ wᵢ ℓᵢ(θ) (the weights carry no gradient).

Both derivatives are taken with :func:`torch.func.grad` through
:func:`torch.func.functional_call`; the model itself is never copied.

Note: at ε = 0 the virtual step is zero (θ' = θ), and by the chain rule
−∂L_val/∂εᵢ = η ∇θL_val(θ)·∇θℓᵢ(θ): the weights are the clipped, normalised alignment of
each sample's gradient with the validation gradient, and do not depend on η > 0 (the
normalisation removes it). The computation below is the literal look-ahead all the same
(the tests check both facts).

L2RW has no hyper-parameter of its own beyond the validation batch (the paper uses a
small clean validation set; here the validation split is as noisy as the training split
unless ``clean_val``).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.func import grad

from lilaw_edu.core.losses import per_sample_loss
from lilaw_edu.training.methods.lookahead import (call, full_precision, lookahead_context, split_state,
                                                   virtual_sgd)

__all__ = ["l2rw_weights", "normalise_weights", "l2rw_step"]


def normalise_weights(raw: Tensor) -> Tensor:
    """max(raw, 0) / Σ max(raw, 0); all zero when the sum is 0 (no host synchronisation).

    Parameters
    ----------
    raw : Tensor, shape (N,)

    Returns
    -------
    Tensor, shape (N,)
        Non-negative, summing to 1 or all zero.
    """
    clipped = raw.clamp(min=0)
    total = clipped.sum()
    return clipped / torch.where(total > 0, total, torch.ones_like(total))


def l2rw_weights(model: nn.Module, x: Tensor, y: Tensor, x_val: Tensor, y_val: Tensor, *,
                 lookahead_lr: float = 1.0, loss: str = "ce", gamma: float = 2.0,
                 val_train_mode: bool = False) -> Tensor:
    """L2RW's per-sample weights for one training batch (steps 1-3 of the module docstring).

    Parameters
    ----------
    model : nn.Module
        The network; its parameters, buffers and mode are left unchanged.
    x : Tensor, shape (N, ...)
    y : Tensor, shape (N,), int64
    x_val : Tensor, shape (M, ...)
    y_val : Tensor, shape (M,), int64
    lookahead_lr : float
        η of the virtual step (> 0; the normalised weights do not depend on it).
    loss : str
        Per-sample loss kind (:func:`lilaw_edu.core.losses.per_sample_loss`), for both losses.
    gamma : float
        Focal-loss γ.
    val_train_mode : bool
        Validation forward at θ' in train mode (default: eval mode, as LiLAW's meta step).

    Returns
    -------
    Tensor, shape (N,)
        Non-negative weights summing to 1 (or all zero), detached.
    """
    if not lookahead_lr > 0:
        raise ValueError(f"lookahead_lr must be > 0, got {lookahead_lr!r}")
    state = split_state(model)
    device = next(iter(state.params.values())).device

    def val_loss_at_lookahead(eps: Tensor) -> Tensor:
        def train_objective(params: dict) -> Tensor:
            logits = call(model, state, params, x, train=True)
            return (eps * per_sample_loss(logits, y, loss, gamma=gamma, check=False)).sum()

        theta_prime = virtual_sgd(state.params, grad(train_objective)(state.params), lookahead_lr)
        val_logits = call(model, state, theta_prime, x_val, train=val_train_mode)
        return per_sample_loss(val_logits, y_val, loss, gamma=gamma, check=False).mean()

    eps = torch.zeros(y.shape[0], device=device, dtype=next(iter(state.params.values())).dtype)
    with lookahead_context(model, device):
        d_eps = grad(val_loss_at_lookahead)(eps)
    return normalise_weights(-d_eps).detach()


def l2rw_step(model: nn.Module, optimizer: torch.optim.Optimizer, x: Tensor, y: Tensor, x_val: Tensor,
              y_val: Tensor, *, loss: str = "ce", gamma: float = 2.0, val_train_mode: bool = False,
              lookahead_lr: float = 1.0) -> dict:
    """One L2RW training step: weights from the look-ahead, then the real step on Σ wᵢ ℓᵢ.

    Parameters
    ----------
    model, optimizer
        The real step runs in the model's current mode (train in the loop).
    x, y, x_val, y_val, loss, gamma, val_train_mode, lookahead_lr
        As in :func:`l2rw_weights`.

    Returns
    -------
    dict
        ``loss`` (0-d, the optimised Σ wᵢ ℓᵢ, detached), ``logits`` ((N, C), detached),
        ``weights`` ((N,), summing to 1 or all zero).
    """
    weights = l2rw_weights(model, x, y, x_val, y_val, lookahead_lr=lookahead_lr, loss=loss, gamma=gamma,
                           val_train_mode=val_train_mode)
    logits = full_precision(model(x))
    objective = (weights * per_sample_loss(logits, y, loss, gamma=gamma, check=False)).sum()
    optimizer.zero_grad(set_to_none=True)
    objective.backward()
    optimizer.step()
    return {"loss": objective.detach(), "logits": logits.detach(), "weights": weights}
