"""RFC 3339 times (pure), as Go's ``time`` package reads and writes them (IPNS ``Validity``).

Usage::

    ns = parse_rfc3339(b"2026-01-02T03:04:05.5Z")     # nanoseconds since the Unix epoch
    format_rfc3339(ns)                                 # '2026-01-02T03:04:05.5Z'

Rules: times are integers (nanoseconds since the epoch); parsing accepts
``YYYY-MM-DDTHH:MM:SS[.fraction](Z|±hh:mm)`` like ``time.Parse(time.RFC3339Nano)`` (fraction
digits beyond nanoseconds are truncated); formatting writes UTC like ``time.RFC3339Nano``
(trailing zeros of the fraction dropped, ``Z``) for the years 0000..9999. Bad text raises
``InvalidInput``.
"""

from __future__ import annotations

import re
from typing import Final

from ipmirror.errors import InvalidInput

SECOND: Final = 1_000_000_000  # nanoseconds

_RFC3339: Final = re.compile(
    rb"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    rb"(?:Z|([+-])([0-9]{2}):([0-9]{2}))")
_MIN_NS: Final = -62167219200 * SECOND                 # 0000-01-01T00:00:00Z
_MAX_NS: Final = 253402300800 * SECOND - 1             # 9999-12-31T23:59:59.999999999Z


def _days_from_civil(y: int, m: int, d: int) -> int:
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def _civil_from_days(z: int) -> tuple[int, int, int]:
    z += 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + (3 if mp < 10 else -9)
    return yoe + era * 400 + (m <= 2), m, d


def _days_in_month(y: int, m: int) -> int:
    if m == 2:
        return 29 if y % 4 == 0 and (y % 100 != 0 or y % 400 == 0) else 28
    return 30 if m in (4, 6, 9, 11) else 31


def parse_rfc3339(text: bytes | str) -> int:
    """Nanoseconds since the epoch of an RFC 3339 time, as Go's ``time.Parse(RFC3339Nano)`` reads it:
    ``YYYY-MM-DDTHH:MM:SS[.fraction](Z|±hh:mm)``, digits beyond nanoseconds are truncated."""
    raw = text.encode("ascii", "replace") if isinstance(text, str) else bytes(text)
    m = _RFC3339.fullmatch(raw)
    if m is None:
        raise InvalidInput(f"not an RFC 3339 time: {raw[:64]!r}")
    year, month, day, hour, minute, sec = (int(g) for g in m.group(1, 2, 3, 4, 5, 6))
    if not (1 <= month <= 12 and 1 <= day <= _days_in_month(year, month) and hour <= 23 and minute <= 59
            and sec <= 59):
        raise InvalidInput(f"RFC 3339 time out of range: {raw.decode()}")
    frac = m.group(7) or b""
    nanos = int((frac[:9]).ljust(9, b"0")) if frac else 0
    offset = 0
    if m.group(8):
        oh, om = int(m.group(9)), int(m.group(10))
        if oh > 23 or om > 59:
            raise InvalidInput(f"RFC 3339 zone offset out of range: {raw.decode()}")
        offset = (oh * 60 + om) * 60 * (1 if m.group(8) == b"+" else -1)
    seconds = _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + sec - offset
    return seconds * SECOND + nanos


def format_rfc3339(ns: int) -> str:
    """Go's ``t.UTC().Format(time.RFC3339Nano)`` for years 0000..9999."""
    if not _MIN_NS <= ns <= _MAX_NS:
        raise InvalidInput("time is outside the years 0000..9999 that RFC 3339 can write")
    seconds, nanos = divmod(ns, SECOND)
    days, rem = divmod(seconds, 86400)
    y, mo, d = _civil_from_days(days)
    h, rem = divmod(rem, 3600)
    mi, s = divmod(rem, 60)
    frac = "." + f"{nanos:09d}".rstrip("0") if nanos else ""
    return f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}{frac}Z"
