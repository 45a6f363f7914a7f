"""Meta-Weight-Net (MW-Net; Shu, Xie, Yi, Zhao, Zhou, Xu and Meng, NeurIPS 2019), Algorithm 1.

A small MLP V(ℓ; ψ) (1-100-1, ReLU, sigmoid output) maps a sample's training loss to its
weight. Per training batch (n samples) and validation batch (m samples):

1. look-ahead: θ̂(ψ) = θ − η ∇θ (1/n) Σᵢ V(ℓᵢ(θ); ψ) ℓᵢ(θ)  (the loss fed to V is detached,
   as in the authors' code);
2. meta step: ψ ← optimiser step on ∇ψ (1/m) Σⱼ ℓ(f(x_j^val; θ̂(ψ)), y_j^val);
3. real step: θ ← optimiser step on (1/n) Σᵢ V(ℓᵢ(θ); ψ_new) ℓᵢ(θ), the weights computed
   by the *updated* net and carrying no gradient.

Paper defaults: hidden width 100; the net is trained with Adam, learning rate 1e-3,
weight decay 1e-4; η is the classifier's current learning rate (the paper's classifier
uses SGD; with Adam here, the virtual step is still a plain SGD step with the current
learning rate, as in the authors' code). The ψ-gradient goes through
:func:`torch.func.grad` of a function of ψ that builds θ̂(ψ) with an inner
:func:`torch.func.grad` and evaluates the network with :func:`torch.func.functional_call`.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad

from lilaw_edu.core.losses import per_sample_loss
from lilaw_edu.training.methods.lookahead import (call, full_precision, lookahead_context, split_state,
                                                   virtual_sgd)

__all__ = ["MetaWeightNet", "make_mwnet", "mwnet_meta_step", "mwnet_step"]


class MetaWeightNet(nn.Module):
    """V(ℓ; ψ): per-sample loss -> weight in (0, 1).

    Parameters
    ----------
    hidden : int
        Width of the hidden layer (paper: 100).
    """

    def __init__(self, hidden: int = 100):
        super().__init__()
        if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
            raise ValueError(f"hidden must be an integer >= 1, got {hidden!r}")
        self.net = nn.Sequential(nn.Linear(1, hidden), nn.ReLU(), nn.Linear(hidden, 1), nn.Sigmoid())

    def forward(self, losses: Tensor) -> Tensor:
        """losses : (N,) -> weights (N,)."""
        return self.net(losses[:, None]).squeeze(1)


def make_mwnet(hidden: int, lr: float, weight_decay: float, *, seed: int, device) -> tuple:
    """A seeded :class:`MetaWeightNet` on ``device`` and its Adam optimiser (the paper's choice).

    The global random state is left untouched.

    Returns
    -------
    (MetaWeightNet, torch.optim.Adam)
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        vnet = MetaWeightNet(hidden)
    vnet.to(device)
    return vnet, torch.optim.Adam(vnet.parameters(), lr=lr, weight_decay=weight_decay)


def mwnet_meta_step(model: nn.Module, vnet: MetaWeightNet, vnet_optimizer: torch.optim.Optimizer, x: Tensor,
                    y: Tensor, x_val: Tensor, y_val: Tensor, *, lookahead_lr: float, loss: str = "ce",
                    gamma: float = 2.0, val_train_mode: bool = False) -> Tensor:
    """Steps 1-2: the look-ahead with V's weights, then one optimiser step of ψ on the validation loss.

    Parameters
    ----------
    model : nn.Module
        The classifier; its parameters, buffers, gradients and mode are left unchanged.
    vnet, vnet_optimizer
        The weighting net and its optimiser (``vnet``'s ``.grad`` is overwritten).
    x : Tensor, shape (N, ...) ; y : Tensor, shape (N,)
    x_val : Tensor, shape (M, ...) ; y_val : Tensor, shape (M,)
    lookahead_lr : float
        η of the virtual step (> 0).
    loss, gamma
        Per-sample loss kind and focal γ (:func:`lilaw_edu.core.losses.per_sample_loss`).
    val_train_mode : bool
        Validation forward at θ̂ in train mode (default: eval mode).

    Returns
    -------
    Tensor, shape ()
        The validation loss at θ̂(ψ) before ψ's step, detached.
    """
    if not lookahead_lr > 0:
        raise ValueError(f"lookahead_lr must be > 0, got {lookahead_lr!r}")
    state = split_state(model)
    psi = {k: v.detach() for k, v in vnet.named_parameters()}
    device = next(iter(state.params.values())).device

    def val_loss_of_psi(psi_: dict) -> tuple:
        def train_objective(params: dict) -> Tensor:
            losses = per_sample_loss(call(model, state, params, x, train=True), y, loss, gamma=gamma, check=False)
            weights = functional_call(vnet, psi_, (losses.detach(),))
            return (weights * losses).mean()

        theta_hat = virtual_sgd(state.params, grad(train_objective)(state.params), lookahead_lr)
        val_logits = call(model, state, theta_hat, x_val, train=val_train_mode)
        value = per_sample_loss(val_logits, y_val, loss, gamma=gamma, check=False).mean()
        return value, value.detach()

    with lookahead_context(model, device):
        grads, val_loss = grad(val_loss_of_psi, has_aux=True)(psi)
    for name, p in vnet.named_parameters():
        p.grad = grads[name].detach()
    vnet_optimizer.step()
    return val_loss


def mwnet_step(model: nn.Module, optimizer: torch.optim.Optimizer, vnet: MetaWeightNet,
               vnet_optimizer: torch.optim.Optimizer, x: Tensor, y: Tensor, x_val: Tensor, y_val: Tensor, *,
               loss: str = "ce", gamma: float = 2.0, val_train_mode: bool = False,
               lookahead_lr: float | None = None) -> dict:
    """One MW-Net training step (steps 1-3 of the module docstring).

    Parameters
    ----------
    model, optimizer
        The classifier and its optimiser; the real step runs in the model's current mode.
    vnet, vnet_optimizer
        :class:`MetaWeightNet` and its optimiser.
    x, y, x_val, y_val, loss, gamma, val_train_mode
        As in :func:`mwnet_meta_step`.
    lookahead_lr : float, optional
        η; default: the optimiser's current learning rate (first parameter group).

    Returns
    -------
    dict
        ``loss`` (0-d, the optimised weighted mean, detached), ``logits`` ((N, C), detached),
        ``weights`` ((N,), in (0, 1)), ``val_loss`` (0-d, at θ̂ before ψ's step).
    """
    eta = float(optimizer.param_groups[0]["lr"]) if lookahead_lr is None else lookahead_lr
    val_loss = mwnet_meta_step(model, vnet, vnet_optimizer, x, y, x_val, y_val, lookahead_lr=eta, loss=loss,
                               gamma=gamma, val_train_mode=val_train_mode)
    logits = full_precision(model(x))
    losses = per_sample_loss(logits, y, loss, gamma=gamma, check=False)
    with torch.no_grad():
        weights = vnet(losses.detach())
    objective = (weights * losses).mean()
    optimizer.zero_grad(set_to_none=True)
    objective.backward()
    optimizer.step()
    return {"loss": objective.detach(), "logits": logits.detach(), "weights": weights, "val_loss": val_loss}
