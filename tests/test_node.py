"""The composition root (node.py) and the use cases it hands out: one ``Names`` and one
``Keystore`` per repository, and ``mirror add`` with its key (mirror/register.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ipmirror.errors import Conflict, InvalidInput
from ipmirror.mirror.register import add_mirror
from ipmirror.node import Repo


def test_names_and_keys_are_kept_for_the_repositorys_life(tmp_path: Path) -> None:
    with Repo.open(tmp_path / "repo") as repo:
        names, keys = repo.names, repo.keystore
        assert repo.names is names and repo.keystore is keys and names.keys is keys


def test_mirror_add_makes_its_key_and_rolls_it_back(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    with Repo.open(tmp_path / "repo") as repo:
        keys = repo.keystore
        m = add_mirror(repo.mirrors(), keys, "deb", str(tree), profile="unixfs-v1-2025")
        assert (m.key, keys.names()) == ("deb", ["deb", "self"])  # self: made with the repository
        with pytest.raises(Conflict, match="mirror named 'deb' exists"):
            add_mirror(repo.mirrors(), keys, "deb", str(tree), profile="unixfs-v1-2025", key="other")
        assert keys.names() == ["deb", "self"]  # refused before any key was made
        # the mirror cannot be added (no such directory): the key made for it goes again
        with pytest.raises(InvalidInput, match="not a directory"):
            add_mirror(repo.mirrors(), keys, "gone", str(tmp_path / "missing"), profile="unixfs-v1-2025")
        with pytest.raises(InvalidInput, match="not a directory"):
            add_mirror(repo.mirrors(), keys, "gone", str(tmp_path / "missing"), profile="unixfs-v1-2025",
                       key="fresh")
        assert keys.names() == ["deb", "self"]
        # … but an existing key named with --key stays
        with pytest.raises(InvalidInput, match="unknown profile"):
            add_mirror(repo.mirrors(), keys, "again", str(tree), profile="nope", key="deb")
        assert keys.names() == ["deb", "self"]
        keys.gen("taken")
        with pytest.raises(Conflict, match="--key taken"):
            add_mirror(repo.mirrors(), keys, "taken", str(tree), profile="unixfs-v1-2025")
        shared = add_mirror(repo.mirrors(), keys, "taken", str(tree), profile="unixfs-v1-2025", key="taken")
        assert shared.key == "taken" and keys.names() == ["deb", "self", "taken"]
        assert [x.name for x in repo.mirrors().all()] == ["deb", "taken"]
