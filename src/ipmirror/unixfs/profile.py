"""The one frozen value that decides a CID: :class:`Profile`, with named presets (IPIP-499).

Usage::

    p = PRESETS["unixfs-v1-2025"]
    p = p.replace(cid_version=0)          # Kubo-like flag overrides
    p = from_preset("unixfs-v0-2015", cid_version=1)   # Kubo rule: CIDv1 implies raw leaves

Presets and their HAMT switch rule:

==================  ===  =====  =========  =====  ===========  =======  ======
preset              CID  raw    chunker    links  estimate     bytes    switch
==================  ===  =====  =========  =====  ===========  =======  ======
unixfs-v1-2025      v1   yes    1 MiB      1024   block-bytes  262144   ``>``
unixfs-v0-2015      v0   no     256 KiB    174    links-bytes  262144   ``>``
kubo-0.22           v0   no     256 KiB    174    links-bytes  262144   ``>=``
==================  ===  =====  =========  =====  ===========  =======  ======

The IPIP-499 presets shard when the estimate is strictly greater than the threshold (boxo
>= v0.37, Kubo >= 0.40, ipfs-unixfs-importer 17); ``kubo-0.22`` keeps the ``>=`` of boxo v0.11,
which is what the real Kubo we can run (0.22) computes. The two differ only for a directory whose
estimate is exactly the threshold.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Final, Literal

from ipmirror.errors import InvalidInput

Layout = Literal["balanced", "trickle"]
Estimate = Literal["links-bytes", "block-bytes"]
Switch = Literal[">", ">="]

DEFAULT_INLINE_LIMIT: Final = 32
MAX_CHUNK: Final = 2 * 1024 * 1024 - 256  # leaves must stay below the 2 MiB block limit


@dataclass(frozen=True, slots=True)
class Chunker:
    """``size-N`` (fixed) or ``buzhash`` (content-defined; see unixfs/chunker.py)."""

    kind: Literal["size", "buzhash"]
    size: int = 0

    @classmethod
    def parse(cls, text: str) -> Chunker:
        if text == "buzhash":
            return cls("buzhash")
        m = re.fullmatch(r"size-(\d+)", text)
        if not m:
            raise InvalidInput(f"unknown chunker {text!r} (use size-N or buzhash)")
        n = int(m.group(1))
        if not 1 <= n <= MAX_CHUNK:
            raise InvalidInput(f"chunk size {n} out of range 1..{MAX_CHUNK}")
        return cls("size", n)

    def __str__(self) -> str:
        return "buzhash" if self.kind == "buzhash" else f"size-{self.size}"


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    cid_version: Literal[0, 1]
    raw_leaves: bool
    chunker: Chunker
    max_links: int
    layout: Layout = "balanced"
    hamt_fanout: int = 256
    hamt_threshold: int = 262144
    hamt_estimate: Estimate = "links-bytes"
    hamt_switch: Switch = ">"
    inline: bool = False
    inline_limit: int = DEFAULT_INLINE_LIMIT
    trickle_layer_repeat: int = 4

    def replace(self, **changes: object) -> Profile:
        p = dataclasses.replace(self, **changes)  # type: ignore[arg-type]
        p.validate()
        return p

    def validate(self) -> None:
        if self.max_links < 2:
            raise InvalidInput("max-links must be at least 2")
        if self.hamt_fanout not in (8, 16, 32, 64, 128, 256, 512, 1024):
            raise InvalidInput("HAMT fanout must be a power of two from 8 to 1024")
        if self.inline_limit < 0 or self.inline_limit > 128:
            raise InvalidInput("inline limit must be between 0 and 128 bytes")
        if self.hamt_threshold < 0:
            raise InvalidInput("HAMT threshold must be non-negative")

    def shards(self, estimate: int) -> bool:
        """True if a directory with this size estimate becomes a HAMT."""
        if self.hamt_threshold == 0:
            return False
        if self.hamt_switch == ">":
            return estimate > self.hamt_threshold
        return estimate >= self.hamt_threshold

    def describe(self) -> str:
        return (f"{self.name}: cidv{self.cid_version}, raw-leaves={str(self.raw_leaves).lower()}, "
                f"chunker={self.chunker}, max-links={self.max_links}, layout={self.layout}, "
                f"hamt={self.hamt_estimate} {self.hamt_switch} {self.hamt_threshold}, "
                f"fanout={self.hamt_fanout}, inline={self.inline_limit if self.inline else 'off'}")


PRESETS: Final[dict[str, Profile]] = {
    "unixfs-v1-2025": Profile("unixfs-v1-2025", 1, True, Chunker("size", 1048576), 1024,
                              hamt_estimate="block-bytes", hamt_switch=">"),
    "unixfs-v0-2015": Profile("unixfs-v0-2015", 0, False, Chunker("size", 262144), 174,
                              hamt_estimate="links-bytes", hamt_switch=">"),
    "kubo-0.22": Profile("kubo-0.22", 0, False, Chunker("size", 262144), 174,
                         hamt_estimate="links-bytes", hamt_switch=">="),
}
DEFAULT_PROFILE: Final = "unixfs-v1-2025"


def from_preset(name: str, *, cid_version: int | None = None, raw_leaves: bool | None = None,
                chunker: str | None = None, max_links: int | None = None, trickle: bool | None = None,
                inline: bool | None = None, inline_limit: int | None = None,
                hamt_switch: str | None = None) -> Profile:
    """A preset with Kubo-style overrides applied (``--cid-version 1`` implies raw leaves)."""
    try:
        p = PRESETS[name]
    except KeyError:
        raise InvalidInput(f"unknown profile {name!r} (known: {', '.join(PRESETS)})") from None
    changes: dict[str, object] = {}
    if cid_version is not None:
        if cid_version not in (0, 1):
            raise InvalidInput(f"unknown CID version {cid_version}")
        changes["cid_version"] = cid_version
        if raw_leaves is None and cid_version == 1:
            changes["raw_leaves"] = True
    if raw_leaves is not None:
        changes["raw_leaves"] = raw_leaves
    if chunker is not None:
        changes["chunker"] = Chunker.parse(chunker)
    if max_links is not None:
        changes["max_links"] = max_links
    if trickle is not None:
        changes["layout"] = "trickle" if trickle else "balanced"
    if inline is not None:
        changes["inline"] = inline
    if inline_limit is not None:
        changes["inline_limit"] = inline_limit
    if hamt_switch is not None:
        if hamt_switch not in (">", ">="):
            raise InvalidInput("HAMT switch rule must be '>' or '>='")
        changes["hamt_switch"] = hamt_switch
    if changes:
        changes["name"] = p.name + "+custom"
        return p.replace(**changes)
    return p
