"""CAR interoperability with the real JavaScript implementations (@ipld/car, ipfs-unixfs-importer).

The node side lives in ``tests/js`` (``npm ci --prefix tests/js`` installs it from the lock file):

* ``verify_car.mjs FILE...`` reads each CAR with @ipld/car, re-hashes every block and decodes every
  dag-pb block with @ipld/dag-pb; prints a line ``{"roots", "blocks", "unique", "ok", "errors",
  "cids"}`` per file.
* ``make_car.mjs SRC OUT [--cid-version N] [--raw-leaves B] [--profile P] [--chunk-size N]
  [--max-links N]`` imports SRC with ipfs-unixfs-importer and writes a CARv1; prints the root.

Everything on the Python side goes through the real ``ipmirror`` console script with
``IPMIRROR_PATH`` set to a fresh directory. The tests skip when node, npm or the installed
``tests/js/node_modules`` are missing.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ipmirror.codec import dagpb, varint
from ipmirror.codec.cid import CID
from ipmirror.codec.unixfs_pb import HAMT_SHARD, UnixFSData

JS_DIR = Path(__file__).resolve().parent / "js"
NODE_DEPS = ("@ipld/car", "@ipld/dag-pb", "blockstore-core", "ipfs-unixfs-importer", "multiformats")


# --------------------------------------------------------------------------------------- helpers


def _ipmirror_cmd() -> list[str]:
    script = Path(sys.executable).parent / "ipmirror"
    if script.exists():
        return [str(script)]
    found = shutil.which("ipmirror")
    return [found] if found else [sys.executable, "-m", "ipmirror"]


IPMIRROR = _ipmirror_cmd()


@pytest.fixture(scope="module")
def node() -> str:
    """The node binary; skips the module when the JS side cannot run."""
    node_bin = shutil.which("node")
    if node_bin is None or shutil.which("npm") is None:
        pytest.skip("node/npm are not installed")
    missing = [d for d in NODE_DEPS if not (JS_DIR / "node_modules" / d / "package.json").exists()]
    if missing:
        pytest.skip(f"tests/js/node_modules lacks {', '.join(missing)} (run: npm ci --prefix tests/js)")
    return node_bin


def ipm(repo: Path, *args: str | Path, expect: int | None = 0) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "IPMIRROR_PATH": str(repo)}
    env.pop("PYTHONWARNINGS", None)
    p = subprocess.run([*IPMIRROR, *map(str, args)], env=env, capture_output=True, timeout=120)
    if expect is not None:
        assert p.returncode == expect, (
            f"ipmirror {' '.join(map(str, args))}: exit {p.returncode} (wanted {expect})\n"
            f"stdout: {p.stdout[-2000:]!r}\nstderr: {p.stderr.decode(errors='replace')}")
    return p


def out(p: subprocess.CompletedProcess[bytes]) -> str:
    return p.stdout.decode().strip()


def js(node: str, script: str, *args: str | Path, expect: int | None = 0) -> subprocess.CompletedProcess[str]:
    p = subprocess.run([node, str(JS_DIR / script), *map(str, args)], capture_output=True, text=True,
                       timeout=120, cwd=JS_DIR)
    if expect is not None:
        assert p.returncode == expect, f"{script} {args}: exit {p.returncode}\n{p.stdout[-2000:]}\n{p.stderr}"
    return p


def verify_car(node: str, car: Path) -> dict[str, Any]:
    p = js(node, "verify_car.mjs", car, expect=None)
    report: dict[str, Any] = json.loads(p.stdout)
    assert report["ok"], report["errors"]
    assert p.returncode == 0
    return report


def export(repo: Path, root: str, dest: Path) -> Path:
    dest.write_bytes(ipm(repo, "dag", "export", root).stdout)
    return dest


def pins(repo: Path) -> set[str]:
    return set(out(ipm(repo, "pin", "ls", "-q")).split())


def assert_clean_error(p: subprocess.CompletedProcess[bytes], *needles: str) -> str:
    """Exit 1 and exactly one ``Error: ...`` line on stderr, no traceback."""
    err = p.stderr.decode()
    assert p.returncode == 1, (p.returncode, err)
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    assert "internal error" not in err, err
    for n in needles:
        assert n in err, (n, err)
    return lines[0]


def snapshot(top: Path) -> dict[str, tuple[str, bytes]]:
    """Every entry under ``top``: relative path -> (kind, contents or link target)."""
    got: dict[str, tuple[str, bytes]] = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            full = Path(dirpath, name)
            rel = full.relative_to(top).as_posix()
            if full.is_symlink():
                got[rel] = ("symlink", os.fsencode(os.readlink(full)))
            elif full.is_dir():
                got[rel] = ("dir", b"")
            else:
                got[rel] = ("file", full.read_bytes())
    return got


def car_frames(buf: bytes) -> tuple[int, list[tuple[int, int, int]]]:
    """``(header_end, [(frame_start, data_start, frame_end), ...])`` of a CARv1."""
    n, pos = varint.decode(buf, 0)
    header_end = pos + n
    frames = []
    pos = header_end
    while pos < len(buf):
        start = pos
        n, pos = varint.decode(buf, pos)
        _cid, data_start = CID.read(buf, pos)
        frames.append((start, data_start, pos + n))
        pos += n
    return header_end, frames


def cbor_header(roots: list[bytes], version: int) -> bytes:
    """A DAG-CBOR CAR header written by hand: {"roots": [CID...], "version": N}."""
    body = b"\xa2" + b"\x65roots" + bytes([0x80 + len(roots)])
    for r in roots:
        raw = b"\x00" + r
        body += b"\xd8\x2a\x58" + bytes([len(raw)]) + raw
    body += b"\x67version" + bytes([version])
    return varint.encode(len(body)) + body


# ----------------------------------------------------------------------------------------- trees


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Files of various sizes (empty, one block, multi-block under both profiles), a hidden file,
    a duplicate, non-ASCII names, a subdirectory, an empty directory and a symlink."""
    rnd = random.Random(499)
    top = tmp_path_factory.mktemp("src") / "tree"
    (top / "sub" / "deeper").mkdir(parents=True)
    (top / "emptydir").mkdir()
    (top / "empty").write_bytes(b"")
    (top / "small.txt").write_bytes(b"hello, interop\n")
    (top / "medium.bin").write_bytes(rnd.randbytes(300_000))          # 2 leaves at 256 KiB
    (top / "big.bin").write_bytes(rnd.randbytes(2 * 1024 * 1024 + 12_345))  # 3 leaves at 1 MiB
    (top / "Zeta.txt").write_bytes(b"capital letters sort first\n")
    (top / "ünïcödé.txt").write_bytes(b"bytes, not code points\n")
    (top / "sub" / "copy.txt").write_bytes(b"hello, interop\n")      # same block as small.txt
    (top / "sub" / ".hidden").write_bytes(b"only with --hidden\n")
    (top / "sub" / "deeper" / "tiny").write_bytes(b"x" * 33)
    (top / "link").symlink_to("small.txt")
    (top / "sub" / "dangling").symlink_to("../nowhere/at/all")
    return top


@pytest.fixture(scope="module")
def hamt_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3000 files with long names: ~300 KB of links, above the 256 KiB shard threshold."""
    top = tmp_path_factory.mktemp("hamt") / "many"
    top.mkdir()
    for i in range(3000):
        (top / f"a-file-with-a-rather-long-name-so-the-directory-must-shard-{i:05d}.txt").write_bytes(
            f"file number {i}\n".encode())
    return top


def is_hamt(repo: Path, root: str) -> bool:
    node = dagpb.decode(ipm(repo, "block", "get", root).stdout)
    assert node.data is not None
    return UnixFSData.decode(node.data).type == HAMT_SHARD


# ------------------------------------------------------------------------- 1. we export, JS reads


@pytest.mark.parametrize("profile", ["unixfs-v1-2025", "unixfs-v0-2015"])
def test_js_reads_our_export(node: str, tree: Path, tmp_path: Path, profile: str) -> None:
    repo = tmp_path / "repo"
    root = out(ipm(repo, "add", "-Q", "--hidden", "--profile", profile, tree))
    car = export(repo, root, tmp_path / "x.car")
    stat = json.loads(out(ipm(repo, "dag", "stat", "--json", root)))

    report = verify_car(node, car)
    assert report["roots"] == [root]
    assert report["cids"][0] == root  # depth-first pre-order starts at the root
    assert report["blocks"] == report["unique"] == stat["NumBlocks"]
    # multi-block files really are multi-block, so the CAR holds more than one block per entry
    assert report["blocks"] > 14


def test_js_reads_our_hamt_export(node: str, hamt_tree: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    root = out(ipm(repo, "add", "-Q", "--profile", "unixfs-v0-2015", hamt_tree))
    assert is_hamt(repo, root)
    car = export(repo, root, tmp_path / "hamt.car")
    stat = json.loads(out(ipm(repo, "dag", "stat", "--json", root)))

    report = verify_car(node, car)
    assert report["roots"] == [root]
    assert report["blocks"] == report["unique"] == stat["NumBlocks"]
    assert report["blocks"] > 3000  # every file plus the shard nodes


def test_js_reads_our_export_of_a_subpath(node: str, tree: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    root = out(ipm(repo, "add", "-Q", "--hidden", tree))
    sub = out(ipm(repo, "add", "-Q", "--hidden", "--only-hash", tree / "sub"))
    report = verify_car(node, export(repo, f"{root}/sub", tmp_path / "sub.car"))
    assert report["roots"] == [sub]


# ------------------------------------------------------------------------ 2. JS writes, we import

# (make_car.mjs flags, the `ipmirror add` flags that must give the same root CID)
JS_CASES = {
    # ipfs-unixfs-importer 17's own defaults: CIDv1, raw leaves, 256 KiB chunks, 174 links,
    # links-bytes HAMT estimate, i.e. the 2015 layout with CIDv1 (Kubo's --cid-version=1).
    "js-defaults": ([], ["--profile", "unixfs-v0-2015", "--cid-version", "1"]),
    "cidv1-raw-leaves": (["--cid-version", "1", "--raw-leaves", "true"],
                         ["--profile", "unixfs-v0-2015", "--cid-version", "1"]),
    "cidv0-no-raw-leaves": (["--cid-version", "0", "--raw-leaves", "false"], ["--profile", "unixfs-v0-2015"]),
    "profile-v0-2015": (["--profile", "unixfs-v0-2015"], ["--profile", "unixfs-v0-2015"]),
    "profile-v1-2025": (["--profile", "unixfs-v1-2025"], ["--profile", "unixfs-v1-2025"]),
    "deep-tree": (["--cid-version", "0", "--raw-leaves", "false", "--chunk-size", "4096",
                   "--max-links", "11"],
                  ["--profile", "unixfs-v0-2015", "--chunker", "size-4096", "--max-links", "11"]),
}


@pytest.mark.parametrize("case", sorted(JS_CASES))
def test_we_import_js_car(node: str, tree: Path, tmp_path: Path, case: str) -> None:
    js_flags, our_flags = JS_CASES[case]
    car = tmp_path / "js.car"
    root = js(node, "make_car.mjs", tree, car, *js_flags).stdout.strip()

    repo = tmp_path / "repo"
    assert out(ipm(repo, "add", "--only-hash", "-Q", "--hidden", *our_flags, tree)) == root
    p = ipm(repo, "dag", "import", car)
    assert root in out(p)
    assert root in pins(repo)

    assert ipm(repo, "cat", f"{root}/sub/copy.txt").stdout == b"hello, interop\n"
    ipm(repo, "get", root, "-o", tmp_path / "back")
    assert snapshot(tmp_path / "back") == snapshot(tree)
    assert "ok" in out(ipm(repo, "repo", "verify"))


def test_we_import_js_hamt_car(node: str, hamt_tree: Path, tmp_path: Path) -> None:
    car = tmp_path / "js.car"
    root = js(node, "make_car.mjs", hamt_tree, car, "--profile", "unixfs-v0-2015").stdout.strip()
    repo = tmp_path / "repo"
    assert out(ipm(repo, "add", "--only-hash", "-Q", "--profile", "unixfs-v0-2015", hamt_tree)) == root
    ipm(repo, "dag", "import", car)
    assert root in pins(repo)
    assert is_hamt(repo, root)
    name = "a-file-with-a-rather-long-name-so-the-directory-must-shard-02999.txt"
    assert ipm(repo, "cat", f"{root}/{name}").stdout == b"file number 2999\n"
    ipm(repo, "get", root, "-o", tmp_path / "back")
    assert snapshot(tmp_path / "back") == snapshot(hamt_tree)
    ipm(repo, "repo", "verify")


# ------------------------------------------------------------------------------ 3. bad CARs


@pytest.fixture(scope="module")
def good_car(node: str, tree: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, bytes]:
    """A JS-written CAR of ``tree`` (CIDv0, so leaves are dag-pb and every frame is checked)."""
    car = tmp_path_factory.mktemp("good") / "good.car"
    root = js(node, "make_car.mjs", tree, car, "--cid-version", "0", "--raw-leaves", "false").stdout.strip()
    return root, car.read_bytes()


@pytest.fixture
def repo_with_content(tree: Path, tmp_path: Path) -> tuple[Path, str]:
    """A repository that already holds a pinned DAG, to check that failed imports leave it intact."""
    repo = tmp_path / "repo"
    first = out(ipm(repo, "add", "-Q", "--hidden", tree / "sub"))
    return repo, first


def _bad_cars(root: str, buf: bytes) -> dict[str, tuple[bytes, str]]:
    header_end, frames = car_frames(buf)
    big = max(frames, key=lambda f: f[2] - f[1])  # a leaf of big.bin
    _start, data_start, end = big
    altered = bytearray(buf)
    altered[data_start + (end - data_start) // 2] ^= 0x01
    v3 = cbor_header([CID.parse(root).buffer], 3) + buf[header_end:]
    return {
        "truncated-mid-block": (buf[:data_start + (end - data_start) // 2], "truncated"),
        "truncated-mid-length": (buf[:frames[-1][0]] + b"\x80", "truncated"),
        "altered-block": (bytes(altered), "does not match its hash"),
        "garbage-header": (b"\x0a" + b"\xff" * 10 + buf[header_end:], "header"),
        "not-a-car": (b"hello, I am certainly not a CAR file\n", "invalid CAR"),
        "empty": (b"", "empty"),
        "version-3": (v3, "version 3"),
    }


BAD_CASES = ["truncated-mid-block", "truncated-mid-length", "altered-block", "garbage-header",
             "not-a-car", "empty", "version-3"]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_car_rejected(good_car: tuple[str, bytes], repo_with_content: tuple[Path, str],
                          tmp_path: Path, case: str) -> None:
    root, buf = good_car
    data, needle = _bad_cars(root, buf)[case]
    repo, first = repo_with_content
    bad = tmp_path / f"{case}.car"
    bad.write_bytes(data)

    line = assert_clean_error(ipm(repo, "dag", "import", bad, expect=None), needle)
    assert str(bad) in line or bad.name in line
    assert pins(repo) == {first}
    assert "ok" in out(ipm(repo, "repo", "verify"))
    # the store still works: the good CAR imports and pins afterwards
    good = tmp_path / "good-again.car"
    good.write_bytes(buf)
    ipm(repo, "dag", "import", good)
    assert pins(repo) == {first, root}
    ipm(repo, "repo", "verify")


def test_bad_cars_are_bad_for_js_too(node: str, good_car: tuple[str, bytes], tmp_path: Path) -> None:
    """The corruptions above are real: @ipld/car (plus hashing) rejects each of them."""
    root, buf = good_car
    cases = _bad_cars(root, buf)
    for case, (data, _needle) in cases.items():
        (tmp_path / f"{case}.car").write_bytes(data)
    p = js(node, "verify_car.mjs", *(tmp_path / f"{case}.car" for case in cases), expect=1)
    reports = [json.loads(line) for line in p.stdout.splitlines()]
    assert len(reports) == len(cases)
    for case, report in zip(cases, reports, strict=True):
        assert not report["ok"], case
        assert report["errors"], case


def test_incomplete_car_imports_blocks_but_does_not_pin(node: str, good_car: tuple[str, bytes],
                                                        tmp_path: Path) -> None:
    root, buf = good_car
    _header_end, frames = car_frames(buf)
    start, _data_start, end = frames[len(frames) // 2]
    removed = CID.read(buf, varint.decode(buf, start)[1])[0]
    car = tmp_path / "incomplete.car"
    car.write_bytes(buf[:start] + buf[end:])
    assert verify_car(node, car)["blocks"] == len(frames) - 1  # still a well-formed CAR

    repo = tmp_path / "repo"
    p = ipm(repo, "dag", "import", car, expect=1)
    err = p.stderr.decode()
    assert "Traceback" not in err
    assert f"Error: root {root} is incomplete" in err
    assert root not in pins(repo)
    assert "pinned" not in out(p)
    stat = json.loads(out(ipm(repo, "repo", "stat", "--json")))
    assert stat["NumObjects"] == len(frames) - 1
    ipm(repo, "block", "stat", str(CID.read(buf, varint.decode(buf, frames[0][0])[1])[0]))
    assert ipm(repo, "block", "stat", str(removed), expect=1).returncode == 1
    ipm(repo, "repo", "verify")

    # the full CAR completes the DAG; now the root is pinned
    full = tmp_path / "full.car"
    full.write_bytes(buf)
    ipm(repo, "dag", "import", full)
    assert root in pins(repo)
    ipm(repo, "repo", "verify")
