"""Interpreter settings for a serving process: rare garbage collection, a short GIL interval."""

from __future__ import annotations

import gc
import sys
from typing import Final

#: Net new container objects between young collections (CPython's default is 700).
#:
#: Ingest allocates thousands of dicts and lists per batch request and frees them by reference
#: counting, so they never need the cycle collector; with the default thresholds it still ran
#: about 200 times a second under batch load, and every tenth full pass walked the whole heap
#: (40-80 ms each, GIL held): measured under bench load, batch ingest went from 164-189 to
#: 205-286 requests/s with these settings. Cyclic garbage (exceptions with tracebacks, closed
#: connections) is still collected, once this many containers pile up.
YOUNG_THRESHOLD: Final = 50_000
OLDER_THRESHOLDS: Final = (20, 100)

#: Seconds a busy thread may hold the GIL while another waits (CPython's default is 5 ms).
#:
#: The outbox writer thread releases the GIL for every SQLite step (BEGIN, INSERT, COMMIT's
#: fsync) and then waits for the event loop to let go of it; with 5 ms each commit of single
#: events took ~12 ms. At 1 ms single-event ingest rose 10-15% (3.4-3.6k to 3.9-4.1k
#: requests/s) and batches did not lose.
SWITCH_INTERVAL: Final = 0.001


def tune_for_serving() -> None:
    """Freeze what startup built (config, plugins, modules), collect rarely, switch sooner.

    Frozen objects are never scanned again; call this once, after loading and before serving.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)
    sys.setswitchinterval(SWITCH_INTERVAL)
