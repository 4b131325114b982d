"""Repository access (issue #10, point 4): which commands create a repository, the node key made
by ``init``, and serving a repository read-only as a user who may not write it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from _cli import run
from test_cli import _readable_copy_of_ipmirror

NOT_CREATING = [
    ("repo", "stat"), ("repo", "verify"), ("repo", "gc"), ("pin", "ls"), ("key", "list"),
    ("cat", "bafkqaaa"), ("ls", "bafkqaaa"), ("get", "bafkqaaa"), ("block", "stat", "bafkqaaa"),
    ("name", "publish", "/ipfs/bafkqaaa"), ("name", "resolve"), ("mirror", "list"), ("config", "show"),
    ("key", "rm", "x"), ("dag", "export", "bafkqaaa"), ("serve", "--listen", "127.0.0.1:0"),
]


@pytest.mark.parametrize("args", NOT_CREATING, ids=" ".join)
def test_commands_that_create_nothing_need_a_repository(tmp_path: Path, args: tuple[str, ...]) -> None:
    missing = tmp_path / "mistyped"
    r = run(missing, *args, check=False, timeout=60)
    assert r.rc == 1, (r.rc, r.err)
    assert r.err == f"Error: no repository at {missing} (run `ipmirror init`)\n"
    assert not missing.exists()


@pytest.mark.parametrize("args", [("key", "gen", "k"), ("block", "put"), ("add", "-Q", "-")],
                         ids=" ".join)
def test_commands_that_put_things_in_create_the_repository(tmp_path: Path, args: tuple[str, ...]) -> None:
    repo = tmp_path / "new"
    run(repo, *args, input=b"data")
    assert (repo / "config.json").exists()
    assert "self" in run(repo, "key", "list").text.split()


def test_init_makes_the_node_key_so_name_publish_works(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    run(repo, "init")
    keys = run(repo, "key", "list", "-l").text.split()
    assert keys[1::2] == ["self"]
    r = run(repo, "name", "publish", "/ipfs/bafkqaaa")
    assert r.text == f"Published to {keys[0]}: /ipfs/bafkqaaa\n"
    run(repo, "init")  # again: the same key
    assert run(repo, "key", "list", "-l").text.split() == keys


_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
GROUP = 65534  # nobody's own group stands for the shared group of the README's recipe


def _share(repo: Path, group: int) -> None:
    """The README's recipe: the group may read everything but the private keys and write the
    lock files only."""
    for dirpath, _dirs, files in os.walk(repo):
        os.chown(dirpath, -1, group)
        os.chmod(dirpath, 0o2750)  # setgid: files made later belong to the group too
        for f in files:
            os.chown(os.path.join(dirpath, f), -1, group)
            os.chmod(os.path.join(dirpath, f), 0o640)
    os.chmod(repo / "keys", 0o700)
    for f in (repo / "keys").iterdir():
        os.chmod(f, 0o600)
    for lock in ("blocks/lock.mdb", "blocks/use.lock", "mirrors/lock.mdb"):
        os.chmod(repo / lock, 0o660)


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv")
def test_a_reader_serves_read_only_what_another_user_writes() -> None:
    top = Path(tempfile.mkdtemp(prefix="ipmirror-reader-"))  # outside root-only pytest dirs
    try:
        os.chmod(top, 0o755)
        python = os.path.realpath(sys.executable)
        if subprocess.run([*_NOBODY, python, "-c", "pass"], capture_output=True).returncode != 0:
            pytest.skip(f"{python} cannot be run by nobody")
        _readable_copy_of_ipmirror(top / "lib")
        repo, site, run_dir = top / "repo", top / "site", top / "run"
        run_dir.mkdir(mode=0o777)
        os.chmod(run_dir, 0o777)
        site.mkdir()
        (site / "a.txt").write_bytes(b"mirrored\n")
        run(repo, "init")
        run(repo, "config", "set", "server.control_socket", str(run_dir / "control.sock"))
        cid = run(repo, "add", "-Q", "-", input=b"written by the owner\n").text.strip()
        name = run(repo, "name", "publish", "-Q", f"/ipfs/{cid}").text.strip()
        run(repo, "mirror", "add", "site", site)
        run(repo, "mirror", "sync", "site", "--no-progress")
        _share(repo, GROUP)
        env = dict(os.environ, IPMIRROR_PATH=str(repo), HOME=str(run_dir), PYTHONPATH=str(top / "lib"),
                   PYTHONNOUSERSITE="1")
        env.pop("VIRTUAL_ENV", None)

        def as_nobody(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([*_NOBODY, python, "-m", "ipmirror", *args], capture_output=True,
                                  env=env, text=True, cwd=run_dir, timeout=60)

        p = as_nobody("cat", cid)
        assert p.returncode == 0 and p.stdout == "written by the owner\n", p.stderr
        p = as_nobody("add", "-Q", str(site / "a.txt"))  # writing is refused, in one line
        assert p.returncode == 1 and p.stderr.startswith("Error: ") and p.stderr.count("\n") == 1, p.stderr
        port_file = run_dir / "port"
        log = (run_dir / "serve.log").open("wb")
        srv = subprocess.Popen([*_NOBODY, python, "-m", "ipmirror", "serve", "--read-only", "--workers", "1",
                                "--listen", "127.0.0.1:0", "--port-file", str(port_file)],
                               env=env, cwd=run_dir, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while not port_file.exists():
                assert srv.poll() is None, (run_dir / "serve.log").read_text()
                assert time.monotonic() < deadline
                time.sleep(0.05)
            base = f"http://127.0.0.1:{int(port_file.read_text())}"

            def get(path: str) -> bytes:
                try:
                    with urllib.request.urlopen(base + path, timeout=10) as r:
                        body: bytes = r.read()
                        return body
                except OSError as e:  # an HTTP error or a timeout: show what the server said
                    log.flush()
                    raise AssertionError(f"{path}: {e}\n{(run_dir / 'serve.log').read_text()}") from None

            assert get(f"/ipfs/{cid}") == b"written by the owner\n"
            assert get(f"/ipns/{name}") == b"written by the owner\n"
            assert get("/ipns/site/a.txt") == b"mirrored\n"
            # the owner keeps writing while the reader serves
            new = run(repo, "add", "-Q", "-", input=b"added later\n").text.strip()
            assert get(f"/ipfs/{new}") == b"added later\n"
            run(repo, "name", "publish", f"/ipfs/{new}")  # a record written after the sharing
            assert get(f"/ipns/{name}") == b"added later\n"
        finally:
            srv.terminate()
            srv.wait(15)
            log.close()
        # without write access to the lock files: a clear one-line error, no traceback
        os.chmod(repo / "blocks" / "lock.mdb", 0o640)
        for args in (("cat", cid), ("serve", "--read-only", "--listen", "127.0.0.1:0")):
            p = as_nobody(*args)
            assert p.returncode == 1, (args, p.stderr)
            assert "Traceback" not in p.stderr and "internal error" not in p.stderr, p.stderr
            assert "Permission denied" in p.stderr and "lock.mdb" in p.stderr, p.stderr
    finally:
        shutil.rmtree(top)
