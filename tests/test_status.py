"""Operating a server (status/): the status facts and page, health checks, Prometheus metrics
counted in every worker (replayed answers included), staleness of a mirror whose source changed,
discretion (no local paths unless enabled), mirror diffs, ``ipmirror status``, the URL map's
root claim, and the systemd units in contrib/ (``systemd-analyze verify``).

Each server test starts its own ``ipmirror serve`` (a real process tree on 127.0.0.1).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from _serve import Server, run_cli, serve
from ipmirror.errors import InvalidInput
from ipmirror.server.urlmap import check

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository with the mirror ``site`` synced 3 times (each with a change)."""
    base = tmp_path_factory.mktemp("status")
    repo, tree = base / "repo", base / "site"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_bytes(b"alpha\n")
    run_cli(repo, "mirror", "add", "site", tree)
    for i in range(3):
        (tree / "sub" / f"f{i}.txt").write_bytes(b"x" * (100 * (i + 1)))
        run_cli(repo, "mirror", "sync", "site")
    return repo


def source_of(repo: Path) -> Path:
    return repo.parent / "site"


def metrics(srv: Server) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = srv.get("/-/metrics")
    assert r.status == 200 and r.header("Content-Type").startswith("text/plain"), r.status
    out = {}
    for fam in text_string_to_metric_families(r.body.decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def requests_counted(srv: Server, route: str, code: str = "200") -> float:
    return metrics(srv).get(("ipmirror_http_requests_total", (("code", code), ("route", route))), 0.0)


def wait_until(what: object, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not what():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_metrics_count_every_worker_and_replayed_answers(synced: Path, tmp_path: Path) -> None:
    st = json.loads(run_cli(synced, "status", "--json"))
    root = st["mirrors"][0]["latest"]["root"]
    url = f"/ipfs/{root}/a.txt"  # a small file: after its first answer in a worker, replayed
    with serve(synced, tmp_path / "srv", "--workers", "2") as srv:
        assert srv.get("/-/healthy").status == 200
        before = requests_counted(srv, "/ipfs/")
        n_threads, per = 8, 25
        barrier = threading.Barrier(n_threads)
        bad: list[int] = []

        def client() -> None:
            conn = srv.connection()  # keep-alive: the replay's fast path (Prebuilt answers)
            barrier.wait()
            try:
                for _ in range(per):
                    conn.request("GET", url)
                    resp = conn.getresponse()
                    if resp.read() != b"alpha\n":
                        bad.append(resp.status)
            finally:
                conn.close()

        threads = [threading.Thread(target=client) for _ in range(n_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not bad
        total = n_threads * per
        # each worker hands its counts over within a second, whichever worker answers the scrape
        wait_until(lambda: requests_counted(srv, "/ipfs/") - before == total)
        m = metrics(srv)
        count = m[("ipmirror_http_request_duration_seconds_count", (("route", "/ipfs/"),))]
        assert count >= total
        assert ("ipmirror_mirror_last_version_timestamp_seconds", (("mirror", "site"),)) in m
        assert m[("ipmirror_mirror_last_check_timestamp_seconds", (("mirror", "site"),))] > 0
        assert m[("ipmirror_mirror_versions", (("mirror", "site"),))] == 3
        assert m[("ipmirror_store_blocks", ())] > 0
        assert ("ipmirror_mirror_last_sync_duration_seconds", (("mirror", "site"),)) in m
        workers = json.loads(srv.get("/-/status.json").body)["workers"]
        assert len(workers) == 2 and sum(w["requests"] for w in workers) >= total
        assert requests_counted(srv, "other", "404") == 0
        assert srv.get("/nothing").status == 404
        wait_until(lambda: requests_counted(srv, "other", "404") == 1)


def test_health_status_json_and_discretion(synced: Path, tmp_path: Path) -> None:
    with serve(synced, tmp_path / "srv", "--workers", "1") as srv:
        assert srv.get("/-/healthy").body == b"ok\n"
        assert srv.get("/-/ready").status == 200
        r = srv.get("/-/status.json")
        assert r.status == 200 and r.header("Cache-Control") == "no-store"
        facts = json.loads(r.body)
        (m,) = facts["mirrors"]
        assert m["versions"] == 3 and len(m["history"]) == 3 and m["latest"]["files"] == 4
        assert m["stale"] is False and m["links"]["diff"] == "/-/mirrors/site/diff/2..3"
        assert facts["server"]["running"] and facts["store"]["logical_bytes"] > 0
        assert facts["sections"] == {}  # no cache, follow or peer service runs
        for path in ("/", "/-/status", "/-/status.json", "/-/metrics"):
            text = srv.get(path).body.decode()
            for local in (str(synced), str(source_of(synced)), "control.sock"):
                assert local not in text, (path, local)
        page = srv.get("/").body.decode()
        assert "up to date" in page and page.count('class="pt"') == 3 * 3
        for method in ("POST", "PUT", "DELETE"):  # nothing writes
            assert srv.request(method, "/-/status").status == 405
        diff = srv.get("/-/mirrors/site/diff/2..3")
        assert diff.status == 200 and b"sub/f2.txt" in diff.body and b"added" in diff.body
        assert srv.get("/-/mirrors/site/diff/1..9").status == 404
        assert srv.get("/-/mirrors/nope/diff/1..2").status == 404
        assert srv.get("/-/mirrors/site/diff/x..2").status == 400
    run_cli(synced, "config", "set", "status.show_paths", "true")
    run_cli(synced, "config", "set", "status.metrics", "false")
    try:
        with serve(synced, tmp_path / "srv2", "--workers", "1") as srv:
            assert str(source_of(synced)) in srv.get("/").body.decode()
            assert srv.get("/-/metrics").status == 404  # metrics off: nothing counted either
            assert srv.get("/-/healthy").status == 200
    finally:
        run_cli(synced, "config", "set", "status.show_paths", "false")
        run_cli(synced, "config", "set", "status.metrics", "true")


def test_a_changed_source_shows_stale(tmp_path: Path) -> None:
    synced, tree = tmp_path / "repo", tmp_path / "site"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_bytes(b"alpha\n")
    run_cli(synced, "mirror", "add", "site", tree)
    run_cli(synced, "mirror", "sync", "site")
    with serve(synced, tmp_path / "srv", "--workers", "1") as srv:
        def mirror() -> dict[str, object]:
            return json.loads(srv.get("/-/status.json").body)["mirrors"][0]  # type: ignore[no-any-return]

        assert mirror()["stale"] is False
        new = source_of(synced) / "sub" / "late.txt"
        new.write_bytes(b"late\n")  # below a top-level directory: its times change
        assert mirror()["stale"] is True
        assert "stale: source changed" in srv.get("/").body.decode()
        m = metrics(srv)
        assert m[("ipmirror_mirror_stale", (("mirror", "site"),))] == 1
        assert "STALE" in run_cli(synced, "status")
        run_cli(synced, "mirror", "sync", "site")
        assert mirror()["stale"] is False


def test_status_command_without_a_server(synced: Path) -> None:
    st = json.loads(run_cli(synced, "status", "--json"))
    assert st["server"] == {"running": False}
    (m,) = st["mirrors"]
    assert m["latest"]["number"] == 3 and m["stale"] is False and m["checked"]
    assert st["store"]["blocks"] > 0 and "disk_free_bytes" in st["store"]
    text = run_cli(synced, "status")
    assert "mirror site: 3 versions" in text and "up to date" in text and "store:" in text


def test_the_url_map_root_claim() -> None:
    check([("gateway", ("/ipfs/", "/ipns/")), ("status", ("/-/status", "/"))])  # "/" is the root only
    with pytest.raises(InvalidInput):
        check([("a", ("/",)), ("b", ("/",))])


UNITS = ["ipmirror.service", "ipmirror-sync@site.service", "ipmirror-sync@site.timer"]


@pytest.mark.parametrize("unit", UNITS)
def test_systemd_units_verify(unit: str, tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    units = tmp_path / "units"
    units.mkdir()
    for f in (ROOT / "contrib").glob("ipmirror*"):
        text = f.read_text()
        # the units name /usr/bin/ipmirror; verify checks that the program exists. Templates
        # (``@.``) are verified as an instance.
        name = f.name.replace("@.", "@site.")
        (units / name).write_text(text.replace("/usr/bin/ipmirror", shutil.which("ipmirror") or "/bin/true"))
    r = subprocess.run([tool, "verify", "--man=no", str(units / unit)], capture_output=True, text=True,
                       timeout=60)
    problems = [line for line in (r.stderr + r.stdout).splitlines()
                if "ipmirror" in line and "Failed to" not in line.split(":", 1)[0]]
    assert r.returncode == 0, r.stderr + r.stdout
    assert not problems, problems


def test_status_page_in_the_module_is_well_formed() -> None:
    from xml.etree import ElementTree

    from ipmirror.status.page import plot

    svg = plot([1.0, 5.0, 3.0], "bytes", str)
    root = ElementTree.fromstring(svg)
    assert len(root.findall(".//circle")) == 3 and root.find("svg").get("data-points") == "3"


def test_sections_plug_in_from_services_with_gauges() -> None:
    from ipmirror.status.collect import server_facts
    from ipmirror.status.exposition import scrape
    from ipmirror.status.page import render
    from ipmirror.status.sections import default_sections

    sections = default_sections()
    st = {"server": {"running": True, "pid": 1, "started": 1.0, "control_socket": "/x/control.sock"},
          "workers": [], "services": [
              {"name": "cache:pypi", "state": "running", "restarts": 0, "hits": 90, "misses": 10,
               "upstream_errors": 2, "dir": "/srv/secret", "last_error": "StoreError: /srv/secret bad"},
              {"name": "republisher", "state": "running", "restarts": 0}]}
    facts = {"time": 2e9, **server_facts(st), "mirrors": [],
             "store": {"blocks": 1, "logical_bytes": 2, "disk_bytes": 3, "pins": 0}}
    facts["sections"] = {s.key: d for s in sections if (d := s.collect(facts))}
    assert list(facts["sections"]) == ["caches"]  # no follow or peer service: no section
    (row,) = facts["sections"]["caches"]
    assert row["hits"] == 90 and "dir" not in row and row["last_error"] == "StoreError"
    html = render(facts, sections)
    assert '<h2 id="caches">Caches</h2>' in html and "/srv/secret" not in html and "control.sock" not in html
    body, _ctype = scrape(facts, sections)
    fams = {f.name: f for f in text_string_to_metric_families(body.decode())}
    (sample,) = fams["ipmirror_caches_hits"].samples
    assert sample.labels == {"name": "cache:pypi"} and sample.value == 90


def test_meter_counts_in_batches() -> None:
    import asyncio

    from ipmirror.status.meter import Meter

    async def main() -> Meter:
        m = Meter(["/ipfs/", "/-/metrics", "/"])
        for path, code in [("/ipfs/x", 200), ("/ipfs/y", 200), ("/", 200), ("/zzz", 404)]:
            m.add(path, code, 0.0007)
        assert m.pending[("/ipfs/", 200)] == 2 and m.pending[("other", 404)] == 1
        m.flush()
        assert m.pending == {}
        return m

    m = asyncio.run(main())
    requests, duration = m._prometheus()
    assert requests.labels("/ipfs/", "200")._value.get() == 2
    child = duration.labels("/ipfs/")
    assert [b.get() for b in child._buckets][:3] == [0, 2, 0] and child._sum.get() == pytest.approx(0.0014)
    assert m.status()["requests"] == 4
