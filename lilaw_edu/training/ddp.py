"""One run on several processes: ``torchrun --nproc-per-node N -m lilaw_edu run ...`` (DDP).

Under ``torchrun`` (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK`` set; ``--ddp`` optional) every
process loads the same data, builds the same model from the same seed, and then:

* the network is wrapped in :class:`~torch.nn.parallel.DistributedDataParallel`
  (``nccl`` on CUDA, one GPU per process, ``LOCAL_RANK``; ``gloo`` on CPU);
* every rank draws the same shuffle of the device-resident training set and takes its
  shard ``batch[rank::world]`` of every **global** batch (``batch_size`` is the global
  batch). DDP's gradient all-reduce is weighted by shard size (a comm hook), so the
  update is the gradient of the mean loss over the global batch even when the last
  batch does not split evenly;
* the meta step draws the same validation mini-batch on every rank, each rank
  differentiates the LiLAW loss on its shard, and the meta-gradients of α, β, δ are
  all-reduced (shard-size weighted mean) before the update. Every rank then applies the
  same update and the same constraints to the same values: α, β, δ stay bit-identical;
* validation, test and training-set evaluation passes give each rank a contiguous block
  of the split and all-gather the logits, so metrics are computed over the whole split,
  identically on every rank;
* rank 0 alone writes checkpoints (every rank reads them on ``--resume``) and results.

Differences from one process with the same global batch are floating-point ones
(summation order) for models without BatchNorm, dropout or augmentation. BatchNorm uses
:class:`~torch.nn.SyncBatchNorm` on CUDA; on CPU each rank normalises its shard in training
(a warning says so) and every evaluation pass uses rank 0's running statistics (broadcast
first); dropout masks and augmentations are drawn per shard. ``train_loss`` /
``train_acc`` in the history are rank 0's shard.
"""
from __future__ import annotations

import contextlib
import datetime
import inspect
import os
import warnings
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn

from lilaw_edu.training.engine import Batches
from lilaw_edu.training.meta_schedule import meta_val_batch_size

__all__ = ["Distributed", "ShardedBatches", "environment_world", "distributed_session"]


def environment_world() -> tuple[int, int, int] | None:
    """``(rank, world_size, local_rank)`` from torchrun's environment, or None outside torchrun."""
    if "WORLD_SIZE" not in os.environ or "RANK" not in os.environ:
        return None
    try:
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        local = int(os.environ.get("LOCAL_RANK", rank))
    except ValueError:
        raise ValueError(f"RANK, WORLD_SIZE and LOCAL_RANK must be integers, got RANK={os.environ['RANK']!r} "
                         f"WORLD_SIZE={os.environ['WORLD_SIZE']!r}") from None
    if not (world >= 1 and 0 <= rank < world):
        raise ValueError(f"RANK must be in [0, WORLD_SIZE), got RANK={rank}, WORLD_SIZE={world}")
    return rank, world, local


class ShardedBatches(Batches):
    """A :class:`~lilaw_edu.training.engine.Batches` whose passes each rank takes its share of.

    * shuffled passes (training): the same permutation on every rank; each global batch
      ``b`` is cut to ``b[rank::world]``;
    * ordered passes (evaluation): this rank's contiguous block of the split
      (:meth:`gather` puts the blocks' outputs back together in order);
    * :meth:`take` (the meta step's validation batch): ``idx[rank::world]``.

    ``share`` is this rank's fraction of the last global batch (train or meta), the weight
    of its gradients in the all-reduce.
    """

    def __init__(self, base: Batches, rank: int, world: int):
        self.__dict__.update(base.__dict__)
        self.rank, self.world, self.share = rank, world, 1.0 / world
        self.before_evaluation = None     # called at the start of every ordered pass (on every rank)
        sizes = [self.n // world + (r < self.n % world) for r in range(world)]
        self.block = (sum(sizes[:rank]), sum(sizes[:rank + 1]))
        self.block_sizes = sizes

    def _rows(self, idx: Tensor) -> tuple[Tensor, Tensor]:
        rows = idx.to(self.x.device)
        return self.transform(self.x[rows].to(self.device)), self.y[rows].to(self.device)

    def epoch(self, generator: torch.Generator | None):
        """Yield this rank's ``(x, y, index)`` of every global batch (shuffled), or of its block (ordered)."""
        if generator is None:
            if self.before_evaluation is not None:
                self.before_evaluation()
            lo, hi = self.block
            for start in range(lo, hi, self.batch_size):
                idx = torch.arange(start, min(start + self.batch_size, hi), device=self.device)
                yield (*self._rows(idx), idx)
            return
        order = torch.randperm(self.n, generator=generator, device=generator.device)
        for start in range(0, self.n, self.batch_size):
            batch = order[start:start + self.batch_size]
            mine = batch[self.rank::self.world].to(self.device)
            self.share = mine.numel() / batch.numel()
            yield (*self._rows(mine), mine)

    def take(self, idx: Tensor) -> tuple[Tensor, Tensor]:
        """This rank's part ``idx[rank::world]`` of a global batch of indices."""
        mine = idx[self.rank::self.world]
        self.share = mine.numel() / idx.numel()
        return self._rows(mine)

    def gather(self, logits: Tensor) -> Tensor:
        """All ranks' block outputs, concatenated in split order (every rank gets all of them).

        Parameters
        ----------
        logits : Tensor, shape (block size, C)

        Returns
        -------
        Tensor, shape (N, C)
        """
        width = max(self.block_sizes)
        padded = logits.new_zeros((width, *logits.shape[1:]))
        padded[:logits.shape[0]] = logits
        parts = [torch.empty_like(padded) for _ in range(self.world)]
        dist.all_gather(parts, padded.contiguous())
        return torch.cat([p[:k] for p, k in zip(parts, self.block_sizes)])


# No collective in forward passes (evaluation blocks differ in batch count between ranks); buffers
# are synced once at construction. torch >= 2.14 renamed broadcast_buffers to forward_sync_buffers.
_NO_FORWARD_BUFFER_SYNC = ({"forward_sync_buffers": False} if "forward_sync_buffers" in
                           inspect.signature(nn.parallel.DistributedDataParallel.__init__).parameters
                           else {"broadcast_buffers": False})


def _weighted_allreduce(shares: ShardedBatches, bucket):
    """DDP comm hook: sum over ranks of ``share_r · grad_r`` (the gradient of the global-batch mean)."""
    tensor = bucket.buffer()
    tensor.mul_(shares.share)
    fut = dist.all_reduce(tensor, op=dist.ReduceOp.SUM, async_op=True).get_future()
    return fut.then(lambda f: f.value()[0])


@dataclass
class Distributed:
    """This process's place in a DDP run (see the module docstring)."""

    rank: int
    world_size: int
    local_rank: int
    backend: str

    @property
    def is_writer(self) -> bool:
        """Rank 0 writes checkpoints and results."""
        return self.rank == 0

    def reduce_meta_gradients(self, val: ShardedBatches, grads):
        """Shard-weighted mean over ranks of the meta-gradients (a tuple of 0-d tensors), same on every rank."""
        flat = torch.stack([g.detach() for g in grads]) * val.share
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        return tuple(flat.unbind())

    def _check_shards(self, run) -> None:
        cfg, world = run.config, self.world_size
        unsupported = [name for name, on in (("L2RW / Meta-Weight-Net methods", getattr(run, "reweighter", None)),
                                             ("meta_cuda_graph", getattr(cfg, "meta_cuda_graph", False)),
                                             ("meta_cuda_stream", getattr(cfg, "meta_cuda_stream", False))) if on]
        if unsupported:
            raise ValueError(f"DDP does not support {', '.join(unsupported)} (method {run.method!r}); "
                             f"run it in one process (without torchrun) or turn those settings off")
        val_bs = min(meta_val_batch_size(cfg), run.data["val"].n)
        last = run.data["train"].n % cfg.batch_size
        problems = [f"{name}={value} < {world} processes" for name, value in
                    (("batch_size", cfg.batch_size), ("validation batch", val_bs),
                     ("validation size", run.data["val"].n), ("test size", run.data["test"].n)) if value < world]
        if 0 < last < world:
            problems.append(f"the last training batch has {last} sample(s) for {world} processes")
        if problems:
            raise ValueError(f"DDP needs at least one sample per process in every batch: {'; '.join(problems)}; "
                             f"choose another --batch-size or fewer processes")

    def prepare(self, run) -> None:
        """Shard the batches, wrap the network in DDP, all-reduce LiLAW's meta-gradients, and
        let rank 0 alone write checkpoints (``run`` is a :class:`lilaw_edu.training.loop.MethodRun`)."""
        self._check_shards(run)
        run.data = {k: ShardedBatches(v, self.rank, self.world_size) for k, v in run.data.items()}
        model = run.model
        if any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)) for m in model.modules()):
            if run.device.type == "cuda":
                model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
            elif self.is_writer:
                warnings.warn("DDP on CPU: BatchNorm statistics are computed per rank on its shard "
                              "(SyncBatchNorm needs CUDA); results differ from one process", RuntimeWarning,
                              stacklevel=2)
        ids = [run.device.index if run.device.index is not None else torch.cuda.current_device()] \
            if run.device.type == "cuda" else None
        ddp = nn.parallel.DistributedDataParallel(model, device_ids=ids, **_NO_FORWARD_BUFFER_SYNC)
        ddp.register_comm_hook(run.data["train"], _weighted_allreduce)
        buffers = list(model.buffers())
        if buffers:  # BatchNorm running statistics: rank 0's, on every rank, for every evaluation pass
            for batches in run.data.values():
                batches.before_evaluation = lambda: [dist.broadcast(b, 0) for b in buffers]
        run.model, run.net = model, torch.compile(ddp) if run.config.compile else ddp
        if run.lilaw is not None:
            val = run.data["val"]
            run.lilaw.grad_reducer = lambda grads: self.reduce_meta_gradients(val, grads)
        if not self.is_writer:
            run.path = None


@contextlib.contextmanager
def distributed_session(force: bool = False, device: str = "auto"):
    """Join the torchrun process group for the duration of the block; yield :class:`Distributed` or None.

    Parameters
    ----------
    force : bool
        ``--ddp``: fail when not started by torchrun (else run as one process).
    device : str
        The config's device: ``cuda`` (or ``auto`` with a GPU) -> ``nccl`` and ``cuda:LOCAL_RANK``;
        else ``gloo`` on CPU.
    """
    world = environment_world()
    if world is None or (world[1] == 1 and not force):
        if force:
            raise ValueError("--ddp needs torchrun's environment (RANK, WORLD_SIZE); start with "
                             "'torchrun --nproc-per-node N -m lilaw_edu run ...'")
        yield None
        return
    rank, size, local = world
    cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if cuda:
        if local >= torch.cuda.device_count():
            raise ValueError(f"LOCAL_RANK {local} needs GPU {local}, but {torch.cuda.device_count()} GPU(s) are "
                             f"visible; use --nproc-per-node <= the number of GPUs, or --device cpu")
        torch.cuda.set_device(local)
    backend = "nccl" if cuda else "gloo"
    dist.init_process_group(backend, rank=rank, world_size=size, timeout=datetime.timedelta(minutes=30))
    try:
        yield Distributed(rank=rank, world_size=size, local_rank=local, backend=backend)
        dist.barrier()
    finally:
        dist.destroy_process_group()
