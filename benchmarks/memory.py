"""Peak memory of one training variant, measured in a fresh child process per variant.

A process's peak resident set size only grows, so measuring four variants one after
another in one process would credit every variant with the largest peak so far.
Each (workload, variant) pair therefore trains in its own child, forked from a
``multiprocessing`` *forkserver* that has imported torch and nothing else (no
threads started, no tensors allocated), which is as clean as a new interpreter
but skips the seconds of ``import torch`` per child.

The child reports

* ``peak_rss_mib``: ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` at the end (the
  whole process: interpreter, torch, data, model, training);
* ``train_rss_increment_mib``: the part of that peak due to training: the peak
  resident set size during the timed epochs (``VmHWM`` after resetting it through
  ``/proc/self/clear_refs``) minus the resident set size just before them;
* on CUDA, ``cuda_max_allocated_mib``: ``torch.cuda.max_memory_allocated`` over the
  epochs after ``torch.cuda.reset_peak_memory_stats``.
"""
from __future__ import annotations

import multiprocessing
import resource
from concurrent.futures import ProcessPoolExecutor

import torch

__all__ = ["measure_peak_memory", "child_peak_memory"]


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_rss_peak() -> bool:
    """Reset ``VmHWM`` to the current RSS (Linux >= 4.0); False when not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def child_peak_memory(workload, init_state: dict, variant: str, device_name: str, epochs: int,
                      threads: int, seed: int = 0) -> dict:
    """Train ``epochs`` epochs of ``variant`` in this (child) process and report its peak memory.

    Parameters
    ----------
    workload : Workload
    init_state : dict
    variant : str
    device_name : str
        ``"cpu"`` or ``"cuda"``.
    epochs : int
    threads : int
        ``torch.set_num_threads`` in the child (the parent's setting).
    seed : int

    Returns
    -------
    dict
        ``peak_rss_mib``, ``train_rss_increment_mib`` (None when ``/proc`` is unavailable)
        and, on CUDA, ``cuda_max_allocated_mib``.
    """
    from .variants import VariantRunner

    torch.set_num_threads(threads)
    device = torch.device(device_name)
    runner = VariantRunner(variant, workload, init_state, device, seed=seed)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    rss_before = _status_kib("VmRSS")
    reset = _reset_rss_peak()
    for _ in range(epochs):
        runner.run_epoch()
    out = {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    hwm = _status_kib("VmHWM")
    out["train_rss_increment_mib"] = (hwm - rss_before) / 1024 if reset and hwm and rss_before else None
    if device.type == "cuda":
        out["cuda_max_allocated_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    return out


def measure_peak_memory(workload, init_state: dict, variant: str, device: torch.device, *,
                        epochs: int, threads: int, seed: int = 0) -> dict:
    """Run :func:`child_peak_memory` in a fresh forkserver child and return its report."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["torch"])
    with ProcessPoolExecutor(max_workers=1, mp_context=context, max_tasks_per_child=1) as pool:
        future = pool.submit(child_peak_memory, workload, init_state, variant, device.type, epochs, threads, seed)
        return future.result()
