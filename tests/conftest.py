"""Shared test fixtures. Real data lives in ../shared/data (never copied into the repo)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

def _find_shared_data() -> Path:
    """$LMFORGE_SHARED_DATA, else the nearest `shared/data` beside the repository or above it."""
    if os.environ.get("LMFORGE_SHARED_DATA"):
        return Path(os.environ["LMFORGE_SHARED_DATA"])
    repo = Path(__file__).resolve().parents[1]
    for parent in repo.parents:
        if (parent / "shared" / "data").is_dir():
            return parent / "shared" / "data"
    return repo.parent / "shared" / "data"


SHARED_DATA = _find_shared_data()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ../shared/data; tests that need it skip with a reason when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA} (set LMFORGE_SHARED_DATA)")
    return SHARED_DATA


def shared_path(*parts: str) -> Path:
    """A file under shared data, or a skip when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data file missing: {path}")
    return path
