"""Difficulty recorders (one per score) and :class:`DifficultyRecorders` / :func:`compute_all`."""

from __future__ import annotations

import torch

from ._kernels import (
    _assigned,
    _bias_feature_norm,
    _check_stack,
    _correct,
    _data_iq_groups,
    _error_norm,
    _margin,
)
from .base import _Recorder


class AUMRecorder(_Recorder):
    """Recorder for :func:`aum`. Low score -> likely mislabeled."""

    name, higher_means = "aum", "clean"

    def _accumulate(self, idx, z, y, features):
        self._sum("margin")[idx] += _margin(z, y)

    def scores(self):
        return self._mean("margin")


class EL2NRecorder(_Recorder):
    """Recorder for :func:`el2n` (mean over recorded epochs; use ``epochs={t}`` for the
    single-epoch score of Paul et al.). High score -> likely mislabeled."""

    name, higher_means = "el2n", "noisy"

    def _accumulate(self, idx, z, y, features):
        self._sum("err")[idx] += _error_norm(z.softmax(-1), y)

    def scores(self):
        return self._mean("err")


class GraNdRecorder(_Recorder):
    """Recorder for :func:`grand`. The first update fixes the form: with ``features``
    (last-layer closed form) or without (logit-gradient fallback, equal to EL2N); later
    updates must match. ``uses_features`` tells which. High score -> likely mislabeled."""

    name, higher_means = "grand", "noisy"

    def __init__(self, num_samples, num_classes, *, epochs=None, device="cpu"):
        super().__init__(num_samples, num_classes, epochs=epochs, device=device)
        self.uses_features = None  # fixed by the first recorded update

    def _accumulate(self, idx, z, y, features):
        has = features is not None
        if has and (not isinstance(features, torch.Tensor) or features.dim() != 2
                    or features.shape[0] != z.shape[0] or not torch.isfinite(features).all()):
            raise ValueError(f"features must be a finite Tensor of shape ({z.shape[0]}, D), got {features!r:.80}")
        if self.uses_features is None:
            self.uses_features = has
        elif has != self.uses_features:
            raise ValueError(f"features must be {'given' if self.uses_features else 'None'} in every update "
                             "of a GraNdRecorder, as in its first update")
        norm = _error_norm(z.softmax(-1), y)
        if has:
            norm = norm * _bias_feature_norm(features.detach().to(self.device))
        self._sum("grad")[idx] += norm

    def scores(self):
        return self._mean("grad")


class ForgettingRecorder(_Recorder):
    """Recorder for :func:`forgetting`; never-learned samples score their number of
    recorded epochs. High score -> likely mislabeled."""

    name, higher_means = "forgetting", "noisy"

    def __init__(self, num_samples, num_classes, *, epochs=None, device="cpu"):
        super().__init__(num_samples, num_classes, epochs=epochs, device=device)
        self._prev = torch.zeros(num_samples, dtype=torch.bool, device=self.device)
        self._ever = torch.zeros(num_samples, dtype=torch.bool, device=self.device)

    def _accumulate(self, idx, z, y, features):
        correct = _correct(z, y)
        self._sum("events")[idx] += (self._prev[idx] & ~correct).double()
        self._prev[idx] = correct
        self._ever[idx] |= correct

    def scores(self):
        events = self._sum("events").clone()
        out = torch.where(self._ever, events, self.count)
        return out.where(self.count > 0, torch.tensor(float("nan"), dtype=torch.float64))


class DataMapsRecorder(_Recorder):
    """Recorder for :func:`datamaps`; ``scores()`` is confidence, ``details()`` gives all
    three coordinates. Low score -> likely mislabeled."""

    name, higher_means = "datamaps", "clean"

    def _accumulate(self, idx, z, y, features):
        p = z.softmax(-1)
        p_y = _assigned(p, y)
        self._sum("p")[idx] += p_y
        self._sum("p2")[idx] += p_y * p_y
        self._sum("correct")[idx] += _correct(p, y).double()

    def details(self) -> dict:
        """dict of Tensor (N,): ``confidence``, ``variability`` (ddof 0), ``correctness``."""
        conf = self._mean("p")
        var = (self._mean("p2") - conf * conf).clamp_min(0)
        return {"confidence": conf, "variability": var.sqrt(), "correctness": self._mean("correct")}

    def scores(self):
        return self._mean("p")


class DataIQRecorder(DataMapsRecorder):
    """Recorder for :func:`data_iq`; ``scores()`` is confidence, ``details()`` adds
    aleatoric, epistemic and groups. Low score -> likely mislabeled.

    Extra parameters: ``conf_low=0.25``, ``conf_high=0.75``, ``aleatoric_threshold=0.2``
    (see :func:`data_iq`)."""

    name, higher_means = "data_iq", "clean"

    def __init__(self, num_samples, num_classes, *, epochs=None, device="cpu",
                 conf_low=0.25, conf_high=0.75, aleatoric_threshold=0.2):
        super().__init__(num_samples, num_classes, epochs=epochs, device=device)
        _data_iq_groups(torch.zeros(1), torch.zeros(1), conf_low, conf_high, aleatoric_threshold)
        self.thresholds = (conf_low, conf_high, aleatoric_threshold)

    def details(self) -> dict:
        """dict: ``confidence``, ``aleatoric``, ``epistemic`` (Tensor (N,)), ``groups``
        (int64 (N,) indexing ``DATA_IQ_GROUPS``)."""
        conf, p2 = self._mean("p"), self._mean("p2")
        alea = conf - p2  # mean of p (1 - p)
        return {"confidence": conf, "aleatoric": alea, "epistemic": (p2 - conf * conf).clamp_min(0),
                "groups": _data_iq_groups(conf, alea, *self.thresholds)}


DIFFICULTY_SCORES = {cls.name: cls for cls in (AUMRecorder, EL2NRecorder, GraNdRecorder, ForgettingRecorder,
                                               DataMapsRecorder, DataIQRecorder)}


class DifficultyRecorders:
    """All (or some) difficulty recorders behind one ``update`` call.

    Parameters
    ----------
    num_samples, num_classes : int
    names : iterable of str, optional
        Keys of ``DIFFICULTY_SCORES``; default all six.
    device : str or torch.device, default "cpu"

    Examples
    --------
    >>> rec = DifficultyRecorders(num_samples=n, num_classes=c)       # doctest: +SKIP
    >>> rec.update(epoch, logits, noisy_targets, features=feats)      # doctest: +SKIP
    >>> snapshot = rec.scores()   # {"aum": Tensor (N,), ...}         # doctest: +SKIP
    """

    def __init__(self, num_samples: int, num_classes: int, *, names=None, device="cpu"):
        names = list(DIFFICULTY_SCORES) if names is None else list(names)
        unknown = [n for n in names if n not in DIFFICULTY_SCORES]
        if unknown or not names:
            raise ValueError(f"names must be a non-empty subset of {sorted(DIFFICULTY_SCORES)}, got {names}")
        self.recorders = {n: DIFFICULTY_SCORES[n](num_samples, num_classes, device=device) for n in names}
        self.higher_means = {n: r.higher_means for n, r in self.recorders.items()}

    def update(self, epoch: int, logits, targets, indices=None, features=None) -> None:
        """Forward to every recorder's ``update`` (same parameters and shapes)."""
        for r in self.recorders.values():
            r.update(epoch, logits, targets, indices, features)

    def scores(self) -> dict:
        """dict name -> Tensor (N,) float64: each recorder's current ``scores()``."""
        return {n: r.scores() for n, r in self.recorders.items()}

    def state_dict(self) -> dict:
        """dict name -> that recorder's ``state_dict()`` (for checkpoint and resume)."""
        return {n: r.state_dict() for n, r in self.recorders.items()}

    def load_state_dict(self, state: dict) -> None:
        """Restore from :meth:`state_dict`; the recorder names must match."""
        if not isinstance(state, dict) or set(state) != set(self.recorders):
            raise ValueError(f"state must have the recorder names {sorted(self.recorders)}, "
                             f"got {sorted(state) if isinstance(state, dict) else type(state).__name__}")
        for n, r in self.recorders.items():
            r.load_state_dict(state[n])


def compute_all(logits, targets, *, features=None, names=None) -> dict:
    """Every difficulty score from stacked per-epoch logits (epochs numbered 1..E).

    Parameters
    ----------
    logits : Tensor, shape (E, N, C)
    targets : Tensor, shape (N,), int64
        Assigned (possibly noisy) labels.
    features : Tensor, shape (E, N, D), optional
        Last-layer inputs for GraNd's closed form.
    names : iterable of str, optional
        Subset of ``DIFFICULTY_SCORES``; default all.

    Returns
    -------
    dict name -> Tensor (N,) float64
    """
    z, y = _check_stack(logits, "logits", targets)
    if features is not None and (not isinstance(features, torch.Tensor) or features.shape[:2] != z.shape[:2]):
        raise ValueError(f"features must be a Tensor of shape ({z.shape[0]}, {z.shape[1]}, D)")
    rec = DifficultyRecorders(z.shape[1], z.shape[2], names=names)
    for e in range(z.shape[0]):
        rec.update(e + 1, z[e], y, features=None if features is None else features[e])
    return rec.scores()
