"""The training variants of issues 6 and 13, each one epoch of ``lilaw_edu.training.engine.train_one_epoch``.

1. ``baseline``: plain cross-entropy, Adam step.
2. ``lilaw``: the package as it is: ``LiLAW.forward`` in the training step, then
   ``engine.meta_update`` (validation forward under ``torch.no_grad()`` in eval mode,
   ``LiLAW.meta_step`` on α, β, δ).
3. ``graph_through_network``: a naive implementation (called ``paper_literal`` before
   issue 13) whose validation forward keeps the network's graph and back-propagates the
   validation loss through the network; α, β, δ are updated by hand. It is *not* what
   Algorithm 1 prints: its line 13 sets ``requires_grad=False`` on θ *before* the
   validation forward of line 14, so the printed algorithm already costs one forward
   (the paper's loose words are in §1, "one additional forward and backward pass").
   This is the only training logic written here (:func:`graph_through_network_meta_step`);
   it runs through the engine's per-step hook.
4. ``limit``: the baseline plus exactly LiLAW's validation forward (``engine.meta_update``
   with a meta step that does nothing): the one-forward-pass floor of LiLAW's cost.
5. ``lilaw-cheap`` (issue 13, :data:`CHEAP`): LiLAW with the cheaper meta step of
   ``lilaw_edu.training.config.VARIANTS["lilaw-cheap"]`` (a meta step every k training
   steps on B/r validation samples, meta lr times k), run by the package's engine;
   ``--frontier`` adds :data:`FRONTIER_VARIANTS`, more points of the time/accuracy frontier.

Every variant starts from the same initial weights and draws its batches from
generators with the same seeds, so all see the same data in the same order.
"""
from __future__ import annotations

import time
import warnings

import torch
from torch import Tensor, nn

from lilaw_edu.training import engine
from lilaw_edu.training.config import config_from_preset, method_overrides
from lilaw_edu.training.meta_schedule import effective_meta_lr
from lilaw_edu.core.losses import per_sample_loss
from lilaw_edu.core.weighting import LiLAW, lilaw_weights
from lilaw_edu.training.methods.harness import Reweighter

from .workloads import Workload, build_workload_model

__all__ = ["VARIANTS", "PEER_VARIANTS", "LOADERS", "CHEAP", "FRONTIER_VARIANTS", "ForwardOnlyMeta",
           "GraphThroughNetworkMetaStep", "graph_through_network_meta_step",
           "StandardLoader", "VariantRunner", "synchronize"]

# issue 13: the chosen cheap setting (a method of lilaw_edu.training.config.VARIANTS) and, with
# --frontier, the other settings of the cpu-cheap-meta sweep (lilaw-k4s costs what lilaw-k4 costs)
CHEAP = "lilaw-cheap"
FRONTIER_VARIANTS = ("lilaw-k4", "lilaw-k8s")
VARIANTS = ("baseline", "lilaw", "graph_through_network", "limit", CHEAP)
# LiLAW's relatives (issue 11, ``--peers``): L2RW and MW-Net run their package step
# (lilaw_edu.training.methods.harness.Reweighter) inside train_one_epoch; "cleanlab" is the
# baseline epoch plus its amortised cross-fitting: K folds x ceil(f E) epochs on (K-1)/K of the
# data is f (K-1) full-data epochs per training epoch (f = cl_fold_epochs = 0.5, K = cl_folds = 5:
# 2 extra epochs of a fold model), the retraining counted on the full set (an upper bound; it
# trains on the unflagged samples only). cleanlab's find_label_issues itself (milliseconds) is not timed.
PEER_VARIANTS = ("l2rw", "mwnet", "cleanlab")
# lilaw_weights' input check calls float() on probabilities that carry a graph in variant 3.
warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad=True to a scalar")
LOADERS = ("resident", "dataloader")


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work (no-op on CPU) so wall-clock timings are complete."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class ForwardOnlyMeta:
    """Stands in for ``LiLAW`` in ``engine.meta_update``: the validation forward runs, the meta step is empty.

    With it, ``train_one_epoch(..., weighted=False, meta=True)`` is the baseline plus
    LiLAW's validation forward pass and nothing else (variant 4, the limit).
    """

    def meta_step(self, val_logits: Tensor, val_targets: Tensor, **options) -> dict:
        """Do nothing (any options of ``LiLAW.meta_step`` are accepted); returns an empty dict."""
        return {}


def graph_through_network_meta_step(model: nn.Module, lilaw: LiLAW, x_val: Tensor, y_val: Tensor, *,
                                    device: torch.device, amp: bool = False) -> Tensor:
    """A naive meta step whose meta loss back-propagates through the network (not Algorithm 1 as printed).

    Order (it matters): the validation forward runs with the network's parameters
    still requiring grad, so autograd records the whole network graph (Algorithm 1's
    line 14); only then is ``requires_grad`` set to False on them (the printed line 13
    comes *before* line 14, which makes the printed algorithm cost one forward; applied
    after the graph exists it stops only the accumulation into ``θ.grad``, not the
    backward pass through every layer); the meta loss ``mean W·ℓ`` is built from the *non-detached*
    logits with :func:`lilaw_weights` and :func:`per_sample_loss` (line 15);
    ``.backward()`` runs through the network (line 16); α, β, δ take a manual SGD +
    weight-decay step and their gradients are cleared (lines 17-20); the constraints
    are applied as in ``LiLAW.meta_step``; ``requires_grad`` is restored on the network
    for the next training step (line 6). The model stays in train mode: the
    pseudocode does not switch modes (our variant 2 uses eval mode).

    Parameters
    ----------
    model : nn.Module
    lilaw : LiLAW
    x_val : Tensor, shape (M, ...)
    y_val : Tensor, shape (M,)
    device : torch.device
    amp : bool
        bf16 autocast on CUDA for the forward (as the engine does).

    Returns
    -------
    Tensor, shape ()
        The validation loss before the step, detached (no host synchronisation,
        as ``engine.meta_update`` does not synchronise either).
    """
    network = [p for p in model.parameters() if p.requires_grad]
    with engine.autocast(device, amp):
        logits = model(x_val)                      # line 14, graph through θ
    logits = logits.float()
    for p in network:                              # line 13, moved after the graph is built (the naive order)
        p.requires_grad_(False)
    params = [getattr(lilaw, name) for name in lilaw.active]
    weights = lilaw_weights(torch.softmax(logits, dim=1), y_val, lilaw.alpha, lilaw.beta, lilaw.delta,
                            active=lilaw.active)
    loss = (weights * per_sample_loss(logits, y_val, lilaw.loss, gamma=lilaw.gamma, check=False)).mean()
    loss.backward()                                # line 16, through the whole network
    with torch.no_grad():
        for p in params:                           # lines 17-19
            p.sub_(lilaw.meta_lr * (p.grad + lilaw.meta_wd * p))
            p.grad = None                          # line 20
        if lilaw.constraints:
            lilaw.apply_constraints()
    for p in network:                              # line 6 of the next step
        p.requires_grad_(True)
    return loss.detach()


class GraphThroughNetworkMetaStep:
    """Runs :func:`graph_through_network_meta_step` on a random validation batch after every optimiser step.

    Passed to ``engine.train_one_epoch`` as its per-step hook (``step_scheduler``,
    whose ``.step()`` the engine calls right after every ``optimizer.step()``), so
    variant 3 uses the package's training step unchanged. The validation batch is
    drawn exactly as ``engine.meta_update`` draws it.
    """

    def __init__(self, model: nn.Module, lilaw: LiLAW, val: engine.Batches, batch_size: int,
                 generator: torch.Generator, *, device: torch.device, amp: bool):
        self.model, self.lilaw, self.val, self.batch_size = model, lilaw, val, batch_size
        self.generator, self.device, self.amp = generator, device, amp

    def step(self) -> None:
        """One graph-through-network meta step."""
        idx = torch.randperm(self.val.n, generator=self.generator, device=self.generator.device)[:self.batch_size]
        x_val, y_val = self.val.take(idx)
        graph_through_network_meta_step(self.model, self.lilaw, x_val, y_val, device=self.device, amp=self.amp)


class StandardLoader:
    """The usual PyTorch input pipeline, with the interface ``train_one_epoch`` expects of ``Batches``.

    ``DataLoader(TensorDataset(x, y), batch_size, shuffle=True, num_workers=0)`` with
    the default collate (per-sample indexing, then ``torch.stack``), tensors in host
    memory, each batch copied to ``device`` (``pin_memory`` on CUDA).

    Parameters
    ----------
    x : Tensor, shape (N, ...) ; y : Tensor, shape (N,)
    batch_size : int
    device : torch.device
    seed : int
        Seeds the DataLoader's shuffling generator (CPU).
    """

    def __init__(self, x: Tensor, y: Tensor, batch_size: int, device: torch.device, seed: int = 0):
        self.n, self.device = int(y.shape[0]), device
        self.generator = torch.Generator().manual_seed(seed)
        self.loader = torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(x.cpu(), y.cpu()), batch_size=batch_size, shuffle=True,
            num_workers=0, generator=self.generator, pin_memory=device.type == "cuda")

    def __len__(self) -> int:
        return len(self.loader)

    def epoch(self, generator=None):
        """Yield ``(x, y, None)`` batches on ``device`` for one shuffled pass (``generator`` unused)."""
        for xb, yb in self.loader:
            yield xb.to(self.device, non_blocking=True), yb.to(self.device, non_blocking=True), None


class VariantRunner:
    """One variant's model, optimiser, LiLAW state and batches; ``run_epoch()`` times one epoch.

    Parameters
    ----------
    variant : str
        One of :data:`VARIANTS`.
    workload : Workload
    init_state : dict
        Initial ``state_dict`` (the same for every variant).
    device : torch.device
    loader : {"resident", "dataloader"}
        ``"resident"``: ``engine.Batches`` (tensors on the device, shuffled by
        ``randperm`` and sliced); ``"dataloader"``: :class:`StandardLoader`.
    seed : int
        Seeds the batch order and the validation batches (same for every variant).
    """

    def __init__(self, variant: str, workload: Workload, init_state: dict, device: torch.device, *,
                 loader: str = "resident", seed: int = 0):
        allowed = VARIANTS + PEER_VARIANTS + FRONTIER_VARIANTS
        if variant not in allowed:
            raise ValueError(f"variant must be one of {allowed}, got {variant!r}")
        if loader not in LOADERS:
            raise ValueError(f"loader must be one of {LOADERS}, got {loader!r}")
        self.variant, self.device, self.steps_done = variant, device, 0
        self.scheduled = variant.startswith("lilaw-")  # issue 13: a LiLAW method with its meta schedule
        meta_fields = {k: v for k, v in method_overrides(variant).items() if k != "weighting"} \
            if self.scheduled else {}
        self.config = config_from_preset(None, batch_size=workload.batch_size, device=device.type, **meta_fields)
        self.model = build_workload_model(workload)
        self.model.load_state_dict(init_state)
        self.model.to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.config.lr)
        bs = workload.batch_size
        if loader == "resident":
            self.train = engine.Batches(workload.x_train, workload.y_train, bs, device, resident=True)
        else:
            self.train = StandardLoader(workload.x_train, workload.y_train, bs, device, seed)
        self.val = engine.Batches(workload.x_val, workload.y_val, bs, device, resident=True)
        self.generators = {name: engine.make_generator(seed, name, device) for name in ("shuffle", "augment", "meta")}
        self.lilaw, self.hook = None, None
        if variant in ("lilaw", "graph_through_network") or self.scheduled:
            self.lilaw = LiLAW(meta_lr=effective_meta_lr(self.config)).to(device)
        if variant == "limit":
            self.lilaw = ForwardOnlyMeta()
        if variant == "graph_through_network":
            self.hook = GraphThroughNetworkMetaStep(self.model, self.lilaw, self.val, bs, self.generators["meta"],
                                             device=device, amp=self.config.amp)
        self.reweighter = Reweighter(variant, self.config, device) if variant in ("l2rw", "mwnet") else None
        self.fold_model = self.fold_optimizer = None
        self.fold_epochs = round(self.config.cl_fold_epochs * (self.config.cl_folds - 1))
        if variant == "cleanlab":
            self.fold_model = build_workload_model(workload)
            self.fold_model.load_state_dict(init_state)
            self.fold_model.to(device)
            self.fold_optimizer = torch.optim.Adam(self.fold_model.parameters(), lr=self.config.lr)
        self.n_train = int(workload.y_train.shape[0])

    def run_epoch(self) -> tuple[float, float]:
        """Train one epoch of this variant.

        Returns
        -------
        wall, cpu : float
            Wall-clock seconds and this process's CPU seconds (all threads) for the epoch.
        """
        weighted = self.variant in ("lilaw", "graph_through_network") or self.scheduled
        meta = self.variant in ("lilaw", "limit") or self.scheduled
        synchronize(self.device)
        start, cpu_start = time.perf_counter(), time.process_time()
        engine.train_one_epoch(self.model, self.optimizer, self.train, lilaw=self.lilaw, weighted=weighted,
                               meta=meta, val=self.val if meta or self.reweighter else None,
                               generators=self.generators, config=self.config, device=self.device,
                               step_scheduler=self.hook, reweighter=self.reweighter, step_offset=self.steps_done)
        self.steps_done += len(self.train)
        for _ in range(self.fold_epochs if self.fold_model is not None else 0):  # cleanlab's cross-fitting share
            engine.train_one_epoch(self.fold_model, self.fold_optimizer, self.train, lilaw=None, weighted=False,
                                   meta=False, val=None, generators=self.generators, config=self.config,
                                   device=self.device)
        synchronize(self.device)
        return time.perf_counter() - start, time.process_time() - cpu_start
