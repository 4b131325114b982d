"""HTTP Range requests (RFC 9110 §14), pure.

Usage::

    spans = parse_range("bytes=0-99,-50", size)   # [(0, 100), (size-50, size)] as [start, end)
"""

from __future__ import annotations

MAX_RANGES = 64


class Unsatisfiable(ValueError):
    pass


def parse_range(header: str | None, size: int) -> list[tuple[int, int]] | None:
    """Spans ``[start, end)`` for a Range header, None to ignore it (absent or not bytes or
    malformed, which RFC 9110 says to ignore), or raise Unsatisfiable (416)."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or not spec.strip():
        return None
    spans: list[tuple[int, int]] = []
    parts = [p.strip() for p in spec.split(",")]
    if len(parts) > MAX_RANGES:
        return None
    for part in parts:
        first, dash, last = part.partition("-")
        if not dash:
            return None
        first, last = first.strip(), last.strip()
        try:
            if first == "":
                if not last.isdigit():
                    return None
                n = int(last)
                if n == 0:
                    continue
                spans.append((max(0, size - n), size))
            else:
                if not first.isdigit() or (last and not last.isdigit()):
                    return None
                a = int(first)
                if a >= size:
                    continue  # not satisfiable; 416 if no other range is
                b = int(last) + 1 if last else size
                if b <= a:
                    return None
                spans.append((a, min(b, size)))
        except ValueError:
            return None
    if not spans:
        raise Unsatisfiable(f"bytes */{size}")
    return spans
