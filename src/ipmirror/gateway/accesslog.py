"""A cheap access log: one line per request, written to a logger in batches.

Usage::

    sink = AccessSink(logging.getLogger("ipmirror.access"), json_lines=False)
    runner = web.AppRunner(app, access_log=sink.logger, access_log_class=sink.logger_class())
    ...
    sink.flush()  # at shutdown (the app's on_cleanup)

aiohttp's own ``AccessLogger`` interprets a format string and makes one logging call (one
``write`` on stderr) per request: measured ~55 µs a request, as much as serving a small file.
Here a line is one f-string (the same text as aiohttp's default format, or a JSON object), and
what clients send (path, Referer, User-Agent) is escaped as nginx does (``"`` -> ``\\"``,
``\\`` -> ``\\\\``, control and other unprintable characters -> ``\\xHH``), so a line is always
one line whose quoted fields can be split reliably. Lines go to the logger joined (in pieces
under ``PIPE_BUF``, so workers sharing a pipe never splice each other's lines), at most
``MAX_DELAY`` seconds or ``MAX_LINES`` lines late.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Final

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

MAX_LINES: Final = 256
MAX_DELAY: Final = 0.5  # seconds
MAX_WRITE: Final = 4000  # bytes per logging call, newline included: under PIPE_BUF (4096)


def escape(text: str) -> str:
    """``text`` for a quoted field of a text access log line (see the module docstring)."""
    if text.isprintable() and '"' not in text and "\\" not in text:
        return text
    out = []
    for ch in text:
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
    return "".join(out)


class AccessSink:
    """The lines of one process (aiohttp makes an access logger per connection, all feed this)."""

    def __init__(self, logger: logging.Logger, json_lines: bool = False) -> None:
        self.logger = logger
        self.json_lines = json_lines
        self._lines: list[str] = []
        self._timer: asyncio.TimerHandle | None = None
        self._second = -1
        self._stamp = ""

    def stamp(self, t: float) -> str:
        """``[22/Nov/2026:05:58:10 +0000]`` (local time, as aiohttp), formatted once a second."""
        s = int(t)
        if s != self._second:
            self._second = s
            self._stamp = time.strftime("[%d/%b/%Y:%H:%M:%S %z]", time.localtime(s))
        return self._stamp

    def add(self, line: str) -> None:
        self._lines.append(line)
        if len(self._lines) >= MAX_LINES:
            self.flush()
        elif self._timer is None:
            try:
                self._timer = asyncio.get_running_loop().call_later(MAX_DELAY, self.flush)
            except RuntimeError:  # no loop (not expected in a server): write at once
                self.flush()

    def flush(self) -> None:
        """Hand the lines to the logger in pieces of whole lines below ``PIPE_BUF``: one write of
        at most that size to a pipe is atomic, so workers sharing stderr never splice lines."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        lines, self._lines = self._lines, []
        piece: list[str] = []
        size = 0
        for line in lines:
            n = (len(line) if line.isascii() else len(line.encode())) + 1
            if piece and size + n > MAX_WRITE:
                self.logger.info("\n".join(piece))
                piece, size = [], 0
            piece.append(line)
            size += n
        if piece:
            self.logger.info("\n".join(piece))

    def logger_class(self) -> type[AbstractAccessLogger]:
        sink = self

        class Access(AbstractAccessLogger):
            def log(self, request: web.BaseRequest, response: web.StreamResponse, t: float) -> None:
                now = time.time()
                if sink.json_lines:
                    sink.add(json.dumps({"time": now, "remote": request.remote, "method": request.method,
                                         "path": request.path_qs, "status": response.status,
                                         "bytes": response.body_length, "seconds": round(t, 6)}))
                    return
                v = request.version
                h = request.headers
                sink.add(f'{request.remote or "-"} {sink.stamp(now - t)} "{request.method} '
                         f'{escape(request.path_qs)} HTTP/{v.major}.{v.minor}" {response.status} '
                         f'{response.body_length} "{escape(h.get("Referer", "-"))}" '
                         f'"{escape(h.get("User-Agent", "-"))}"')

            @property
            def enabled(self) -> bool:
                return sink.logger.isEnabledFor(logging.INFO)

        return Access
