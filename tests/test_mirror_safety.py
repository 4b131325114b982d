"""Never publish a broken mirror (issue #12): source checks, partial syncs, file-grained resume, no
empty versions, one sync per mirror at a time, retention defaults, ``mirror rm`` and the exit codes.

Unreadable files are made by failing ``os.open``/``os.scandir`` for chosen names in-process: the
suite runs as root, which reads any file whatever its mode.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import CLI
from ipmirror.cli.main import main
from ipmirror.errors import EXIT_BUSY, EXIT_PARTIAL, EXIT_REFUSED, Busy, Refused, SourceError
from ipmirror.mirror import retention
from ipmirror.mirror import sync as sync_mod
from ipmirror.mirror.db import MirrorDB
from ipmirror.mirror.lock import mirror_lock
from ipmirror.mirror.manager import Mirrors
from ipmirror.store.lmdb_store import LmdbStore
from ipmirror.unixfs.importer import AddOptions, Importer
from ipmirror.unixfs.profile import PRESETS

PROFILE = "unixfs-v1-2025"


def write(p: Path, data: bytes) -> None:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)


def age(path: Path, seconds: float = 10) -> None:
    t = time.time() - seconds
    for p in [path, *path.rglob("*")] if path.is_dir() else [path]:
        os.utime(p, (t, t))


def full_add(d: Path) -> str:
    (root,) = Importer(AddOptions(PRESETS[PROFILE])).add_paths([d])
    return str(root.cid)


class Env:
    def __init__(self, root: Path, batch_bytes: int | None = None) -> None:
        self.root = root
        self.dir = root / "src"
        self.dir.mkdir()
        self.store = LmdbStore.open(root / "blocks")
        self.db = MirrorDB.open(root / "mirrors")
        self.published: list[str] = []
        self.mirrors = Mirrors(self.db, self.store, batch_bytes=batch_bytes,
                               publish=lambda _m, root: self.published.append(str(root)))

    def close(self) -> None:
        self.db.close()
        self.store.close()


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = Env(tmp_path)
    yield e
    e.close()


def tree(d: Path, n: int = 10) -> None:
    for i in range(n):
        write(d / f"d{i % 2}" / f"f{i}", b"file %d " % i * 50)
    age(d)


# -- 1. source checks --------------------------------------------------------------------------------

def test_empty_or_missing_source_is_refused_and_the_index_kept(env: Env) -> None:
    tree(env.dir)
    env.mirrors.add("m", str(env.dir), profile=PROFILE)
    v1 = env.mirrors.sync("m")
    away = env.root / "away"
    env.dir.rename(away)
    env.dir.mkdir()  # an unmounted disk: the empty mount point
    with pytest.raises(Refused, match=r"src is empty, but version 1 has 10 files .*--force"):
        env.mirrors.sync("m")
    assert env.mirrors.get("m").refused.startswith("mirror m: refused to publish")
    env.dir.rmdir()
    with pytest.raises(Refused, match="No such file or directory, but version 1 has 10 files"):
        env.mirrors.sync("m")
    (env.dir / "sub").mkdir(parents=True)  # entries, but no file: refused after the walk
    with pytest.raises(Refused, match="no file left under"):
        env.mirrors.sync("m")
    assert [v.root for v in env.mirrors.log("m")] == [v1.root] and env.published == [v1.root]
    shutil.rmtree(env.dir)
    away.rename(env.dir)
    v = env.mirrors.sync("m")  # the disk is back: the index was kept, nothing is read again
    assert (v.new, v.root, v.read_files, v.removed) == (False, v1.root, 0, 0)
    assert env.mirrors.get("m").refused == ""
    shutil.rmtree(env.dir)
    env.dir.mkdir()
    forced = env.mirrors.sync("m", force=True)
    assert forced.new and forced.files == 0 and forced.removed == 10 and env.published[-1] == forced.root


def test_too_many_removed_files_are_refused(env: Env) -> None:
    tree(env.dir)
    env.mirrors.add("m", str(env.dir), profile=PROFILE)
    v1 = env.mirrors.sync("m")
    (env.dir / "d0" / "f0").unlink()
    (env.dir / "d1" / "f1").unlink()  # 20%: allowed
    v2 = env.mirrors.sync("m")
    assert v2.new and v2.removed == 2
    shutil.rmtree(env.dir / "d0")  # 4 of 8 more
    with pytest.raises(Refused, match=r"4 of the 8 files of version 2 would be removed \(50%, more than "
                                      r"--max-delete 20%\)"):
        env.mirrors.sync("m")
    assert env.mirrors.log("m")[-1].root == v2.root
    v3 = env.mirrors.sync("m", max_delete=50)
    assert v3.new and v3.removed == 4 and v3.root == full_add(env.dir) != v1.root


def test_another_file_system_is_refused(env: Env) -> None:
    """The directory's st_dev is recorded with each version; a different one (an unmounted disk
    shows the mount point, on the parent file system) is refused. Versions recorded before the
    field (dev 0) are not compared."""
    tree(env.dir)
    env.mirrors.add("m", str(env.dir), profile=PROFILE)
    v1 = env.mirrors.sync("m")
    assert env.mirrors.log("m")[-1].dev == os.stat(env.dir).st_dev != 0
    rec = env.mirrors.log("m")[-1]
    rec.dev += 1  # as if version 1 had been synced from another disk
    env.db.put_version(env.mirrors.get("m").id, rec)
    write(env.dir / "new", b"x")
    with pytest.raises(Refused, match="on another file system than at version 1"):
        env.mirrors.sync("m")
    rec.dev = 0
    env.db.put_version(env.mirrors.get("m").id, rec)
    v2 = env.mirrors.sync("m")
    assert v2.new and v2.root != v1.root and v2.dev == os.stat(env.dir).st_dev


def test_cli_refusal_exits_4_in_one_line(cli: CLI, tmp_path: Path) -> None:
    src = tmp_path / "src"
    tree(src)
    cli("mirror", "add", "m", src)
    cli("mirror", "sync", "m")
    first = cli("name", "resolve", "m").text
    for p in (src / "d0").iterdir():
        p.unlink()
    r = cli("mirror", "sync", "m", check=False)
    assert r.rc == EXIT_REFUSED and len(r.err.splitlines()) == 1 and "--max-delete 20%" in r.err, r.err
    assert cli("name", "resolve", "m").text == first  # the previous version stays published
    assert "refused" in cli("mirror", "list").text
    r = cli("mirror", "sync", "m", "--max-delete", "60")
    assert "version 2" in r.text and cli("name", "resolve", "m").text != first
    r = cli("mirror", "sync", "m", "--max-delete", "101", check=False)
    assert r.rc == 1 and "--max-delete takes a percentage" in r.err


# -- 2. partial syncs ------------------------------------------------------------------------------

@pytest.fixture
def unreadable(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Names (file or directory basenames) that cannot be opened or listed while in the set."""
    names: set[str] = set()
    real_open, real_scandir = os.open, os.scandir

    def fake_open(path: object, *a: object, **k: object) -> int:
        if isinstance(path, str | bytes) and os.path.basename(os.fsdecode(path)) in names:
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_open(path, *a, **k)  # type: ignore[arg-type]

    def fake_scandir(path: object = ".") -> object:
        if isinstance(path, str | bytes) and os.path.basename(os.fsdecode(path)) in names:
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_scandir(path)  # type: ignore[call-overload]

    class FakeScan:  # the C scanner lists directories itself
        @staticmethod
        def scan(path: bytes, *a: object) -> object:
            if os.path.basename(os.fsdecode(path)) in names:
                raise PermissionError(errno.EACCES, "Permission denied")
            return real_scan(path, *a)

    monkeypatch.setattr(os, "open", fake_open)
    monkeypatch.setattr(os, "scandir", fake_scandir)
    real_scan = sync_mod._scan.scan if sync_mod._scan is not None else None
    if real_scan is not None:
        monkeypatch.setattr(sync_mod, "_scan", FakeScan)
    return names


def test_partial_sync_keeps_previous_content(env: Env, unreadable: set[str]) -> None:
    tree(env.dir)
    env.mirrors.add("m", str(env.dir), profile=PROFILE)
    v1 = env.mirrors.sync("m")
    write(env.dir / "d0" / "f0", b"new content")
    write(env.dir / "d1" / "f1", b"also new")
    write(env.dir / "d1" / "fresh", b"a new file")
    age(env.dir)
    unreadable.update({"f0", "fresh"})
    v2 = env.mirrors.sync("m")
    assert v2.new and v2.skipped == 2 and env.published[-1] == v2.root
    assert sorted(map(str, v2.skipped_paths)) == [
        "d0/f0: Permission denied (previous content kept)", "d1/fresh: Permission denied (left out)"]
    assert v2.files == 10 and env.mirrors.log("m")[-1].skipped == 2
    kept = env.root / "expect"
    shutil.copytree(env.dir, kept)
    (kept / "d0" / "f0").write_bytes(b"file 0 " * 50)  # the previous content
    (kept / "d1" / "fresh").unlink()
    unreadable.clear()
    assert v2.root == full_add(kept) != v1.root
    v3 = env.mirrors.sync("m")  # readable again: read now (its record was left as it was)
    assert v3.root == full_add(env.dir) and v3.read_files == 2 and v3.skipped == 0


def test_partial_sync_unlistable_directory_and_strict(env: Env, unreadable: set[str]) -> None:
    tree(env.dir)
    env.mirrors.add("m", str(env.dir), profile=PROFILE)
    v1 = env.mirrors.sync("m")
    write(env.dir / "d1" / "more", b"more")
    write(env.dir / "top", b"top")
    age(env.dir)
    unreadable.add("d1")
    with pytest.raises(SourceError, match="d1: Permission denied"):
        env.mirrors.sync("m", strict=True)  # --strict: as before, nothing recorded
    assert len(env.mirrors.log("m")) == 1
    v2 = env.mirrors.sync("m")
    assert [str(s) for s in v2.skipped_paths] == ["d1: Permission denied (previous content kept)"]
    assert v2.files == 11 and v2.root != v1.root
    unreadable.clear()
    assert env.mirrors.sync("m").root == full_add(env.dir)


@pytest.mark.skipif(not hasattr(os, "O_NOFOLLOW"), reason="POSIX")
def test_partial_nocopy_mirror_leaves_unreadable_files_out(env: Env, unreadable: set[str]) -> None:
    tree(env.dir)
    env.mirrors.add("n", str(env.dir), profile=PROFILE, nocopy=True)
    env.mirrors.sync("n")
    write(env.dir / "d0" / "f0", b"changed")
    age(env.dir / "d0" / "f0")
    unreadable.add("f0")
    v = env.mirrors.sync("n")
    assert [str(s) for s in v.skipped_paths] == ["d0/f0: Permission denied (left out)"]
    assert v.files == 9 and v.removed == 1
    unreadable.clear()
    (env.dir / "d0" / "f0").unlink()
    assert v.root == full_add(env.dir)


def test_cli_partial_sync_exits_3(tmp_path: Path, unreadable: set[str], monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "src"
    tree(src)
    monkeypatch.setenv("IPMIRROR_PATH", str(tmp_path / "repo"))
    assert main(["mirror", "add", "m", str(src)]) == 0
    unreadable.add("f3")
    assert main(["mirror", "sync", "m"]) == EXIT_PARTIAL
    err = capsys.readouterr().err
    assert "skipped d1/f3: Permission denied (left out)" in err
    assert main(["mirror", "sync", "m", "--strict"]) == 1
    assert "f3: Permission denied" in capsys.readouterr().err


# -- 3. file-grained resume ------------------------------------------------------------------------

def test_killed_sync_resumes_file_by_file_in_one_directory(cli: CLI, repo_path: Path, tmp_path: Path) -> None:
    """60 files of 3 MB in one directory, 8 MiB write batches; the sync is killed once half the
    bytes are committed. The next sync reads what was not committed and, of what was, at most one
    batch, the reader queue (a quarter batch) and the files in flight — by its own count of bytes
    read."""
    src = tmp_path / "src"
    size, n, batch = 3 << 20, 60, 8 << 20
    for i in range(n):
        write(src / "pool" / f"pkg-{i:03d}.deb", os.urandom(size))
    age(src)
    cli("init")
    cfg = json.loads((repo_path / "config.json").read_text())
    (repo_path / "config.json").write_text(json.dumps({**cfg, "batch_bytes": batch}))
    cli("mirror", "add", "m", src)
    env = dict(os.environ, IPMIRROR_PATH=str(repo_path))
    p = subprocess.Popen([sys.executable, "-m", "ipmirror", "mirror", "sync", "m"], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store = LmdbStore.open(repo_path / "blocks", readonly=True)
    try:
        committed = 0
        while p.poll() is None and committed < n * size // 2:
            committed = store.stat().block_bytes
            time.sleep(0.005)
        running = p.poll() is None
    finally:
        store.close()
        p.kill()
        p.wait()
    assert running, "the sync finished before half of it was committed"
    r = json.loads(cli("mirror", "sync", "m", "--json").text)
    assert r["root"] == cli("add", "--only-hash", "-Q", src).text.strip()
    # what was not committed yet must be read; of what was, at most one batch (files whose records
    # were to be written at the next commit), the queue and the files in flight
    in_flight = batch // 4 + 3 * size  # the queue, two workers' files and one straddling a commit
    again = r["read_bytes"] - (n * size - committed)
    assert again <= batch + in_flight, (r["read_bytes"], committed)
    assert r["read_bytes"] < 0.7 * n * size  # (before: every file was read again)


# -- 4. no empty versions ----------------------------------------------------------------------------

def test_no_change_records_no_version_but_the_check(cli: CLI, tmp_path: Path) -> None:
    src = tmp_path / "src"
    tree(src)
    cli("mirror", "add", "m", src)
    cli("mirror", "sync", "m")
    log1 = json.loads(cli("mirror", "log", "m", "--json").text)
    checked1 = json.loads(cli("mirror", "list", "--json").text)[0]["Checked"]
    r = cli("mirror", "sync", "m")
    assert "nothing changed; version 1 stays the latest" in r.text
    assert json.loads(cli("mirror", "log", "m", "--json").text) == log1
    checked2 = json.loads(cli("mirror", "list", "--json").text)[0]["Checked"]
    assert checked2 > checked1
    assert "last checked" in cli("mirror", "log", "m").text
    js = json.loads(cli("mirror", "sync", "m", "--json").text)
    assert js["new"] is False and js["number"] == 1 and js["read_files"] == 0


def test_watch_first_pass_records_no_version(cli: CLI, repo_path: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    tree(src)
    cli("mirror", "add", "w", src)
    cli("mirror", "sync", "w")
    before = json.loads(cli("mirror", "list", "--json").text)[0]["Checked"]
    env = dict(os.environ, IPMIRROR_PATH=str(repo_path))
    p = subprocess.Popen([sys.executable, "-m", "ipmirror", "mirror", "sync", "w", "--watch"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if json.loads(cli("mirror", "list", "--json").text)[0]["Checked"] > before:
                break
            time.sleep(0.1)
    finally:
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=20)
    assert p.returncode == 0, err
    assert b"nothing changed" in out
    assert len(json.loads(cli("mirror", "log", "w", "--json").text)) == 1


def test_a_crash_before_publishing_is_repaired_by_a_no_op_sync(env: Env) -> None:
    tree(env.dir)
    env.mirrors.add("m", str(env.dir), profile=PROFILE)
    m = env.mirrors.get("m")
    v = env.mirrors.sync("m")
    m = env.mirrors.get("m")
    m.published = ""  # as if the process died between recording the version and publishing
    env.db.put_mirror(m)
    env.published.clear()
    env.mirrors.sync("m")
    assert env.published == [v.root]
    env.mirrors.sync("m")
    assert env.published == [v.root]  # not again


# -- 5. one sync per mirror at a time ----------------------------------------------------------------

def test_second_sync_waits_then_finds_nothing_to_do(env: Env) -> None:
    tree(env.dir)
    env.mirrors.add("m", str(env.dir), profile=PROFILE)
    told: list[str] = []
    with mirror_lock(env.mirrors.locks_dir, "m"):  # a first sync holds the lock
        with pytest.raises(Busy, match="mirror m: another sync is running"):
            env.mirrors.sync("m", wait=False)
        done: list[object] = []
        t = threading.Thread(target=lambda: done.append(env.mirrors.sync("m", on_wait=told.append)))
        t.start()
        time.sleep(0.5)
        assert not done and told and "waiting for it to finish" in told[0]
        with pytest.raises(Busy):
            env.mirrors.rm("m")
    t.join(30)
    assert done


def test_concurrent_cli_syncs(cli: CLI, repo_path: Path, tmp_path: Path) -> None:
    """Two ``mirror sync`` started while a third holds the mirror's lock: both say they wait; the
    one that goes first does the work, the other then finds nothing to do; ``--no-wait`` exits 5."""
    src = tmp_path / "src"
    for i in range(40):
        write(src / f"f{i}", os.urandom(1 << 16))
    age(src)
    cli("mirror", "add", "m", src)
    env = dict(os.environ, IPMIRROR_PATH=str(repo_path))
    cmd = [sys.executable, "-m", "ipmirror", "mirror", "sync", "m", "--json"]
    procs = []
    with mirror_lock(repo_path / "mirrors" / "locks", "m"):
        busy = cli("mirror", "sync", "m", "--no-wait", check=False)
        assert busy.rc == EXIT_BUSY and len(busy.err.splitlines()) == 1
        assert f"another sync is running (pid {os.getpid()}); not waiting for it (--no-wait)" in busy.err
        for i in range(2):
            err = (tmp_path / f"err{i}").open("w+b")
            procs.append((subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=err), err))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(
                b"waiting for it to finish" in (tmp_path / f"err{i}").read_bytes() for i in range(2)):
            time.sleep(0.05)
    results = []
    for p, err in procs:
        out, _ = p.communicate(timeout=120)
        err.seek(0)
        text = err.read()
        err.close()
        assert p.returncode == 0 and b"waiting for it to finish" in text, text
        results.append(json.loads(out))
    results.sort(key=lambda r: not r["new"])
    assert [(r["new"], r["read_files"]) for r in results] == [(True, 40), (False, 0)]
    assert len(json.loads(cli("mirror", "log", "m", "--json").text)) == 1


# -- 6. retention and rm ------------------------------------------------------------------------------

def test_retention_policy() -> None:
    class V:
        def __init__(self, t: float) -> None:
            self.time, self.pinned = t, True

    now = 100 * retention.DAY
    vs = [V(now - (30 - i) * 3600) for i in range(30)]  # hourly, the newest an hour old
    gone = retention.expired(vs, keep=10, keep_days=1, now=now)
    assert gone == vs[:6]  # older than a day (30..25 h) and not among the last 10
    assert retention.expired(vs, keep=10, keep_days=0, now=now) == vs[:20]
    assert retention.expired(vs, keep=0, keep_days=0, now=now) == []  # 0: keep all
    assert retention.describe(10, 1) == "the last 10 versions and those younger than 1 day"


def test_new_mirrors_have_a_bounded_default_old_ones_keep_theirs(env: Env) -> None:
    tree(env.dir)
    m = env.mirrors.add("new", str(env.dir), profile=PROFILE)
    assert (m.keep, m.keep_days) == (retention.DEFAULT_KEEP, retention.DEFAULT_KEEP_DAYS)
    # a mirror record as written before retention had a default (no keep_days, keep 0)
    old = {"name": "old", "id": 7, "dir": str(env.dir), "profile": PROFILE, "hidden": False,
           "exclude": [], "nocopy": False, "key": "old", "keep": 0, "created": 1.0, "gen": 0,
           "completed_gen": 0}
    with env.db.env.begin(write=True) as t:
        t.put(b"old", json.dumps(old).encode(), db=env.db.db_mirrors)
    clock = [time.time() - 30 * retention.DAY]
    for i in range(14):
        write(env.dir / "f", b"version %d" % i)
        for name in ("old", "new"):
            env.mirrors.sync(name)
            # date the versions back so the one-day rule does not keep them all
            mid = env.mirrors.get(name).id
            v = env.db.versions(mid)[-1]
            v.time = clock[0]
            env.db.put_version(mid, v)
        clock[0] += 3600
    env.mirrors.sync("new")  # no change: retention still runs
    assert all(v.pinned for v in env.mirrors.log("old"))  # the upgrade unpinned nothing
    assert [v.pinned for v in env.mirrors.log("new")] == [False] * 4 + [True] * 10
    pinned = {str(c) for c, _k in env.store.pins()}
    assert {v.root for v in env.mirrors.log("old")} <= pinned


def test_rm_removes_key_and_record_so_the_name_can_be_added_again(cli: CLI, tmp_path: Path) -> None:
    src = tmp_path / "src"
    tree(src)
    cli("mirror", "add", "m", src)
    cli("mirror", "sync", "m")
    k51 = cli("name", "dnslink", "m").text.strip().removeprefix("dnslink=/ipns/")
    r = cli("mirror", "rm", "m")
    assert "removed key m and its IPNS record" in r.text
    assert "m" not in cli("key", "list").text.split()
    assert cli("name", "resolve", k51, check=False).rc != 0
    cli("mirror", "add", "m", src)  # the name is free again
    cli("mirror", "sync", "m")
    assert cli("mirror", "rm", "m", "--keep-key").text.strip().endswith("kept key m")
    assert "m" in cli("key", "list").text.split()
    cli("key", "gen", "mine")
    cli("mirror", "add", "a", src, "--key", "mine")
    cli("mirror", "add", "b", src, "--key", "shared")
    cli("mirror", "add", "c", src, "--key", "shared")
    assert "kept key mine (it was not made for this mirror)" in cli("mirror", "rm", "a").text
    assert "kept key shared (mirror c uses it)" in cli("mirror", "rm", "b").text
    assert "kept key shared (it was not made for this mirror)" in cli("mirror", "rm", "c").text


# -- 7. exit codes ------------------------------------------------------------------------------------

def test_exit_codes_are_one_table() -> None:
    from ipmirror import errors

    assert [errors.EXIT_OK, errors.EXIT_FAILURE, errors.EXIT_USAGE, errors.EXIT_PARTIAL,
            errors.EXIT_REFUSED, errors.EXIT_BUSY] == [0, 1, 2, 3, 4, 5]
    assert errors.Refused("x").exit_code == 4 and errors.StaleRecord("x").exit_code == 4
    assert errors.Busy("x").exit_code == 5 and errors.InvalidInput("x").exit_code == 1
    assert isinstance(errors.StaleRecord("x"), errors.Conflict)  # the gateway's 409 still applies
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    for code, word in [(0, "ok"), (1, "failure"), (2, "usage"), (3, "partial"), (4, "refused"),
                       (5, "busy")]:
        assert f"| {code} | {word}" in readme


def test_older_ipns_record_is_refused_with_4(cli: CLI, tmp_path: Path) -> None:
    cid = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
    cli("key", "gen", "k")
    cli("name", "publish", "--key", "k", f"/ipfs/{cid}")
    first = tmp_path / "first.ipns-record"
    first.write_bytes(cli("name", "get", "k").out)
    cli("name", "publish", "--key", "k", f"/ipfs/{cid}")
    r = cli("name", "put", "k", first, check=False)
    assert r.rc == EXIT_REFUSED and "not newer than the stored one" in r.err and len(r.err.splitlines()) == 1


def test_watch_service_survives_a_refused_sync(tmp_path: Path) -> None:
    """A watched mirror whose disk is unmounted: the refused sync is logged, the service keeps
    watching (it is not a failure for the host to restart) and syncs once the source is back."""
    import asyncio

    from ipmirror.config import WatchConfig
    from ipmirror.server.watch import Watcher

    calls: list[int] = []

    def sync() -> object:
        calls.append(1)
        if len(calls) == 1:
            raise Refused("mirror m: refused to publish: /srv/m is empty")
        return type("V", (), {"number": 1, "root": "bafy"})()

    w = Watcher("m", str(tmp_path), sync, WatchConfig(debounce=0.1), initial=True)  # type: ignore[arg-type]

    async def go() -> None:
        task = asyncio.create_task(w.run())
        await asyncio.sleep(0.5)
        (tmp_path / "new").write_bytes(b"x")  # a change: try again
        for _ in range(100):
            if w.syncs:
                break
            await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(go())
    assert len(calls) == 2 and w.syncs == 1
