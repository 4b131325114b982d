"""Repository access (issue #10, point 4): which commands create a repository, the node key made
by ``init``, and serving a repository read-only as a user who may not write it."""

from __future__ import annotations

from pathlib import Path

import pytest

from _cli import run

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
