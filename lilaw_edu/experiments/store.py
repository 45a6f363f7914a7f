"""Sweep result files: run specs, stable run ids, atomic writes and validated reads.

See :mod:`lilaw_edu.experiments.runner` for how a sweep uses them. A result file is::

    {"schema": SCHEMA, "run_id": ..., "preset": ..., "row": ..., "tables": [...],
     "payload_sha256": sha256(canonical JSON of payload), "payload": {...}}

with ``payload = {"spec", "config", "result", "provenance"}``.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from lilaw_edu._internal.files import atomic_write_bytes
from lilaw_edu.training.config import RUNTIME_FIELDS, config_from_preset

__all__ = ["SCHEMA", "HASH_NEUTRAL_DEFAULTS", "RunSpec", "CorruptResultError", "run_id_of", "make_record",
           "write_record", "read_record", "lock_path", "claim_run", "release_runs"]

SCHEMA = "lilaw-edu/sweep-result/1"


class CorruptResultError(ValueError):
    """A result file is truncated, corrupted or inconsistent; the message names the file and why."""


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: a row of a preset at one seed.

    ``overrides`` is stored as a sorted tuple of (field, value) pairs so specs are hashable.
    """

    preset: str
    row: str
    tables: tuple
    base: str
    overrides: tuple
    methods: tuple
    seed: int

    def config(self, device: str | None = None):
        """The resolved, validated :class:`~lilaw_edu.training.config.TrainConfig` (``device`` overrides the preset's)."""
        return config_from_preset(self.base, **dict(self.overrides), seed=self.seed, device=device)

    @cached_property
    def run_id(self) -> str:
        """Stable id: hash of the resolved config (runtime fields dropped) and the methods."""
        return run_id_of(self.config(), self.methods)

    def to_dict(self) -> dict:
        return {"preset": self.preset, "row": self.row, "tables": list(self.tables), "base": self.base,
                "overrides": {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.overrides},
                "methods": list(self.methods), "seed": self.seed}


def _canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False, ensure_ascii=True)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# TrainConfig fields added after the first records were written, with the value every earlier run had
# implicitly. run_id_of drops such a field while it holds that value, so adding a field leaves every existing
# run id (and record file name) unchanged; a different value changes the id. Append, never edit or remove.
HASH_NEUTRAL_DEFAULTS = {
    "pretrain": "none",    # issue 16, part 5 (lilaw_edu.training.pretrain)
    "pretrain_epochs": 5,
    "test_each_epoch": False,  # issue 16, part 1 (selection rules replayed from per-epoch test metrics)
}


def run_id_of(config, methods) -> str:
    """Run id of a config (TrainConfig or its ``to_dict()``) trained with ``methods``.

    Runtime fields are ignored, and so are fields of :data:`HASH_NEUTRAL_DEFAULTS` holding their
    default (a record written before such a field existed keeps its id).

    Returns
    -------
    str
        16 hex digits.
    """
    fields = config if isinstance(config, dict) else config.to_dict()
    fields = {k: v for k, v in fields.items() if k not in RUNTIME_FIELDS
              and not (k in HASH_NEUTRAL_DEFAULTS and v == HASH_NEUTRAL_DEFAULTS[k])}
    return _sha256(_canonical({"config": fields, "methods": list(methods)}))[:16]


# ------------------------------------------------------------------ result files
def make_record(spec: RunSpec, payload: dict) -> dict:
    """The file content: a header, the payload and the SHA-256 of the payload's canonical JSON."""
    return {"schema": SCHEMA, "run_id": spec.run_id, "preset": spec.preset, "row": spec.row,
            "tables": list(spec.tables), "payload_sha256": _sha256(_canonical(payload)), "payload": payload}


def write_record(path, record: dict) -> None:
    """Write ``record`` to ``path`` atomically (temporary file, fsync, ``os.replace``)."""
    text = json.dumps(record, indent=1, sort_keys=True, allow_nan=False)
    atomic_write_bytes(path, text.encode("utf-8"))


def read_record(path) -> dict:
    """Load and validate a result file.

    Checks: valid JSON; the schema; the header keys; the payload's SHA-256;
    the run id against the file name and against the payload's config and
    methods; test top-1 present for every method.

    Raises
    ------
    CorruptResultError
        Naming the file and what is wrong.
    """
    path = Path(path)

    def bad(why):
        return CorruptResultError(f"result file {path} is corrupted or truncated: {why}")

    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise bad(f"not valid JSON ({exc})") from None
    except RecursionError:
        raise bad("JSON nested too deeply") from None
    except IsADirectoryError:
        raise bad("it is a folder, not a file") from None
    if not isinstance(record, dict) or record.get("schema") != SCHEMA:
        raise bad(f"schema is not {SCHEMA!r}")
    missing = [k for k in ("run_id", "preset", "row", "tables", "payload_sha256", "payload") if k not in record]
    if missing:
        raise bad(f"missing keys {missing}")
    payload = record["payload"]
    if _sha256(_canonical(payload)) != record["payload_sha256"]:
        raise bad("payload SHA-256 does not match the stored payload_sha256")
    try:
        recomputed = run_id_of(payload["config"], payload["spec"]["methods"])
        methods = payload["result"]["methods"]
        for m in payload["spec"]["methods"]:
            float(methods[m]["metrics"]["test"]["top1"])
        if not (isinstance(payload["provenance"], dict) and isinstance(payload["spec"]["seed"], int)
                and isinstance(record["row"], str) and isinstance(record["preset"], str)):
            raise TypeError("provenance, spec seed, row or preset of the wrong type")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise bad(f"payload lacks config, spec or per-method test metrics ({exc!r})") from None
    if not (record["run_id"] == path.stem == recomputed):
        raise bad(f"run id mismatch (file name {path.stem}, header {record['run_id']}, contents {recomputed})")
    return record




# ------------------------------------------------------------------ claiming runs, writable folders
def lock_path(results_dir, spec: RunSpec) -> Path:
    """``<results_dir>/<preset>/.<run_id>.lock``: held while one sweep trains the run."""
    return Path(results_dir) / spec.preset / f".{spec.run_id}.lock"


def _alive(pid: int) -> bool:
    import os
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def claim_run(results_dir, spec: RunSpec, owner: int) -> Path | None:
    """Claim a run for the sweep process ``owner`` (atomic ``O_EXCL`` lock file).

    A lock whose owner process no longer runs on this host (a killed sweep) is taken over.

    Returns
    -------
    Path or None
        The lock file, or None when another live sweep holds the run.
    """
    import os
    import socket
    path = lock_path(results_dir, spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    me = f"{socket.gethostname()} {owner}"
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                host, pid = path.read_text().split()
            except (OSError, ValueError):
                host, pid = "", "0"
            if host == socket.gethostname() and pid.isdigit() and not _alive(int(pid)):
                path.unlink(missing_ok=True)  # stale: its sweep was killed
                continue
            return None
        with os.fdopen(fd, "w") as f:
            f.write(me)
        return path
    return None


def release_runs(results_dir, presets, owner: int) -> int:
    """Remove the lock files of ``presets`` held by ``owner``; returns how many."""
    import socket
    n = 0
    for preset in presets:
        for path in (Path(results_dir) / preset).glob(".*.lock"):
            try:
                if path.read_text() == f"{socket.gethostname()} {owner}":
                    path.unlink()
                    n += 1
            except OSError:
                pass
    return n
