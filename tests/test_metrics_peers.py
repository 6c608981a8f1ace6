"""/metrics adds the ingest processes' counters to the main process's own."""

from __future__ import annotations

import re

import orjson

from router.ingest_channel import decode_added, encode_added
from router.metrics import Metrics
from router.outbox.writer import Added


def samples(metrics: Metrics, name: str) -> dict[str, float]:
    text = metrics.exposition().decode()
    return {m[0]: float(m[1]) for m in re.findall(rf"^{name}(\{{[^}}]*\}}) (\S+)$", text, re.M)}


def ingest_process(received: int, rejected: int) -> dict[str, list[list[object]]]:
    """What an ingest process sends: its counters as JSON, through the channel's encoding."""
    own = Metrics()
    own.received[("shop", "purchase")] += received
    own.rejected["unauthorized"] += rejected
    own.skipped_consent[("shop", "meta", "ad_storage")] += 1
    counts = orjson.loads(orjson.dumps(own.counts()))
    assert isinstance(counts, dict)
    return counts


def test_the_main_process_sums_its_own_and_each_ingest_process_latest_counts() -> None:
    metrics = Metrics()
    metrics.skipped_consent[("shop", "meta", "ad_storage")] += 2  # delivery's own
    metrics.absorb(1, ingest_process(received=3, rejected=1))
    metrics.absorb(2, ingest_process(received=4, rejected=0))
    metrics.absorb(1, ingest_process(received=5, rejected=1))  # the latest replaces
    received = samples(metrics, "tagless_events_received_total")
    assert received == {'{name="purchase",store="shop"}': 9.0}
    rejected = samples(metrics, "tagless_ingest_rejected_requests_total")
    assert rejected == {'{code="unauthorized"}': 1.0}
    skipped = samples(metrics, "tagless_events_skipped_consent_total")
    assert skipped == {'{destination="meta",reason="ad_storage",store="shop"}': 4.0}


def test_a_restarted_ingest_process_does_not_take_back_what_its_predecessor_counted() -> None:
    metrics = Metrics()
    metrics.absorb(1, ingest_process(received=7, rejected=0))
    metrics.absorb(3, ingest_process(received=1, rejected=0))  # serial 1 restarted as 3
    assert samples(metrics, "tagless_events_received_total") == {
        '{name="purchase",store="shop"}': 8.0
    }


def test_a_commit_crosses_the_channel_unchanged() -> None:
    added: Added = Added({("shop", ("meta", "ga4!")): 3, ("blog", ()): 1})
    rows = orjson.loads(orjson.dumps(encode_added(added)))
    assert decode_added(rows) == added


class Tallies:
    """A destination instance's own counters (what ``Destination.counters`` returns)."""

    def __init__(self, **counts: int) -> None:
        self.counts = counts

    def counters(self) -> dict[str, int]:
        return self.counts


def delivery_process(delivered: int, paused: bool) -> dict[str, list[list[object]]]:
    """What a delivery process running the lane shop/meta sends."""
    own = Metrics()
    own.deliveries[("shop", "meta", "delivered")] += delivered
    own.paused[("shop", "meta")] = paused
    own.destinations[("shop", "meta")] = Tallies(ip_withheld=delivered // 2)
    counts = orjson.loads(orjson.dumps(own.counts()))
    assert isinstance(counts, dict)
    return counts


def test_a_delivery_process_deliveries_pauses_and_tallies_show_in_the_main_process() -> None:
    metrics = Metrics()
    metrics.absorb(4, delivery_process(delivered=10, paused=True))
    assert samples(metrics, "tagless_deliveries_total") == {
        '{destination="meta",outcome="delivered",store="shop"}': 10.0
    }
    assert samples(metrics, "tagless_destination_paused") == {
        '{destination="meta",store="shop"}': 1.0
    }
    assert samples(metrics, "tagless_destination_events_total") == {
        '{counter="ip_withheld",destination="meta",store="shop"}': 5.0
    }


def test_an_exited_delivery_process_keeps_its_counts_and_drops_its_pause() -> None:
    metrics = Metrics()
    metrics.absorb(4, delivery_process(delivered=10, paused=True))
    metrics.retire(4)  # killed while its lane rested; its successor starts afresh
    metrics.absorb(5, delivery_process(delivered=2, paused=False))
    assert samples(metrics, "tagless_deliveries_total") == {
        '{destination="meta",outcome="delivered",store="shop"}': 12.0
    }
    assert samples(metrics, "tagless_destination_paused") == {
        '{destination="meta",store="shop"}': 0.0
    }
