"""``ipmirror mount`` on a real FUSE mount: files, directories, HAMTs, symlinks, metadata, real
clients (diff, rsync, find, pip, apt) through it, a sync under an open file, EROFS, EIO, a killed
mount cleaned up.

One mount process serves the module (started in the foreground, stopped with SIGTERM at the end,
which must unmount cleanly). Skips only when the machine has no FUSE (/dev/fuse, fusermount3) or
mfusepy is missing; ``.ci/run`` installs fuse3 and the test extra brings mfusepy. The HAMT
directory has 20,000 entries to keep CI short (bench/mount.py walks 100,000).
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from _serve import cli_env, run_cli
from ipmirror.codec.cid import CID
from ipmirror.mount.control import READAHEAD_KB, mount_of
from ipmirror.mount.tree import cid_ino
from ipmirror.unixfs import exporter as ex

HAMT_ENTRIES = 20_000


def _need_fuse() -> None:
    if not os.path.exists("/dev/fuse"):
        pytest.skip("no /dev/fuse on this machine")
    if shutil.which("fusermount3") is None:
        pytest.skip("fusermount3 is not installed (Debian: fuse3; .ci/run installs it)")
    try:
        import mfusepy  # noqa: F401
    except (ImportError, OSError) as e:
        pytest.skip(f"mfusepy or libfuse 3 is missing: {e}")


def wait_mounted(mp: Path, proc: subprocess.Popen[bytes] | None = None, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = mount_of(str(mp))
        if m is not None and m.fstype == "fuse.ipmirror":
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the mount process exited with {proc.returncode}")
        time.sleep(0.05)
    raise AssertionError(f"{mp} was not mounted within {timeout} s")


def start_mount(repo: Path, mp: Path, log: Path) -> subprocess.Popen[bytes]:
    mp.mkdir(exist_ok=True)
    with open(log, "ab") as err:
        proc = subprocess.Popen([sys.executable, "-m", "ipmirror", "mount", str(mp)], env=cli_env(repo),
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    wait_mounted(mp, proc)
    return proc


def stop_mount(proc: subprocess.Popen[bytes], mp: Path) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=30)
    finally:
        if mount_of(str(mp)) is not None:
            subprocess.run(["fusermount3", "-u", "-z", str(mp)], check=False)


def sync(repo: Path, name: str) -> str:
    out = run_cli(repo, "mirror", "sync", name)
    return out.split("\n", 1)[0].rsplit(" ", 1)[-1]


@dataclass
class World:
    tmp: Path
    repo: Path
    mp: Path
    src: Path
    log: Path
    hamt: str  # root CID of the 20k-entry directory
    meta: str  # root CID of a tree added with --preserve-mode --preserve-mtime
    meta_src: Path
    proc: subprocess.Popen[bytes]

    def ipns(self, name: str) -> Path:
        return self.mp / "ipns" / name


def _tree(src: Path, rng: random.Random) -> None:
    (src / "sub/deeper").mkdir(parents=True)
    (src / "a.txt").write_text("hello\n")
    (src / "same.txt").write_text("hello\n")  # the same content: the same inode
    (src / "empty").write_bytes(b"")
    (src / "name with space.txt").write_text("spaces\n")
    (src / "sub/big.bin").write_bytes(rng.randbytes(3 * (1 << 20) + 12345))  # four 1 MiB leaves
    (src / "sub/deeper/x.txt").write_text("x" * 5000)
    (src / "link").symlink_to("a.txt")
    (src / "dirlink").symlink_to("sub")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    _need_fuse()
    tmp = tmp_path_factory.mktemp("mount")
    repo, src, mp = tmp / "repo", tmp / "src", tmp / "mnt"
    rng = random.Random(19)
    src.mkdir()
    _tree(src, rng)
    run_cli(repo, "init")
    run_cli(repo, "mirror", "add", "m", src)
    sync(repo, "m")
    big = tmp / "hamt"
    big.mkdir()
    for i in range(HAMT_ENTRIES):
        (big / f"f{i:05d}").write_bytes(b"%d\n" % i)
    hamt = run_cli(repo, "add", "-Q", big).strip()
    meta_src = tmp / "meta"
    (meta_src / "d").mkdir(parents=True)
    (meta_src / "d/run.sh").write_text("#!/bin/sh\n")
    os.chmod(meta_src / "d/run.sh", 0o751)
    os.chmod(meta_src / "d", 0o710)
    os.utime(meta_src / "d/run.sh", ns=(1_600_000_000_123_456_789, 1_600_000_000_123_456_789))
    meta = run_cli(repo, "add", "-Q", "--preserve-mode", "--preserve-mtime", meta_src).strip()
    log = tmp / "mount.log"
    proc = start_mount(repo, mp, log)
    w = World(tmp, repo, mp, src, log, hamt, meta, meta_src, proc)
    yield w
    rc = stop_mount(proc, mp)
    assert rc == 0, log.read_text()[-3000:]
    assert mount_of(str(mp)) is None  # SIGTERM unmounted it
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]


def test_layout_and_names(world: World) -> None:
    assert sorted(os.listdir(world.mp)) == ["ipfs", "ipns", "mirrors"]
    assert os.listdir(world.mp / "ipfs") == []
    assert "m" in os.listdir(world.mp / "ipns")
    versions = os.listdir(world.mp / "mirrors/m")
    assert versions and all(v.isdigit() for v in versions)
    target = os.readlink(world.ipns("m"))
    assert target.startswith("../ipfs/bafy")
    assert os.readlink(world.mp / "mirrors/m" / max(versions, key=int)) == "../" + target
    with pytest.raises(FileNotFoundError):
        os.stat(world.mp / "ipns/no-such-mirror")
    with pytest.raises(FileNotFoundError):
        os.stat(world.mp / "ipfs/not-a-cid")


def test_diff_r_against_the_original(world: World) -> None:
    p = subprocess.run(["diff", "-r", "--no-dereference", f"{world.ipns('m')}/", str(world.src)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr


def test_random_preads(world: World) -> None:
    original = (world.src / "sub/big.bin").read_bytes()
    rng = random.Random(7)
    fd = os.open(world.ipns("m") / "sub/big.bin", os.O_RDONLY)
    try:
        assert os.fstat(fd).st_size == len(original)
        for _ in range(300):
            off = rng.randrange(len(original) + 10)
            n = rng.choice([1, 100, 4096, 65536, 1 << 20, 3 << 20])
            assert os.pread(fd, n, off) == original[off:off + n], (off, n)
    finally:
        os.close(fd)


def test_hamt_directory_listing_streams(world: World) -> None:
    d = world.mp / "ipfs" / world.hamt
    root = ex.decode_node(CID.parse(world.hamt),
                          subprocess.run([sys.executable, "-m", "ipmirror", "block", "get", world.hamt],
                                         env=cli_env(world.repo), capture_output=True, check=True).stdout)
    assert root.kind == "hamt-sharded-directory"
    names = os.listdir(d)
    assert len(names) == HAMT_ENTRIES and set(names) == {f"f{i:05d}" for i in range(HAMT_ENTRIES)}
    found = subprocess.run(["find", str(d)], capture_output=True, text=True, timeout=120, check=True)
    assert len(found.stdout.splitlines()) == HAMT_ENTRIES + 1
    ls = subprocess.run(["ls", "-l", str(d)], capture_output=True, text=True, timeout=120, check=True)
    assert len(ls.stdout.splitlines()) == HAMT_ENTRIES + 1  # and the "total" line
    assert (d / "f12345").read_text() == "12345\n"


def test_symlinks(world: World) -> None:
    m = world.ipns("m")
    assert os.readlink(m / "link") == "a.txt"
    assert (m / "link").read_text() == "hello\n"
    assert os.readlink(m / "dirlink") == "sub"
    assert stat.S_ISLNK(os.lstat(m / "link").st_mode)
    assert (m / "dirlink/deeper/x.txt").read_text() == "x" * 5000


def test_modes_mtimes_and_inodes(world: World) -> None:
    m = world.ipns("m")
    st = os.stat(m / "a.txt")
    assert stat.S_IMODE(st.st_mode) == 0o444 and st.st_mtime == 0  # nothing recorded: the defaults
    assert stat.S_IMODE(os.stat(m / "sub").st_mode) == 0o555
    assert st.st_ino == os.stat(m / "same.txt").st_ino  # one content, one inode
    assert st.st_ino != os.stat(m / "sub/deeper/x.txt").st_ino
    d = world.mp / "ipfs" / world.meta / "d"
    f = d / "run.sh"
    assert stat.S_IMODE(os.stat(f).st_mode) == 0o751
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o710
    assert os.stat(f).st_mtime_ns == 1_600_000_000_123_456_789
    big = CID.parse(os.readlink(m)[len("../ipfs/"):])
    assert os.stat(world.mp / "ipfs" / str(big)).st_ino == cid_ino(big)


def test_statfs_and_df(world: World) -> None:
    sv = os.statvfs(world.mp)
    assert sv.f_blocks > 0 and sv.f_bavail == 0 and sv.f_flag & os.ST_RDONLY
    p = subprocess.run(["df", "-P", str(world.mp)], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and "ipmirror" in p.stdout, p.stdout + p.stderr
    info = mount_of(str(world.mp))
    assert info is not None
    if os.geteuid() == 0:  # the mount widened its kernel read-ahead window (root only)
        ra = Path(f"/sys/class/bdi/{info.device}/read_ahead_kb")
        assert ra.read_text().strip() == str(READAHEAD_KB)


def test_rsync_reproduces_the_tree(world: World, tmp_path: Path) -> None:
    if shutil.which("rsync") is None:
        pytest.skip("rsync is not installed (.ci/run installs it)")
    out = tmp_path / "out"
    subprocess.run(["rsync", "-a", f"{world.ipns('m')}/", f"{out}/"], check=True, timeout=120)
    p = subprocess.run(["diff", "-r", "--no-dereference", str(out), str(world.src)], capture_output=True,
                       text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    assert os.readlink(out / "link") == "a.txt"


def test_writes_are_erofs(world: World) -> None:
    m = world.ipns("m")
    for attempt in (lambda: open(m / "new.txt", "w"), lambda: open(m / "a.txt", "r+b"),  # noqa: SIM115
                    lambda: os.mkdir(m / "d"), lambda: os.unlink(m / "a.txt"),
                    lambda: os.chmod(m / "a.txt", 0o666), lambda: os.rename(m / "a.txt", m / "b")):
        with pytest.raises(OSError) as e:
            attempt()
        assert e.value.errno == errno.EROFS


def test_missing_and_damaged_blocks_are_eio(world: World) -> None:
    from ipmirror.store.lmdb_store import LmdbStore

    data = random.Random(3).randbytes(5 << 20)
    (world.tmp / "victim").write_bytes(data)
    root = run_cli(world.repo, "add", "-Q", world.tmp / "victim").strip()
    leaves = [line.split()[0] for line in run_cli(world.repo, "ls", root).splitlines()]
    assert len(leaves) == 5
    store = LmdbStore.open(world.repo / "blocks")
    try:
        assert store.delete(CID.parse(leaves[1]))  # missing: bytes [1 MiB, 2 MiB)
        damaged = CID.parse(leaves[3])
        good = store.get(damaged)
        store.delete(damaged)
        with store.session() as s:  # damaged: other bytes under the block's key
            s.put(damaged, bytes([good[0] ^ 1]) + good[1:])
    finally:
        store.close()
    f = world.mp / "ipfs" / root
    fd = os.open(f, os.O_RDONLY)
    try:
        assert os.pread(fd, 1000, 0) == data[:1000]
        for off in (1 << 20, 3 << 20):
            t0 = time.monotonic()
            with pytest.raises(OSError) as e:
                os.pread(fd, 4096, off + 10)
            assert e.value.errno == errno.EIO and time.monotonic() - t0 < 10
        assert os.pread(fd, 1000, 4 << 20) == data[4 << 20:(4 << 20) + 1000]
    finally:
        os.close(fd)
    log = world.log.read_text()
    assert f"block {leaves[1]} is not in the store" in log
    assert f"block {leaves[3]} does not match its CID" in log


def test_a_sync_under_an_open_file(world: World) -> None:
    src = world.tmp / "moving"
    src.mkdir()
    old = b"old bytes " * 100_000
    (src / "f.bin").write_bytes(old)
    run_cli(world.repo, "mirror", "add", "moving", src)
    first = sync(world.repo, "moving")
    link = world.ipns("moving")
    deadline = time.monotonic() + 5  # a name that did not exist may be cached as absent for 1 s
    while not link.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    with open(link / "f.bin", "rb") as reader:
        head = reader.read(1000)
        new = b"NEW BYTES! " * 120_000
        (src / "f.bin").write_bytes(new)
        second = sync(world.repo, "moving")
        assert second != first
        assert os.readlink(link) == f"../ipfs/{second}"  # the next lookup sees the new version
        assert (link / "f.bin").read_bytes() == new
        assert head + reader.read() == old  # the open file keeps its version
    assert sorted(os.listdir(world.mp / "mirrors/moving"), key=int) == ["1", "2"]
    assert (world.mp / "mirrors/moving/1/f.bin").read_bytes() == old


def test_a_killed_mount_is_cleaned_up(world: World) -> None:
    mp = world.tmp / "mnt2"
    log = world.tmp / "mount2.log"
    proc = start_mount(world.repo, mp, log)
    ino = os.stat(mp / "ipns/m/a.txt").st_ino
    proc.kill()
    proc.wait(timeout=30)
    with pytest.raises(OSError) as e:
        os.listdir(mp)
    assert e.value.errno == errno.ENOTCONN  # what a killed mount leaves behind
    p = subprocess.run([sys.executable, "-m", "ipmirror", "mount", "--daemon", str(mp)],
                       env=cli_env(world.repo), capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "stale mount" in p.stderr
    try:
        assert os.stat(mp / "ipns/m/a.txt").st_ino == ino  # inode numbers survive a remount
        assert (mp / "ipns/m/a.txt").read_text() == "hello\n"
    finally:
        run_cli(world.repo, "unmount", mp)
    assert mount_of(str(mp)) is None


def test_pip_installs_from_the_mount(world: World, tmp_path: Path) -> None:
    from test_clients import fresh_venv, make_wheel, pip

    tree = world.tmp / "pypi"
    d = tree / "simple/ipm-mounted"
    d.mkdir(parents=True)
    whl = make_wheel(d, "ipm-mounted", "2.0", [], "WHERE = 'mount'\n")
    digest = hashlib.sha256(whl.read_bytes()).hexdigest()
    (d / "index.html").write_text(f'<html><body><a href="{whl.name}#sha256={digest}">{whl.name}</a>'
                                  "</body></html>\n")
    (tree / "simple/index.html").write_text('<html><body><a href="ipm-mounted/">ipm-mounted</a>'
                                            "</body></html>\n")
    run_cli(world.repo, "mirror", "add", "pypi", tree)
    sync(world.repo, "pypi")
    index = f"file://{world.ipns('pypi')}/simple/"
    deadline = time.monotonic() + 5
    while not world.ipns("pypi").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    python = fresh_venv(tmp_path / "venv")
    p = pip(python, "--index-url", index, "ipm-mounted")
    assert "Successfully installed ipm-mounted-2.0" in p.stdout, p.stdout
    out = subprocess.run([str(python), "-c", "import ipm_mounted; print(ipm_mounted.WHERE)"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "mount"


def test_apt_reads_a_file_source_on_the_mount(world: World, tmp_path: Path) -> None:
    from test_clients import _deb, apt, client_env, need, run

    need("apt-get", "dpkg-deb", "apt-ftparchive", "dpkg")
    tree = world.tmp / "debian"
    pool = tree / "pool/main"
    pool.mkdir(parents=True)
    deb = _deb(world.tmp / "deb-build", pool, "ipm-mounted").read_bytes()
    env = client_env()
    arch = run(["dpkg", "--print-architecture"], env=env).stdout.strip()
    packages = run(["apt-ftparchive", "packages", "pool"], env=env, cwd=tree).stdout
    index = tree / f"dists/stable/main/binary-{arch}"
    index.mkdir(parents=True)
    (index / "Packages").write_text(packages)
    (index / "Packages.gz").write_bytes(gzip.compress(packages.encode(), mtime=0))
    release = run(["apt-ftparchive", "-o", "APT::FTPArchive::Release::Suite=stable",
                   "-o", f"APT::FTPArchive::Release::Architectures={arch}",
                   "-o", "APT::FTPArchive::Release::Components=main", "release", "dists/stable"],
                  env=env, cwd=tree).stdout
    (tree / "dists/stable/Release").write_text(release)
    run_cli(world.repo, "mirror", "add", "debian", tree)
    sync(world.repo, "debian")
    deadline = time.monotonic() + 5
    while not world.ipns("debian").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    cmd, aenv = apt(tmp_path / "apt", f"deb [trusted=yes] file:{world.ipns('debian')} stable main")
    p = run([*cmd, "update"], env=aenv)
    assert "Err" not in p.stdout, p.stdout
    out = tmp_path / "downloads"
    out.mkdir()
    run([*cmd, "download", "ipm-mounted"], env=aenv, cwd=out)
    assert (out / "ipm-mounted_1.0_all.deb").read_bytes() == deb


def test_mount_without_mfusepy_says_how_to_get_it(tmp_path: Path) -> None:
    code = ("import sys; sys.modules['mfusepy'] = None\n"
            "from ipmirror.cli.main import main\nsys.exit(main(['mount', sys.argv[1]]))")
    p = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=cli_env(tmp_path / "repo"),
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1
    assert p.stderr.strip().count("\n") == 0 and "pip install 'ipmirror[mount]'" in p.stderr, p.stderr


def test_unmount_of_a_plain_directory_is_one_line(tmp_path: Path) -> None:
    p = subprocess.run([sys.executable, "-m", "ipmirror", "unmount", str(tmp_path)],
                       env=cli_env(tmp_path / "repo"), capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and p.stderr.strip() == f"Error: {tmp_path} is not a mount point"
