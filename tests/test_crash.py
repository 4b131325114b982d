"""Crash safety: SIGKILL ``ipmirror add`` at random moments; the store must stay consistent."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import CLI


def make_tree(root: Path, files: int, seed: int) -> None:
    rng = random.Random(seed)
    for i in range(files):
        d = root / f"d{i % 7}" / f"e{i % 3}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:04d}.bin").write_bytes(rng.randbytes(rng.choice([10, 3000, 70_000, 400_000])))


def test_sigkill_during_add_leaves_store_consistent(cli: CLI, repo_path: Path, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    make_tree(tree, 160, 7)
    cli("init")
    cfg = json.loads((repo_path / "config.json").read_text())
    cfg["batch_bytes"] = 1 << 20  # many commits, so kills land between and inside them
    (repo_path / "config.json").write_text(json.dumps(cfg))
    want = cli("add", "--only-hash", "-Q", tree).text.strip()

    rng = random.Random(1)
    env = dict(os.environ, IPMIRROR_PATH=str(repo_path))
    t0 = time.monotonic()
    full = subprocess.run([sys.executable, "-m", "ipmirror", "add", "-Q", "--pin=false", tree], env=env,
                          capture_output=True, check=True)
    duration = time.monotonic() - t0
    assert full.stdout.decode().strip() == want
    cli("repo", "gc")  # start empty again: the kills below must do the writing

    kills = 0
    for _ in range(12):
        p = subprocess.Popen([sys.executable, "-m", "ipmirror", "add", "-Q", tree], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.0, duration * 1.1))
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            kills += 1
        p.communicate()
        r = cli("repo", "verify", check=False)
        assert r.rc == 0, r.text + r.err
        for line in cli("pin", "ls", "-q").text.split():  # every pin points at a complete DAG
            assert line == want
        if rng.random() < 0.3:
            cli("repo", "gc")
            assert cli("repo", "verify", check=False).rc == 0
    assert kills >= 3
    assert cli("add", "-Q", tree).text.strip() == want
    assert cli("repo", "verify").rc == 0
    cli("get", want, "-o", tmp_path / "out")
    for f in tree.rglob("*.bin"):
        assert (tmp_path / "out" / f.relative_to(tree)).read_bytes() == f.read_bytes()
