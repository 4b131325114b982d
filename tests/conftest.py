"""Shared test fixtures: a private repository per test and a runner for the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class Result:
    rc: int
    out: bytes
    err: str

    @property
    def text(self) -> str:
        return self.out.decode()


CLI = Callable[..., Result]


@pytest.fixture
def repo_path(tmp_path: Path) -> Path:
    return tmp_path / "repo"


@pytest.fixture
def cli(repo_path: Path) -> CLI:
    """Run ``ipmirror ARGS`` in a subprocess against a private repository."""

    def run(*args: str | os.PathLike[str], input: bytes | None = None, check: bool = True,
            timeout: float = 300) -> Result:
        env = dict(os.environ, IPMIRROR_PATH=str(repo_path))
        p = subprocess.run([sys.executable, "-m", "ipmirror", *map(str, args)], input=input,
                           capture_output=True, env=env, timeout=timeout)
        r = Result(p.returncode, p.stdout, p.stderr.decode(errors="replace"))
        if check and r.rc != 0:
            raise AssertionError(f"ipmirror {' '.join(map(str, args))} -> {r.rc}\n{r.err}")
        return r

    return run
