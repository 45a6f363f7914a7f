"""Atomic per-epoch checkpoints so a run can resume after a crash or a dropped Colab session.

One file per method, ``<out_dir>/checkpoints/<method>.pt``, rewritten after every
epoch by writing a temporary file in the same folder and ``os.replace``-ing it
(atomic on POSIX and Windows): a kill mid-write leaves the previous checkpoint
intact. A checkpoint holds everything the next epoch depends on: model,
optimiser, scheduler and LiLAW states, every random generator (including the
global one used by dropout), the history, the early-stopping state and the
recorded weights/scores, so a resumed run on CPU ends with exactly the metrics
of an uninterrupted one.
"""
from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import torch

__all__ = ["checkpoint_path", "save_checkpoint", "load_checkpoint", "atomic_write_bytes",
           "capture_rng", "restore_rng", "RESUME_INSENSITIVE_FIELDS", "check_resume_config"]

CHECKPOINT_VERSION = 1
# Fields that may differ between the interrupted run and the resumed one.
RESUME_INSENSITIVE_FIELDS = ("device", "data_dir", "compile", "eval_batch_size", "resident_max_gb", "num_threads")


def checkpoint_path(out_dir, method: str) -> Path:
    """``<out_dir>/checkpoints/<method>.pt``."""
    return Path(out_dir) / "checkpoints" / f"{method}.pt"


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder + ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_checkpoint(path, state: dict) -> None:
    """Save ``state`` (a dict of tensors, state dicts and plain values) atomically with ``torch.save``."""
    buffer = io.BytesIO()
    torch.save({"version": CHECKPOINT_VERSION, **state}, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path, map_location="cpu") -> dict | None:
    """Load a checkpoint, or ``None`` when ``path`` does not exist.

    Raises
    ------
    ValueError
        The file is truncated, corrupted or of another version (names the file and the fix).
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # truncated zip, pickle error, ...
        raise ValueError(f"checkpoint {path} is corrupted or truncated ({type(exc).__name__}); "
                         f"delete it to restart that method, or run without --resume") from None
    if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"checkpoint {path} has an unknown format (expected version {CHECKPOINT_VERSION}); "
                         f"delete it or run without --resume")
    return state


def check_resume_config(saved: dict, current: dict, path) -> None:
    """Refuse to resume a checkpoint made with a different config (ignoring device-like fields)."""
    changed = sorted(k for k in set(saved) | set(current)
                     if k not in RESUME_INSENSITIVE_FIELDS and saved.get(k) != current.get(k))
    if changed:
        raise ValueError(f"checkpoint {path} was made with a different config (fields {changed}); "
                         f"use a new output folder or run without --resume")


def capture_rng(generators: dict) -> dict:
    """States of named generators plus the global CPU (and CUDA) generators."""
    states = {name: g.get_state() for name, g in generators.items()}
    states["_torch_cpu"] = torch.get_rng_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["_torch_cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng(generators: dict, states: dict) -> None:
    """Inverse of :func:`capture_rng`."""
    for name, g in generators.items():
        g.set_state(states[name])
    torch.set_rng_state(states["_torch_cpu"])
    if "_torch_cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["_torch_cuda"])
