"""Real package managers and a real IPFS client against ``ipmirror serve`` on 127.0.0.1.

Each registry is a static tree made here (wheels and a PEP 503 index; .debs with apt-ftparchive;
npm packuments and tarballs), mirrored with ``ipmirror mirror add`` + ``sync`` and served under
``/ipns/<mirror>/``. The clients run fully isolated from the machine's configuration (see
shared/CLIENTS.md): their own config, caches and state in temporary directories, proxies and
registry variables removed, so a package can only come from our server.

A test skips only when its client (or the tool that builds its fixture) is not installed;
``.ci/run`` installs them on a fresh machine.
"""

from __future__ import annotations

import base64
import getpass
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from _serve import Server, cli_bytes, run_cli, serve
from ipmirror.codec.cid import CID

JS_DIR = Path(__file__).resolve().parent / "js"
ZIP_TIME = (2020, 2, 2, 0, 0, 0)


def client_env(**extra: str) -> dict[str, str]:
    """The environment without anything that points a client elsewhere: pip/uv/npm settings,
    proxies, apt configuration."""
    drop = ("PIP_", "UV_", "NPM_CONFIG_", "YARN_", "PNPM_")
    env = {k: v for k, v in os.environ.items()
           if not k.upper().startswith(drop) and not k.lower().endswith("_proxy") and k != "APT_CONFIG"}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.update(extra)
    return env


def run(cmd: list[str], *, env: dict[str, str], cwd: Path | None = None, timeout: float = 180,
        check: bool = True) -> subprocess.CompletedProcess[str]:
    p = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} -> {p.returncode}\n--- stdout\n{p.stdout[-4000:]}\n"
                             f"--- stderr\n{p.stderr[-4000:]}")
    return p


def need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (.ci/run installs them)")


@dataclass
class Registry:
    srv: Server
    repo: Path
    tmp: Path

    def url(self, mirror: str) -> str:
        return f"{self.srv.base}/ipns/{mirror}/"

    def publish(self, name: str, tree: Path) -> str:
        """Mirror ``tree`` as ``name`` (added on first use) and sync it; the new root."""
        if name not in {m["Name"] for m in json.loads(run_cli(self.repo, "mirror", "list", "--json"))}:
            run_cli(self.repo, "mirror", "add", name, tree)
        return str(json.loads(run_cli(self.repo, "mirror", "sync", name, "--json"))["root"])


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    tmp = tmp_path_factory.mktemp("clients")
    repo = tmp / "repo"
    run_cli(repo, "init")
    with serve(repo, tmp / "serve") as srv:
        yield Registry(srv, repo, tmp)
    assert "internal error serving" not in srv.log_text(), srv.log_text()[-5000:]


# -- pip ------------------------------------------------------------------------------------------

def _b64_digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def make_wheel(out: Path, name: str, version: str, requires: list[str], source: str) -> Path:
    """A pure-Python wheel, written by hand per the wheel spec (PEP 427 / binary distribution
    format): the package, METADATA, WHEEL and a RECORD of sha256 digests."""
    module = name.replace("-", "_")
    info = f"{module}-{version}.dist-info"
    metadata = "".join([f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
                        "Summary: a wheel made by ipmirror's tests\n",
                        *(f"Requires-Dist: {r}\n" for r in requires)])
    files = {
        f"{module}/__init__.py": source.encode(),
        f"{info}/METADATA": metadata.encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: ipmirror-tests\nRoot-Is-Purelib: true\n"
                         b"Tag: py3-none-any\n",
    }
    record = "".join(f"{p},sha256={_b64_digest(d)},{len(d)}\n" for p, d in files.items())
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    path = out / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for p, d in files.items():
            z.writestr(zipfile.ZipInfo(p, ZIP_TIME), d)
    (out / f"{path.name}.metadata").write_bytes(files[f"{info}/METADATA"])  # PEP 658
    return path


@dataclass
class PyIndex:
    url: str
    wheels: dict[str, bytes]  # file name -> bytes


@pytest.fixture(scope="module")
def pypi(registry: Registry) -> PyIndex:
    tree = registry.tmp / "pypi"
    simple = tree / "simple"
    projects: dict[str, list[tuple[str, list[str], str]]] = {
        "ipm-alpha": [("1.0", ["ipm-beta>=1.0"], "from ipm_beta import VERSION as BETA\nNAME = 'alpha'\n")],
        "ipm-beta": [("1.0", [], "VERSION = '1.0'\n"), ("1.1", [], "VERSION = '1.1'\n")],
    }
    wheels = {}
    rows = []
    for project, versions in projects.items():
        d = simple / project
        d.mkdir(parents=True)
        links = []
        for version, requires, source in versions:
            whl = make_wheel(d, project, version, requires, source)
            wheels[whl.name] = whl.read_bytes()
            meta = hashlib.sha256((d / f"{whl.name}.metadata").read_bytes()).hexdigest()
            links.append(f'<a href="{whl.name}#sha256={hashlib.sha256(wheels[whl.name]).hexdigest()}" '
                         f'data-dist-info-metadata="sha256={meta}" data-core-metadata="sha256={meta}">'
                         f"{whl.name}</a><br>")
        (d / "index.html").write_text("<!DOCTYPE html>\n<html><head><meta name=\"pypi:repository-version\" "
                                      f"content=\"1.1\"><title>{project}</title></head><body>\n"
                                      + "\n".join(links) + "\n</body></html>\n")
        rows.append(f'<a href="{project}/">{project}</a>')
    (simple / "index.html").write_text("<!DOCTYPE html>\n<html><body>\n" + "\n".join(rows)
                                       + "\n</body></html>\n")
    registry.publish("pypi", tree)
    return PyIndex(registry.url("pypi") + "simple/", wheels)


def fresh_venv(path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, timeout=120)
    return path / "bin" / "python"


def pip(python: Path, *args: str, check: bool = True,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """pip (this interpreter's) installing into ``python``'s environment, isolated."""
    env = client_env(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    return run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-cache-dir",
                "--only-binary", ":all:", *args], env=env, cwd=cwd, check=check)


def test_pip_installs_from_the_mirror(pypi: PyIndex, tmp_path: Path) -> None:
    python = fresh_venv(tmp_path / "venv")
    p = pip(python, "--index-url", pypi.url, "ipm-alpha")
    assert "Successfully installed ipm-alpha-1.0 ipm-beta-1.1" in p.stdout, p.stdout
    out = subprocess.run([str(python), "-c", "import ipm_alpha; print(ipm_alpha.NAME, ipm_alpha.BETA)"],
                         capture_output=True, text=True, check=True, env=client_env())
    assert out.stdout.split() == ["alpha", "1.1"]


def test_pip_require_hashes(pypi: PyIndex, tmp_path: Path) -> None:
    def sha(name: str) -> str:
        return hashlib.sha256(pypi.wheels[name]).hexdigest()

    req = tmp_path / "requirements.txt"
    req.write_text(f"ipm-alpha==1.0 --hash=sha256:{sha('ipm_alpha-1.0-py3-none-any.whl')}\n"
                   f"ipm-beta==1.0 --hash=sha256:{sha('ipm_beta-1.0-py3-none-any.whl')}\n")
    python = fresh_venv(tmp_path / "venv")
    p = pip(python, "--index-url", pypi.url, "--require-hashes", "-r", str(req))
    assert "Successfully installed ipm-alpha-1.0 ipm-beta-1.0" in p.stdout, p.stdout
    # and the hashes are really compared with the bytes we serve
    req.write_text(f"ipm-beta==1.1 --hash=sha256:{sha('ipm_beta-1.0-py3-none-any.whl')}\n")
    p = pip(fresh_venv(tmp_path / "venv2"), "--index-url", pypi.url, "--require-hashes", "-r", str(req),
            check=False)
    assert p.returncode != 0 and "DO NOT MATCH THE HASHES" in p.stderr, p.stderr


# -- apt ------------------------------------------------------------------------------------------

@dataclass
class AptRepo:
    url: str
    debs: dict[str, bytes]  # package name -> .deb bytes


def _deb(work: Path, out: Path, name: str, depends: str = "") -> Path:
    root = work / name
    (root / "DEBIAN").mkdir(parents=True)
    (root / "usr/share/doc" / name).mkdir(parents=True)
    (root / "usr/share/doc" / name / "README").write_text(f"{name}: a package made by ipmirror's tests\n")
    control = (f"Package: {name}\nVersion: 1.0\nArchitecture: all\n"
               "Maintainer: ipmirror tests <tests@example.invalid>\n"
               + (f"Depends: {depends}\n" if depends else "")
               + f"Description: {name} for ipmirror's client tests\n a test package\n")
    (root / "DEBIAN/control").write_text(control)
    deb = out / f"{name}_1.0_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root), str(deb)],
                   check=True, capture_output=True, timeout=120)
    return deb




@pytest.fixture(scope="module")
def apt_repo(registry: Registry) -> AptRepo:
    """One tree, two layouts: a standard one (dists/stable/main/binary-ARCH/Packages, debs in
    pool/) and a flat one (Packages and Release at the top)."""
    need("apt-get", "dpkg-deb", "apt-ftparchive", "dpkg")
    tree = registry.tmp / "debian"
    pool = tree / "pool/main"
    pool.mkdir(parents=True)
    debs = {n: _deb(registry.tmp / "deb-build", pool, n, d).read_bytes()
            for n, d in [("ipm-hello", ""), ("ipm-world", "ipm-hello (>= 1.0)")]}
    env = client_env()
    arch = run(["dpkg", "--print-architecture"], env=env).stdout.strip()
    packages = run(["apt-ftparchive", "packages", "pool"], env=env, cwd=tree).stdout
    for index in (tree / f"dists/stable/main/binary-{arch}", tree):
        index.mkdir(parents=True, exist_ok=True)
        (index / "Packages").write_text(packages)
        (index / "Packages.gz").write_bytes(gzip.compress(packages.encode(), mtime=0))
    fields = {"Origin": "ipmirror-tests", "Label": "ipmirror-tests", "Suite": "stable", "Codename": "stable",
              "Architectures": arch, "Components": "main"}
    release = run(["apt-ftparchive", *(x for k, v in fields.items()
                                       for x in ("-o", f"APT::FTPArchive::Release::{k}={v}")),
                   "release", "dists/stable"], env=env, cwd=tree).stdout
    (tree / "dists/stable/Release").write_text(release)
    flat = run(["apt-ftparchive", "-o", "APT::FTPArchive::Release::Origin=ipmirror-tests", "release", "."],
               env=env, cwd=tree).stdout
    (tree / "Release").write_text(flat)
    registry.publish("debian", tree)
    return AptRepo(registry.url("debian"), debs)


def apt(tmp: Path, source: str) -> tuple[list[str], dict[str, str]]:
    """An apt-get command prefix and environment that use only ``tmp`` (no system state)."""
    empty = tmp / "empty.d"
    for d in (empty, tmp / "state/lists/partial", tmp / "cache/archives/partial", tmp / "log"):
        d.mkdir(parents=True, exist_ok=True)
    (tmp / "status").write_text("")
    (tmp / "sources.list").write_text(source + "\n")
    conf = tmp / "apt.conf"
    conf.write_text(f'Dir::Etc::Parts "{empty}";\nDir::Etc::Main "/dev/null";\n')
    opts = {
        "Dir::Etc::SourceList": tmp / "sources.list", "Dir::Etc::SourceParts": empty,
        "Dir::Etc::Preferences": "/dev/null", "Dir::Etc::PreferencesParts": empty,
        "Dir::Etc::Trusted": "/dev/null", "Dir::Etc::TrustedParts": empty,
        "Dir::State": tmp / "state", "Dir::State::status": tmp / "status", "Dir::Cache": tmp / "cache",
        "Dir::Log": tmp / "log", "Debug::NoLocking": "1", "APT::Get::List-Cleanup": "0",
        "Acquire::Languages": "none", "APT::Sandbox::User": getpass.getuser(), "Acquire::Retries": "0",
    }
    cmd = ["apt-get", "-q", *(x for k, v in opts.items() for x in ("-o", f"{k}={v}"))]
    return cmd, client_env(APT_CONFIG=str(conf), LC_ALL="C")


@pytest.mark.parametrize("layout", [
    "stable main",
    "./",
])
def test_apt_get_update_and_download(apt_repo: AptRepo, tmp_path: Path, layout: str) -> None:
    cmd, env = apt(tmp_path / "apt", f"deb [trusted=yes] {apt_repo.url} {layout}")
    p = run([*cmd, "update"], env=env)
    assert apt_repo.url.rstrip("/") in p.stdout and "Err" not in p.stdout, p.stdout
    out = tmp_path / "downloads"
    out.mkdir()
    run([*cmd, "download", "ipm-world", "ipm-hello"], env=env, cwd=out)
    for name, deb in apt_repo.debs.items():
        assert (out / f"{name}_1.0_all.deb").read_bytes() == deb
    p = run(["apt-cache", *cmd[2:], "depends", "ipm-world"], env=env)
    assert "Depends: ipm-hello" in p.stdout, p.stdout


# -- npm ------------------------------------------------------------------------------------------

def _npm_tarball(name: str, version: str, files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"package/{path}")
            info.size, info.mode, info.mtime = len(data), 0o644, 499162500
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buf.getvalue(), mtime=0)


@dataclass
class NpmRegistry:
    url: str
    integrity: dict[str, str]  # package name -> sha512 integrity


@pytest.fixture(scope="module")
def npm_registry(registry: Registry) -> NpmRegistry:
    """Packuments as files named like the packages (``ipm-alpha``, ``@ipm/beta``: npm asks for
    ``/@ipm%2fbeta``, which the gateway decodes to that path), tarballs under ``-/``; the tarball
    URLs carry the full ``/ipns/npm/`` prefix, so the tree is written once the port is known."""
    need("npm", "node")
    url = registry.url("npm")
    tree = registry.tmp / "npm"
    packages = {
        "ipm-alpha": ({"@ipm/beta": "^1.0.0"},
                      "const beta = require('@ipm/beta')\nmodule.exports = () => `alpha+${beta()}`\n"),
        "@ipm/beta": ({}, "module.exports = () => 'beta'\n"),
    }
    integrity = {}
    for name, (deps, index_js) in packages.items():
        manifest = {"name": name, "version": "1.0.0", "main": "index.js", "dependencies": deps,
                    "license": "MIT"}
        tgz = _npm_tarball(name, "1.0.0", {"package.json": json.dumps(manifest, indent=2),
                                           "index.js": index_js})
        file = f"{name.replace('/', '-').lstrip('@')}-1.0.0.tgz"
        (tree / "-").mkdir(parents=True, exist_ok=True)
        (tree / "-" / file).write_bytes(tgz)
        integrity[name] = "sha512-" + base64.b64encode(hashlib.sha512(tgz).digest()).decode()
        dist = {"tarball": f"{url}-/{file}", "integrity": integrity[name],
                "shasum": hashlib.sha1(tgz).hexdigest()}
        packument = {"name": name, "dist-tags": {"latest": "1.0.0"},
                     "versions": {"1.0.0": {**manifest, "dist": dist}}}
        doc = tree / name
        doc.parent.mkdir(parents=True, exist_ok=True)
        doc.write_text(json.dumps(packument, indent=2))
    registry.publish("npm", tree)  # while the server runs: it serves the new mirror at once
    return NpmRegistry(url, integrity)


def test_scoped_packument_under_every_spelling(npm_registry: NpmRegistry, registry: Registry) -> None:
    """npm and yarn ask for /@scope%2fname, pnpm for /@scope%2Fname; the decoded form works too."""
    bodies = set()
    for spelling in ("@ipm%2fbeta", "@ipm%2Fbeta", "@ipm/beta"):
        r = registry.srv.get(f"/ipns/npm/{spelling}", {"Accept": "application/vnd.npm.install-v1+json"})
        assert r.status == 200, (spelling, r.status, r.body[:200])
        bodies.add(r.body)
    assert len(bodies) == 1 and json.loads(bodies.pop())["name"] == "@ipm/beta"


def test_npm_install(npm_registry: NpmRegistry, tmp_path: Path) -> None:
    prefix, cache = tmp_path / "project", tmp_path / "npm-cache"
    prefix.mkdir()
    (prefix / "package.json").write_text('{"name": "consumer", "version": "0.0.0", "private": true}\n')
    (tmp_path / "npmrc").write_text("")
    (tmp_path / "global-npmrc").write_text("")
    env = client_env(npm_config_userconfig=str(tmp_path / "npmrc"),
                     npm_config_globalconfig=str(tmp_path / "global-npmrc"),
                     npm_config_update_notifier="false")
    npm = ["npm", "--registry", npm_registry.url, "--cache", str(cache), "--prefix", str(prefix),
           "--no-audit", "--no-fund", "--prefer-online", "--fetch-retries", "0"]
    run([*npm, "install", "ipm-alpha"], env=env, cwd=prefix)
    run([*npm, "install", "@ipm/beta"], env=env, cwd=prefix)
    out = run(["node", "-e", "console.log(require('ipm-alpha')())"], env=env, cwd=prefix)
    assert out.stdout.strip() == "alpha+beta"
    lock = json.loads((prefix / "package-lock.json").read_text())["packages"]
    for name, integrity in npm_registry.integrity.items():
        entry = lock[f"node_modules/{name}"]
        assert entry["integrity"] == integrity
        assert entry["resolved"].startswith(npm_registry.url + "-/")
    manifest = json.loads((prefix / "package.json").read_text())
    assert set(manifest["dependencies"]) == {"ipm-alpha", "@ipm/beta"}


# -- an IPFS client: @helia/verified-fetch --------------------------------------------------------

def _trustless_gateway_ready(registry: Registry, cid: str) -> str | None:
    """Why verified-fetch cannot run against this gateway yet, or None."""
    r = registry.srv.get(f"/ipfs/{cid}?format=raw", {"Accept": "application/vnd.ipld.raw"})
    if r.status != 200:
        return f"GET /ipfs/<cid>?format=raw answers {r.status}"
    if not (r.optional("Content-Type") or "").startswith("application/vnd.ipld.raw"):
        return f"GET /ipfs/<cid>?format=raw answers {r.header('Content-Type')}, not a raw block"
    if hashlib.sha256(r.body).digest() != CID.parse(cid).digest:
        return "GET /ipfs/<cid>?format=raw does not answer with the block"
    return None


def test_verified_fetch_through_the_gateway(registry: Registry) -> None:
    need("node")
    if not (JS_DIR / "node_modules/@helia/verified-fetch/package.json").exists():
        pytest.skip("tests/js/node_modules lacks @helia/verified-fetch (run: npm ci --prefix tests/js)")
    tree = registry.tmp / "ipfs-site"
    files = {
        "hello.txt": b"hello, verified fetch\n",
        "dir/nested/deep.txt": b"deep in a directory\n",
        "www/index.html": b"<!doctype html><title>www</title><p>an index</p>\n",
        "www/style.css": b"p { color: green }\n",
        "ünï/naïve name.txt": "naïve\n".encode(),
    }
    for rel, content in files.items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_bytes(content)
    root = registry.publish("ipfs-site", tree)
    chunked = registry.tmp / "chunked.bin"
    chunked.write_bytes(os.urandom(150_000))
    chunked_cid = run_cli(registry.repo, "add", "-Q", "--chunker", "size-4096", "--max-links", "8",
                          chunked).strip()
    if (why := _trustless_gateway_ready(registry, root)) is not None:
        pytest.skip(f"the trustless gateway is not there yet: {why}")

    paths = {
        f"{root}/hello.txt": files["hello.txt"],
        f"{root}/dir/nested/deep.txt": files["dir/nested/deep.txt"],
        f"{root}/www/": files["www/index.html"],  # a directory: its index.html
        f"{root}/%C3%BCn%C3%AF/na%C3%AFve%20name.txt": files["ünï/naïve name.txt"],
        chunked_cid: chunked.read_bytes(),  # 37 leaves, two levels of nodes above them: each verified
    }
    p = run(["node", str(JS_DIR / "verified_fetch.mjs"), registry.srv.base, *paths], env=client_env(),
            cwd=JS_DIR, timeout=120, check=False)
    results = {r["path"]: r for r in map(json.loads, p.stdout.splitlines())}
    assert p.returncode == 0, (p.stdout, p.stderr[-3000:])
    for path, content in paths.items():
        r = results[path]
        assert r["status"] == 200 and r["length"] == len(content), r
        assert r["sha256"] == hashlib.sha256(content).hexdigest(), r
    # the root directory has no index.html: verified-fetch answers with its (verified) dag-pb block
    p = run(["node", str(JS_DIR / "verified_fetch.mjs"), registry.srv.base, root], env=client_env(),
            cwd=JS_DIR, timeout=120)
    r = json.loads(p.stdout)
    block = cli_bytes(registry.repo, "block", "get", root)
    assert r["status"] == 200 and r["sha256"] == hashlib.sha256(block).hexdigest(), r
