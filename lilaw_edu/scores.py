"""Per-sample difficulty scores from training dynamics (baselines of the paper's Table 16).

Each score exists in two forms:

* a **functional form** on stacked per-epoch outputs, shape (E, N, C), easy to check by
  hand (``aum``, ``el2n``, ``grand``, ``forgetting``, ``datamaps``, ``data_iq``);
* a **recorder** (``AUMRecorder``, ...) that the training loop feeds once per epoch with
  the logits of the whole training set computed in eval mode; it keeps O(N) running
  sums, never the (E, N, C) history.

``targets`` is always the label the model was trained on (the possibly noisy one).
Every recorder has ``higher_means`` ("clean" or "noisy"): pass it to
``lilaw_edu.metrics.mislabel_detection``.

Our protocol differs from the original papers in one respect, the same for all scores:
training dynamics come from one eval-mode pass over the training set at the end of each
epoch, not from the mini-batch forward passes during training (AUM, Forgetting) or from
several independent runs (EL2N, GraNd).
"""

from __future__ import annotations

import torch

__all__ = [
    "aum", "el2n", "grand", "forgetting", "datamaps", "data_iq", "DATA_IQ_GROUPS",
    "AUMRecorder", "EL2NRecorder", "GraNdRecorder", "ForgettingRecorder",
    "DataMapsRecorder", "DataIQRecorder", "DIFFICULTY_SCORES", "DifficultyRecorders",
    "compute_all",
]

DATA_IQ_GROUPS = ("easy", "ambiguous", "hard")


# --------------------------------------------------------------------------- validation
def _check_stack(x, name: str, targets) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (E, N, C), got {type(x).__name__}")
    if x.dim() != 3 or 0 in x.shape or x.shape[2] < 2:
        raise ValueError(f"{name} must have shape (E, N, C) with E, N >= 1 and C >= 2, got {tuple(x.shape)}")
    if not torch.is_floating_point(x) or not torch.isfinite(x).all():
        raise ValueError(f"{name} must be finite floating-point values, got dtype {x.dtype} or NaN/inf")
    y = _check_targets(targets, x.shape[1], x.shape[2])
    return x.detach().double(), y.to(x.device)


def _check_probs_stack(probs, targets, name: str = "probs") -> tuple[torch.Tensor, torch.Tensor]:
    p, y = _check_stack(probs, name, targets)
    if (p < 0).any() or (p.sum(-1) - 1).abs().max() > 1e-3:
        raise ValueError(f"{name} must be probabilities summing to 1 over the last axis "
                         "(did you pass logits?)")
    return p, y


def _check_targets(targets, n: int, num_classes: int) -> torch.Tensor:
    if not isinstance(targets, torch.Tensor):
        raise TypeError(f"targets must be a torch.Tensor, got {type(targets).__name__}")
    if torch.is_floating_point(targets) or targets.dtype == torch.bool:
        raise TypeError(f"targets must be an integer tensor, got dtype {targets.dtype}")
    if targets.shape != (n,):
        raise ValueError(f"targets must have shape ({n},), got {tuple(targets.shape)}")
    if n and (targets.min() < 0 or targets.max() >= num_classes):
        raise ValueError(f"targets must lie in [0, {num_classes - 1}], got "
                         f"[{int(targets.min())}, {int(targets.max())}]")
    return targets.long()


# --------------------------------------------------------------------------- per-epoch kernels
def _assigned(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """x[..., i, y_i] for x of shape (..., N, C)."""
    return x.gather(-1, y.expand(x.shape[:-1]).unsqueeze(-1)).squeeze(-1)


def _margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Assigned logit minus the largest other logit, shape (..., N)."""
    onehot = torch.nn.functional.one_hot(y, logits.shape[-1]).bool()
    others = logits.masked_fill(onehot, float("-inf"))
    return _assigned(logits, y) - others.max(dim=-1).values


def _error_norm(probs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """||p - onehot(y)||_2, shape (..., N)."""
    onehot = torch.nn.functional.one_hot(y, probs.shape[-1]).to(probs.dtype)
    return (probs - onehot).norm(dim=-1)


def _bias_feature_norm(features: torch.Tensor) -> torch.Tensor:
    """sqrt(||h||^2 + 1): norm of the last layer's input with the bias's constant 1."""
    return (features.double().pow(2).sum(-1) + 1.0).sqrt()


def _correct(probs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return probs.argmax(dim=-1) == y


# --------------------------------------------------------------------------- functional forms
def aum(logits, targets) -> torch.Tensor:
    """Area Under the Margin (Pleiss et al., 2020, "Identifying mislabeled data using the
    area under the margin ranking").

    Margin at epoch e: ``z_e[y] - max_{j != y} z_e[j]`` on the logits; AUM is its mean
    over epochs. **Low (negative) AUM -> likely mislabeled** (``higher_means="clean"``).

    Parameters
    ----------
    logits : Tensor, shape (E, N, C)
        Logits of N training samples at E epochs.
    targets : Tensor, shape (N,), int64
        Assigned (possibly noisy) labels.

    Returns
    -------
    Tensor, shape (N,), float64
    """
    z, y = _check_stack(logits, "logits", targets)
    return _margin(z, y).mean(dim=0)


def el2n(probs, targets) -> torch.Tensor:
    """Error L2-Norm (Paul et al., 2021, "Deep learning on a data diet").

    ``||softmax(z) - onehot(y)||_2``, averaged over the E stacked outputs. Paul et al.
    score one early epoch averaged over independent runs: stack those runs' outputs
    along E. **High EL2N -> likely mislabeled** (``higher_means="noisy"``).

    Parameters
    ----------
    probs : Tensor, shape (E, N, C)
        Softmax probabilities.
    targets : Tensor, shape (N,), int64

    Returns
    -------
    Tensor, shape (N,), float64, in [0, sqrt(2)]
    """
    p, y = _check_probs_stack(probs, targets)
    return _error_norm(p, y).mean(dim=0)


def grand(probs, targets, features=None) -> torch.Tensor:
    """Gradient Normed score (Paul et al., 2021), last-layer closed form.

    GraNd is E||grad_theta loss(x, y)||. We use the common last-layer approximation:
    for a linear head z = W h + b with cross-entropy, dL/dz = p - e_y, dL/dW = (p - e_y) h^T
    and dL/db = p - e_y, so the norm is ``||p - e_y|| * sqrt(||h||^2 + 1)``. Without
    ``features`` it falls back to the gradient with respect to the logits, ``||p - e_y||``,
    which equals EL2N. Averaged over the E stacked outputs.
    **High GraNd -> likely mislabeled** (``higher_means="noisy"``).

    Parameters
    ----------
    probs : Tensor, shape (E, N, C)
    targets : Tensor, shape (N,), int64
    features : Tensor, shape (E, N, D), optional
        Input of the last linear layer (penultimate activations) at each epoch.

    Returns
    -------
    Tensor, shape (N,), float64
    """
    p, y = _check_probs_stack(probs, targets)
    norm = _error_norm(p, y)
    if features is not None:
        if not isinstance(features, torch.Tensor) or features.dim() != 3 or features.shape[:2] != p.shape[:2]:
            shape = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features).__name__
            raise ValueError(f"features must be a Tensor of shape ({p.shape[0]}, {p.shape[1]}, D), got {shape}")
        norm = norm * _bias_feature_norm(features)
    return norm.mean(dim=0)


def forgetting(probs, targets) -> torch.Tensor:
    """Forgetting events (Toneva et al., 2019, "An empirical study of example forgetting").

    A forgetting event is a transition from correctly to incorrectly classified between
    consecutive epochs (argmax vs assigned label). Toneva et al. rank samples that are
    never learned as forgotten infinitely often; we give them E (the number of epochs),
    which exceeds any reachable count (at most floor(E/2)) and keeps scores finite.
    **High count -> likely mislabeled** (``higher_means="noisy"``).

    Parameters
    ----------
    probs : Tensor, shape (E, N, C)
        Probabilities (or logits: only the argmax is used).
    targets : Tensor, shape (N,), int64

    Returns
    -------
    Tensor, shape (N,), float64
    """
    p, y = _check_stack(probs, "probs", targets)
    correct = _correct(p, y)
    events = (correct[:-1] & ~correct[1:]).sum(dim=0).double()
    never = ~correct.any(dim=0)
    return torch.where(never, torch.full_like(events, p.shape[0]), events)


def datamaps(probs, targets) -> dict:
    """Data Maps (Swayamdipta et al., 2020, "Dataset cartography").

    confidence = mean over epochs of p_y; variability = population std (ddof = 0, as in
    the authors' code) over epochs of p_y; correctness = fraction of epochs classified
    correctly. The detection score is confidence: **low -> hard / likely mislabeled**
    (``higher_means="clean"``).

    Parameters
    ----------
    probs : Tensor, shape (E, N, C)
    targets : Tensor, shape (N,), int64

    Returns
    -------
    dict of Tensor, each shape (N,), float64
        ``confidence``, ``variability``, ``correctness``.
    """
    p, y = _check_probs_stack(probs, targets)
    p_y = _assigned(p, y)
    return {
        "confidence": p_y.mean(dim=0),
        "variability": p_y.std(dim=0, unbiased=False),
        "correctness": _correct(p, y).double().mean(dim=0),
    }


def data_iq(probs, targets, *, conf_low: float = 0.25, conf_high: float = 0.75,
            aleatoric_threshold: float = 0.2) -> dict:
    """Data-IQ (Seedat et al., 2022, "Data-IQ: Characterizing subgroups with
    heterogeneous outcomes in tabular data").

    confidence = mean over epochs of p_y; aleatoric = mean over epochs of p_y (1 - p_y);
    epistemic = population variance over epochs of p_y. Groups: **easy** if
    confidence >= conf_high and aleatoric < aleatoric_threshold, **hard** if
    confidence <= conf_low and aleatoric < aleatoric_threshold, else **ambiguous**.
    (Some implementations use a percentile of the aleatoric scores instead of a fixed
    threshold; p(1 - p) <= 0.25 always.) The detection score is confidence:
    **low -> likely mislabeled** (``higher_means="clean"``).

    Parameters
    ----------
    probs : Tensor, shape (E, N, C)
    targets : Tensor, shape (N,), int64
    conf_low, conf_high : float
        Confidence thresholds, ``0 <= conf_low < conf_high <= 1``.
    aleatoric_threshold : float
        Upper bound (strict) on aleatoric uncertainty for "easy" and "hard".

    Returns
    -------
    dict
        ``confidence``, ``aleatoric``, ``epistemic``: Tensor (N,) float64; ``groups``:
        Tensor (N,) int64 indexing ``DATA_IQ_GROUPS`` = ("easy", "ambiguous", "hard").
    """
    p, y = _check_probs_stack(probs, targets)
    p_y = _assigned(p, y)
    conf, alea = p_y.mean(dim=0), (p_y * (1 - p_y)).mean(dim=0)
    return {"confidence": conf, "aleatoric": alea, "epistemic": p_y.var(dim=0, unbiased=False),
            "groups": _data_iq_groups(conf, alea, conf_low, conf_high, aleatoric_threshold)}


def _data_iq_groups(conf, alea, conf_low, conf_high, alea_thr) -> torch.Tensor:
    if not 0 <= conf_low < conf_high <= 1:
        raise ValueError(f"conf_low, conf_high must satisfy 0 <= conf_low < conf_high <= 1, got {conf_low}, {conf_high}")
    if not 0 < alea_thr:
        raise ValueError(f"aleatoric_threshold must be > 0, got {alea_thr}")
    groups = torch.ones_like(conf, dtype=torch.long)  # ambiguous
    groups[(conf >= conf_high) & (alea < alea_thr)] = 0
    groups[(conf <= conf_low) & (alea < alea_thr)] = 2
    return groups



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
