"""Records of local keys are re-signed before they expire, so a mirror that has not changed for a
week still resolves."""

from __future__ import annotations

from pathlib import Path

import pytest

from ipmirror.codec import ipns
from ipmirror.errors import InvalidRecord
from ipmirror.naming.keystore import Keystore
from ipmirror.naming.names import Names

HOUR = 3600 * 1_000_000_000


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000 * 1_000_000_000

    def __call__(self) -> int:
        return self.now


def test_republish_keeps_a_quiet_name_alive(tmp_path: Path) -> None:
    clock = Clock()
    keys = Keystore(tmp_path / "keys")
    keys.gen("mirror")
    names = Names(tmp_path / "names", keys, clock=clock)
    first = names.publish("mirror", "/ipfs/bafkqaaa", lifetime_ns=48 * HOUR, ttl_ns=300 * 10**9)
    assert names.republish(within_ns=24 * HOUR) == []  # fresh: nothing to do
    for day in range(1, 8):  # a week without a new version; 'serve' checks hourly
        clock.now += 24 * HOUR
        done = names.republish(within_ns=25 * HOUR, lifetime_ns=48 * HOUR)
        assert [p.value for p in done] == ["/ipfs/bafkqaaa"], day
        assert names.path_of("mirror") == "/ipfs/bafkqaaa"
    rec = names.record("mirror")
    assert rec.sequence > first.sequence and rec.ttl_ns == 300 * 10**9
    ipns.validate(rec.raw, rec.name, clock.now)
    clock.now += 72 * HOUR  # nobody republished: the record expires and says so
    with pytest.raises(InvalidRecord, match="expired"):
        names.path_of("mirror")
