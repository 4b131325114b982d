"""Shared CLI helpers: output, Kubo-style boolean flags, opening the repository.

Rule: only the commands in ``CREATING`` create a repository that does not exist (Kubo needs
``ipfs init`` first for everything; here the commands that put something into the repository may
make it). Every other command fails with "no repository at PATH (run `ipmirror init`)" and
creates nothing, so a mistyped ``IPMIRROR_PATH`` never leaves an empty repository behind.
The commands in ``READING`` open the repository read-only when this user may not write its
block store (README, "Serving a repository another user writes").
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from ipmirror.errors import InvalidInput
from ipmirror.node import Repo, default_path

CREATING = frozenset({"init", "add", "block put", "dag import", "key gen", "key import", "mirror add",
                      "cache add"})
READING = frozenset({"cat", "get", "ls", "block get", "block stat", "dag export", "dag stat", "pin ls",
                     "repo stat", "name resolve", "name get", "key list", "mount"})
TRUE = {"true", "1", "yes", "on"}
FALSE = {"false", "0", "no", "off"}


@dataclass
class Ctx:
    args: argparse.Namespace
    out: TextIO = field(default_factory=lambda: sys.stdout)  # looked up per call (redirections)
    err: TextIO = field(default_factory=lambda: sys.stderr)

    @property
    def repo_path(self) -> Path:
        p = getattr(self.args, "repo_dir", None)
        return Path(p).expanduser() if p else default_path()

    @property
    def command(self) -> str:
        """The command's name as typed: ``cat``, ``block put``, ``mirror add``."""
        sub = getattr(self.args, "sub", None)
        return f"{self.args.command} {sub}" if sub else str(self.args.command)

    def open_repo(self, create: bool | None = None, *, readonly: bool = False) -> Repo:
        """The repository, made first when it does not exist only for a command in ``CREATING``
        (or when ``create`` says so)."""
        make = self.command in CREATING if create is None else create
        if not readonly and self.command in READING:
            data = self.repo_path / "blocks" / "data.mdb"
            readonly = os.path.exists(data) and not os.access(data, os.W_OK)
        return Repo.open(self.repo_path, create=make, readonly=readonly)

    def print(self, *parts: object) -> None:
        print(*parts, file=self.out)

    def warn(self, msg: str) -> None:
        print(f"ipmirror: warning: {msg}", file=self.err)


def add_bool(p: argparse.ArgumentParser, name: str, default: bool | None, help: str,
             short: str | None = None) -> None:
    """A Kubo-style boolean flag: ``--name``, ``--no-name``, and ``--name=true|false`` (rewritten
    to one of the first two by :func:`normalize_bools`, for every flag made here)."""
    dest = name.lstrip("-").replace("-", "_")
    p.add_argument(*([short] if short else []), name, dest=dest, action="store_true", default=default,
                   help=help)
    p.add_argument("--no-" + name.lstrip("-"), dest=dest, action="store_false", help=argparse.SUPPRESS)


def bool_flags(parser: argparse.ArgumentParser) -> set[str]:
    """Every ``--name`` that has a ``--no-name`` twin, in the parser and all its subcommands."""
    names: set[str] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                names |= bool_flags(sub)
        for opt in action.option_strings:
            if opt.startswith("--no-"):
                names.add("--" + opt[len("--no-"):])
    return names


def normalize_bools(argv: list[str], names: set[str]) -> list[str]:
    """Rewrite ``--flag=true/false`` into ``--flag`` / ``--no-flag`` for argparse."""
    out = []
    for a in argv:
        if a.startswith("--") and "=" in a:
            k, v = a.split("=", 1)
            if k in names:
                lv = v.lower()
                if lv in TRUE:
                    out.append(k)
                    continue
                if lv in FALSE:
                    out.append("--no-" + k[2:])
                    continue
                raise InvalidInput(f"{k} takes true or false, not {v!r}")
        out.append(a)
    return out


M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3


def tune_malloc() -> None:
    """Keep glibc from handing every freed chunk buffer (256 KiB-1 MiB) back to the kernel.

    By default each such buffer is mmap'ed and munmap'ed, so every chunk read faults its pages in
    again: ~300k page faults per GiB with 256 KiB chunks, a third of a hash-only add's time
    (measured in docs/benchmarks.md). Raising the mmap and trim thresholds lets the heap reuse the
    buffers. Does nothing where mallopt is not glibc's.
    """
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None)
        libc.mallopt(M_MMAP_THRESHOLD, 4 << 20)
        libc.mallopt(M_TRIM_THRESHOLD, 64 << 20)
