"""Source checks: a sync refuses to publish a version that looks like a broken source.

Usage::

    dev = before_walk(mirror, last, limits)            # Refused, or the directory's st_dev
    after_walk(mirror, last, files, removed, limits)   # Refused, or nothing

An unmounted disk shows the empty directory it is mounted on; a half-failed rsync can delete most of
a tree. Published, such a version spreads to every follower. So a sync refuses (``Refused``, exit
code 4, one line saying why and how to override) when, compared with the mirror's latest version
``last``:

1. the directory is missing, or has no entries at all, or imports to no file, while ``last`` had
   files;
2. the directory is on another file system (``st_dev``) than at ``last`` — recorded with each
   version (``Version.dev``; versions recorded before it have 0, and are not compared);
3. more than ``max_delete`` percent of ``last``'s files would be removed (default 20).

``--force`` (``Limits.force``) publishes anyway. The first sync of a mirror has nothing to compare
with: only a missing directory is an error then (``InvalidInput``, exit 1). Checks 1 and 2 run
before the walk, so a refused sync reads nothing and leaves the index as it was; check 3 needs the
walk, and the sync keeps the index's deletions until it passes (``mirror/sync.py``), so the next
sync of the restored source reads nothing again either.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from typing import Final

from ipmirror.errors import InvalidInput, Refused
from ipmirror.mirror.db import Mirror, Version

DEFAULT_MAX_DELETE: Final = 20.0
_OVERRIDE = "--force publishes it anyway"


@dataclass(frozen=True, slots=True)
class Limits:
    force: bool = False
    max_delete: float = DEFAULT_MAX_DELETE  # percent of the latest version's files

    def __post_init__(self) -> None:
        if not 0 <= self.max_delete <= 100:
            raise InvalidInput(f"--max-delete takes a percentage from 0 to 100, not {self.max_delete:g}")


def _had_files(last: Version | None) -> bool:
    return last is not None and last.files > 0


def before_walk(m: Mirror, last: Version | None, limits: Limits) -> int:
    """Checks 1 (missing, no entries) and 2 (file system); returns the directory's ``st_dev``."""
    try:
        st = os.stat(m.dir)
    except OSError as e:
        st = None
        why = e.strerror
    else:
        why = "not a directory"
    if st is None or not stat.S_ISDIR(st.st_mode):
        if _had_files(last) and not limits.force:
            assert last is not None
            raise Refused(f"mirror {m.name}: refused to sync: {m.dir}: {why}, but version {last.number} "
                          f"has {last.files} files (an unmounted disk?); version {last.number} stays "
                          "published")
        raise InvalidInput(f"mirror {m.name}: {m.dir} is not a directory")
    if limits.force or last is None:
        return st.st_dev
    if last.dev and st.st_dev != last.dev:
        raise Refused(f"mirror {m.name}: refused to publish: {m.dir} is on another file system than "
                      f"at version {last.number} (device {st.st_dev:#x}, was {last.dev:#x}: an "
                      f"unmounted or replaced disk?); {_OVERRIDE}")
    if _had_files(last):
        try:
            with os.scandir(m.dir) as it:
                empty = next(it, None) is None
        except OSError as e:
            raise InvalidInput(f"mirror {m.name}: {m.dir}: {e.strerror}") from None
        if empty:
            raise Refused(f"mirror {m.name}: refused to publish: {m.dir} is empty, but version "
                          f"{last.number} has {last.files} files (an unmounted disk?); {_OVERRIDE}")
    return st.st_dev


def after_walk(m: Mirror, last: Version | None, files: int, removed: int, limits: Limits) -> None:
    """Checks 1 (no file in the new tree) and 3 (``--max-delete``), before anything is pinned."""
    if limits.force or last is None or not _had_files(last):
        return
    if files == 0:
        raise Refused(f"mirror {m.name}: refused to publish: no file left under {m.dir}, but version "
                      f"{last.number} has {last.files} (an unmounted disk?); {_OVERRIDE}")
    share = 100.0 * removed / last.files
    if share > limits.max_delete:
        raise Refused(f"mirror {m.name}: refused to publish: {removed} of the {last.files} files of "
                      f"version {last.number} would be removed ({share:.0f}%, more than --max-delete "
                      f"{limits.max_delete:g}%); {_OVERRIDE}")
