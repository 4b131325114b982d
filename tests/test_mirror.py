"""Mirror sync: incremental results equal a full re-add, only changes are read, crashes are safe.

The sync tests run on every block store backend (``_stores.BACKENDS``); the CLI ones on the
repository's (LMDB)."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _stores import BACKENDS, open_store
from conftest import CLI
from ipmirror.codec.cid import CID, RAW
from ipmirror.dag import gc
from ipmirror.errors import InvalidInput
from ipmirror.mirror import sync as sync_mod
from ipmirror.mirror.db import MirrorDB
from ipmirror.mirror.manager import Mirrors
from ipmirror.store.base import NoCopyStore
from ipmirror.unixfs.importer import AddOptions, Importer
from ipmirror.unixfs.profile import PRESETS


class Env:
    def __init__(self, root: Path, profile: str = "unixfs-v1-2025", backend: str = "lmdb") -> None:
        self.dir = root / "src"
        self.dir.mkdir()
        self.store = open_store(backend, root)
        self.db = MirrorDB.open(root / "mirrors")
        self.mirrors = Mirrors(self.db, self.store)
        self.profile = profile
        self.mirrors.add("m", str(self.dir), profile=profile, hidden=True)

    def full_add(self) -> str:
        (root,) = Importer(AddOptions(PRESETS[self.profile], hidden=True)).add_paths([self.dir])
        return str(root.cid)

    def close(self) -> None:
        self.db.close()
        self.store.close()


@pytest.fixture(params=BACKENDS)
def env(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Env]:
    e = Env(tmp_path, backend=request.param)
    yield e
    e.close()


def write(p: Path, data: bytes) -> None:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)


def age(*paths: Path, seconds: float = 10) -> None:
    """Make mtimes old enough not to be 'racily clean' (as rsync sets them). A whole tree when a
    directory is given. (This changes ctimes too, so age only what a test changed.)"""
    t = time.time() - seconds
    for path in paths:
        for p in [path, *path.rglob("*")] if path.is_dir() else [path]:
            if not p.is_symlink():
                os.utime(p, (t, t))


def test_sync_reads_only_what_changed(env: Env) -> None:
    for i in range(50):
        write(env.dir / f"d{i % 5}" / f"f{i}", os.urandom(1000 + i))
    age(env.dir)
    v1 = env.mirrors.sync("m")
    assert v1.root == env.full_add() and v1.read_files == 50 and v1.added == 50
    v2 = env.mirrors.sync("m")
    assert v2.root == v1.root and v2.read_files == 0 and (v2.added, v2.changed, v2.removed) == (0, 0, 0)
    write(env.dir / "d1" / "f1", b"changed")
    (env.dir / "d2" / "f2").unlink()
    write(env.dir / "new" / "x", b"new")
    age(env.dir / "d1" / "f1", env.dir / "new" / "x")
    v3 = env.mirrors.sync("m")
    assert v3.root == env.full_add()
    assert (v3.read_files, v3.added, v3.changed, v3.removed) == (2, 1, 1, 1)
    changes = {(c.kind, c.path) for c in env.mirrors.diff("m")}
    assert changes == {("M", "d1/f1"), ("D", "d2/f2"), ("A", "new/x")}
    assert not v2.new and v2.number == 1 and v3.new and v3.number == 2  # a no-op records no version
    assert [v.number for v in env.mirrors.log("m")] == [1, 2]


def test_racily_clean_files_are_read_again(env: Env) -> None:
    f = env.dir / "f"
    write(f, b"aaaa")
    env.mirrors.sync("m")
    st = f.stat()
    f.write_bytes(b"bbbb")  # same size, and (maybe) the same mtime tick
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    v = env.mirrors.sync("m")
    assert v.root == env.full_add()


def test_checksum_reads_everything(env: Env) -> None:
    for i in range(5):
        write(env.dir / f"f{i}", b"x" * i)
    age(env.dir)
    env.mirrors.sync("m")
    st = (env.dir / "f3").stat()
    (env.dir / "f3").write_bytes(b"yyy")  # same size; mtime put back: stat cannot tell
    os.utime(env.dir / "f3", ns=(st.st_atime_ns, st.st_mtime_ns))
    v = env.mirrors.sync("m", checksum=True)
    assert v.read_files == 5 and v.root == env.full_add()


@pytest.mark.parametrize("backend", BACKENDS)
def test_hamt_directory_sync_and_diff(tmp_path: Path, backend: str) -> None:
    e = Env(tmp_path, "unixfs-v0-2015", backend)
    try:
        for i in range(6000):
            write(e.dir / "flat" / f"package-{i:05d}.tar.gz", b"%d" % i)
        age(e.dir)
        v1 = e.mirrors.sync("m")
        write(e.dir / "flat" / "package-00042.tar.gz", b"new bytes")
        (e.dir / "flat" / "package-04242.tar.gz").unlink()
        age(e.dir / "flat" / "package-00042.tar.gz")
        v2 = e.mirrors.sync("m")
        assert v2.root == e.full_add() != v1.root and v2.read_files == 1
        assert sorted((c.kind, c.path) for c in e.mirrors.diff("m")) == [
            ("D", "flat/package-04242.tar.gz"), ("M", "flat/package-00042.tar.gz")]
    finally:
        e.close()


def test_retention_unpins_old_versions(env: Env) -> None:
    for _ in range(3):
        write(env.dir / "f", os.urandom(5000))
        env.mirrors.sync("m")
    env.mirrors.set_keep("m", 1, 0)  # the last version only, whatever its age
    vs = env.mirrors.log("m")
    assert [v.pinned for v in vs] == [False, False, True]
    gc.collect(env.store)
    assert gc.verify(env.store).ok
    env.mirrors.rm("m")
    assert env.store.pins() == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_nocopy_needs_a_store_that_keeps_references(tmp_path: Path, backend: str) -> None:
    """A --nocopy mirror syncs to references on a store with the NoCopyStore capability; on one
    without it, adding such a mirror or syncing one is a clear error that changes nothing."""
    e = Env(tmp_path, backend=backend)
    try:
        data = os.urandom(5000)
        write(e.dir / "f", data)
        age(e.dir)
        if isinstance(e.store, NoCopyStore):
            e.mirrors.add("n", str(e.dir), profile="unixfs-v1-2025", hidden=True, nocopy=True)
            v = e.mirrors.sync("n")
            assert v.root == e.full_add() and v.nocopy
            leaf = CID.hash(RAW, data)  # the file is one raw leaf: referenced, not copied
            assert [mh for mh, _ in e.store.iter_refs()] == [leaf.multihash] and e.store.is_ref(leaf)
            return
        with pytest.raises(InvalidInput, match="--nocopy needs a block store that keeps no-copy references"):
            e.mirrors.add("n", str(e.dir), profile="unixfs-v1-2025", nocopy=True)
        assert e.db.get_mirror("n") is None
        m = e.mirrors.get("m")  # a --nocopy mirror made where references could be kept
        m.nocopy = True
        e.db.put_mirror(m)
        with pytest.raises(InvalidInput, match="mirror m: --nocopy needs"):
            e.mirrors.sync("m")
        after = e.mirrors.get("m")
        assert (after.gen, after.completed_gen) == (m.gen, m.completed_gen) and e.mirrors.log("m") == []
        assert e.store.stat().blocks == 0
    finally:
        e.close()


class Stop(Exception):
    pass


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["c", "python"])
def test_interrupted_syncs_then_resumed_equal_full_add(tmp_path: Path, kind: str, backend: str) -> None:
    """A sync that stops after its k-th event (records of finished directories committed, the
    version not written) followed by a full sync gives the root of a full add, for every k: the
    next sync never trusts a directory node that the interrupted one may have made stale."""
    e = Env(tmp_path, backend=backend)
    e.mirrors = Mirrors(e.db, e.store, batch_bytes=1)  # commit (and flush the index) at every block
    rng = random.Random(7)
    restore = contextlib.ExitStack()
    restore.enter_context(scanner(kind))
    try:
        for i in range(40):
            write(e.dir / f"a{i % 2}" / f"b{i % 4}" / f"f{i}", rng.randbytes(100))
        age(e.dir)
        e.mirrors.sync("m")
        stopped = 0
        for k in range(1, 12):
            for i in rng.sample(range(40), 3):
                p = e.dir / f"a{i % 2}" / f"b{i % 4}" / f"f{i}"
                write(p, rng.randbytes(100))
                age(p)
            seen = [0]

            def stop_at(_ev: object, k: int = k, seen: list[int] = seen) -> None:
                seen[0] += 1
                if seen[0] == k:
                    raise Stop

            try:
                e.mirrors.sync("m", on_event=stop_at)
            except Stop:
                stopped += 1
            v = e.mirrors.sync("m")
            assert v.root == e.full_add(), k
            assert e.mirrors.sync("m").root == v.root
        assert stopped >= 6
        assert gc.verify(e.store).ok
    finally:
        restore.close()
        e.close()


def test_user_pins_survive_retention_and_rm(env: Env) -> None:
    """Pins have owners: retention and `mirror rm` drop the mirror's pins, not a user's pin of
    the same root."""
    roots = []
    for i in range(3):
        write(env.dir / "f", b"version %d" % i)
        roots.append(env.mirrors.sync("m").root)
    first = CID.parse(roots[0])
    env.store.pin_add(first)  # the user keeps version 1
    env.mirrors.set_keep("m", 1, 0)  # the last version only, whatever its age
    gc.collect(env.store)
    assert env.store.pin_holders(first) == ["user"]
    assert gc.verify(env.store).ok and env.store.has(first)
    env.mirrors.rm("m")
    assert [str(c) for c, _k in env.store.pins()] == [roots[0]]
    gc.collect(env.store)
    assert env.store.has(first) and not env.store.has(CID.parse(roots[2]))


# -- hypothesis: random mutation sequences ---------------------------------------------------

NAMES = st.sampled_from(["a", "b", "c", ".h", "dir", "é", "x y"])
PATHS = st.lists(NAMES, min_size=1, max_size=3).map("/".join)
OPS = st.one_of(
    st.tuples(st.just("write"), PATHS, st.binary(max_size=3000)),
    st.tuples(st.just("delete"), PATHS, st.none()),
    st.tuples(st.just("rename"), PATHS, PATHS),
    st.tuples(st.just("chmod"), PATHS, st.sampled_from([0o600, 0o644, 0o755])),
    st.tuples(st.just("touch"), PATHS, st.none()),
    st.tuples(st.just("mkdir"), PATHS, st.none()),
)


def apply(root: Path, op: tuple[str, str, object]) -> None:
    kind, rel, arg = op
    p = root / rel
    try:
        if kind == "write":
            if p.is_dir():
                shutil.rmtree(p)
            if p.parent.exists() and not p.parent.is_dir():
                p.parent.unlink()  # file -> directory
            write(p, arg)  # type: ignore[arg-type]
        elif kind == "delete":
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
        elif kind == "rename" and p.exists():
            dst = root / str(arg)
            if not dst.exists() and not str(dst).startswith(str(p) + "/"):
                dst.parent.mkdir(parents=True, exist_ok=True)
                p.rename(dst)
        elif kind == "chmod" and p.is_file():
            p.chmod(arg)  # type: ignore[arg-type]
        elif kind == "touch" and p.exists():
            os.utime(p)
        elif kind == "mkdir" and not p.exists():
            p.mkdir(parents=True)
    except (NotADirectoryError, FileExistsError, FileNotFoundError):
        pass


@contextlib.contextmanager
def scanner(kind: str) -> Iterator[None]:
    """Run syncs with the C directory scanner (``c``) or the pure-Python path (``python``)."""
    saved = sync_mod._scan
    if kind == "python":
        sync_mod._scan = None  # type: ignore[assignment]
    try:
        yield
    finally:
        sync_mod._scan = saved


def test_c_scanner_is_built() -> None:
    """`pip install` builds mirror/_scan.c here (a machine without a compiler falls back to
    Python; the tests must exercise both)."""
    assert sync_mod._scan is not None


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["c", "python"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(st.lists(OPS, min_size=1, max_size=6), min_size=1, max_size=4))
def test_synced_root_equals_full_add(kind: str, backend: str,
                                     steps: list[list[tuple[str, str, object]]]) -> None:
    with tempfile.TemporaryDirectory() as tmp, scanner(kind):
        e = Env(Path(tmp), backend=backend)
        try:
            for batch in steps:
                for op in batch:
                    apply(e.dir, op)
                if random.random() < 0.5:
                    age(e.dir)
                v = e.mirrors.sync("m", force=True)  # random deletions: past the source checks
                assert v.root == e.full_add()
            assert gc.verify(e.store).ok
        finally:
            e.close()


# -- crash safety ------------------------------------------------------------------------------

def test_sigkill_during_sync(cli: CLI, repo_path: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    rng = random.Random(5)
    for i in range(120):
        write(src / f"d{i % 6}" / f"f{i}", rng.randbytes(rng.choice([100, 50_000, 300_000])))
    age(src)
    cli("init")
    cfg = json.loads((repo_path / "config.json").read_text())
    (repo_path / "config.json").write_text(json.dumps({**cfg, "batch_bytes": 1 << 20}))
    cli("mirror", "add", "m", src)
    cli("mirror", "sync", "m")
    env = dict(os.environ, IPMIRROR_PATH=str(repo_path))
    for round_ in range(6):
        for i in range(round_ * 20, round_ * 20 + 20):
            write(src / f"d{i % 6}" / f"f{i}", rng.randbytes(rng.choice([100, 50_000, 300_000])))
            age(src / f"d{i % 6}" / f"f{i}")
        before = cli("mirror", "log", "m", "--json").text
        p = subprocess.Popen([sys.executable, "-m", "ipmirror", "mirror", "sync", "m"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.05, 0.6))
        killed = p.poll() is None
        if killed:
            p.send_signal(signal.SIGKILL)
        p.communicate()
        want = cli("add", "--only-hash", "-Q", src).text.strip()
        after = json.loads(cli("mirror", "log", "m", "--json").text)
        old = json.loads(before)
        if killed:  # the previous version is intact; a new one appears only if it completed
            assert after[:len(old)] == old
            assert len(after) == len(old) or (len(after) == len(old) + 1 and after[-1]["root"] == want)
        assert cli("repo", "verify").rc == 0
        if rng.random() < 0.5:
            cli("repo", "gc")
        cli("mirror", "sync", "m")
        assert json.loads(cli("mirror", "log", "m", "--json").text)[-1]["root"] == want
        assert cli("repo", "verify").rc == 0


# -- no-copy ---------------------------------------------------------------------------------------

def test_nocopy_mirror(cli: CLI, repo_path: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    for i in range(20):
        write(src / f"d{i % 3}" / f"f{i}.bin", os.urandom(300_000 + i))
    age(src)
    r = cli("mirror", "add", "bad", src, "--nocopy", "--profile", "unixfs-v0-2015", check=False)
    assert r.rc == 1 and "raw leaves" in r.err
    cli("mirror", "add", "nc", src, "--nocopy")
    cli("mirror", "sync", "nc")
    root = json.loads(cli("mirror", "log", "nc", "--json").text)[-1]["root"]
    assert root == cli("add", "--only-hash", "-Q", src).text.strip()
    used = sum(p.stat().st_blocks * 512 for p in (repo_path / "blocks").glob("*.mdb"))
    assert used < 0.05 * 20 * 300_000  # directory nodes, file roots and references only
    victim = src / "d1" / "f1.bin"
    assert cli("cat", f"{root}/d1/f1.bin").out == victim.read_bytes()
    with open(victim, "r+b") as f:  # behind the store's back, same size
        f.seek(1000)
        f.write(b"tampered")
    r = cli("cat", f"{root}/d1/f1.bin", check=False)
    assert r.rc == 1 and "stale" in r.err and r.out == b""  # missing, never wrong bytes
    v = cli("repo", "verify", check=False)
    assert "stale" in v.text and v.rc == 3  # monitoring by exit code sees it
    age(victim)
    cli("mirror", "sync", "nc")
    new_root = json.loads(cli("mirror", "log", "nc", "--json").text)[-1]["root"]
    assert new_root != root
    assert cli("cat", f"{new_root}/d1/f1.bin").out == victim.read_bytes()


def test_sync_watch_follows_changes(cli: CLI, repo_path: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    write(src / "a", b"first")
    cli("mirror", "add", "w", src)
    env = dict(os.environ, IPMIRROR_PATH=str(repo_path))
    p = subprocess.Popen([sys.executable, "-m", "ipmirror", "mirror", "sync", "w", "--watch",
                          "--debounce", "0.3"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30

        def versions() -> list[dict[str, object]]:
            r = cli("mirror", "log", "w", "--json", check=False)
            return json.loads(r.text) if r.rc == 0 and r.text.strip() else []

        while len(versions()) < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        write(src / "b", b"second")
        write(src / "sub" / "c", b"third")
        want = cli("add", "--only-hash", "-Q", src).text.strip()
        while time.monotonic() < deadline and (not versions() or versions()[-1]["root"] != want):
            time.sleep(0.2)
        assert versions()[-1]["root"] == want
    finally:
        p.send_signal(signal.SIGINT)
        _out, err = p.communicate(timeout=20)
    assert p.returncode == 0, err
    assert b"Traceback" not in err


def test_mirror_keys_and_names(cli: CLI, tmp_path: Path) -> None:
    src = tmp_path / "src"
    write(src / "a", b"one")
    cli("mirror", "add", "deb", src)
    assert "deb" in cli("key", "list").text.split()
    cli("mirror", "sync", "deb")
    first = json.loads(cli("mirror", "log", "deb", "--json").text)[-1]["root"]
    assert cli("name", "resolve", "deb").text.strip() == f"/ipfs/{first}"
    k51 = cli("name", "dnslink", "deb").text.strip().removeprefix("dnslink=/ipns/")
    assert k51.startswith("k51")
    write(src / "b", b"two")
    cli("mirror", "sync", "deb")
    latest = json.loads(cli("mirror", "log", "deb", "--json").text)[-1]["root"]
    assert latest != first
    assert cli("name", "resolve", k51).text.strip() == f"/ipfs/{latest}"  # the record was republished
    cli("key", "gen", "taken")
    r = cli("mirror", "add", "taken", src, check=False)
    assert r.rc == 1 and "--key taken" in r.err
    cli("mirror", "add", "taken", src, "--key", "taken")
    cli("mirror", "add", "other", src, "--key", "shared-key")
    cli("mirror", "sync", "other")
    other = json.loads(cli("mirror", "log", "other", "--json").text)[-1]["root"]
    assert cli("name", "resolve", "other").text.strip() == f"/ipfs/{other}"  # by mirror name
    r = cli("mirror", "add", "bad.name", src, check=False)
    assert r.rc == 1 and "invalid mirror name" in r.err


# -- the C scanner -----------------------------------------------------------------------------

def test_c_scanner_sorts_out_unchanged_files(tmp_path: Path) -> None:
    from ipmirror.mirror.db import Rec
    scan = sync_mod._scan
    if scan is None:
        pytest.fail("the C scanner is not built")
    d = tmp_path / "d"
    d.mkdir()
    cid = CID.parse("bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy")
    names = ["same", "racy", "newer-gen", "changed", "new", ".hidden", "sub", "link", "was-dir"]
    for n in names:
        if n == "sub":
            (d / n).mkdir()
        elif n == "link":
            (d / n).symlink_to("same")
        else:
            (d / n).write_bytes(b"x" * 10)
    (d / os.fsdecode(b"\xff-latin1")).write_bytes(b"y")
    age(*(d / n for n in names if n != "link"), d / os.fsdecode(b"\xff-latin1"))
    os.utime(d / "racy", ns=(time.time_ns(), time.time_ns()))

    def rec(n: str, scan_ns: int | None = None, gen: int = 1, kind: bytes = b"f") -> bytes:
        st = os.lstat(d / n)
        return Rec(kind, cid, 10, st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns, st.st_mode,
                   scan_ns if scan_ns is not None else time.time_ns(), gen).pack()

    prev = {b"same": rec("same"), b"racy": rec("racy", scan_ns=os.lstat(d / "racy").st_mtime_ns),
            b"newer-gen": rec("newer-gen", gen=2), b"changed": rec("changed"), b"link": rec("same"),
            b"was-dir": rec("was-dir", kind=b"d"), b".hidden": rec(".hidden"),
            b"\xff-latin1": rec(os.fsdecode(b"\xff-latin1"))}
    (d / "changed").write_bytes(b"z" * 11)
    reused, nbytes, rest = scan.scan(os.fsencode(d), prev, False, 1, sync_mod.RACY_NS)
    assert sorted(reused) == [b"same", b"\xff-latin1"] and nbytes == 11
    assert sorted(rest) == sorted([b"racy", b"newer-gen", b"changed", b"new", b"sub", b"link", b"was-dir"])
    reused, _n, rest = scan.scan(os.fsencode(d), prev, True, 1, sync_mod.RACY_NS)
    assert b".hidden" in reused
    with pytest.raises(FileNotFoundError):
        scan.scan(os.fsencode(tmp_path / "missing"), {}, False, 0, 0)


def test_progress_counts(env: Env) -> None:
    for i in range(30):
        write(env.dir / f"d{i % 3}" / f"f{i}", os.urandom(100 + i))
    age(env.dir)
    env.mirrors.sync("m")
    write(env.dir / "d0" / "new", b"new")
    age(env.dir / "d0" / "new")
    live = sync_mod.Progress()
    assert live.counts()["scanned"] == 0
    v = env.mirrors.sync("m", progress=live)
    c = live.counts()
    assert (c["scanned"], c["read"], c["added"]) == (v.files, v.read_files, v.added) == (31, 1, 1)
    assert c["scanned_bytes"] == v.size


def test_progress_line_on_a_terminal(cli: CLI, repo_path: Path, tmp_path: Path) -> None:
    """With stderr on a terminal, `mirror sync` draws its progress line there."""
    import pty
    src = tmp_path / "src"
    for i in range(20):
        write(src / f"f{i}", os.urandom(1000))
    cli("mirror", "add", "m", src)
    main, secondary = pty.openpty()
    env = dict(os.environ, IPMIRROR_PATH=str(repo_path))
    p = subprocess.run([sys.executable, "-m", "ipmirror", "mirror", "sync", "m"], env=env,
                       stdout=subprocess.PIPE, stderr=secondary, timeout=60)
    os.close(secondary)
    shown = b""
    with contextlib.suppress(OSError):
        while chunk := os.read(main, 4096):
            shown += chunk
    os.close(main)
    assert p.returncode == 0
    assert b"20 files scanned" in shown and b"20 read" in shown and b"+20" in shown


def test_many_subdirectories_scanned_ahead(env: Env) -> None:
    """More subdirectories than the scan-ahead window (16), nested: the window slides and every
    version equals a full add."""
    for i in range(60):
        write(env.dir / f"p{i % 3}" / f"pkg{i:02d}" / "a.deb", b"%d" % i)
    age(env.dir)
    assert env.mirrors.sync("m").root == env.full_add()
    for i in (0, 17, 33, 59):
        p = env.dir / f"p{i % 3}" / f"pkg{i:02d}" / "a.deb"
        write(p, b"changed %d" % i)
        age(p)
    shutil.rmtree(env.dir / "p1" / "pkg40")
    v = env.mirrors.sync("m")
    assert v.root == env.full_add() and v.read_files == 4 and v.removed == 1
