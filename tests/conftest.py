"""Shared test fixtures: a private repository per test and the real CLI run against it (tests/_cli.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from _cli import CLI, Result, run

__all__ = ["CLI", "Result"]  # test modules may import these from conftest as well as from _cli


@pytest.fixture
def repo_path(tmp_path: Path) -> Path:
    return tmp_path / "repo"


@pytest.fixture
def cli(repo_path: Path) -> CLI:
    """Run ``ipmirror ARGS`` in a subprocess against a private repository (see ``_cli.run``)."""

    def run_here(*args: str | os.PathLike[str], input: bytes | None = None, check: bool = True,
                 timeout: float = 300) -> Result:
        return run(repo_path, *args, input=input, check=check, timeout=timeout)

    return run_here
