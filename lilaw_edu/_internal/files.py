"""Atomic file writes: the one copy used by checkpoints, results files and sweep records.

A file is written to a temporary file in its own folder, flushed, ``fsync``-ed and
``os.replace``-d over the target (atomic on POSIX and Windows), so a reader sees the old
file or the new one, never half a file. Files get the usual permissions of the process'
umask (``0o666 & ~umask``), not the 0600 of :func:`tempfile.mkstemp`.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write_bytes", "atomic_write_many", "file_mode", "check_writable"]


def _umask() -> int:
    """The process' umask, read without changing it where the platform allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # no way to read it without setting it
    os.umask(mask)
    return mask


def file_mode() -> int:
    """Permission bits a plain ``open(path, "w")`` would give a new file (``0o666 & ~umask``)."""
    return 0o666 & ~_umask()


def _write_temp(path: Path, data: bytes, mode: int) -> str:
    """Write ``data`` to a new temporary file next to ``path``; return its name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            if hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder + ``os.replace``).

    Parameters
    ----------
    path : path-like
        Target file; its folder is created when missing.
    data : bytes
    """
    atomic_write_many({path: data})


def atomic_write_many(files: dict) -> None:
    """Publish several files together: every temporary file is written before any target changes.

    A failure while writing (disk full, a permission error) leaves every target as it
    was and no temporary file behind; only the final ``os.replace`` calls, which do not
    write data, run after the first target has changed.

    Parameters
    ----------
    files : dict
        ``{path: bytes}``; targets are replaced in the dict's order.
    """
    mode = file_mode()
    written = []
    try:
        for path, data in files.items():
            if not isinstance(data, (bytes, bytearray)):
                raise TypeError(f"data for {path} must be bytes, got {type(data).__name__}")
            written.append((_write_temp(Path(path), bytes(data), mode), Path(path)))
        while written:
            tmp, path = written[0]
            os.replace(tmp, path)
            written.pop(0)
    finally:
        for tmp, _ in written:
            if os.path.exists(tmp):
                os.unlink(tmp)


def check_writable(folder, flag: str) -> Path:
    """Refuse a folder that cannot be created or written; creates nothing (probes the nearest
    existing folder with a temporary file, then removes it).

    Parameters
    ----------
    folder : path-like
    flag : str
        How the user named it (``"--out"``, ``"out_dir"``), for the message.

    Raises
    ------
    ValueError
        One line naming ``flag``, the folder and why (an empty name, a file in the way, no
        permission, disk full).
    """
    if not str(folder).strip():  # before Path(), which turns "" into "."
        raise ValueError(f"{flag} must name a folder, got {str(folder)!r}")
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{flag} {folder} exists and is not a folder; choose another {flag}")
    parent = folder.absolute()
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"{flag} {folder} cannot be created: {parent} is a file; choose another {flag}")
    try:
        fd, probe = tempfile.mkstemp(prefix=".lilaw-write-probe-", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ValueError(f"{flag} {folder} is not writable ({parent}: {exc.strerror or exc}); "
                         f"choose another {flag}") from None
    return folder
