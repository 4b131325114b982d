"""Several processes on one repository: add, cat and gc at the same time."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

from conftest import CLI


def test_add_cat_gc_concurrently(cli: CLI, repo_path: Path, tmp_path: Path) -> None:
    rng = random.Random(3)
    small = tmp_path / "small.bin"
    small.write_bytes(rng.randbytes(3_000_000))
    big = tmp_path / "big"
    for i in range(40):
        (big / f"d{i % 4}").mkdir(parents=True, exist_ok=True)
        (big / f"d{i % 4}" / f"f{i}").write_bytes(rng.randbytes(1_500_000))
    (repo_path).mkdir(parents=True)
    cfg = '{"version": 1, "profile": "unixfs-v1-2025", "batch_bytes": 4194304}'
    (repo_path / "config.json").write_text(cfg)
    small_cid = cli("add", "-Q", small).text.strip()
    want_big = cli("add", "--only-hash", "-Q", big).text.strip()

    env = dict(os.environ, IPMIRROR_PATH=str(repo_path))
    py = [sys.executable, "-m", "ipmirror"]
    adder = subprocess.Popen([*py, "add", "-Q", big], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    cats = gcs = 0
    deadline = time.monotonic() + 60
    while adder.poll() is None and time.monotonic() < deadline:
        gc = subprocess.Popen([*py, "repo", "gc", "-q"], env=env, stderr=subprocess.PIPE)
        cat = subprocess.run([*py, "cat", small_cid], env=env, capture_output=True)
        assert cat.returncode == 0, cat.stderr
        assert cat.stdout == small.read_bytes()
        cats += 1
        _, err = gc.communicate(timeout=60)
        assert gc.returncode == 0, err
        gcs += 1
    out, err = adder.communicate(timeout=60)
    assert adder.returncode == 0, err
    assert out.decode().strip() == want_big
    assert cats >= 1 and gcs >= 1
    cli("repo", "gc")
    assert cli("repo", "verify").rc == 0
    for f in big.rglob("f*"):
        rel = f.relative_to(big)
        assert cli("cat", f"{want_big}/{rel}").out == f.read_bytes()
