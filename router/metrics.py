"""Prometheus metrics at the fixed telemetry points: received, delivered, retried, dead, skipped."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final, Protocol

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


class HasCounters(Protocol):
    def counters(self) -> Mapping[str, int]: ...


#: The counters ingest keeps: an ingest process sends them to the delivering process, which
#: adds them to its own when Prometheus scrapes (router/ingest_pool.py).
INGEST_COUNTERS: Final = (
    "received",
    "client_ip",
    "unrouted",
    "stitched",
    "rejected",
    "skipped_consent",
)
#: Those keyed by one label, a string (the others by a tuple of labels).
_BY_ONE_LABEL: Final = frozenset({"unrouted", "stitched", "rejected"})
#: A counter as plain JSON: each key's labels, then its count.
CounterRows = list[list[Any]]

#: What one ingested event contributes: (canonical name, ip class, ip origin, routed, and the
#: (destination, reason) pairs its consent skipped).
Tally = tuple[str, str, str, bool, tuple[tuple[str, str], ...]]


class Metrics(Collector):
    """Counts kept as plain dict increments on the hot paths, turned into metric families
    only when Prometheus scrapes (one registry per Tagless: tests run several per process)."""

    def __init__(self) -> None:
        self.received: Counter[tuple[str, ...]] = Counter()
        self.client_ip: Counter[tuple[str, ...]] = Counter()
        self.unrouted: Counter[str] = Counter()
        #: Events identity stitching filled (an IP, id or hashed email they lacked), by store.
        self.stitched: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        self.deliveries: Counter[tuple[str, ...]] = Counter()
        #: Events a destination did not get because of consent, by (store, destination, reason).
        self.skipped_consent: Counter[tuple[str, ...]] = Counter()
        self.paused: dict[tuple[str, str], bool] = {}
        #: Running destinations by (store, destination), for their own counters.
        self.destinations: dict[tuple[str, str], HasCounters] = {}
        #: The last counts each ingest process sent, by its serial number (never reused: a
        #: restarted process starts from zero under a new number, so sums never go back).
        self.peers: dict[int, dict[str, Counter[Any]]] = {}
        self.registry = CollectorRegistry()
        self.registry.register(self)

    def ingest_counts(self) -> dict[str, CounterRows]:
        """The ingest counters as JSON rows (an ingest process's report to the delivering one)."""
        return {
            name: [[*_labels(key), count] for key, count in getattr(self, name).items()]
            for name in INGEST_COUNTERS
        }

    def absorb(self, peer: int, counts: dict[str, CounterRows]) -> None:
        """Keep the latest counts of ingest process ``peer`` (replacing its earlier ones)."""
        self.peers[peer] = {
            name: Counter({_key_of(name, row[:-1]): int(row[-1]) for row in rows})
            for name, rows in counts.items()
        }

    def _total(self, name: str) -> Counter[Any]:
        """This process's counter ``name`` plus every ingest process's."""
        total: Counter[Any] = Counter(getattr(self, name))
        for peer in self.peers.values():
            total.update(peer.get(name, ()))
        return total

    def count_received(self, store: str, events: Iterable[Tally]) -> None:
        """Tally one request's committed events."""
        for name, ip_class, origin, routed, skipped in events:
            self.received[(store, name)] += 1
            self.client_ip[(store, ip_class, origin)] += 1
            if not routed:
                self.unrouted[store] += 1
            for destination, reason in skipped:
                self.skipped_consent[(store, destination, reason)] += 1

    def collect(self) -> Iterator[Metric]:
        yield _counter(
            "tagless_events_received",
            "Events committed to the outbox, by store and canonical name.",
            ["store", "name"],
            self._total("received"),
        )
        yield _counter(
            "tagless_events_client_ip",
            "Events by the class of their client IP (only `public` is usable) and its origin.",
            ["store", "ip_class", "origin"],
            self._total("client_ip"),
        )
        yield _counter(
            "tagless_events_unrouted",
            "Events no destination takes (filtered by every event filter).",
            ["store"],
            {(store,): n for store, n in self._total("unrouted").items()},
        )
        yield _counter(
            "tagless_events_stitched",
            "Events identity stitching rescued: it filled a customer IP, id or hashed email"
            " they lacked from an earlier event of the same person.",
            ["store"],
            {(store,): n for store, n in self._total("stitched").items()},
        )
        yield _counter(
            "tagless_ingest_rejected_requests",
            "Ingest requests refused, by error code.",
            ["code"],
            {(code,): n for code, n in self._total("rejected").items()},
        )
        yield _counter(
            "tagless_deliveries",
            "Final state per event and attempt: delivered, retry, or dead (dead-lettered).",
            ["store", "destination", "outcome"],
            self.deliveries,
        )
        yield _counter(
            "tagless_events_skipped_consent",
            "Events a destination did not get because of the customer's consent (skipped when"
            " routed, or consent removed every identifier the platform needs): never dead letters.",
            ["store", "destination", "reason"],
            self._total("skipped_consent"),
        )
        paused = GaugeMetricFamily(
            "tagless_destination_paused",
            "1 while a destination rests (Retry-After, refused credentials, outage).",
            labels=["store", "destination"],
        )
        for (store, destination), value in sorted(self.paused.items()):
            paused.add_metric([store, destination], float(value))
        yield paused
        own = CounterMetricFamily(
            "tagless_destination_events",
            "Destination-specific tallies, e.g. events sent without a usable customer IP.",
            labels=["store", "destination", "counter"],
        )
        for (store, destination), instance in sorted(self.destinations.items(), key=_key):
            for counter, count in sorted(instance.counters().items()):
                own.add_metric([store, destination, counter], count)
        yield own

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return generate_latest(self.registry)


def _counter(
    name: str, documentation: str, labels: list[str], values: Mapping[tuple[str, ...], int]
) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=labels)
    for key, value in sorted(values.items()):
        family.add_metric(list(key), value)
    return family


def _labels(key: str | tuple[str, ...]) -> tuple[str, ...]:
    return key if isinstance(key, tuple) else (key,)


def _key_of(name: str, labels: list[Any]) -> str | tuple[str, ...]:
    """A counter's key from its JSON labels: the single-label counters are keyed by a string."""
    return str(labels[0]) if name in _BY_ONE_LABEL else tuple(labels)


def _key(item: tuple[tuple[str, str], object]) -> tuple[str, str]:
    return item[0]
