"""The LiLAW weights (paper eqs. 2–6) and their meta step (Algorithm 1, lines 12–20).

For a sample with softmax vector ``s`` and observed label ``y`` write
``s_y = s[y]`` and ``m = max_j s[j]``. LiLAW weights the sample's loss by

* ``W_α = σ(α·s_y − m)``            (eq. 2, large for easy samples),
* ``W_β = σ(−(β·s_y − m))``         (eq. 3, large for hard samples),
* ``W_δ = exp(−(δ·s_y − m)² / 2)``  (eq. 4, large for moderate samples),
* ``W = W_α + W_β + W_δ``           (eq. 5), and the loss is ``L_W = W·ℓ`` (eq. 6).

Only three scalars are learned. After each training step they take one
gradient step on a validation mini-batch; the network's outputs on that
batch are computed without a graph, so the meta step costs one forward pass.
"""
from __future__ import annotations

import math
from typing import Iterable, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lilaw_edu._internal.checks import PROB_SUM_ATOL, check_prob_rows
from lilaw_edu.core.losses import LOSS_KINDS, check_logits_targets, per_sample_loss

Scalar = Union[float, int, Tensor]
PARAM_NAMES = ("alpha", "beta", "delta")
_LETTER = {"a": "alpha", "b": "beta", "d": "delta"}


def _check_scalar(value: Scalar, name: str) -> None:
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise ValueError(f"{name} must be a Python float or a 0-d tensor, got a tensor of shape {tuple(value.shape)}")
        if not torch.isfinite(value.detach()).item():
            raise ValueError(f"{name} must be finite, got {value.item()}")
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value}")
    else:
        raise TypeError(f"{name} must be a Python float or a 0-d tensor, got {type(value).__name__}")


def check_probs(probs: Tensor, targets: Tensor, *, atol: float = PROB_SUM_ATOL) -> None:
    """Check that ``probs`` are softmax probabilities and ``targets`` class indices.

    Parameters
    ----------
    probs : Tensor, shape (N, C)
        Rows must be non-negative and sum to 1 (within ``atol``).
    targets : Tensor, shape (N,)
        int64 labels in ``[0, C)``.
    atol : float
        Tolerance on the row sums.

    Raises
    ------
    TypeError, ValueError
        With a message naming the parameter, the value found and what is allowed.
        Logits passed by mistake are caught by the row-sum check.
    """
    check_logits_targets(probs, targets, name="probs")
    check_prob_rows("probs", probs, atol)


def _full_precision(logits: Tensor) -> Tensor:
    """Upcast half/bfloat16 logits (autocast) to float32; keep float32/float64 as is."""
    return logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits


def label_and_max_prob(probs: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
    """Return ``(s_y, m)``: the label's probability and the largest probability.

    Parameters
    ----------
    probs : Tensor, shape (N, C)
    targets : Tensor, shape (N,)

    Returns
    -------
    s_y, m : Tensor, shape (N,) each
    """
    s_y = probs.gather(1, targets[:, None]).squeeze(1)
    return s_y, probs.max(dim=1).values


def weight_components(probs: Tensor, targets: Tensor, alpha: Scalar, beta: Scalar,
                      delta: Scalar) -> tuple[Tensor, Tensor, Tensor]:
    """The three LiLAW weights of every sample (paper eqs. 2–4).

    Parameters
    ----------
    probs : Tensor, shape (N, C)
        Softmax probabilities (rows sum to 1).
    targets : Tensor, shape (N,)
        Observed labels, int64 in ``[0, C)``.
    alpha, beta, delta : float or 0-d Tensor
        The LiLAW parameters. Gradients flow to them when they are tensors
        that require grad.

    Returns
    -------
    w_alpha, w_beta, w_delta : Tensor, shape (N,) each
        ``σ(α s_y − m)``, ``σ(−(β s_y − m))`` and ``exp(−(δ s_y − m)²/2)``.

    Examples
    --------
    >>> p = torch.tensor([[0.95, 0.05]]); y = torch.tensor([0])
    >>> [round(float(w), 4) for w in weight_components(p, y, 10.0, 2.0, 6.0)]
    [0.9998, 0.2789, 0.0]
    """
    for value, name in ((alpha, "alpha"), (beta, "beta"), (delta, "delta")):
        _check_scalar(value, name)
    check_probs(probs, targets)
    return _components(probs, targets, alpha, beta, delta)


def _components(probs: Tensor, targets: Tensor, alpha: Scalar, beta: Scalar,
                delta: Scalar) -> tuple[Tensor, Tensor, Tensor]:
    """Eqs. 2–4 without input checks (the training loop's hot path; no host sync)."""
    s_y, m = label_and_max_prob(probs, targets)
    w_alpha = torch.sigmoid(alpha * s_y - m)
    w_beta = torch.sigmoid(-(beta * s_y - m))
    w_delta = torch.exp(-0.5 * (delta * s_y - m) ** 2)
    return w_alpha, w_beta, w_delta


def parse_active(active: Union[str, Iterable[str]]) -> tuple[str, ...]:
    """Normalise an ablation spec (paper Table 6) to a tuple of parameter names.

    Parameters
    ----------
    active : str or iterable of str
        Letters from ``"abd"`` (e.g. ``"ad"``) or names from ``("alpha", "beta", "delta")``.

    Returns
    -------
    tuple of str
        The active names in the order alpha, beta, delta.
    """
    if isinstance(active, str):
        names = {_LETTER.get(ch) for ch in active} if active not in PARAM_NAMES else {active}
        bad = None in names
    else:
        names = set(active)
        bad = not names <= set(PARAM_NAMES)
    if bad or not names:
        raise ValueError(f"active must be a non-empty subset of 'abd' (alpha, beta, delta), got {active!r}")
    return tuple(n for n in PARAM_NAMES if n in names)


def lilaw_weights(probs: Tensor, targets: Tensor, alpha: Scalar, beta: Scalar, delta: Scalar,
                  active: Union[str, Iterable[str]] = "abd") -> Tensor:
    """The LiLAW sample weight ``W = W_α + W_β + W_δ`` (paper eq. 5).

    Parameters
    ----------
    probs : Tensor, shape (N, C)
        Softmax probabilities.
    targets : Tensor, shape (N,)
        Observed labels, int64.
    alpha, beta, delta : float or 0-d Tensor
        The LiLAW parameters.
    active : str or iterable of str
        Which terms enter the sum (paper Table 6 ablation); inactive terms drop out.

    Returns
    -------
    Tensor, shape (N,)
        The weight of every sample, in ``(0, 3)``.
    """
    names = parse_active(active)
    parts = dict(zip(PARAM_NAMES, weight_components(probs, targets, alpha, beta, delta)))
    return sum(parts[n] for n in names)


class LiLAW(nn.Module):
    """Three learnable scalars that weight each sample's loss.

    Parameters
    ----------
    alpha, beta, delta : float
        Initial values (paper §4.2: 10, 2, 6).
    active : str
        Ablation: the subset of ``"abd"`` whose terms enter ``W``.
    loss : {"ce", "focal", "gce", "sce"}
        Per-sample loss ``ℓ`` that ``W`` multiplies.
    gamma : float
        Focal-loss exponent (used when ``loss="focal"``).
    detach_weights : bool
        If False (default, as the authors' code), the training loss
        back-propagates into the network through ``W`` as well as through ``ℓ``.
        If True, ``W`` is treated as a constant in the training step.
    meta_lr, meta_wd : float
        Step size and weight decay of the meta step (paper: 0.005 and 1e-4).
    constraints : bool
        After each meta step clamp ``α ≥ 1`` and ``δ ≥ β`` (as the authors' code
        does, setting ``δ ← max(δ, β)``).
    check_inputs : bool
        False (default): checks that read tensor metadata only (no GPU-host sync): types,
        dtypes (float or bool labels raise ``TypeError``), shapes, empty batches; labels on
        the CPU are range-checked too. A meta step whose loss or gradients are NaN/inf is
        skipped on the device and counted (:meth:`pop_skipped_meta_steps`, reported by the
        training loop each epoch). True: also finite scores and labels in range on every
        device (one host sync per batch), raising ``ValueError``.
    """

    def __init__(self, alpha: float = 10.0, beta: float = 2.0, delta: float = 6.0, *,
                 active: str = "abd", loss: str = "ce", gamma: float = 2.0,
                 detach_weights: bool = False, meta_lr: float = 0.005, meta_wd: float = 1e-4,
                 constraints: bool = True, check_inputs: bool = False) -> None:
        super().__init__()
        for value, name in ((alpha, "alpha"), (beta, "beta"), (delta, "delta"),
                            (meta_lr, "meta_lr"), (meta_wd, "meta_wd"), (gamma, "gamma")):
            _check_scalar(float(value) if isinstance(value, int) else value, name)
        if loss not in LOSS_KINDS:
            raise ValueError(f"loss must be one of {LOSS_KINDS}, got {loss!r}")
        if meta_lr < 0 or meta_wd < 0:
            raise ValueError(f"meta_lr and meta_wd must be >= 0, got meta_lr={meta_lr}, meta_wd={meta_wd}")
        self.alpha = nn.Parameter(torch.tensor(float(alpha)))
        self.beta = nn.Parameter(torch.tensor(float(beta)))
        self.delta = nn.Parameter(torch.tensor(float(delta)))
        self.active = parse_active(active)
        self.loss, self.gamma = loss, float(gamma)
        self.detach_weights, self.constraints = detach_weights, constraints
        self.meta_lr, self.meta_wd = float(meta_lr), float(meta_wd)
        if not isinstance(check_inputs, bool) or not isinstance(constraints, bool) or \
                not isinstance(detach_weights, bool):
            raise TypeError(f"check_inputs, constraints and detach_weights must be True or False, got "
                            f"{check_inputs!r}, {constraints!r}, {detach_weights!r}")
        self.check_inputs, self.grad_reducer = check_inputs, None  # grad_reducer: see meta_step
        self.register_buffer("skipped_meta_steps", torch.zeros((), dtype=torch.int64), persistent=False)
        if constraints:
            self.apply_constraints()

    def _weights(self, probs: Tensor, targets: Tensor, params: tuple[Tensor, Tensor, Tensor]) -> Tensor:
        parts = dict(zip(PARAM_NAMES, _components(probs, targets, *params)))
        return sum(parts[n] for n in self.active)

    def _per_sample_loss(self, logits: Tensor, targets: Tensor) -> Tensor:
        """Checks the batch (see ``check_inputs``), then the unreduced loss, shape (N,)."""
        check_logits_targets(logits, targets, values=self.check_inputs)
        if not self.check_inputs and targets.device.type == "cpu" and \
                (int(targets.min()) < 0 or int(targets.max()) >= logits.shape[1]):
            raise ValueError(f"targets must lie in [0, {logits.shape[1] - 1}], got values in "
                             f"[{int(targets.min())}, {int(targets.max())}]")
        return per_sample_loss(logits, targets, self.loss, gamma=self.gamma, check=False)

    def pop_skipped_meta_steps(self) -> int:
        """Number of meta steps skipped as non-finite since the last call, then reset to 0 (one host sync)."""
        count = int(self.skipped_meta_steps)
        self.skipped_meta_steps.zero_()
        return count

    @torch.no_grad()
    def weights(self, logits: Tensor, targets: Tensor) -> dict[str, Tensor]:
        """Current weights of a batch, for logging and mislabel detection.

        Parameters
        ----------
        logits : Tensor, shape (N, C)
        targets : Tensor, shape (N,)

        Returns
        -------
        dict
            ``w_alpha``, ``w_beta``, ``w_delta`` (each shape (N,), all three
            whatever ``active`` is) and ``w`` (shape (N,), the sum of the active terms).
        """
        check_logits_targets(logits, targets)
        probs = torch.softmax(_full_precision(logits), dim=1)
        parts = _components(probs, targets, self.alpha, self.beta, self.delta)
        out = dict(zip(("w_alpha", "w_beta", "w_delta"), parts))
        out["w"] = sum(out["w_" + n] for n in self.active)
        return out

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        """Training loss ``mean_i W_i·ℓ_i`` with α, β, δ held fixed (Algorithm 1, lines 6–8).

        Parameters
        ----------
        logits : Tensor, shape (N, C)
            Network outputs, attached to the network's graph.
        targets : Tensor, shape (N,)

        Returns
        -------
        Tensor, shape ()
            Scalar loss; back-propagating it reaches the network only.
        """
        losses = self._per_sample_loss(logits, targets)
        probs = torch.softmax(_full_precision(logits), dim=1)
        if self.detach_weights:
            probs = probs.detach()
        fixed = (self.alpha.detach(), self.beta.detach(), self.delta.detach())
        return (self._weights(probs, targets, fixed) * losses).mean()

    def meta_loss(self, logits: Tensor, targets: Tensor) -> Tensor:
        """Validation loss as a function of α, β, δ only (Algorithm 1, lines 13–15).

        Parameters
        ----------
        logits : Tensor, shape (N, C)
            Network outputs on a validation batch; they are detached here,
            so no graph through the network is built or used.
        targets : Tensor, shape (N,)

        Returns
        -------
        Tensor, shape ()
            ``mean_i W_i(α, β, δ)·ℓ_i``; differentiable in α, β, δ.
        """
        logits = _full_precision(logits.detach())
        losses = self._per_sample_loss(logits, targets)
        probs = torch.softmax(logits, dim=1)
        return (self._weights(probs, targets, (self.alpha, self.beta, self.delta)) * losses).mean()

    def meta_step(self, val_logits: Tensor, val_targets: Tensor, *, sync: bool = True) -> dict:
        """One SGD step with weight decay on α, β, δ (Algorithm 1, lines 16–20).

        ``p ← p − lr·(∂L_W/∂p + wd·p)`` for each active parameter, then the
        constraints. The network is not touched: call it as
        ``with torch.no_grad(): val_logits = model(x_val)``. When the loss or a gradient
        is NaN/inf the parameters are left as they are and ``skipped_meta_steps`` grows
        by one (decided on the device, no host synchronisation).

        Parameters
        ----------
        val_logits : Tensor, shape (M, C)
            Network outputs on one random validation mini-batch.
        val_targets : Tensor, shape (M,)
        sync : bool
            If True, return Python floats (one host synchronisation); if False,
            return detached 0-d tensors so that a GPU training loop never waits.

        Returns
        -------
        dict
            ``alpha``, ``beta``, ``delta`` after the step, ``val_loss`` before it and
            ``skipped`` (True when the non-finite guard skipped the step).
        """
        params = [getattr(self, n) for n in self.active]
        loss = self.meta_loss(val_logits, val_targets)
        grads = torch.autograd.grad(loss, params)
        if self.grad_reducer is not None:  # DDP: mean over ranks (lilaw_edu.training.ddp)
            grads = self.grad_reducer(grads)
        with torch.no_grad():
            finite = torch.isfinite(loss) & torch.stack([torch.isfinite(g) for g in grads]).all()
            for p, g in zip(params, grads):
                p.copy_(torch.where(finite, p - self.meta_lr * (g + self.meta_wd * p), p))
            if self.constraints:
                self.apply_constraints()
            self.skipped_meta_steps += (~finite).long()
        if not sync:
            return {**{n: getattr(self, n).detach().clone() for n in PARAM_NAMES}, "val_loss": loss.detach(),
                    "skipped": ~finite}
        return {**self.state(), "val_loss": float(loss.detach()), "skipped": not bool(finite)}

    @torch.no_grad()
    def apply_constraints(self) -> None:
        """Clamp ``α ≥ 1`` and set ``δ ← max(δ, β)`` (the authors' code; paper §3)."""
        self.alpha.clamp_(min=1.0)
        self.delta.copy_(torch.maximum(self.delta, self.beta))

    def state(self) -> dict[str, float]:
        """Current ``alpha``, ``beta``, ``delta`` as Python floats."""
        return {n: float(getattr(self, n).detach()) for n in PARAM_NAMES}

    def extra_repr(self) -> str:
        s = self.state()
        return (f"alpha={s['alpha']:.4g}, beta={s['beta']:.4g}, delta={s['delta']:.4g}, "
                f"active={''.join(n[0] for n in self.active)!r}, loss={self.loss!r}, "
                f"detach_weights={self.detach_weights}")


def plain_loss(logits: Tensor, targets: Tensor, kind: str = "ce", gamma: float = 2.0) -> Tensor:
    """Unweighted batch-mean loss, used by the baseline and during LiLAW's warm-up.

    Parameters
    ----------
    logits : Tensor, shape (N, C)
    targets : Tensor, shape (N,)
    kind : {"ce", "focal", "gce", "sce"}
    gamma : float

    Returns
    -------
    Tensor, shape ()
    """
    if kind == "ce":
        return F.cross_entropy(logits, targets)
    return per_sample_loss(logits, targets, kind, gamma=gamma, check=False).mean()
