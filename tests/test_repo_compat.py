"""A repository written by an older ipmirror opens, verifies and serves unchanged.

``tests/data/repo-642dc8b.tar.gz`` is a tiny repository made by the code at commit 642dc8b (before
the store contract, the dag/ layer and the gateway split), with::

    ipmirror init; ipmirror add -Q --hidden site; ipmirror mirror add site …; ipmirror mirror sync site

``site`` holds ``hello.txt`` ("hello\\n"), ``sub/big.bin`` (bytes 0..255 repeated to 2 MiB: two
1 MiB raw leaves) and a symlink ``link -> hello.txt``. The archive keeps LMDB's sparse data file
sparse (tar -S), so it is a few KiB.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from _serve import ipns_name, run_cli, serve

ARCHIVE = Path(__file__).parent / "data" / "repo-642dc8b.tar.gz"
ROOT = "bafybeihueyhe5ysk3v5qemmmybveex6kfgokeqh5n6slbavge4vwugdxt4"
BIG = bytes(range(256)) * 8192


@pytest.fixture
def old_repo(tmp_path: Path) -> Path:
    with tarfile.open(ARCHIVE) as tar:
        tar.extractall(tmp_path, filter="tar")
    return tmp_path / "repo"


def test_old_repository_opens_and_verifies(old_repo: Path) -> None:
    assert "ok" in run_cli(old_repo, "repo", "verify")
    assert run_cli(old_repo, "cat", f"{ROOT}/hello.txt") == "hello\n"
    pins = run_cli(old_repo, "pin", "ls")
    assert ROOT in pins
    log = run_cli(old_repo, "mirror", "log", "site")
    assert ROOT in log and "2 files" in log
    listing = run_cli(old_repo, "ls", ROOT)
    assert {"hello.txt", "link", "sub/"} <= {line.split()[-1] for line in listing.splitlines()}


def test_old_repository_serves(old_repo: Path, tmp_path: Path) -> None:
    name = ipns_name(old_repo, "site")
    run_cli(old_repo, "name", "republish")  # the old record may have expired since it was made
    with serve(old_repo, tmp_path, "--workers", "1") as srv:
        r = srv.request("GET", f"/ipfs/{ROOT}/sub/big.bin")
        assert r.status == 200 and r.body == BIG
        r = srv.request("GET", f"/ipfs/{ROOT}/hello.txt?format=raw")
        assert r.status == 200 and r.body == b"hello\n"
        r = srv.request("GET", "/ipns/site/hello.txt")
        assert r.status == 200 and r.body == b"hello\n"
        r = srv.request("GET", f"/ipns/{name}/hello.txt")
        assert r.status == 200 and r.body == b"hello\n"

