"""Recording the training set during a run: per-sample LiLAW weights and difficulty scores.

After an epoch, :func:`record_training_set` runs the (unaugmented) training set through the
model in eval mode once and stores what the config asks for: LiLAW's ``W_alpha``, ``W_beta``,
``W_delta`` and ``W`` at ``record_weights_epochs``, and the difficulty recorders' scores
(:mod:`lilaw_edu.scores`), which are fed every epoch.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from lilaw_edu.training.engine import Batches, predict_logits

__all__ = ["record_training_set"]
def _rounded(values: Tensor, decimals: int = 6) -> list:
    return [round(float(v), decimals) for v in values.detach().cpu().double().tolist()]


def _head(model: nn.Module, num_classes: int):
    """The output layer (last ``nn.Linear`` with ``num_classes`` outputs), or None."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear) and m.out_features == num_classes]
    return linears[-1] if linears else None


def record_training_set(model: nn.Module, data: Batches, epoch: int, *, lilaw, recorders, config,
                        device: torch.device, num_classes: int, weights: dict, scores: dict) -> None:
    """Per-sample LiLAW weights / difficulty scores on the (unaugmented) training set ``data``, in eval mode.

    Weights go to ``weights[str(epoch)]`` (LiLAW runs, epochs in ``config.record_weights_epochs``);
    recorders (if any) are fed every epoch, with the output layer's inputs (GraNd's last-layer
    closed form), and their scores go to ``scores[str(epoch)]`` at the recorded epochs.
    """
    want_weights = lilaw is not None and epoch in config.record_weights_epochs
    if not want_weights and recorders is None:
        return
    features, hook = [], None
    head = _head(model, num_classes) if recorders is not None else None
    if head is not None:
        hook = head.register_forward_hook(lambda mod, inp, out: features.append(inp[0].detach().float().flatten(1)))
    try:
        logits = predict_logits(model, data, device=device, amp=config.amp)
    finally:
        if hook is not None:
            hook.remove()
    y = data.y.to(logits.device)
    if want_weights:
        weights[str(epoch)] = {k: _rounded(v) for k, v in lilaw.weights(logits, y).items()}
    if recorders is not None:
        recorders.update(epoch, logits.cpu(), y.cpu(), features=torch.cat(features).cpu() if features else None)
        if epoch in config.record_weights_epochs:
            scores[str(epoch)] = {k: _rounded(v) for k, v in recorders.scores().items()}
