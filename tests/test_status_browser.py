"""The status page in a real browser: Debian's headless Chromium driven by selenium, against
``ipmirror serve`` with a synced mirror. The page renders (phone-sized and desktop), each plot
has one point per version, the browser logs no console error, every link resolves, and a
screenshot is saved (``IPMIRROR_STATUS_SCREENSHOT=PATH`` keeps a copy, e.g. docs/status.png).

Skipped when ``chromium`` or ``chromedriver`` is missing (Debian: ``apt-get install chromium
chromium-driver``; .ci/run installs them).
"""

from __future__ import annotations

import os
import shutil
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from _serve import run_cli, serve

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER),
                                reason="needs Debian's chromium and chromium-driver")
VERSIONS = 6
# this closed network: no background traffic to outside hosts (../shared/CLIENTS.md)
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    assert CHROMIUM is not None and DRIVER is not None
    opts.binary_location = CHROMIUM
    for f in FLAGS:
        opts.add_argument(f)
    opts.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=opts, service=Service(executable_path=DRIVER))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def mirror_repo(tmp_path: Path) -> Path:
    repo, tree = tmp_path / "repo", tmp_path / "site"
    (tree / "docs").mkdir(parents=True)
    (tree / "index.html").write_bytes(b"<p>hello</p>\n")
    run_cli(repo, "mirror", "add", "site", tree)
    for i in range(VERSIONS):  # growing by a few files of different sizes each time
        for j in range(i + 1):
            (tree / "docs" / f"v{i}-{j}.txt").write_bytes(os.urandom(1000 * (i + 1) * (j + 1)))
        run_cli(repo, "mirror", "sync", "site")
    return repo


def test_status_page_in_chromium(browser: Any, mirror_repo: Path, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    with serve(mirror_repo, tmp_path / "srv", "--workers", "2") as srv:
        browser.set_window_size(412, 915)  # a phone
        browser.get(srv.base + "/")
        assert browser.title == "ipmirror status"
        assert browser.find_element(By.TAG_NAME, "h1").text == "ipmirror status"
        section = browser.find_element(By.ID, "mirror-site")
        plots = section.find_elements(By.CSS_SELECTOR, "svg[data-points]")
        assert [p.get_attribute("data-title") for p in plots] == ["bytes", "files changed", "sync time"]
        for p in plots:
            assert p.get_attribute("data-points") == str(VERSIONS)
            assert len(p.find_elements(By.CSS_SELECTOR, "circle.pt")) == VERSIONS
            assert p.size["width"] > 100 and p.size["height"] > 30  # drawn, not collapsed
        text = section.text
        assert "up to date" in text and f"{VERSIONS} of {VERSIONS}" in text
        # phone-friendly: nothing wider than the screen
        assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
        phone = tmp_path / "status-phone.png"
        assert browser.save_screenshot(str(phone)) and phone.stat().st_size > 1000

        links = {a.get_attribute("href") for a in browser.find_elements(By.TAG_NAME, "a")}
        assert any("/-/mirrors/site/diff/" in h for h in links) and any("/ipns/site/" in h for h in links)
        for href in sorted(links):
            assert urllib.parse.urlsplit(href).netloc == f"127.0.0.1:{srv.port}", href  # no outside host
            with urllib.request.urlopen(href, timeout=30) as resp:  # raises on 4xx/5xx
                assert resp.status == 200, href
        browser.get(srv.base + f"/-/mirrors/site/diff/{VERSIONS - 1}..{VERSIONS}")
        assert f"docs/v{VERSIONS - 1}-0.txt" in browser.find_element(By.TAG_NAME, "body").text

        browser.set_window_size(1100, 1400)
        browser.get(srv.base + "/-/status")
        assert len(browser.find_elements(By.CSS_SELECTOR, "circle.pt")) == 3 * VERSIONS
        shot = tmp_path / "status.png"
        assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 1000
        keep = os.environ.get("IPMIRROR_STATUS_SCREENSHOT")
        if keep:
            shutil.copyfile(shot, keep)
        errors = [e for e in browser.get_log("browser") if e.get("level") == "SEVERE"]
        assert not errors, errors
