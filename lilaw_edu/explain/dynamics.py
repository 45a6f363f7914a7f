"""What the network feels from LiLAW, and how far α, β, δ can move (book chapter 04).

* The gradient of one sample's LiLAW loss ``W·ℓ`` (ℓ = cross-entropy) with respect to its
  logits, in closed form, for the default non-detached weights (the network gets
  ``W·∇ℓ + ℓ·∇W``) and for detached weights (only ``W·∇ℓ``), and the resulting multiplier
  of the label logit's gradient relative to plain CE.
* Ceilings on the per-sample meta gradients, the paper's number of meta steps and the
  measured drift of α, β, δ per meta step, for extrapolating a run's drift.

Everything builds on :func:`~lilaw_edu.core.weighting.weight_components`; nothing here
redefines the weights.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from lilaw_edu.core.weighting import PARAM_NAMES, label_and_max_prob, weight_components
from lilaw_edu.explain.theory import TABLE5_CASES, table5_recomputed


# --------------------------------------------------------------------------- what the network feels
def logit_gradient(probs: Tensor, targets: Tensor, alpha: float, beta: float, delta: float, *,
                   detach_weights: bool = False) -> Tensor:
    """Closed-form gradient ∂(W·ℓ)/∂z of each sample's LiLAW loss with ℓ = CE, w.r.t. its logits z.

    With ``k`` the top class, ``x_p = p·s_y − m``, ``σ'(x) = σ(x)(1 − σ(x))`` and

    * ``A = ∂W/∂s_y = α σ'(x_α) − β σ'(x_β) − δ x_δ W_δ``,
    * ``M = ∂W/∂m = −σ'(x_α) + σ'(x_β) + x_δ W_δ``,

    the softmax Jacobian gives ``∂W/∂z_j = A s_y (1[j=y] − s_j) + M m (1[j=k] − s_j)``, and
    ``∂(W·ℓ)/∂z = W·∂ℓ/∂z + ℓ·∂W/∂z`` with ``∂ℓ/∂z_j = s_j − 1[j=y]``. With
    ``detach_weights`` W is a constant for the network and only ``W·∂ℓ/∂z`` remains.
    When the label is the top class (``k = y``) both terms act on the same logit.

    Parameters
    ----------
    probs : Tensor, shape (N, C)
        Softmax probabilities (strictly positive; a tie for the maximum takes the lowest index).
    targets : Tensor, shape (N,)
    alpha, beta, delta : float
    detach_weights : bool
        False: the default of :class:`~lilaw_edu.core.weighting.LiLAW` (W carries a gradient).

    Returns
    -------
    Tensor, shape (N, C)
    """
    s_y, m = label_and_max_prob(probs, targets)
    w_a, w_b, w_d = weight_components(probs, targets, alpha, beta, delta)
    w = w_a + w_b + w_d
    onehot_y = F.one_hot(targets, probs.shape[1]).to(probs.dtype)
    grad = w[:, None] * (probs - onehot_y)
    if detach_weights:
        return grad
    x_d = delta * s_y - m
    d_sa, d_sb = w_a * (1 - w_a), w_b * (1 - w_b)
    a_coef = alpha * d_sa - beta * d_sb - delta * x_d * w_d
    m_coef = -d_sa + d_sb + x_d * w_d
    onehot_k = F.one_hot(probs.argmax(dim=1), probs.shape[1]).to(probs.dtype)
    d_w = (a_coef * s_y)[:, None] * (onehot_y - probs) + (m_coef * m)[:, None] * (onehot_k - probs)
    return grad + (-s_y.log())[:, None] * d_w


def gradient_multiplier(probs: Tensor, targets: Tensor, alpha: float, beta: float, delta: float, *,
                        detach_weights: bool = False) -> Tensor:
    """How much harder LiLAW pulls the label's logit than plain CE: ``(∂(W·ℓ)/∂z_y) / (∂ℓ/∂z_y)``.

    With detached weights this is W itself; by default it is ``W − ℓ·(∂W/∂z_y)/(1 − s_y)``.

    Parameters
    ----------
    probs : Tensor, shape (N, C)
        Softmax probabilities with ``s_y < 1``.
    targets : Tensor, shape (N,)
    alpha, beta, delta : float
    detach_weights : bool

    Returns
    -------
    Tensor, shape (N,)
    """
    grad = logit_gradient(probs, targets, alpha, beta, delta, detach_weights=detach_weights)
    s_y = probs.gather(1, targets[:, None]).squeeze(1)
    return grad.gather(1, targets[:, None]).squeeze(1) / (s_y - 1)


def table5_multipliers(setting=(10.0, 2.0, 6.0)) -> list[dict]:
    """The gradient multiplier on the four Table 5 predictions, default and detached weights.

    Returns
    -------
    list of dict
        Keys ``case``, ``s_y``, ``m``, ``ce``, ``w``, ``default``, ``detached``.
    """
    probs = torch.tensor([pred for _, pred in TABLE5_CASES], dtype=torch.float64)
    targets = torch.zeros(len(TABLE5_CASES), dtype=torch.int64)
    default = gradient_multiplier(probs, targets, *setting)
    detached = gradient_multiplier(probs, targets, *setting, detach_weights=True)
    return [dict(case=row["case"], s_y=row["s_y"], m=row["m"], ce=row["ce"], w=row["w"],
                 default=float(a), detached=float(b))
            for row, a, b in zip(table5_recomputed([setting]), default, detached)]


# --------------------------------------------------------------------------- how far α, β, δ can move
#: Supremum over every prediction and every parameter value of one sample's |∂(W_p·CE)/∂p|:
#: CE·s_y = −s_y log s_y ≤ 1/e, σ' ≤ 1/4 and |x| e^{−x²/2} ≤ e^{−1/2} (proved in chapter 04).
META_GRADIENT_CEILING = {"alpha": 1 / (4 * math.e), "beta": 1 / (4 * math.e), "delta": math.exp(-1.5)}


def paper_meta_steps(train_images: int = 50_000, val_fraction: float = 0.15, batch_size: int = 16,
                     epochs: int = 10, warmup_epochs: int = 1) -> int:
    """Meta steps of the paper's CIFAR-100-M run (§4.2; 15 % validation split, Table 12).

    One meta step follows each training batch after the warm-up epoch(s).

    Returns
    -------
    int
        ``(epochs − warmup_epochs) · ceil(train_images·(1 − val_fraction) / batch_size)``.
    """
    if not 0.0 <= val_fraction < 1.0 or batch_size < 1 or epochs < warmup_epochs:
        raise ValueError(f"need 0 <= val_fraction < 1, batch_size >= 1, epochs >= warmup_epochs; got "
                         f"{val_fraction}, {batch_size}, {epochs}, {warmup_epochs}")
    train = round(train_images * (1 - val_fraction))
    return (epochs - warmup_epochs) * math.ceil(train / batch_size)


def drift_per_meta_step(history: list[dict], n_train: int, batch_size: int) -> dict[str, float]:
    """Average change of α, β, δ per meta step over a recorded run.

    Parameters
    ----------
    history : list of dict
        Per-epoch records (``epoch``, ``alpha``, ``beta``, ``delta``), values at each epoch's end;
        the first record is the end of the warm-up epoch (no meta step yet).
    n_train, batch_size : int
        One meta step per training batch: ``ceil(n_train / batch_size)`` per epoch.

    Returns
    -------
    dict
        ``alpha``, ``beta``, ``delta`` (change per step) and ``steps`` (meta steps covered).
    """
    steps = (len(history) - 1) * math.ceil(n_train / batch_size)
    if steps < 1:
        raise ValueError(f"history must hold at least 2 epochs after warm-up, got {len(history)} record(s)")
    out = {n: (history[-1][n] - history[0][n]) / steps for n in PARAM_NAMES}
    return {**out, "steps": steps}
