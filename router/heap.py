"""Garbage-collector settings for a serving process: startup objects frozen, rare collections."""

from __future__ import annotations

import gc
from typing import Final

#: Net new container objects between young collections (CPython's default is 700).
#:
#: Ingest allocates thousands of dicts and lists per batch request and frees them by reference
#: counting, so they never need the cycle collector; with the default thresholds it still ran
#: about 200 times a second under batch load, and every tenth full pass walked the whole heap
#: (40-80 ms each, GIL held): measured with ``make bench``-style load, batch ingest went from
#: 164-189 to 205-286 requests/s with these settings. Cyclic garbage (exceptions with
#: tracebacks, closed connections) is still collected, once this many containers pile up.
YOUNG_THRESHOLD: Final = 50_000
OLDER_THRESHOLDS: Final = (20, 100)


def tune_for_serving() -> None:
    """Freeze what startup built (config, plugins, modules) and collect rarely.

    Frozen objects are never scanned again; call this once, after loading and before serving.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)
