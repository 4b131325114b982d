"""One sync per mirror at a time: a lock file per mirror, held with ``flock`` for the whole sync.

Usage::

    with mirror_lock(locks_dir, "debian", wait=True, on_wait=print):
        ...  # sync, retain, publish

Rules kept here:

- The lock is ``<locks_dir>/<mirror name>.lock`` (mirror names are file-name safe), locked with
  ``fcntl.flock(LOCK_EX)``: the kernel drops it when the holder exits, however it exits, so a
  killed sync never leaves a stale lock behind. The file itself stays (removing it would race with
  a process that just opened it).
- The holder writes its pid into the file, only so a waiter can say whom it waits for.
- ``wait=True``: if the lock is held, ``on_wait`` is told once (who holds it), then the call blocks
  until the holder is done. ``wait=False``: :class:`~ipmirror.errors.Busy` (exit code 5) at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from ipmirror.errors import Busy, StoreError


def _holder(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        pid = int(os.pread(fd, 32, 0).decode().strip() or "0")
        if pid > 0:
            return f" (pid {pid})"
    return ""


@contextlib.contextmanager
def mirror_lock(locks_dir: Path, name: str, *, wait: bool = True, what: str = "sync",
                on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold mirror ``name``'s lock for the ``with`` body (see the module rules); ``what`` names
    the operation in messages."""
    try:
        locks_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(locks_dir / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as e:
        raise StoreError(f"cannot use the lock of mirror {name} in {locks_dir}: {e.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            if not wait:
                raise Busy(f"mirror {name}: another sync is running{holder}; not waiting for it "
                           "(--no-wait)" if what == "sync" else
                           f"mirror {name}: a sync is running{holder}; {what} it when the sync is done"
                           ) from None
            if on_wait is not None:
                on_wait(f"mirror {name}: another sync is running{holder}; waiting for it to finish")
            fcntl.flock(fd, fcntl.LOCK_EX)
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the last descriptor releases the flock
