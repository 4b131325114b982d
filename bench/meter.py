"""CPU per request of the status meter's wrapper (``status/meter.py``) against the bare handler,
in-process with no I/O: the steady part of the metrics-on cost, beside ``bench/gateway.py``'s
A/B pairs (``--config status.metrics=false``), which a busy machine makes noisy.

Usage::

    python bench/meter.py [--rounds 11] [--calls 200000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from ipmirror.serving import GATEWAY_PREFIXES, STATUS_PREFIXES
from ipmirror.status.meter import Meter


class _Request:
    raw_path = "/ipfs/bafybeibaomt4skdmp4nvdxw3tf7m45cn2t4c4nm6bjlxq3ttzg2a5ymyve/small/0001.bin"


class _Response:
    status = 200


_RESP = _Response()


async def _handler(request: Any) -> Any:
    return _RESP


async def _per_call(h: Any, n: int) -> float:
    req = _Request()
    t0 = time.process_time()
    for _ in range(n):
        await h(req)
    return (time.process_time() - t0) / n * 1e6


async def _main(rounds: int, calls: int) -> None:
    meter = Meter(GATEWAY_PREFIXES + STATUS_PREFIXES)
    wrapped = meter.wrap(_handler)  # type: ignore[arg-type]
    bare, metered = [], []
    for _ in range(rounds):
        bare.append(await _per_call(_handler, calls))
        metered.append(await _per_call(wrapped, calls))
        meter.flush()
    b, m = statistics.median(bare), statistics.median(metered)
    print(f"bare {b:.3f} us, metered {m:.3f} us: {m - b:.3f} us CPU per request (medians of {rounds})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=11)
    ap.add_argument("--calls", type=int, default=200000)
    a = ap.parse_args()
    asyncio.run(_main(a.rounds, a.calls))


if __name__ == "__main__":
    main()
