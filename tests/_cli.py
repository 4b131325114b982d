"""The one way tests run the real ``ipmirror`` command: a subprocess against a given repository.

Usage::

    r = run(repo, "add", "-Q", path, check=False)       # Result: rc, out (bytes), err (str), text
    cid = run_cli(repo, "add", "-Q", path).strip()      # stdout as text; AssertionError on failure
    block = cli_bytes(repo, "block", "get", cid)        # stdout as bytes

The ``cli`` fixture (conftest.py) is ``run`` bound to the test's private repository.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Result:
    rc: int
    out: bytes
    err: str

    @property
    def text(self) -> str:
        return self.out.decode()


CLI = Callable[..., Result]


def cli_env(repo: Path) -> dict[str, str]:
    return dict(os.environ, IPMIRROR_PATH=str(repo))


def run(repo: Path, *args: str | os.PathLike[str], input: bytes | None = None, check: bool = True,
        timeout: float = 300) -> Result:
    """``ipmirror ARGS`` against ``repo``; with ``check``, AssertionError (with its stderr) unless it
    exits 0."""
    p = subprocess.run([sys.executable, "-m", "ipmirror", *map(str, args)], input=input,
                       capture_output=True, env=cli_env(repo), timeout=timeout)
    r = Result(p.returncode, p.stdout, p.stderr.decode(errors="replace"))
    if check and r.rc != 0:
        raise AssertionError(f"ipmirror {' '.join(map(str, args))} -> {r.rc}\n{r.err}")
    return r


def cli_bytes(repo: Path, *args: str | os.PathLike[str], timeout: float = 300) -> bytes:
    """``ipmirror ARGS`` against ``repo``; its stdout, or AssertionError with its stderr."""
    return run(repo, *args, timeout=timeout).out


def run_cli(repo: Path, *args: str | os.PathLike[str], timeout: float = 300) -> str:
    """``ipmirror ARGS`` against ``repo``; its stdout as text, or AssertionError with its stderr."""
    return run(repo, *args, timeout=timeout).text
