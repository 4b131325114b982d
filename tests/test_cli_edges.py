"""CLI rough edges of issue #10 (point 6), each as found: /ipns/ paths in cat/get/ls, ``add``
from standard input, a malformed CIDv0, ``get -o`` into a missing directory, paths that are no
content paths, and ``key rm`` checking every name before removing any."""

from __future__ import annotations

import os
from pathlib import Path

from _cli import CLI


def _one_line_error(r: object, *parts: str) -> None:
    rc, err = r.rc, r.err  # type: ignore[attr-defined]
    assert rc == 1, (rc, err)
    assert err.startswith("Error: ") and err.count("\n") == 1 and "internal error" not in err, err
    for p in parts:
        assert p in err, err


def test_ipns_paths_in_cat_get_ls(cli: CLI, tmp_path: Path) -> None:
    d = tmp_path / "site"
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "a.txt").write_bytes(b"through a name\n")
    root = cli("add", "-Q", d).text.strip()
    cli("init")
    name = cli("name", "publish", "-Q", f"/ipfs/{root}").text.strip()
    for path in (f"/ipns/{name}/sub/a.txt", f"ipns://{name}/sub/a.txt", "/ipns/self/sub/a.txt"):
        assert cli("cat", path).out == b"through a name\n", path
    assert "a.txt" in cli("ls", f"/ipns/{name}/sub").text
    out = tmp_path / "out"
    out.mkdir()
    r = cli("get", f"/ipns/{name}/sub", "-o", out / "x")
    assert (out / "x" / "a.txt").read_bytes() == b"through a name\n", r.err
    os.chdir(out)  # the default output name is the last name of the path typed, as in Kubo
    try:
        cli("get", f"/ipns/{name}/sub/a.txt")
        assert (out / "a.txt").read_bytes() == b"through a name\n"
    finally:
        os.chdir(tmp_path)
    # a mirror's name resolves too
    cli("mirror", "add", "site", d)
    cli("mirror", "sync", "site", "--no-progress")
    assert cli("cat", "/ipns/site/sub/a.txt").out == b"through a name\n"
    _one_line_error(cli("cat", "/ipns/nosuchname/a", check=False), "cannot resolve /ipns/nosuchname")


def test_paths_that_are_not_content_paths(cli: CLI, tmp_path: Path) -> None:
    cli("init")
    for cmd in ("cat", "get", "ls"):
        r = cli(cmd, "/tmp/x", check=False)
        _one_line_error(r, "'/tmp/x' is not a content path", "/ipns/NAME")
        assert "empty CID" not in r.err


def test_malformed_cidv0_is_named_as_such(cli: CLI) -> None:
    cli("init")
    _one_line_error(cli("ls", "QmXXXX", check=False), "invalid CIDv0 'QmXXXX'", "46 base58btc characters")
    bad = "Qm" + "0" * 44
    _one_line_error(cli("cat", bad, check=False), "invalid CIDv0", "'0'")


def test_get_into_a_missing_directory(cli: CLI, tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    cid = cli("add", "-Q", tmp_path / "f").text.strip()
    dest = tmp_path / "a" / "missing" / "parent" / "x"
    _one_line_error(cli("get", cid, "-o", dest, check=False), "does not exist", str(dest.parent))
    assert not (tmp_path / "a").exists()


def test_add_reads_standard_input(cli: CLI) -> None:
    data = b"piped data\n"
    cid = cli("add", "-Q", "--only-hash", "-", input=data).text.strip()
    assert cli("add", input=data).text == f"added {cid} {cid}\n"  # Kubo's line: the CID as name
    assert cli("add", "-", input=data).text == f"added {cid} {cid}\n"
    assert cli("cat", cid).out == data
    assert cid in cli("pin", "ls").text
    wrapped = cli("add", "-w", "--stdin-name", "p.txt", input=data).text.splitlines()
    assert wrapped[0] == f"added {cid} p.txt"
    assert cli("cat", wrapped[1].split()[1] + "/p.txt").out == data
    _one_line_error(cli("add", "-w", input=data, check=False), "--stdin-name")
    big = os.urandom(3 << 20)  # several chunks through a pipe
    assert cli("cat", cli("add", "-Q", input=big).text.strip()).out == big


def test_add_with_no_path_on_a_terminal_is_refused(tmp_path: Path) -> None:
    """No PATH and standard input a terminal: nothing to add (Kubo waits for a path too)."""
    import pty
    import subprocess
    import sys

    from _cli import cli_env
    leader, follower = pty.openpty()
    try:
        p = subprocess.run([sys.executable, "-m", "ipmirror", "add"], stdin=follower, capture_output=True,
                           env=cli_env(tmp_path / "repo"), timeout=60, text=True)
    finally:
        os.close(follower)
        os.close(leader)
    assert p.returncode == 1 and p.stderr.startswith("Error: nothing to add"), p.stderr


def test_key_rm_checks_every_name_first(cli: CLI) -> None:
    cli("key", "gen", "a")
    cli("key", "gen", "b")
    _one_line_error(cli("key", "rm", "a", "b", "nosuch", check=False), "'nosuch'", "no key was removed")
    assert cli("key", "list").text.split() == ["a", "b", "self"]
    _one_line_error(cli("key", "rm", "a", "self", check=False), "'self' cannot be removed")
    assert cli("key", "list").text.split() == ["a", "b", "self"]
    assert cli("key", "rm", "a", "b").text.split() == ["a", "b"]
    assert cli("key", "list").text.split() == ["self"]
