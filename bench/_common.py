"""What the benchmark scripts share: running and measuring processes, CPU and memory accounting,
result rows and checks, machine and source descriptions, Kubo's reference script, and the
helpers of the deterministic trees (manifest, listing, directory modes and mtimes).

Usage (from a script in bench/, which Python puts on ``sys.path``)::

    from _common import MIB, Row, run_proc, busy_cpu_s, own_cpu_s, machine, source_state

Nothing here starts a benchmark by itself; ``bench/add.py``, ``bench/sync.py``,
``bench/gateway.py``, ``bench/mirror_tree.py`` and ``bench/add_breakdown.py`` are the scripts.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
OUT = BENCH_DIR / "out"
KIB = 1024
MIB = 1024 * 1024
POLL_S = 0.02
FIXED_MTIME = 1577836800  # 2020-01-01T00:00:00Z: the mtime of the generated trees


def log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


# -- processes, CPU and memory --------------------------------------------------------------------


def proc_tree(pid: int) -> list[int]:
    """``pid`` and its live descendants."""
    out = [pid]
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return out
    for k in kids:
        out.extend(proc_tree(int(k)))
    return out


def proc_cpu_s(pid: int) -> float:
    """utime+stime of ``pid`` and its live descendants (nginx workers)."""
    tck = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for p in proc_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tck
    return total


class MemPoller:
    """Polls /proc/PID/status every ~20 ms and keeps the maxima of RssAnon and VmHWM (kB); with
    ``descendants``, of their sums over PID and its descendants (serve's workers). ``mark()``
    starts a new phase whose own RssAnon maximum is kept in ``phase_rss_anon_kb``."""

    def __init__(self, pid: int, *, descendants: bool = False) -> None:
        self.pid = pid
        self.descendants = descendants
        self.rss_anon_kb = 0
        self.vm_hwm_kb = 0
        self.phase_rss_anon_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mem-poll", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = hwm = 0
            pids = proc_tree(self.pid) if self.descendants else [self.pid]
            for i, p in enumerate(pids):
                try:
                    with open(f"/proc/{p}/status") as f:
                        text = f.read()
                except OSError:
                    if i == 0:
                        return  # the process is gone
                    continue
                for line in text.splitlines():
                    if line.startswith("RssAnon:"):
                        rss += int(line.split()[1])
                    elif line.startswith("VmHWM:"):
                        hwm += int(line.split()[1])
            self.rss_anon_kb = max(self.rss_anon_kb, rss)
            self.phase_rss_anon_kb = max(self.phase_rss_anon_kb, rss)
            self.vm_hwm_kb = max(self.vm_hwm_kb, hwm)
            self._stop.wait(POLL_S)

    def mark(self) -> None:
        self.phase_rss_anon_kb = 0

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class ProcResult:
    seconds: float
    returncode: int
    stdout: str
    stderr: str
    cpu_user: float
    cpu_sys: float
    rss_anon_kb: int = 0
    vm_hwm_kb: int = 0


def run_proc(cmd: Sequence[str], *, env: dict[str, str] | None = None, poll_mem: bool = False,
             check: bool = True) -> ProcResult:
    """Run ``cmd`` and return its wall time (Popen to exit), CPU times and (optionally) memory."""
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    poller = MemPoller(proc.pid) if poll_mem else None
    out, err = proc.communicate()
    dt = time.perf_counter() - t0
    if poller is not None:
        poller.stop()
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if check and proc.returncode != 0:
        raise SystemExit(f"bench: command failed ({proc.returncode}): {' '.join(cmd)}\n{err.strip()}")
    return ProcResult(dt, proc.returncode, out, err, ru1.ru_utime - ru0.ru_utime, ru1.ru_stime - ru0.ru_stime,
                      poller.rss_anon_kb if poller else 0, poller.vm_hwm_kb if poller else 0)


def busy_cpu_s() -> float:
    """CPU seconds all CPUs spent busy so far (user, nice, system, irq, softirq, steal)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = v
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_cpu_s() -> float:
    """CPU seconds of this process and its waited-for children."""
    a = resource.getrusage(resource.RUSAGE_SELF)
    b = resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def rmtree(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p)
    elif p.exists() or p.is_symlink():
        p.unlink()


def settle() -> None:
    """Flush dirty pages left by earlier steps so that they are not written during a measurement."""
    os.sync()


def tree_files(tree: Path) -> list[tuple[str, int]]:
    """(path, size) of every regular file under ``tree`` (or of ``tree`` itself, a file), sorted."""
    if tree.is_file():
        return [(str(tree), tree.stat().st_size)]
    out: list[tuple[str, int]] = []
    for dirpath, _dirs, files in os.walk(tree):
        for name in files:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            if not os.path.islink(p):
                out.append((p, st.st_size))
    out.sort()
    return out


def read_all(files: Sequence[tuple[str, int]]) -> None:
    buf = bytearray(MIB)
    for p, _ in files:
        with open(p, "rb", buffering=0) as f:
            while f.readinto(buf):
                pass


# -- rows and checks -------------------------------------------------------------------------------


@dataclass
class Row:
    key: str
    label: str
    seconds: list[float] = field(default_factory=list)
    extra: list[dict[str, object]] = field(default_factory=list)
    others_cpu: list[float] = field(default_factory=list)  # CPU s used by other processes meanwhile

    @property
    def median(self) -> float:
        return statistics.median(self.seconds) if self.seconds else math.nan

    def values(self, name: str) -> list[float]:
        out: list[float] = []
        for e in self.extra:
            v = e.get(name)
            if isinstance(v, int | float):
                out.append(float(v))
        return out

    def max_of(self, name: str) -> float:
        vals = self.values(name)
        return max(vals) if vals else math.nan

    def median_of(self, name: str) -> float:
        vals = self.values(name)
        return statistics.median(vals) if vals else math.nan


@dataclass
class Check:
    kind: str  # required | goal | info
    name: str
    value: float | str
    target: str
    ok: bool | None  # None: not measured


def check_table(cs: list[Check]) -> str:
    lines = ["| kind | check | measured | target | verdict |", "|---|---|---|---|---|"]
    for c in cs:
        v = c.value if isinstance(c.value, str) else ("-" if math.isnan(c.value) else f"{c.value:.3f}")
        verdict = "n/a" if c.ok is None else ("PASS" if c.ok else "MISS")
        lines.append(f"| {c.kind} | {c.name} | {v} | {c.target} | {verdict} |")
    return "\n".join(lines)


def machine() -> dict[str, object]:
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    return {"nproc": os.cpu_count(), "cpu": model, "mem_total_gib": round(mem_kb / MIB, 1),
            "kernel": platform.release(), "python": platform.python_version()}


def source_state() -> str:
    """Commit of the checkout and whether src/ has uncommitted changes (the code measured)."""
    def git(*a: str) -> str:
        r = subprocess.run(["git", "-C", str(REPO_ROOT), *a], capture_output=True, text=True, check=False)
        return r.stdout.strip() if r.returncode == 0 else ""
    head = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "src")
    h = hashlib.sha256()
    for f in sorted((REPO_ROOT / "src").rglob("*.py")):
        h.update(f.relative_to(REPO_ROOT).as_posix().encode() + b"\0" + f.read_bytes())
    return f"{head}{' + uncommitted changes in src/' if dirty else ''} (src sha256 {h.hexdigest()[:12]})"


def df_t(path: Path) -> str:
    r = subprocess.run(["df", "-T", str(path)], capture_output=True, text=True, check=False)
    return r.stdout.strip()


# -- the machine, the source, the commands --------------------------------------------------------


def default_ipmirror() -> list[str]:
    beside = Path(sys.executable).with_name("ipmirror")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("ipmirror")
    return [found] if found else [sys.executable, "-m", "ipmirror"]


def scratch_base(tree: Path, requested: Path | None) -> Path:
    """A directory on the tree's file system for repos and copies."""
    dev = tree.stat().st_dev
    candidates = [requested] if requested is not None else [BENCH_DIR / "out", tree.resolve().parent]
    for c in candidates:
        assert c is not None
        c.mkdir(parents=True, exist_ok=True)
        if c.stat().st_dev == dev:
            return c
    raise SystemExit(f"bench: {candidates[0]} is not on the same file system as {tree}")


def freeze_src(scratch: Path) -> str:
    """Copy src/ipmirror to ``scratch/src`` now and return the PYTHONPATH that runs it, so that
    edits made to the checkout while a benchmark runs do not change the code being measured."""
    dst = scratch / "src"
    shutil.copytree(REPO_ROOT / "src" / "ipmirror", dst / "ipmirror",
                    ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(dst)], check=True)
    return str(dst)


def ipm_env(pythonpath: str | None, repo: Path) -> dict[str, str]:
    """The environment of an ipmirror command against ``repo`` (from a frozen src/ if given)."""
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    env["IPMIRROR_PATH"] = str(repo)
    return env


# -- Kubo (the reference's kubo_cid.py) -------------------------------------------------------------


def kubo_script(probe_repo: Path, *, keep: bool = False) -> tuple[Path | None, str | None]:
    """``kubo_cid.py`` from ``$IPMIRROR_REFERENCE`` (default ``../shared/reference``) if it works
    (``--init-only`` of ``probe_repo``, removed unless ``keep``), else (None, why the Kubo rows are
    skipped)."""
    default = REPO_ROOT / ".." / "shared" / "reference"
    ref = Path(os.environ.get("IPMIRROR_REFERENCE") or default).resolve()
    script = ref / "kubo_cid.py"
    if not script.is_file():
        return None, f"Kubo rows skipped: {script} not found (set IPMIRROR_REFERENCE)"
    r = run_proc([sys.executable, str(script), "--init-only", "--repo", str(probe_repo)], check=False)
    if not keep:
        rmtree(probe_repo)
    if r.returncode != 0:
        why = " ".join((r.stderr.strip() or r.stdout.strip()).splitlines()[-1:])
        return None, f"Kubo rows skipped: reference not installed (run {ref}/setup.sh): {why}"
    return script, None


def parse_addfile(stderr: str) -> float:
    """The ``AddFile`` seconds ``kubo_cid.py --time`` reports."""
    m = re.search(r"AddFile\(.*\) ([0-9.]+)s\s*$", stderr, re.M)
    if m is None:
        raise SystemExit(f"bench: cannot find the AddFile time in kubo_cid.py's output:\n{stderr}")
    return float(m.group(1))


# -- deterministic trees ----------------------------------------------------------------------------


def pick(rng: random.Random, seq: Sequence[str]) -> str:
    """One element, using only ``Random.random()`` (whose sequence Python keeps stable)."""
    return seq[int(rng.random() * len(seq))]


def manifest_path(tree: Path) -> Path:
    """Where a generated tree's manifest lives: beside it (``add --hidden`` must not see it)."""
    return tree.with_name(tree.name + ".manifest.json")


def read_manifest(tree: Path) -> dict[str, object] | None:
    try:
        m = json.loads(manifest_path(tree).read_text())
    except (OSError, ValueError):
        return None
    return m if isinstance(m, dict) else None


def listing(root: Path) -> tuple[int, int, str]:
    """(files, bytes, sha256 of the sorted "path\\0size" lines) of an existing tree."""
    entries: list[str] = []
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = os.path.join(dirpath, name)
            size = os.lstat(p).st_size
            total += size
            entries.append(f"{os.path.relpath(p, root)}\0{size}")
    entries.sort()
    return len(entries), total, hashlib.sha256("\n".join(entries).encode()).hexdigest()


def planned_listing(plan: Iterable[tuple[str, int]]) -> tuple[int, int, str]:
    """The (files, bytes, digest) :func:`listing` gives for a tree of these (path, size) files."""
    plan = list(plan)
    entries = sorted(f"{rel}\0{size}" for rel, size in plan)
    return len(entries), sum(s for _, s in plan), hashlib.sha256("\n".join(entries).encode()).hexdigest()


def finish_dirs(tree: Path, mtime: int = FIXED_MTIME) -> None:
    """Every directory of a generated tree: mode 0755 and a fixed mtime."""
    for dirpath, _dirs, _files in os.walk(tree, topdown=False):
        os.chmod(dirpath, 0o755)
        os.utime(dirpath, (mtime, mtime))


def ensure_generated(tree: Path, matches: Callable[[], bool], generate: Callable[[], object],
                     made_by: str, hint: str = "choose another directory") -> bool:
    """Make sure ``tree`` is the tree ``matches`` checks for, generating it otherwise; True if it
    was (re)generated. A directory without our manifest is never deleted (it may be someone's
    data): that is an error."""
    if matches():
        return False
    if tree.exists():
        if not manifest_path(tree).exists():
            raise SystemExit(f"bench: {tree} exists but was not made by {made_by}; remove it or {hint}")
        log(f"{tree} does not match the requested tree (or was left changed); regenerating")
        shutil.rmtree(tree)
        manifest_path(tree).unlink()
    generate()
    return True
