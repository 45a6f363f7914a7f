"""Small building blocks of the training loop: devices, seeds, batches, augmentation,
one training epoch (with LiLAW's meta step, Algorithm 1) and evaluation passes.

Data live on the device as tensors when they fit (:class:`Batches` shuffles with
``torch.randperm`` on the device and slices); otherwise a ``DataLoader`` feeds
them from host memory. Every random choice goes through an explicit
``torch.Generator``.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lilaw_edu.core.weighting import plain_loss
from lilaw_edu.training.meta_schedule import MetaSchedule, draw_val_batch, fused_forward, meta_val_batch_size
from lilaw_edu.datasets.inputs import stored_nbytes

__all__ = [
    "resolve_device", "child_seed", "make_generator", "state_dict_sha256", "autocast",
    "Batches", "augment_images", "shift_distribution", "train_one_epoch", "meta_update", "meta_forward_step",
    "predict_logits", "evaluate", "make_batches", "record_training_set",
]


# ------------------------------------------------------------------ devices and seeds
def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> CUDA when available else CPU; ``"cuda"`` without a GPU raises ``ValueError``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but no CUDA GPU is available; use device 'cpu' or 'auto'")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {name!r}")
    return torch.device(name)


def child_seed(seed: int, tag: str) -> int:
    """A seed for one purpose (``tag``) derived from the run seed; stable across runs and machines."""
    digest = hashlib.sha256(f"{int(seed)}:{tag}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def make_generator(seed: int, tag: str, device: torch.device | str = "cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with ``child_seed(seed, tag)``."""
    generator = torch.Generator(device=device)
    generator.manual_seed(child_seed(seed, tag))
    return generator


def state_dict_sha256(state_dict: dict) -> str:
    """SHA-256 of a state dict's keys, dtypes, shapes and values (pairing check)."""
    digest = hashlib.sha256()
    for key in sorted(state_dict):
        value = state_dict[key]
        digest.update(key.encode())
        if isinstance(value, Tensor):
            t = value.detach().cpu().contiguous()
            digest.update(f"{t.dtype}{tuple(t.shape)}".encode())
            digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        else:
            digest.update(repr(value).encode())
    return digest.hexdigest()


def autocast(device: torch.device, enabled: bool):
    """bf16 autocast on CUDA when ``enabled``; a no-op context elsewhere."""
    if enabled and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


# ------------------------------------------------------------------ batches
class Batches:
    """Mini-batches of ``(x, y, index)`` from tensors, device-resident or via a DataLoader.

    Parameters
    ----------
    x : Tensor, shape (N, ...)
    y : Tensor, shape (N,), int64
    batch_size : int
    device : torch.device
        Where batches are delivered.
    resident : bool
        True: ``x``, ``y`` are moved to ``device`` once and batches are slices.
        False: they stay in host memory and a ``DataLoader`` copies each batch.
    transform : callable, optional
        Applied to every input batch on ``device`` (e.g. a per-batch resize).
    """

    def __init__(self, x: Tensor, y: Tensor, batch_size: int, device: torch.device, resident: bool = True,
                 transform=None):
        self.batch_size, self.device, self.resident = int(batch_size), device, resident
        self.transform = transform or (lambda batch: batch)
        self.x = x.to(device) if resident else x
        self.y = y.to(device) if resident else y
        self.n = int(y.shape[0])

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def epoch(self, generator: torch.Generator | None):
        """Yield batches for one pass; shuffled with ``generator`` (None: in order).

        The shuffle is drawn on the generator's device (``torch.randperm``).
        """
        order = None
        if generator is not None:
            order = torch.randperm(self.n, generator=generator, device=generator.device)
        if self.resident:
            yield from self._slices(order)
        else:
            yield from self._loader(order)

    def _slices(self, order):
        for start in range(0, self.n, self.batch_size):
            if order is None:
                idx = torch.arange(start, min(start + self.batch_size, self.n), device=self.device)
            else:
                idx = order[start:start + self.batch_size].to(self.device)
            yield self.transform(self.x[idx]), self.y[idx], idx

    def _loader(self, order):
        dataset = torch.utils.data.TensorDataset(self.x, self.y, torch.arange(self.n))
        sampler = order.cpu().tolist() if order is not None else range(self.n)
        loader = torch.utils.data.DataLoader(dataset, batch_size=self.batch_size, sampler=sampler,
                                             pin_memory=self.device.type == "cuda")
        for xb, yb, ib in loader:
            yield (self.transform(xb.to(self.device, non_blocking=True)), yb.to(self.device, non_blocking=True),
                   ib.to(self.device, non_blocking=True))

    def take(self, idx: Tensor) -> tuple[Tensor, Tensor]:
        """Inputs and labels at ``idx`` (any device), delivered on ``self.device``."""
        idx = idx.to(self.x.device)
        x = self.x[idx].to(self.device, non_blocking=True)
        return self.transform(x), self.y[idx].to(self.device, non_blocking=True)


def make_batches(splits, config, device: torch.device, transform=None) -> dict:
    """``train``, ``train_eval``, ``val`` and ``test`` :class:`Batches` of ``splits``.

    Data stay on the device when all splits fit in ``config.resident_max_gb`` (one device
    copy shared by all views, counted in stored bytes: uint8 images take a quarter of
    float32), else they are fed from host memory. ``transform`` (e.g. the
    :class:`~lilaw_edu.datasets.inputs.InputTransform` of a streamed data set) turns every
    stored batch into the model input on the device.
    """
    total = stored_nbytes(splits.x_train, splits.x_val, splits.x_test)
    resident = total <= config.resident_max_gb * (1 << 30)
    place = (lambda t: t.to(device)) if resident else (lambda t: t)
    x_tr, y_tr = place(splits.x_train), place(splits.y_train)
    make = lambda x, y, bs: Batches(x, y, bs, device, resident, transform)  # noqa: E731
    return {"train": make(x_tr, y_tr, config.batch_size),
            "train_eval": make(x_tr, y_tr, config.eval_batch_size),
            "val": make(place(splits.x_val), place(splits.y_val), config.eval_batch_size),
            "test": make(place(splits.x_test), place(splits.y_test), config.eval_batch_size)}


# ------------------------------------------------------------------ augmentation
def augment_images(x: Tensor, generator: torch.Generator) -> Tensor:
    """Random crop after reflect padding (4 px at 32 px, scaled) and random horizontal flip.

    Parameters
    ----------
    x : Tensor, shape (N, C, H, W)
    generator : torch.Generator
        On ``x``'s device.

    Returns
    -------
    Tensor, shape (N, C, H, W)
    """
    n, _, h, w = x.shape
    pad = max(1, round(4 * h / 32))
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    dev = x.device
    oy = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=generator.device).to(dev)
    ox = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=generator.device).to(dev)
    rows = (oy[:, None] + torch.arange(h, device=dev))[:, :, None]          # (N, H, 1)
    cols = (ox[:, None] + torch.arange(w, device=dev))[:, None, :]          # (N, 1, W)
    crops = padded.permute(0, 2, 3, 1)[torch.arange(n, device=dev)[:, None, None], rows, cols]
    crops = crops.permute(0, 3, 1, 2)                                         # (N, C, H, W)
    flip = torch.rand(n, generator=generator, device=generator.device).to(dev) < 0.5
    return torch.where(flip[:, None, None, None], crops.flip(3), crops).contiguous()


@torch.no_grad()
def shift_distribution(x: Tensor, generator: torch.Generator, max_degrees: float = 30.0,
                       jitter: float = 0.4) -> Tensor:
    """A shifted copy of images: random flip, rotation and colour jitter (paper Table 13).

    Parameters
    ----------
    x : Tensor, shape (N, C, H, W), values in [0, 1]
    generator : torch.Generator (CPU)
    max_degrees : float
        Rotation angle drawn uniformly in ``[-max_degrees, max_degrees]``.
    jitter : float
        Brightness, contrast (and saturation for RGB) factors drawn in ``[1 - jitter, 1 + jitter]``.

    Returns
    -------
    Tensor, shape (N, C, H, W), values in [0, 1]
    """
    n, c = x.shape[:2]

    def uniform(low, high):
        return low + (high - low) * torch.rand(n, generator=generator, dtype=torch.float64).to(x)

    flip = uniform(0, 1) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    angle = uniform(-max_degrees, max_degrees) * math.pi / 180
    cos, sin, zero = angle.cos(), angle.sin(), torch.zeros_like(angle)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    bright, contrast, sat = (uniform(1 - jitter, 1 + jitter)[:, None, None, None] for _ in range(3))
    x = x * bright
    grey = x.mean(dim=1, keepdim=True)
    x = (x - grey.mean(dim=(2, 3), keepdim=True)) * contrast + grey.mean(dim=(2, 3), keepdim=True)
    if c == 3:
        grey = x.mean(dim=1, keepdim=True)
        x = (x - grey) * sat + grey
    return x.clamp(0.0, 1.0)


# ------------------------------------------------------------------ training
def meta_update(model: nn.Module, lilaw: nn.Module, val: Batches, batch_size: int,
                generator: torch.Generator, *, eval_mode: bool, device: torch.device, amp: bool) -> dict:
    """LiLAW's meta step (Algorithm 1, lines 12-20) on one random validation mini-batch.

    The validation forward pass runs under ``torch.no_grad()`` (no network graph;
    in eval mode unless ``eval_mode`` is False), then ``lilaw.meta_step`` updates
    α, β, δ only. The network's parameters and their ``.grad`` are untouched.

    Returns
    -------
    dict
        ``alpha``, ``beta``, ``delta`` after the step and ``val_loss`` before it,
        as 0-d tensors (no host synchronisation).
    """
    x_val, y_val = draw_val_batch(val, batch_size, generator)
    return meta_forward_step(model, lilaw, x_val, y_val, eval_mode=eval_mode, device=device, amp=amp)


def meta_forward_step(model: nn.Module, lilaw: nn.Module, x_val: Tensor, y_val: Tensor, *, eval_mode: bool,
                      device: torch.device, amp: bool) -> dict:
    """The validation forward (no graph; eval mode unless ``eval_mode`` is False) and ``lilaw.meta_step``
    on one batch ``x_val`` (M, ...), ``y_val`` (M,); returns what :func:`meta_update` returns."""
    was_training = model.training
    if eval_mode:
        model.eval()
    with torch.no_grad(), autocast(device, amp):
        val_logits = model(x_val)
    model.train(was_training)
    return lilaw.meta_step(val_logits.float(), y_val, sync=False)


def train_one_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, train: Batches, *,
                    lilaw: nn.Module | None, weighted: bool, meta: bool, val: Batches | None,
                    generators: dict, config, device: torch.device,
                    step_scheduler=None, reweighter=None, step_offset: int = 0) -> dict:
    """One pass over the training set (Algorithm 1, lines 5-20).

    Parameters
    ----------
    model, optimizer
    train : Batches
        Training inputs (N, ...) and labels (N,) as trained on (possibly noisy).
    lilaw : LiLAW or None
    weighted : bool
        True: loss ``lilaw(logits, y)`` (``mean W·ℓ``); False: plain mean loss.
    meta : bool
        Run meta steps (needs ``lilaw`` and ``val``): after every ``config.meta_every``-th optimiser
        step, on ``meta_val_batch_size(config)`` validation samples, launched as
        :class:`~lilaw_edu.training.meta_schedule.MetaSchedule` says (fused forward, CUDA stream/graph).
    val : Batches or None
        Validation data for the meta step.
    generators : dict
        ``"shuffle"``, ``"augment"``, ``"meta"`` generators.
    config : TrainConfig
    step_scheduler : LR scheduler or None
        Stepped after every optimiser step (per-step schedules).
    reweighter : Reweighter or None
        L2RW / Meta-Weight-Net (:mod:`lilaw_edu.training.methods.harness`): its ``step`` replaces
        the forward/backward/optimiser step, with a validation batch drawn as the meta step draws it.
    step_offset : int
        Training steps run before this epoch: meta steps follow steps ``k, 2k, ...`` counted over the
        whole run (``k = config.meta_every``), so an epoch shorter than ``k`` steps still gets its share.

    Returns
    -------
    dict
        ``train_loss`` (mean of the optimised loss), ``train_acc`` (on the given labels), ``steps``,
        ``diverged_step`` (1-based first step whose loss was NaN or infinite, else None; tracked on
        the device, read once at the end of the epoch), ``meta_steps`` (meta steps run).
    """
    model.train()
    total_loss = torch.zeros((), device=device, dtype=torch.float64)
    correct = torch.zeros((), device=device, dtype=torch.int64)
    first_bad = torch.zeros((), device=device, dtype=torch.int64)  # 0: every loss finite so far
    seen, steps = 0, 0
    val_bs = meta_val_batch_size(config)
    schedule = MetaSchedule(model, lilaw, config, device, functools.partial(
        meta_forward_step, model, lilaw, eval_mode=config.meta_val_mode == "eval", device=device,
        amp=config.amp)) if meta else None
    for x, y, _ in train.epoch(generators["shuffle"]):
        due, x_val, y_val = schedule is not None and schedule.due(step_offset + steps + 1), None, None
        if config.augment and x.dim() == 4:
            x = augment_images(x, generators["augment"])
        if config.channels_last and device.type == "cuda" and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        if reweighter is not None:  # L2RW / MW-Net: look-ahead, then their own real step
            step = reweighter.step(model, optimizer, x, y, *draw_val_batch(val, val_bs, generators["meta"]))
            logits, loss = step["logits"], step["loss"]
        else:
            if due and schedule.fused:
                x_val, y_val = draw_val_batch(val, val_bs, generators["meta"])
            with autocast(device, config.amp):
                logits, val_logits = fused_forward(model, x, x_val)  # x_val None: model(x)
            logits = logits.float()
            if schedule is not None:
                schedule.wait()  # a meta step on the CUDA side stream must finish before α, β, δ are read
            loss = lilaw(logits, y) if weighted else plain_loss(logits, y, config.loss, config.focal_gamma)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if step_scheduler is not None:
            step_scheduler.step()
        if due and x_val is not None:
            schedule.fused_step(val_logits, y_val)
        elif due:
            schedule.launch(*draw_val_batch(val, val_bs, generators["meta"]))
        total_loss += loss.detach().double() * y.shape[0]
        correct += (logits.detach().argmax(1) == y).sum()
        seen += y.shape[0]
        steps += 1
        first_bad = torch.where((first_bad == 0) & ~torch.isfinite(loss.detach()), steps, first_bad)
    if schedule is not None:
        schedule.wait()
    bad = int(first_bad)
    return {"train_loss": float(total_loss) / seen, "train_acc": int(correct) / seen, "steps": steps,
            "diverged_step": bad or None, "meta_steps": schedule.meta_steps if schedule is not None else 0}


@torch.no_grad()
def predict_logits(model: nn.Module, data: Batches, *, device: torch.device, amp: bool = False,
                   channels_last: bool = False) -> Tensor:
    """Logits of every sample in order, in eval mode.

    Returns
    -------
    Tensor, shape (N, C), float32, on ``device``
    """
    was_training = model.training
    model.eval()
    out = []
    for x, _, _ in data.epoch(None):
        if channels_last and device.type == "cuda" and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(device, amp):
            out.append(model(x).float())
    model.train(was_training)
    return data.gather(torch.cat(out)) if hasattr(data, "gather") else torch.cat(out)  # DDP: all ranks' blocks


@torch.no_grad()
def evaluate(model: nn.Module, data: Batches, *, device: torch.device, amp: bool = False,
             channels_last: bool = False, labels: Tensor | None = None) -> dict:
    """Mean cross-entropy and accuracy of ``model`` on ``data`` (eval mode).

    Parameters
    ----------
    labels : Tensor, shape (N,), optional
        Labels to score against instead of ``data.y`` (e.g. the clean labels).

    Returns
    -------
    dict
        ``loss`` (float, nats), ``acc`` (float in [0, 1]), ``logits`` (Tensor (N, C)).
    """
    logits = predict_logits(model, data, device=device, amp=amp, channels_last=channels_last)
    y = (data.y if labels is None else labels).to(logits.device)
    return {"loss": float(F.cross_entropy(logits, y)), "acc": float((logits.argmax(1) == y).double().mean()),
            "logits": logits}


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
