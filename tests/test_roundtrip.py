"""Round trips through the real importer and exporter (hypothesis): get(add(tree)) == tree, and
random ranges of cat equal the file's bytes, under many profiles and layouts."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipmirror.store.memory import MemoryStore
from ipmirror.unixfs import exporter as ex
from ipmirror.unixfs.extract import extract
from ipmirror.unixfs.importer import AddOptions, Importer
from ipmirror.unixfs.profile import PRESETS, Chunker, Profile

names = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/\0"),
                min_size=1, max_size=12).filter(lambda n: n not in (".", ".."))
file_bytes = st.binary(max_size=5000) | st.builds(lambda n, b: bytes([b]) * n,
                                                  st.integers(0, 40_000), st.integers(0, 255))
tree = st.recursive(file_bytes, lambda kids: st.dictionaries(names, kids, max_size=6), max_leaves=20)


@st.composite
def profiles(draw: st.DrawFn) -> Profile:
    base = PRESETS[draw(st.sampled_from(sorted(PRESETS)))]
    chunker = draw(st.sampled_from([Chunker("size", 1000), Chunker("size", 4096), base.chunker]))
    return base.replace(chunker=chunker, max_links=draw(st.integers(2, 8)),
                        layout=draw(st.sampled_from(["balanced", "trickle"])),
                        raw_leaves=draw(st.booleans()), cid_version=draw(st.sampled_from([0, 1])),
                        inline=draw(st.booleans()), hamt_threshold=draw(st.sampled_from([200, 262144])))


def materialize(root: Path, t: bytes | dict[str, object]) -> None:
    if isinstance(t, bytes):
        root.write_bytes(t)
        return
    root.mkdir()
    for name, sub in t.items():
        materialize(root / name, sub)  # type: ignore[arg-type]


def read_back(root: Path) -> bytes | dict[str, object]:
    if root.is_file():
        return root.read_bytes()
    return {p.name: read_back(p) for p in root.iterdir()}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(t=tree, profile=profiles(), mode=st.booleans())
def test_get_of_add_is_identity(t: bytes | dict[str, object], profile: Profile, mode: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        materialize(src, t)
        store = MemoryStore()
        with store.session() as s:
            (root,) = Importer(AddOptions(profile, hidden=True, preserve_mode=mode), s.put).add_paths([src])
        out = Path(tmp) / "out"
        extract(store.get, root.cid, str(out))
        assert read_back(out) == t
        # the same tree again gives the same CID and writes nothing new
        again = MemoryStore()
        with again.session() as s2:
            (root2,) = Importer(AddOptions(profile, hidden=True, preserve_mode=mode), s2.put).add_paths([src])
        assert root2.cid == root.cid and again.stat().blocks == store.stat().blocks


@settings(max_examples=60, deadline=None)
@given(data=st.binary(min_size=1, max_size=30_000), profile=profiles(), cuts=st.data())
def test_random_ranges_of_cat(data: bytes, profile: Profile, cuts: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "f"
        f.write_bytes(data)
        store = MemoryStore()
        (root,) = Importer(AddOptions(profile), lambda c, d: store.put_many([(c, d)])).add_paths([f])
        assert b"".join(ex.read(store.get, root.cid)) == data
        for _ in range(5):
            off = cuts.draw(st.integers(0, len(data) + 10))
            length = cuts.draw(st.none() | st.integers(0, len(data) + 10))
            want = data[off:] if length is None else data[off:off + length]
            assert b"".join(ex.read(store.get, root.cid, off, length)) == want


def test_seek_reads_only_the_blocks_it_needs(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(os.urandom(1 << 20))
    p = PRESETS["unixfs-v1-2025"].replace(chunker=Chunker("size", 4096), max_links=16)
    store = MemoryStore()
    (root,) = Importer(AddOptions(p), lambda c, d: store.put_many([(c, d)])).add_paths([f])
    fetched: list[object] = []

    def get(cid: object) -> bytes:
        fetched.append(cid)
        return store.get(cid)  # type: ignore[arg-type]

    assert b"".join(ex.read(get, root.cid, 700_000, 10)) == f.read_bytes()[700_000:700_010]
    assert len(fetched) <= 6  # root + one node per level + the leaf, not the 170 blocks before


def test_buzhash_is_deterministic_and_shares_chunks(tmp_path: Path) -> None:
    base = os.urandom(3 << 20)
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(base)
    b.write_bytes(base[:1_000_000] + b"inserted bytes" + base[1_000_000:])
    p = PRESETS["unixfs-v1-2025"].replace(chunker=Chunker("buzhash"))
    seen: dict[str, set[bytes]] = {"a": set(), "b": set()}
    for name, path in (("a", a), ("b", b)):
        store = MemoryStore()
        with store.session() as s:
            (root,) = Importer(AddOptions(p), s.put).add_paths([path])
        assert b"".join(ex.read(store.get, root.cid)) == path.read_bytes()
        seen[name] = set(store.iter_keys())
        (again,) = Importer(AddOptions(p)).add_paths([path])
        assert again.cid == root.cid
    assert len(seen["a"] & seen["b"]) >= len(seen["a"]) // 2  # most chunks survive an insertion


def test_mode_and_mtime_are_restored(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "d" / "x").write_bytes(b"x" * 5000)
    os.chmod(src / "d" / "x", 0o600)
    os.utime(src / "d" / "x", ns=(1_600_000_000_123_456_789, 1_600_000_000_123_456_789))
    os.chmod(src / "d", 0o700)
    os.utime(src / "d", (1_500_000_000, 1_500_000_000))
    store = MemoryStore()
    opts = AddOptions(PRESETS["unixfs-v1-2025"], preserve_mode=True, preserve_mtime=True)
    (root,) = Importer(opts, lambda c, d: store.put_many([(c, d)])).add_paths([src])
    out = tmp_path / "out"
    extract(store.get, root.cid, str(out))
    st_x = os.stat(out / "d" / "x")
    assert st_x.st_mode & 0o7777 == 0o600 and st_x.st_mtime_ns == 1_600_000_000_123_456_789
    st_d = os.stat(out / "d")
    assert st_d.st_mode & 0o7777 == 0o700 and st_d.st_mtime == 1_500_000_000
    shutil.rmtree(out)
