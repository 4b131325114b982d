"""Which versions of a mirror stay pinned: the retention policy, as a pure function.

Usage::

    for v in expired(versions, keep=10, keep_days=1.0, now=time.time()): unpin(v)

Rules kept here:

- A version stays pinned while it is one of the newest ``keep`` versions **or** younger than
  ``keep_days`` days. ``keep == 0`` keeps every version (the setting of mirrors made before
  retention had a default: an upgrade never unpins anything they had).
- New mirrors get :data:`DEFAULT_KEEP` and :data:`DEFAULT_KEEP_DAYS` (``mirror add``), so a mirror
  synced every few minutes does not grow without bound.
- Retention only unpins (GC then reclaims what no pin reaches); version records, the history
  ``mirror log`` shows, are never deleted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Protocol, TypeVar

DEFAULT_KEEP: Final = 10
DEFAULT_KEEP_DAYS: Final = 1.0
DAY: Final = 86_400.0


class Dated(Protocol):
    @property
    def time(self) -> float: ...

    @property
    def pinned(self) -> bool: ...


V = TypeVar("V", bound=Dated)


def expired(versions: Sequence[V], *, keep: int, keep_days: float, now: float) -> list[V]:
    """The pinned versions (oldest first, as given) that the policy no longer keeps."""
    if keep <= 0:
        return []
    horizon = now - keep_days * DAY if keep_days > 0 else float("inf")
    old = versions[:-keep] if len(versions) > keep else []
    return [v for v in old if v.pinned and v.time < horizon]


def describe(keep: int, keep_days: float) -> str:
    """The policy in words (``mirror list``, ``mirror keep``)."""
    if keep <= 0:
        return "all versions"
    plural = "s" if keep_days != 1 else ""
    days = f" and those younger than {keep_days:g} day{plural}" if keep_days > 0 else ""
    return f"the last {keep} version{'s' if keep != 1 else ''}{days}"
