"""Base class of the difficulty recorders: O(N) running sums fed one epoch at a time."""

from __future__ import annotations

import torch

from ._kernels import _check_targets


# --------------------------------------------------------------------------- recorders
class _Recorder:
    """Running per-sample statistics fed one epoch at a time.

    Parameters
    ----------
    num_samples : int
        N, the size of the training set.
    num_classes : int
        C.
    epochs : iterable of int, optional
        Only updates whose ``epoch`` is in this set are recorded (e.g. ``{3}`` for EL2N
        "at epoch 3"); others are ignored. Default: every update is recorded.
    device : str or torch.device, default "cpu"
        Where the running sums live; inputs are moved there.
    """

    name = ""
    higher_means = "noisy"

    def __init__(self, num_samples: int, num_classes: int, *, epochs=None, device="cpu"):
        for pname, v, lo in (("num_samples", num_samples, 1), ("num_classes", num_classes, 2)):
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ValueError(f"{pname} must be an integer >= {lo}, got {v!r}")
        self.num_samples, self.num_classes, self.device = num_samples, num_classes, torch.device(device)
        self.epochs = None if epochs is None else frozenset(int(e) for e in epochs)
        self.count = torch.zeros(num_samples, dtype=torch.float64, device=self.device)
        self._last_epoch = torch.full((num_samples,), -(2 ** 62), dtype=torch.long, device=self.device)
        self._sums: dict[str, torch.Tensor] = {}

    def _sum(self, key: str) -> torch.Tensor:
        if key not in self._sums:
            self._sums[key] = torch.zeros(self.num_samples, dtype=torch.float64, device=self.device)
        return self._sums[key]

    @torch.no_grad()
    def update(self, epoch: int, logits, targets, indices=None, features=None) -> None:
        """Record one epoch's outputs for some or all training samples.

        Parameters
        ----------
        epoch : int
            Epoch number; must increase from one update of a sample to the next.
        logits : Tensor, shape (B, C)
            Eval-mode logits of the samples ``indices`` (B = N when ``indices`` is None).
        targets : Tensor, shape (B,), int64
            Their assigned (possibly noisy) training labels.
        indices : Tensor, shape (B,), int64, optional
            Positions of these samples in the training set; default ``arange(N)``.
            Lets an epoch be fed in chunks.
        features : Tensor, shape (B, D), optional
            Input of the last linear layer; used by GraNd only, ignored by the others.
        """
        if isinstance(epoch, bool) or not isinstance(epoch, int):
            raise TypeError(f"epoch must be an int, got {epoch!r}")
        idx, z, y = self._check_update(logits, targets, indices)
        if self.epochs is not None and epoch not in self.epochs:
            return
        if (self._last_epoch[idx] >= epoch).any():
            raise ValueError(f"epoch must increase for every sample between updates, got epoch {epoch} "
                             f"after epoch {int(self._last_epoch[idx].max())}")
        self._accumulate(idx, z, y, features)
        self.count[idx] += 1
        self._last_epoch[idx] = epoch

    def _check_update(self, logits, targets, indices):
        if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape[1] != self.num_classes:
            shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
            raise ValueError(f"logits must be a Tensor of shape (B, {self.num_classes}), got {shape}")
        if not torch.is_floating_point(logits) or not torch.isfinite(logits).all():
            raise ValueError(f"logits must be finite floating-point values, got dtype {logits.dtype} or NaN/inf")
        b = logits.shape[0]
        if indices is None:
            if b != self.num_samples:
                raise ValueError(f"logits must have num_samples = {self.num_samples} rows when indices is None, got {b}")
            indices = torch.arange(b)
        if not isinstance(indices, torch.Tensor) or indices.dtype != torch.long or indices.shape != (b,):
            raise ValueError(f"indices must be an int64 Tensor of shape ({b},), got {indices!r:.80}")
        if b and (indices.min() < 0 or indices.max() >= self.num_samples or indices.unique().numel() != b):
            raise ValueError(f"indices must be distinct values in [0, {self.num_samples - 1}]")
        y = _check_targets(targets, b, self.num_classes)
        dev = self.device
        return indices.to(dev), logits.detach().to(dev, torch.float64), y.to(dev)

    def state_dict(self) -> dict:
        """Copy of the running state as plain tensors, lists and numbers (safe for
        ``torch.save`` / ``torch.load(weights_only=True)``); see :meth:`load_state_dict`."""
        state = {}
        for k, v in vars(self).items():
            if isinstance(v, torch.Tensor):
                v = v.detach().cpu().clone()
            elif isinstance(v, dict):
                v = {kk: vv.detach().cpu().clone() for kk, vv in v.items()}
            elif k == "epochs":
                v = None if v is None else sorted(v)
            elif k == "device":
                v = str(v)
            state[k] = v
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore a state from :meth:`state_dict` of a recorder of the same class and size.
        Tensors go to this recorder's ``device``."""
        if not isinstance(state, dict) or set(state) != set(vars(self)):
            raise ValueError(f"state must come from {type(self).__name__}.state_dict(), got keys "
                             f"{sorted(state) if isinstance(state, dict) else type(state).__name__}")
        if (state["num_samples"], state["num_classes"]) != (self.num_samples, self.num_classes):
            raise ValueError(f"state is for num_samples, num_classes = {state['num_samples']}, "
                             f"{state['num_classes']}, not {self.num_samples}, {self.num_classes}")
        for k, v in state.items():
            if isinstance(v, torch.Tensor):
                v = v.clone().to(self.device)
            elif isinstance(v, dict):
                v = {kk: vv.clone().to(self.device) for kk, vv in v.items()}
            elif k == "epochs":
                v = None if v is None else frozenset(v)
            elif k == "device":
                continue
            setattr(self, k, v)

    def _accumulate(self, idx, logits, y, features) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _mean(self, key: str) -> torch.Tensor:
        """Per-sample mean of a running sum; NaN for samples never recorded."""
        return self._sum(key) / self.count.where(self.count > 0, torch.tensor(float("nan"), dtype=torch.float64))

    def scores(self) -> torch.Tensor:
        """Current score of every sample, shape (N,), float64 (NaN if never recorded)."""
        raise NotImplementedError  # pragma: no cover
