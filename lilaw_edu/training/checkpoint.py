"""The loop state of one method's run, which is also its checkpoint format.

One file per method, ``<out_dir>/checkpoints/<method>.pt``, rewritten after every epoch
atomically (:func:`lilaw_edu._internal.files.atomic_write_bytes`): a kill mid-write
leaves the previous checkpoint intact. The file holds :meth:`LoopState.to_state_dict`:
plain tensors, numbers, strings, lists and dicts only, tagged with a format name and a
version, and it is read back with ``torch.load(..., weights_only=True)``, so a planted
file cannot run code. It holds everything the next epoch depends on (model, optimiser,
scheduler, LiLAW and recorder states, every random generator including the global one
used by dropout, the history and the selection state), so a resumed run on CPU ends
with exactly the metrics of an uninterrupted one.
"""
from __future__ import annotations

import dataclasses
import io
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import torch

from lilaw_edu._internal.files import atomic_write_bytes
from lilaw_edu.training.config import RUNTIME_FIELDS, TrainConfig

__all__ = ["CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "CheckpointError", "LoopState", "checkpoint_path",
           "save_checkpoint", "load_checkpoint", "capture_rng", "restore_rng", "check_resume_config"]

CHECKPOINT_FORMAT = "lilaw-edu/loop-state"
CHECKPOINT_VERSION = 3
_FIX = "delete it to restart that method, or run without --resume"


class CheckpointError(ValueError):
    """A checkpoint cannot be used; the one-line message names the file, what is wrong and the fix."""


@dataclass
class LoopState:
    """Everything one method's training loop carries from one epoch to the next.

    Progress fields change every epoch; the component fields hold the ``state_dict()`` of
    each stateful object (``None`` where the method has none). ``result`` is set once the
    method has finished (the component fields are then dropped).
    """

    method: str
    config: dict                        # TrainConfig.to_dict() of the method's config
    epoch: int = 0                      # epochs completed
    history: list = field(default_factory=list)   # one dict per epoch (see run_method)
    best_score: float | None = None     # selection score of the selected epoch (higher is better)
    best_epoch: int = 0                 # 1-based epoch of the selected checkpoint (0: none yet)
    bad_epochs: int = 0                 # epochs since the selection score last strictly improved
    elapsed: float = 0.0                # seconds of training so far
    stopped_early: bool = False
    best_model: dict | None = None      # model state_dict of the selected epoch
    weights: dict = field(default_factory=dict)    # {epoch: {w_alpha, w_beta, w_delta, w}}
    scores: dict = field(default_factory=dict)     # {epoch: {score name: list}}
    skipped_meta_steps: int = 0         # meta steps skipped by LiLAW's non-finite guard
    torch_threads: int | None = None    # torch.get_num_threads() when the state was saved
    thread_changes: list = field(default_factory=list)  # [{epoch, from, to}] resumes on another thread count
    model: dict | None = None
    optimizer: dict | None = None
    scheduler: dict | None = None
    lilaw: dict | None = None
    recorders: dict | None = None
    peer: dict | None = None            # a relative's weighting state (MW-Net: net + optimiser; issue 11)
    rng: dict | None = None
    result: dict | None = None

    def to_state_dict(self) -> dict:
        """Plain dict (tensors, numbers, strings, lists, dicts) tagged with format and version."""
        state = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **state}

    @classmethod
    def from_state_dict(cls, state, source="checkpoint") -> "LoopState":
        """Inverse of :meth:`to_state_dict`.

        Raises
        ------
        CheckpointError
            Not a dict, another format or version, a missing or unknown key, or a field of the
            wrong type; the message names ``source`` and what is wrong.
        """
        def bad(why):
            return CheckpointError(f"checkpoint {source} {why}; {_FIX}")

        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            raise bad(f"is not a {CHECKPOINT_FORMAT} file (it may come from an older lilaw-edu)")
        if state.get("version") != CHECKPOINT_VERSION:
            raise bad(f"has version {state.get('version')!r}, this lilaw-edu reads version {CHECKPOINT_VERSION}")
        names = [f.name for f in dataclasses.fields(cls)]
        missing = [k for k in names if k not in state]
        unknown = sorted(set(state) - set(names) - {"format", "version"})
        if missing or unknown:
            raise bad(f"lacks keys {missing}" if missing else f"has unknown keys {unknown}")
        values = {k: state[k] for k in names if k in state}
        for name, kind in (("method", str), ("config", dict), ("epoch", int), ("history", list),
                           ("best_epoch", int), ("bad_epochs", int), ("weights", dict), ("scores", dict)):
            if name in values and not isinstance(values[name], kind):
                raise bad(f"field {name!r} must be of type {kind.__name__}, got {type(values[name]).__name__}")
        return cls(**values)


def checkpoint_path(out_dir, method: str) -> Path:
    """``<out_dir>/checkpoints/<method>.pt``."""
    return Path(out_dir) / "checkpoints" / f"{method}.pt"


def save_checkpoint(path, state: LoopState) -> None:
    """Write ``state.to_state_dict()`` atomically with ``torch.save``."""
    if not isinstance(state, LoopState):
        raise TypeError(f"state must be a LoopState, got {type(state).__name__}")
    buffer = io.BytesIO()
    torch.save(state.to_state_dict(), buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path, map_location="cpu") -> LoopState | None:
    """Load a checkpoint with ``torch.load(weights_only=True)``; ``None`` when ``path`` does not exist.

    Raises
    ------
    CheckpointError
        The file is unreadable, truncated, holds pickled objects, or is of another format,
        version or layout (one line naming the file and the fix).
    """
    path = Path(path)
    if not path.exists():
        return None
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} is not a regular file; {_FIX}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if "GLOBAL" not in str(exc) and "allowed global" not in str(exc):  # garbage, not a refused object
            raise CheckpointError(f"checkpoint {path} is corrupted or truncated (UnpicklingError); {_FIX}") from None
        raise CheckpointError(f"checkpoint {path} holds pickled objects that a plain-data checkpoint "
                              f"never contains (refused, nothing was run); {_FIX}") from None
    except OSError as exc:
        raise CheckpointError(f"checkpoint {path} cannot be read ({type(exc).__name__}: {exc.strerror}); "
                              f"{_FIX}") from None
    except Exception as exc:  # noqa: BLE001  truncated zip, bad magic number, ...
        raise CheckpointError(f"checkpoint {path} is corrupted or truncated ({type(exc).__name__}); "
                              f"{_FIX}") from None
    return LoopState.from_state_dict(state, source=path)


def check_resume_config(saved: dict, current: dict, path) -> None:
    """Refuse to resume a checkpoint made with a different config (ignoring ``RUNTIME_FIELDS``; a field
    missing from an older checkpoint counts as its current default, e.g. ``pretrain="none"``)."""
    defaults = TrainConfig().to_dict()
    changed = sorted(k for k in set(saved) | set(current)
                     if k not in RUNTIME_FIELDS and saved.get(k, defaults.get(k)) != current.get(k))
    if changed:
        raise CheckpointError(f"checkpoint {path} was made with a different config (fields {changed}); "
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
