"""Provenance of a result: git commit and dirty flag, a hash of the package source, versions
and hardware. The one copy used by results files, sweep records and benchmarks.

Nothing here raises for a missing ``git`` or a package installed outside a repository:
the fields become ``None``.
"""
from __future__ import annotations

import datetime
import hashlib
import os
import platform
import subprocess
import sys
from pathlib import Path

__all__ = ["PACKAGE_DIR", "git", "git_state", "source_sha256", "cpu_model", "hardware", "utc_now"]

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # the lilaw_edu folder that is running


def git(*args, cwd=PACKAGE_DIR) -> str | None:
    """Output of ``git <args>`` run in ``cwd`` (stripped), or None when git fails or is missing."""
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_state(path=PACKAGE_DIR) -> dict:
    """``git_commit`` (HEAD, or None outside a repository) and ``git_dirty`` (uncommitted changes,
    untracked files included, under ``path``; None when unknown)."""
    path = Path(path)
    cwd = path if path.is_dir() else path.parent
    commit = git("rev-parse", "HEAD", cwd=cwd) or None
    status = git("status", "--porcelain", "--", str(path), cwd=cwd) if commit else None
    return {"git_commit": commit, "git_dirty": None if status is None else bool(status)}


def source_sha256(root=PACKAGE_DIR) -> str:
    """SHA-256 over the relative paths and contents of every file under ``root`` (the package
    source that ran), skipping ``__pycache__`` folders and compiled files; sorted, so stable."""
    root = Path(root)
    digest = hashlib.sha256()
    files = sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                   and p.suffix not in (".pyc", ".pyo"))
    for p in files:
        rel = p.relative_to(root).as_posix().encode()
        data = p.read_bytes()
        digest.update(len(rel).to_bytes(8, "little") + rel + len(data).to_bytes(8, "little") + data)
    return digest.hexdigest()


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else :func:`platform.processor`)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware(device=None) -> dict:
    """CPU model and count, GPU name (the CUDA device used or visible, else None), torch, CUDA and
    cuDNN versions, Python and platform."""
    import torch

    gpu = None
    if torch.cuda.is_available():
        index = device if device is not None and getattr(device, "type", None) == "cuda" else None
        gpu = torch.cuda.get_device_name(index)
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return {"cpu_model": cpu_model(), "cpu_count": os.cpu_count(), "gpu_name": gpu, "torch": torch.__version__,
            "cuda": torch.version.cuda, "cudnn": cudnn, "python": sys.version.split()[0],
            "platform": platform.platform()}


def utc_now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
