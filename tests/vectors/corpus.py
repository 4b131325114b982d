#!/usr/bin/env python3
"""Deterministic corpus for the golden CID vectors (tests/vectors/vectors.json).

Usage::

    python tests/vectors/corpus.py OUT [CASE ...] [--force] [--list]

    from corpus import build, CASES, digest
    build("/tmp/corpus")                  # every case, each one entry directly under OUT
    build("/tmp/corpus", ["empty", "tree"])

Every case is one file or directory ``OUT/<case>``. File contents are derived from SHAKE-128 of a
tag, names and sizes are fixed, so the corpus is byte-identical on every machine. The ``meta*``
cases also fix file modes (chmod) and modification times (utime, symlinks included, set after
their contents so that directory mtimes stay put); in the other cases modes and mtimes are
whatever the file system gives and must not matter (the vectors never preserve them there).

``digest(path, meta)`` fingerprints an entry (names, types, sizes, contents, symlink targets and,
with ``meta``, modes and mtimes); vectors.json stores it per case, so a test can tell "the corpus
changed" from "the importer is wrong". Bump ``CORPUS_VERSION`` when a case changes.

Only the standard library is used: regen.py and the tests import this file by path.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass

CORPUS_VERSION = 1

KiB = 1024
MiB = 1024 * KiB
C256 = 256 * KiB  # Kubo / unixfs-v0-2015 chunk
C1M = MiB  # unixfs-v1-2025 chunk
HAMT_THRESHOLD = 262144


def rnd(tag: str, n: int) -> bytes:
    """n pseudo-random bytes for ``tag`` (SHAKE-128; identical everywhere)."""
    return hashlib.shake_128(b"ipmirror-corpus-v1:" + tag.encode()).digest(n)


def _write(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def _touch_many(d: str, names: Iterable[str]) -> None:
    os.makedirs(d, exist_ok=True)
    for nm in names:
        os.close(os.open(os.path.join(d, nm), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644))


# -- plain files --------------------------------------------------------------------------------

def _file(size: int) -> Callable[[str, str], None]:
    def make(path: str, name: str) -> None:
        _write(path, rnd(name, size))
    return make


def _one(path: str, name: str) -> None:
    _write(path, b"a")


def _zeros(size: int) -> Callable[[str, str], None]:
    """A sparse file of zeros (cheap to create at any size)."""
    def make(path: str, name: str) -> None:
        with open(path, "wb") as f:
            f.truncate(size)
    return make


TEXT_WORDS = (b"alpha bravo charlie delta echo foxtrot golf hotel india juliett kilo lima mike "
              b"november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu")


def text_bytes(size: int) -> bytes:
    words = TEXT_WORDS.split()
    out = bytearray()
    i = 0
    while len(out) < size:
        line = b" ".join(words[(i + k) % len(words)] for k in range(1 + i % 11))
        out += b"%06d %s\n" % (i, line)
        i += 1
    return bytes(out[:size])


def _text(size: int) -> Callable[[str, str], None]:
    def make(path: str, name: str) -> None:
        _write(path, text_bytes(size))
    return make


# -- the nested tree ----------------------------------------------------------------------------

TREE_SIZES = (0, 1, 2, 31, 32, 33, 100, 4095, 4096, 65536, C256 - 1, C256, C256 + 1, 3 * C256 + 17,
              C1M, C1M + 1)


def _tree(root: str, name: str) -> None:
    os.makedirs(root)
    # files of chunk-edge sizes, spread over two levels
    for i, sz in enumerate(TREE_SIZES):
        sub = "sizes" if i % 2 == 0 else "sizes/odd"
        _write(f"{root}/{sub}/f{i:02d}_{sz}.bin", rnd(f"tree/size/{i}", sz))
    # a small project-like level
    for a in range(3):
        for b in range(4):
            for k in range(6):
                sz = (a * 7919 + b * 104729 + k * 1299709) % 30000
                _write(f"{root}/pkgs/group{a}/pkg_{b}/file_{k}.dat", rnd(f"tree/pkg/{a}/{b}/{k}", sz))
    # 6 levels deep
    _write(f"{root}/d1/d2/d3/d4/d5/d6/deep.txt", b"six levels down\n")
    _write(f"{root}/d1/d2/d3/mid.txt", b"three levels down\n")
    # hidden entries (both references include them; the importer with hidden=True too)
    _write(f"{root}/.hidden_file", b"hidden\n")
    _write(f"{root}/.hidden_dir/config", b"[core]\n")
    _write(f"{root}/.hidden_dir/.nested_hidden", b"")
    # names: spaces, unicode (NFC and NFD spellings are distinct), 4-byte UTF-8, byte-order edges
    _write(f"{root}/name with spaces.txt", b"spaces\n")
    _write(f"{root}/ leading space", b"lead\n")
    _write(f"{root}/caf\u00e9.txt", b"nfc\n")
    _write(f"{root}/cafe\u0301.txt", b"nfd\n")
    _write(f"{root}/\u65e5\u672c\u8a9e/\u30d5\u30a1\u30a4\u30eb.txt", b"unicode dir\n")
    _write(f"{root}/emoji_\U0001f389.txt", b"party\n")
    for nm in ("a", "A", "a.b", "a-b", "a_b", "ab", "a b", "10", "9", "Z", "z", "~tilde"):
        _write(f"{root}/order/{nm}", nm.encode() + b"\n")
    # empty directories
    os.makedirs(f"{root}/empty_dir")
    os.makedirs(f"{root}/empty_nest/a/b")
    # symlinks: relative to a file, to a dir, upwards, dangling, absolute (target strings only)
    os.symlink("name with spaces.txt", f"{root}/link_to_file")
    os.symlink("d1/d2", f"{root}/link_to_dir")
    os.symlink("../../name with spaces.txt", f"{root}/d1/d2/link_up")
    os.symlink("no/such/target", f"{root}/dangling_link")
    os.symlink("/nonexistent/ipmirror/abs-target", f"{root}/absolute_dangling")
    os.symlink("empty_dir", f"{root}/link_to_empty_dir")


# -- directories around the HAMT thresholds ---------------------------------------------------

def _hamt_5000(root: str, name: str) -> None:
    os.makedirs(root)
    for i in range(5000):
        _write(f"{root}/project-{i:05d}-1.0.{i % 7}.tar.gz", rnd(f"hamt5000/{i}", i % 101))


def _links_bytes_dir(count: int, name_len: int, delta: int, first: str, rest: str
                     ) -> Callable[[str, str], None]:
    """``count`` empty files whose names are ``name_len`` bytes, except the first, which is
    ``name_len + delta`` bytes (so links-bytes / block-bytes sums move by ``delta``)."""
    def make(root: str, name: str) -> None:
        names = [first + "0" * (name_len + delta - 1)]
        names += [rest + str(i).zfill(name_len - 1) for i in range(1, count)]
        assert all(len(n) == name_len for n in names[1:]) and len(names[0]) == name_len + delta
        _touch_many(root, names)
    return make


# links-bytes with 34-byte CIDv0: 4096 x (30 + 34) = 262144
HAMT_V0 = (4096, 30)
# links-bytes with 36-byte CIDv1 (Kubo --cid-version=1): 4096 x (28 + 36) = 262144
HAMT_V1 = (4096, 28)
# block-bytes (unixfs-v1-2025), children = empty files = raw CIDv1 (36 bytes), Tsize 0:
# Data 4 bytes + per link 1 + 1 + (38 + (2 + 16) + 2) = 60 bytes; 4 + 4369 x 60 = 262144
BLOCK_BYTES = (4369, 16)


def block_bytes_of_empty_files(name_lens: Iterable[int]) -> int:
    """The flat directory block size (unixfs-v1-2025, no metadata) for empty-file children."""
    def vlen(x: int) -> int:
        n = 1
        while x >= 0x80:
            x >>= 7
            n += 1
        return n
    total = 4
    for n in name_lens:
        inner = (1 + 1 + 36) + (1 + vlen(n) + n) + (1 + 1)
        total += 1 + vlen(inner) + inner
    return total


def _subdirs(root: str, name: str) -> None:
    """1000 non-empty subdirectories and nothing else: sharded only because of them. Long names
    keep the count (and Kubo's time, which grows fast with the number of subdirectories) low."""
    os.makedirs(root)
    pad = "-a-rather-long-project-name-as-seen-in-package-registries" * 5
    for i in range(1000):
        nm = (f"project-{i:04d}" + pad)[:240]  # 1000 x (240 + 34) = 274000 links-bytes
        d = f"{root}/{nm}"
        os.mkdir(d)
        _write(f"{d}/index.html", b"<a href='p-%d.tar.gz'>p-%d</a>\n" % (i, i))


# -- metadata (mode / mtime) ---------------------------------------------------------------------

T0 = 1_600_000_000 * 10**9  # 2020-09-13, integer seconds
MTIMES = {
    "int": T0,
    "epoch": 0,
    "nanos": 1_700_000_000 * 10**9 + 123_456_789,
    "neg": -31_536_000 * 10**9,  # 1969-01-01, before the epoch
    "y2106": (2**32 + 5) * 10**9,  # > 2^32 (values with low 32 bits >= 2^31: see README, JS bug)
    "ms": 1_650_000_000 * 10**9 + 500_000_000,
}


def _set(path: str, mode: int | None, mtime_ns: int) -> None:
    if mode is not None:
        os.chmod(path, mode)
    os.utime(path, ns=(mtime_ns, mtime_ns), follow_symlinks=False)


def _meta(root: str, name: str) -> None:
    """Files and dirs with fixed modes and mtimes; single-chunk (and empty) files included."""
    files = [  # (rel path, size, mode, mtime key)
        ("default_644.txt", 5, 0o644, "int"),
        ("private_600.txt", 11, 0o600, "nanos"),
        ("exec_755.sh", 30, 0o755, "epoch"),
        ("exec_700", 100, 0o700, "neg"),
        ("readonly_444", 1, 0o444, "y2106"),
        ("setuid_4755", 64, 0o4755, "ms"),
        ("empty_640", 0, 0o640, "int"),
        ("one_chunk_256k", C256, 0o644, "nanos"),  # one chunk at 256 KiB
        ("multi_300k", 300 * KiB, 0o600, "int"),  # 2 chunks at 256 KiB, 1 at 1 MiB
        ("mib", C1M, 0o640, "neg"),  # 4 chunks at 256 KiB, 1 at 1 MiB
        ("multi_2_5m", 5 * C1M // 2, 0o755, "nanos"),  # multi-chunk under every profile
        ("sub_700/inner_400", 7, 0o400, "ms"),
        ("sub_700/inner_big", C1M + C256 + 3, 0o644, "epoch"),
        ("sub_700/deeper_1777/leaf", 3, 0o644, "int"),
        ("plain_755/x.txt", 2, 0o644, "int"),
    ]
    dirs = [  # deepest first: mtimes are set after their contents
        ("sub_700/deeper_1777", 0o1777, "neg"),
        ("sub_700", 0o700, "nanos"),
        ("plain_755", 0o755, "int"),
        ("empty_750", 0o750, "y2106"),
    ]
    links = [("link_rel", "default_644.txt", "nanos"), ("sub_700/link_dangling", "../nowhere", "int")]
    _meta_tree(root, name, files, dirs, links, (0o750, "ms"))


def _meta_multi(root: str, name: str) -> None:
    """Like ``meta`` but every file has more than one 256 KiB chunk (no single-chunk files: see
    the JS bug in README.md), for unixfs-v0-2015 with balanced layout."""
    files = [
        ("multi_300k", 300 * KiB, 0o600, "int"),
        ("mib_plus1", C1M + 1, 0o755, "nanos"),
        ("two_chunks", 2 * C256, 0o644, "neg"),
        ("sub/inner", C256 + 1, 0o400, "ms"),
    ]
    dirs = [("sub", 0o700, "epoch"), ("empty_775", 0o775, "y2106")]
    links = [("link", "sub/inner", "nanos")]
    _meta_tree(root, name, files, dirs, links, (0o755, "int"))


def _meta_tree(root: str, name: str, files: list[tuple[str, int, int, str]],
               dirs: list[tuple[str, int, str]], links: list[tuple[str, str, str]],
               top: tuple[int, str]) -> None:
    os.makedirs(root)
    for rel, _mode, _key in dirs:
        os.makedirs(f"{root}/{rel}", exist_ok=True)
    for rel, size, _mode, _key in files:
        _write(f"{root}/{rel}", rnd(f"{name}/{rel}", size))
    for rel, target, _key in links:
        os.symlink(target, f"{root}/{rel}")
    for rel, _size, mode, key in files:
        _set(f"{root}/{rel}", mode, MTIMES[key])
    for rel, _target, key in links:
        _set(f"{root}/{rel}", None, MTIMES[key])
    for rel, mode, key in dirs:
        _set(f"{root}/{rel}", mode, MTIMES[key])
    _set(root, top[0], MTIMES[top[1]])


def _meta_hamt(root: str, name: str) -> None:
    """A directory with mode/mtime that shards under every profile (only files as children)."""
    os.makedirs(root)
    modes = (0o644, 0o600, 0o755, 0o444)
    keys = sorted(MTIMES)
    for i in range(4000):  # links-bytes v0: 4000 x (40 + 34) = 296000
        p = f"{root}/file-{i:05d}-has-a-forty-byte-long-name.md"
        assert len(os.path.basename(p)) == 40
        _write(p, rnd(f"meta_hamt/{i}", i % 37))
        _set(p, modes[i % len(modes)], MTIMES[keys[i % len(keys)]] + i)
    _set(root, 0o711, MTIMES["nanos"])


def _meta_file(size: int, mode: int, key: str) -> Callable[[str, str], None]:
    def make(path: str, name: str) -> None:
        _write(path, rnd(name, size))
        _set(path, mode, MTIMES[key])
    return make


# -- the case table -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    make: Callable[[str, str], None]
    description: str
    slow: bool = False  # expensive to hash (not to create)
    meta: bool = False  # modes and mtimes are part of the case


CASES: dict[str, Case] = {
    "empty": Case(_file(0), "0 bytes"),
    "one": Case(_one, "1 byte 'a'"),
    "chunk_minus1": Case(_file(C256 - 1), "256 KiB - 1"),
    "chunk": Case(_file(C256), "exactly one 256 KiB chunk"),
    "chunk_plus1": Case(_file(C256 + 1), "256 KiB + 1: two chunks"),
    "c174": Case(_file(174 * C256), "174 x 256 KiB: one full level at width 174"),
    "c174_plus1": Case(_file(174 * C256 + 1), "174 x 256 KiB + 1: second tree level for CIDv0"),
    "mib_minus1": Case(_file(C1M - 1), "1 MiB - 1"),
    "mib": Case(_file(C1M), "exactly one 1 MiB chunk"),
    "mib_plus1": Case(_file(C1M + 1), "1 MiB + 1: two 1 MiB chunks"),
    "mib16_plus1": Case(_file(16 * C1M + 1), "16 MiB + 1: second level at width 16 with 1 MiB chunks"),
    "gib_plus1": Case(_zeros(1024 * C1M + 1), "1 GiB + 1 of zeros (sparse): second level for "
                      "unixfs-v1-2025 (1025 chunks, width 1024)", slow=True),
    "rand50m": Case(_file(50 * MiB), "50 MiB random"),
    "text_1m": Case(_text(C1M), "1 MiB of text"),
    "tree": Case(_tree, "nested tree: hidden files/dirs, relative/dangling/dir symlinks, unicode and "
                 "space names, empty dirs, 6 levels deep, chunk-edge file sizes"),
    "hamt_5000": Case(_hamt_5000, "flat dir of 5000 small files (sharded everywhere)"),
    "hamt_eq": Case(_links_bytes_dir(*HAMT_V0, 0, "f", "f"),
                    "4096 x (30-byte name + 34-byte CIDv0) = 262144 links-bytes"),
    "hamt_lt": Case(_links_bytes_dir(*HAMT_V0, -1, "g", "f"), "as hamt_eq, 262143 links-bytes"),
    "hamt_gt": Case(_links_bytes_dir(*HAMT_V0, 1, "g", "f"), "as hamt_eq, 262145 links-bytes"),
    "hamt1_eq": Case(_links_bytes_dir(*HAMT_V1, 0, "c", "c"),
                     "4096 x (28-byte name + 36-byte CIDv1) = 262144 links-bytes"),
    "hamt1_lt": Case(_links_bytes_dir(*HAMT_V1, -1, "d", "c"), "as hamt1_eq, 262143 links-bytes"),
    "hamt1_gt": Case(_links_bytes_dir(*HAMT_V1, 1, "d", "c"), "as hamt1_eq, 262145 links-bytes"),
    "bb_eq": Case(_links_bytes_dir(*BLOCK_BYTES, 0, "b", "b"),
                  "flat block of exactly 262144 bytes under unixfs-v1-2025 (4369 empty files)"),
    "bb_lt": Case(_links_bytes_dir(*BLOCK_BYTES, -1, "a", "b"), "as bb_eq, 262143 block bytes"),
    "bb_gt": Case(_links_bytes_dir(*BLOCK_BYTES, 1, "a", "b"), "as bb_eq, 262145 block bytes"),
    "subdirs": Case(_subdirs, "1000 non-empty subdirectories with 240-byte names: shards only "
                    "because of them"),
    "meta": Case(_meta, "fixed modes (0644 0600 0755 0700 0444 04755 0640 01777 0750 ...) and "
                 "mtimes (integer, nanoseconds, epoch, negative, > 2^32); single- and multi-chunk "
                 "files, empty file and dir, symlinks", meta=True),
    "meta_multi": Case(_meta_multi, "like meta, only multi-chunk files (>256 KiB)", meta=True),
    "meta_hamt": Case(_meta_hamt, "4000 files with modes/mtimes in a dir with mode 0711 and an "
                      "mtime: sharded, the HAMT root carries the metadata", meta=True),
    "meta_file": Case(_meta_file(3 * C1M + 5, 0o600, "nanos"), "a single 3 MiB + 5 file, mode 0600, "
                      "mtime with nanoseconds", meta=True),
    "meta_small": Case(_meta_file(10, 0o755, "neg"), "a single 10-byte file, mode 0755, negative mtime",
                       meta=True),
}


def build(out_dir: str | os.PathLike[str], cases: Iterable[str] | None = None, *,
          force: bool = False) -> list[str]:
    """Create ``out_dir/<case>`` for each case (default: all). An existing case is kept unless
    ``force`` (then it is rebuilt). Returns the paths."""
    out = os.fspath(out_dir)
    names = list(CASES) if cases is None else list(cases)
    unknown = [n for n in names if n not in CASES]
    if unknown:
        raise KeyError(f"unknown corpus case(s): {', '.join(unknown)}")
    os.makedirs(out, exist_ok=True)
    paths = []
    for name in names:
        path = os.path.join(out, name)
        if os.path.lexists(path):
            if not force:
                paths.append(path)
                continue
            _remove(path)
        tmp = os.path.join(out, f".{name}.partial")
        if os.path.lexists(tmp):
            _remove(tmp)
        CASES[name].make(tmp, name)
        if CASES[name].meta:  # rename does not change mtimes, but keep the top one exact anyway
            st = os.lstat(tmp)
            os.rename(tmp, path)
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
        else:
            os.rename(tmp, path)
        paths.append(path)
    return paths


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        for dirpath, dirnames, _files in os.walk(path):  # make read-only dirs removable
            for d in dirnames:
                p = os.path.join(dirpath, d)
                if not os.path.islink(p):
                    os.chmod(p, 0o755)
        shutil.rmtree(path)
    else:
        os.unlink(path)


def digest(path: str | os.PathLike[str], meta: bool = False) -> str:
    """A fingerprint of the entry at ``path``: sha256 over a sorted listing of (relative name,
    type, size, content sha256 or link target) and, with ``meta``, the mode and mtime of each."""
    root = os.fspath(path)
    h = hashlib.sha256()

    def one(p: str, rel: bytes) -> None:
        st = os.lstat(p)
        extra = b" %o %d" % (stat.S_IMODE(st.st_mode), st.st_mtime_ns) if meta else b""
        if stat.S_ISLNK(st.st_mode):
            h.update(b"L %s -> %s%s\n" % (rel, os.fsencode(os.readlink(p)), extra))
        elif stat.S_ISDIR(st.st_mode):
            h.update(b"D %s%s\n" % (rel, extra))
            for name in sorted(os.listdir(os.fsencode(p))):
                one(os.path.join(p, os.fsdecode(name)), rel + b"/" + name)
        else:
            fh = hashlib.sha256()
            with open(p, "rb") as f:
                while buf := f.read(1 << 20):
                    fh.update(buf)
            h.update(b"F %s %d %s%s\n" % (rel, st.st_size, fh.hexdigest().encode(), extra))

    one(root, b".")
    return h.hexdigest()


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--")]
    if "--list" in argv:
        for name, c in CASES.items():
            print(f"{name:14s} {'slow ' if c.slow else ''}{'meta ' if c.meta else ''}{c.description}")
        return 0
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    for p in build(args[0], args[1:] or None, force="--force" in argv):
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
