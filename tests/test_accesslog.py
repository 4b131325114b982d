"""The batched access log (gateway/accesslog.py): aiohttp's default line format, JSON lines, and
batches that never split a line and stay below PIPE_BUF (workers share one stderr pipe)."""

from __future__ import annotations

import asyncio
import json
import logging

from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from ipmirror.gateway.accesslog import MAX_WRITE, AccessSink


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def sink(json_lines: bool = False) -> tuple[AccessSink, Capture]:
    logger = logging.getLogger(f"test.access.{json_lines}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    cap = Capture()
    logger.handlers[:] = [cap]
    return AccessSink(logger, json_lines=json_lines), cap


def test_lines_like_aiohttp_and_batched_under_pipe_buf() -> None:
    async def run() -> None:
        s, cap = sink()
        access = s.logger_class()(s.logger, "")
        assert access.enabled
        for i in range(300):  # more than one batch, and more than MAX_WRITE bytes per batch
            req = make_mocked_request("GET", f"/ipfs/bafy/ünï-{i:03d}.bin?x=1",
                                      headers={"User-Agent": "pip/24 ünï", "Referer": "http://r/"})
            access.log(req, web.Response(body=b"x" * i), 0.001)
        s.flush()
        assert cap.messages and all(len(m.encode()) + 1 <= MAX_WRITE for m in cap.messages)
        lines = "\n".join(cap.messages).split("\n")
        assert len(lines) == 300
        first = lines[0]
        assert first.startswith("- [") or first.split(" ", 1)[1].startswith("[")
        assert '"GET /ipfs/bafy/%C3%BCn%C3%AF-000.bin?x=1 HTTP/1.1" 200 ' in first  # as sent
        assert first.endswith('"http://r/" "pip/24 ünï"')
        assert [ln.split('"')[1].split("-")[-1][:3] for ln in lines] == [f"{i:03d}" for i in range(300)]

    asyncio.run(run())


def test_json_lines_and_flush_after_a_delay() -> None:
    async def run() -> None:
        s, cap = sink(json_lines=True)
        access = s.logger_class()(s.logger, "")
        access.log(make_mocked_request("HEAD", "/ipns/site/a"), web.Response(status=404), 0.5)
        assert cap.messages == []  # not yet: batched
        await asyncio.sleep(0.7)  # the timer flushes within MAX_DELAY
        (line,) = cap.messages
        doc = json.loads(line)
        got = (doc["method"], doc["path"], doc["status"], doc["seconds"])
        assert got == ("HEAD", "/ipns/site/a", 404, 0.5)

    asyncio.run(run())


def test_what_clients_send_is_escaped() -> None:
    """Quotes, backslashes and control characters of the path, Referer and User-Agent cannot
    forge a field or a line (issue #10)."""
    async def run() -> None:
        s, cap = sink()
        access = s.logger_class()(s.logger, "")
        req = make_mocked_request("GET", "/ipfs/bafy/a%22b", headers={
            "User-Agent": 'evil" 200 "x\x1b[31m\u2028', "Referer": 'a"b\\c'})
        access.log(req, web.Response(status=200, body=b"x"), 0.001)
        s.flush()
        (line,) = cap.messages
        assert line.endswith('"a\\"b\\\\c" "evil\\" 200 \\"x\\x1b[31m\\u2028"'), line
        assert "\n" not in line and "\x1b" not in line
        assert line.count('"') - line.count('\\"') == 6  # request, referer, user agent

    asyncio.run(run())
