"""Golden CID vectors: the importer must give the root CIDs that Kubo 0.22 and
ipfs-unixfs-importer 17.1.1 give for the deterministic corpus.

The corpus (tests/vectors/corpus.py) is built once per session in a temporary directory, case by
case as the vectors need it, and each case is checked against the fingerprint stored in
vectors.json first (so a changed generator shows up as such, not as an importer bug). The
expected CIDs come from tests/vectors/regen.py; see tests/vectors/README.md.

The 1 GiB case (``gib_plus1``, "slow") runs by default because it takes only a few seconds here;
IPMIRROR_SLOW_VECTORS=0 skips it, IPMIRROR_SLOW_VECTORS=1 forces it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from ipmirror.cli.main import main as cli_main
from ipmirror.unixfs.directory import dir_data, estimate
from ipmirror.unixfs.importer import AddOptions, Importer
from ipmirror.unixfs.nodes import Entry
from ipmirror.unixfs.profile import from_preset

VECTOR_DIR = Path(__file__).resolve().parent / "vectors"
RUN_SLOW_BY_DEFAULT = True  # gib_plus1: ~7 s for its 5 vectors + fingerprint (2 cores)


def _load_corpus() -> ModuleType:
    name = "ipmirror_test_vectors_corpus"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, VECTOR_DIR / "corpus.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses look the module up while the class is made
    spec.loader.exec_module(mod)
    return mod


corpus = _load_corpus()
DOC: dict[str, Any] = json.loads((VECTOR_DIR / "vectors.json").read_text(encoding="utf-8"))
VECTORS: list[dict[str, Any]] = DOC["vectors"]


def _run_slow() -> bool:
    env = os.environ.get("IPMIRROR_SLOW_VECTORS", "")
    return env == "1" if env in ("0", "1") else RUN_SLOW_BY_DEFAULT


SKIP_SLOW = pytest.mark.skipif(not _run_slow(), reason="slow corpus case (set IPMIRROR_SLOW_VECTORS=1)")


def _params(items: list[dict[str, Any]], slow: Any) -> list[Any]:
    return [pytest.param(v, id=v["id"], marks=[SKIP_SLOW] if slow(v) else []) for v in items]


class Corpus:
    """The corpus directory; a case is built (and its fingerprint checked) when first asked for."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._ready: dict[str, Path] = {}

    def path(self, case: str) -> Path:
        if case not in self._ready:
            corpus.build(self.root, [case])
            p = self.root / case
            want = DOC["cases"][case]["digest"]
            got = corpus.digest(p, corpus.CASES[case].meta)
            if got != want:
                pytest.fail(f"corpus case {case!r} is not what vectors.json was made from (digest {got}, "
                            f"expected {want}): corpus.py changed, run tests/vectors/regen.py")
            self._ready[case] = p
        return self._ready[case]


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Corpus]:
    root = tmp_path_factory.mktemp("vector-corpus")
    yield Corpus(root)
    shutil.rmtree(root, ignore_errors=True)  # ~250 MB: do not leave it to pytest's retention


def _root(result: Any) -> Entry:
    # add_paths returns the roots (a list); older versions returned the last root itself
    return result[-1] if isinstance(result, list) else result


def import_vector(v: dict[str, Any], path: Path, **kw: Any) -> Entry:
    profile = from_preset(v["profile"], **v["resolve"])
    o = v["options"]
    opts = AddOptions(profile, hidden=True, preserve_mode=o["preserve_mode"],
                      preserve_mtime=o["preserve_mtime"], wrap=o["wrap"])
    return _root(Importer(opts, **kw).add_paths([path]))


def test_vectors_file_matches_corpus_module() -> None:
    assert DOC["format"] == 1
    assert DOC["corpus_version"] == corpus.CORPUS_VERSION
    assert set(DOC["cases"]) == set(corpus.CASES)
    assert {v["case"] for v in VECTORS} == set(corpus.CASES)
    assert len({v["id"] for v in VECTORS}) == len(VECTORS)
    for v in VECTORS:
        assert v["reference"] in ("kubo-0.22", "js-17.1.1")
        assert v["cli"][:4] == ["add", "--only-hash", "--hidden", "-Q"] and v["cli"][-1] == "{path}"
        assert v["slow"] == corpus.CASES[v["case"]].slow


@pytest.mark.parametrize("vector", _params(VECTORS, lambda v: v["slow"]))
def test_vector(vector: dict[str, Any], corpus_dir: Corpus, capsys: pytest.CaptureFixture[str]) -> None:
    """``ipmirror add --only-hash --hidden -Q --profile P [flags] PATH`` prints the reference CID."""
    path = str(corpus_dir.path(vector["case"]))
    assert cli_main([a.replace("{path}", path) for a in vector["cli"]]) == 0
    got = capsys.readouterr().out.strip()
    assert got == vector["cid"], (
        f"{vector['id']}: got {got}, {vector['reference']} gives {vector['cid']}"
        + (f" ({vector['note']})" if vector["note"] else ""))


# -- the threshold cases sit where they claim to --------------------------------------------------

THRESHOLDS = [  # (case, profile, from_preset overrides, estimate)
    ("hamt_lt", "kubo-0.22", {}, 262143),
    ("hamt_eq", "kubo-0.22", {}, 262144),
    ("hamt_gt", "kubo-0.22", {}, 262145),
    ("hamt1_lt", "kubo-0.22", {"cid_version": 1}, 262143),
    ("hamt1_eq", "kubo-0.22", {"cid_version": 1}, 262144),
    ("hamt1_gt", "kubo-0.22", {"cid_version": 1}, 262145),
    ("bb_lt", "unixfs-v1-2025", {}, 262143),
    ("bb_eq", "unixfs-v1-2025", {}, 262144),
    ("bb_gt", "unixfs-v1-2025", {}, 262145),
]


@pytest.mark.parametrize(("case", "profile", "kw", "want"), THRESHOLDS, ids=[t[0] for t in THRESHOLDS])
def test_threshold_case_estimate(case: str, profile: str, kw: dict[str, Any], want: int,
                                 corpus_dir: Corpus) -> None:
    """The directory's size estimate under the profile is exactly what the case is named for."""
    path = corpus_dir.path(case)
    prof = from_preset(profile, **kw)
    children: list[tuple[bytes, Entry]] = []

    def added(a: Any) -> None:
        if a.kind == "file":
            children.append((os.fsencode(a.path.rsplit("/", 1)[1]), a.entry))

    Importer(AddOptions(prof, hidden=True), on_event=added).add_paths([path])
    assert len(children) == len(os.listdir(path))
    assert estimate(prof, children, dir_data(None, None)) == want
    if prof.hamt_estimate == "block-bytes":
        assert corpus.block_bytes_of_empty_files(len(n) for n, _ in children) == want
    assert prof.shards(want) == (want > 262144 or (want == 262144 and prof.hamt_switch == ">="))


def test_meta_mtimes_roundtrip(corpus_dir: Corpus) -> None:
    """The meta cases really carry the mtimes the generator sets (the file system keeps them)."""
    path = corpus_dir.path("meta")
    seen = {os.lstat(os.path.join(d, n)).st_mtime_ns
            for d, dirs, files in os.walk(path) for n in dirs + files}
    assert set(corpus.MTIMES.values()) <= seen | {os.lstat(path).st_mtime_ns}
