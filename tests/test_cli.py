"""The command line as users drive it: output formats, exit codes, and bad input."""

from __future__ import annotations

import importlib.metadata
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

import ipmirror
from conftest import CLI


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    t = tmp_path / "tree"
    (t / "sub" / "deeper").mkdir(parents=True)
    (t / "empty").mkdir()
    (t / "a.txt").write_bytes(b"hello\n")
    (t / "sub" / "b.bin").write_bytes(os.urandom(3 << 20))
    (t / "sub" / "deeper" / "c").write_bytes(b"")
    (t / ".hidden").write_bytes(b"secret")
    (t / "link").symlink_to("a.txt")
    return t


def test_add_output_like_kubo(cli: CLI, tree: Path) -> None:
    out = cli("add", "-r", tree).text.splitlines()
    assert all(line.startswith("added ") for line in out)
    paths = [line.split(" ", 2)[2] for line in out]
    assert paths[-1] == "tree" and "tree/a.txt" in paths and "tree/sub/deeper/c" in paths
    assert "tree/empty" in paths and "tree/link" in paths
    assert not any(".hidden" in p for p in paths)  # hidden files need --hidden
    root = out[-1].split()[1]
    assert cli("add", "-Q", tree).text.strip() == root
    quiet = cli("add", "-q", tree).text.split()
    assert quiet[-1] == root and len(quiet) == len(out)
    js = [json.loads(line) for line in cli("add", "--json", tree).text.splitlines()]
    assert js[-1]["Name"] == "tree" and js[-1]["Hash"] == root
    assert root != cli("add", "-Q", "--hidden", tree).text.strip()


def test_add_flags(cli: CLI, tree: Path) -> None:
    f = tree / "a.txt"
    assert cli("add", "-Q", "--profile", "unixfs-v0-2015", f).text.strip() == \
        "QmZULkCELmmk5XNfCgTnCyFgAVxBRBXyDHGGMVoLFLiXEN"
    assert cli("add", "-Q", "--profile", "unixfs-v0-2015", "--cid-version", "1", f).text.startswith("bafk")
    v1 = cli("add", "-Q", "--profile", "unixfs-v0-2015", "--cid-version=1", "--raw-leaves=false", f)
    assert v1.text.startswith("bafy")
    assert cli("add", "-Q", "--inline", f).text.strip().startswith("bafkqa")  # identity CID
    wrapped = cli("add", "-w", "-Q", f).text.strip()
    assert cli("ls", wrapped).text.split()[-1] == "a.txt"
    assert cli("add", "-Q", "--chunker", "size-1000", "--max-links", "3", "--trickle", tree / "sub" / "b.bin")
    r = cli("add", "--chunker", "size-0", f, check=False)
    assert r.rc == 1 and r.err.startswith("Error: ") and len(r.err.splitlines()) == 1


def test_cat_get_ls(cli: CLI, tree: Path, tmp_path: Path) -> None:
    root = cli("add", "-Q", "--hidden", tree).text.strip()
    data = (tree / "sub" / "b.bin").read_bytes()
    assert cli("cat", f"{root}/sub/b.bin").out == data
    assert cli("cat", f"/ipfs/{root}/sub/b.bin", "--offset", "1000000", "--length", "5").out == \
        data[1_000_000:1_000_005]
    ls = cli("ls", root).text.splitlines()
    names = [line.split()[-1] for line in ls]
    assert names == [".hidden", "a.txt", "empty/", "link", "sub/"]
    assert json.loads(cli("ls", "--json", root).text)["Objects"][0]["Links"][1]["Size"] == 6
    out = tmp_path / "out"
    cli("get", root, "-o", out)
    assert (out / "sub" / "b.bin").read_bytes() == data
    assert os.readlink(out / "link") == "a.txt" and (out / "empty").is_dir()
    r = cli("get", root, "-o", out, check=False)
    assert r.rc == 1 and "exists" in r.err
    shutil.rmtree(out / "sub")
    cli("get", root, "-o", out, "--force")
    assert (out / "sub" / "b.bin").read_bytes() == data


def test_pins_and_gc(cli: CLI, tree: Path) -> None:
    kept = cli("add", "-Q", tree / "a.txt").text.strip()
    gone = cli("add", "-Q", "--pin=false", tree / "sub" / "b.bin").text.strip()
    assert kept in cli("pin", "ls").text and gone not in cli("pin", "ls").text
    cli("repo", "gc")
    assert cli("cat", kept).out == b"hello\n"
    r = cli("cat", gone, check=False)
    assert r.rc == 1 and gone in r.err and "not in the store" in r.err
    cli("pin", "rm", kept)
    cli("repo", "gc")
    assert json.loads(cli("repo", "stat", "--json").text)["NumObjects"] == 0
    r = cli("pin", "add", kept, check=False)
    assert r.rc == 1 and "not in the store" in r.err


def test_pin_rm_of_a_mirror_root(cli: CLI, tree: Path) -> None:
    """A mirror's version roots are the mirror's pins: `pin rm` says so instead of dropping them;
    a user's own pin of the same root comes and goes independently."""
    cli("mirror", "add", "m", tree)
    root = cli("mirror", "sync", "m", "--json").text
    root = json.loads(root)["root"]
    r = cli("pin", "rm", root, check=False)
    assert r.rc == 1 and "pinned by mirrors" in r.err and "mirror keep" in r.err
    cli("pin", "add", root)
    assert "still pinned by mirrors" in cli("pin", "rm", root).text
    assert root in cli("pin", "ls").text


def test_block_commands(cli: CLI) -> None:
    cid = cli("block", "put", input=b"some bytes").text.strip()
    assert cid.startswith("bafkrei")
    assert cli("block", "get", cid).out == b"some bytes"
    assert "Size: 10" in cli("block", "stat", cid).text
    cli("block", "rm", cid)
    assert cli("block", "get", cid, check=False).rc == 1
    r = cli("block", "put", "--cid-codec", "dag-pb", input=b"\xff\xff", check=False)
    assert r.rc == 1 and "dag-pb" in r.err


@pytest.mark.parametrize("args", [
    ("cat", "not-a-cid"), ("cat", "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzd"),
    ("ls", "QmInvalid"), ("get", ""), ("add", "/nonexistent/path"), ("dag", "import", "/nonexistent.car"),
    ("cat", "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku/x"),
])
def test_bad_input_is_one_line(cli: CLI, args: tuple[str, ...]) -> None:
    r = cli(*args, check=False)
    assert r.rc == 1, r.err
    assert r.err.startswith("Error: ") and len(r.err.strip().splitlines()) == 1
    assert "Traceback" not in r.err


def test_usage_errors_exit_2(cli: CLI) -> None:
    assert cli("frobnicate", check=False).rc == 2
    assert cli("add", "--chunker", check=False).rc == 2  # (no PATH reads stdin: test_cli_edges.py)
    assert cli("add", "--pin=maybe", ".", check=False).rc == 1


def test_special_files_are_skipped_with_a_warning(cli: CLI, tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    (d / "f").write_bytes(b"x")
    os.mkfifo(d / "fifo")
    r = cli("add", "-Q", d)
    assert "fifo" in r.err and "skipped" in r.err
    assert r.text.strip() == cli("add", "-Q", "--only-hash", d).text.strip()
    (d / "fifo").unlink()
    assert r.text.strip() == cli("add", "-Q", "--only-hash", d).text.strip()


_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def _readable_copy_of_ipmirror(lib: Path) -> None:
    """Copy ipmirror and the distributions it needs at run time to ``lib``, readable by everyone:
    the checkout (and a venv in it) may sit in a directory that nobody cannot enter."""
    shutil.copytree(Path(ipmirror.__file__).parent, lib / "ipmirror",
                    ignore=shutil.ignore_patterns("__pycache__"))
    todo, seen = ["ipmirror"], {"ipmirror"}
    while todo:
        for req in importlib.metadata.requires(todo.pop()) or []:
            m = re.match(r"[A-Za-z0-9._-]+", req)
            name = m.group(0).lower().replace("_", "-") if m else ""
            if not name or "extra ==" in req or name in seen:
                continue
            seen.add(name)
            try:
                dist = importlib.metadata.distribution(name)
            except importlib.metadata.PackageNotFoundError:
                continue  # its marker does not apply here (e.g. a backport for older Pythons)
            todo.append(name)
            for f in dist.files or []:
                src = Path(str(dist.locate_file(f)))
                if ".." in f.parts or not src.is_file():
                    continue  # scripts installed beside the interpreter
                (lib / f).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, lib / f)
    for dirpath, _dirs, files in os.walk(lib):
        os.chmod(dirpath, 0o755)
        for f in files:
            os.chmod(os.path.join(dirpath, f), 0o755 if f.endswith(".so") else 0o644)


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv")
def test_unreadable_file_fails_clearly() -> None:
    top = Path(tempfile.mkdtemp(prefix="ipmirror-nobody-"))  # outside root-only pytest dirs
    try:
        os.chmod(top, 0o777)
        python = os.path.realpath(sys.executable)  # a venv's python is a link into its base install
        if subprocess.run([*_NOBODY, python, "-c", "pass"], capture_output=True).returncode != 0:
            pytest.skip(f"{python} cannot be run by nobody")
        _readable_copy_of_ipmirror(top / "lib")
        d = top / "d"
        d.mkdir()
        (d / "ok").write_bytes(b"ok")
        (d / "secret").write_bytes(b"no")
        os.chmod(d / "secret", 0)
        env = dict(os.environ, IPMIRROR_PATH=str(top / "nobody-repo"), HOME=str(top),
                   PYTHONPATH=str(top / "lib"), PYTHONNOUSERSITE="1")
        env.pop("VIRTUAL_ENV", None)
        cmd = [*_NOBODY, python, "-m", "ipmirror", "add", "-Q", str(d)]
        p = subprocess.run(cmd, capture_output=True, env=env, text=True, cwd=top)
        assert p.returncode == 1 and "secret" in p.stderr and "Permission denied" in p.stderr, p.stderr
        assert "Traceback" not in p.stderr and len(p.stderr.splitlines()) == 1
        env["IPMIRROR_PATH"] = "/root/ipmirror-forbidden"
        p = subprocess.run(cmd, capture_output=True, env=env, text=True, cwd=top)
        assert p.returncode == 1 and p.stderr.startswith("Error: cannot") and "Traceback" not in p.stderr
    finally:
        shutil.rmtree(top)


def test_file_changing_during_add_is_never_recorded_wrong(cli: CLI, tmp_path: Path) -> None:
    """A file rewritten in place while it is added (same size, mtime put back each time, as a
    careless rsync or an mmap writer would) is either refused or recorded as one whole state."""
    size = 24 << 20
    states = [os.urandom(size), os.urandom(size)]
    whole = []
    for i, data in enumerate(states):
        (tmp_path / f"state{i}").write_bytes(data)
        whole.append(cli("add", "-Q", "--only-hash", tmp_path / f"state{i}").text.strip())
    f = tmp_path / "changing"
    f.write_bytes(states[0])
    mtime = f.stat().st_mtime_ns
    stop = threading.Event()
    rewrites = [0]

    def rewrite() -> None:
        fd = os.open(f, os.O_WRONLY)
        try:
            while not stop.is_set():
                data = states[(rewrites[0] + 1) % 2]
                for off in range(0, size, 1 << 20):  # in pieces: a reader can see both states
                    os.pwrite(fd, data[off:off + (1 << 20)], off)
                os.utime(f, ns=(mtime, mtime))
                rewrites[0] += 1
                time.sleep(0.03 + 0.1 * random.random())  # quiet spells, in which a read may end
        finally:
            os.close(fd)

    t = threading.Thread(target=rewrite)
    t.start()
    try:
        r = cli("add", "-Q", f, check=False)
    finally:
        stop.set()
        t.join()
    assert rewrites[0] >= 2, "the file was not rewritten while it was added"
    assert f.stat().st_size == size and f.stat().st_mtime_ns == mtime
    assert "Traceback" not in r.err
    if r.rc == 0:
        cid = r.text.strip()
        assert cid in whole, f"{cid} is neither whole state ({whole}): a torn read was recorded"
        assert cli("cat", cid).out in states
    else:
        assert r.rc == 1 and r.err.splitlines()[-1].startswith("Error: ") and "kept changing" in r.err


def test_vanishing_files_during_add(cli: CLI, tmp_path: Path) -> None:
    """Files deleted while their directory is added: each one is either in the result whole, or
    skipped with a warning (gone before it was looked at), or the add fails with one line naming
    it (gone before it was opened). What is recorded is exactly the files it lists."""
    d = tmp_path / "d"
    d.mkdir()
    n = 3000
    names = {f"f{i}" for i in range(n)}
    for name in names:
        (d / name).write_bytes(b"x" * 100)
    stop = threading.Event()
    removed = [0]

    def remove() -> None:
        for i in reversed(range(n)):
            if stop.is_set():
                return
            (d / f"f{i}").unlink()
            removed[0] += 1

    t = threading.Thread(target=remove)
    t.start()
    try:
        r = cli("add", "-Q", d, check=False)
    finally:
        stop.set()
        t.join()
    assert removed[0] > 0, "nothing was removed during the add"
    assert "Traceback" not in r.err
    lines = r.err.splitlines()
    warned = set()
    for line in lines[:-1] if r.rc else lines:
        path = line.removeprefix("ipmirror: warning: ").removesuffix(": vanished during add, skipped")
        assert path != line and line.startswith("ipmirror: warning: ") and ":" not in path, line
        warned.add(os.path.basename(path))
    assert warned <= names
    if r.rc != 0:
        assert r.rc == 1 and lines[-1].startswith("Error: ") and lines[-1].endswith(": vanished during add")
    else:
        root = r.text.strip()
        listed = {line.split()[-1] for line in cli("ls", root).text.splitlines()}
        assert listed <= names and not listed & warned
        again = tmp_path / "again" / "d"  # the same names, all present: the same directory node
        again.mkdir(parents=True)
        for name in listed:
            (again / name).write_bytes(b"x" * 100)
        assert cli("add", "-Q", "--only-hash", again).text.strip() == root
    assert cli("repo", "verify").rc == 0


def test_gc_compact_gives_space_back(cli: CLI, repo_path: Path, tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_bytes(os.urandom(20 << 20))
    cli("add", "-Q", "--pin=false", big)
    kept = cli("add", "-Q", big)
    data = repo_path / "blocks" / "data.mdb"
    used = data.stat().st_blocks * 512
    cli("pin", "rm", kept.text.strip())
    # another process holding the repository open blocks compaction, cleanly
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from ipmirror.node import Repo; "
                               f"r = Repo.open(__import__('pathlib').Path({str(repo_path)!r})); "
                               "print('open', flush=True); time.sleep(30)"], stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"open"
        r = cli("repo", "gc", "--compact", check=False)
        assert r.rc == 1 and "another process" in r.err
    finally:
        holder.kill()
        holder.communicate()
    assert "given back" in cli("repo", "gc", "--compact").text
    assert data.stat().st_blocks * 512 < used // 4
    assert cli("repo", "verify").rc == 0
    assert cli("add", "-Q", big).text.strip() == kept.text.strip()


def test_every_boolean_flag_takes_kubo_values(cli: CLI, tree: Path) -> None:
    """``--x=true|false`` works for every boolean flag, not only those of ``add``."""
    cli("mirror", "add", "m", tree, "--nocopy=true", "--hidden=false")
    assert json.loads(cli("mirror", "list", "--json").text)[0]["Nocopy"] is True
    assert cli("block", "put", "--pin=false", input=b"x").text.startswith("bafk")
    r = cli("mirror", "add", "m2", tree, "--nocopy=perhaps", check=False)
    assert r.rc == 1 and "--nocopy takes true or false" in r.err
