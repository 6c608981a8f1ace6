"""Prometheus metrics at the fixed telemetry points: received, delivered, retried, dead, skipped."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Final, Protocol

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


class HasCounters(Protocol):
    def counters(self) -> Mapping[str, int]: ...


#: The counters a child process (ingest or delivery) sends to the main process, which adds
#: them to its own when Prometheus scrapes (router/process_pool.py).
SHARED_COUNTERS: Final = (
    "received",
    "client_ip",
    "unrouted",
    "stitched",
    "rejected",
    "skipped_consent",
    "deliveries",
)
#: What a delivery process sends besides: its lanes' pauses (a gauge, dropped with the
#: process) and its destinations' own tallies, each row ``[store, destination, ..., value]``.
PAUSED: Final = "paused"
DESTINATION_EVENTS: Final = "destination_events"
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
        #: The last counts each child process sent, by its serial number (never reused: a
        #: restarted process starts from zero under a new number, so sums never go back).
        self.peers: dict[int, dict[str, Counter[Any]]] = {}
        #: Child processes by kind (``ingest``, ``delivery``): how many run now (ready, alive).
        self.children: dict[str, Callable[[], int]] = {}
        self.registry = CollectorRegistry()
        self.registry.register(self)

    def counts(self) -> dict[str, CounterRows]:
        """This process's counters as JSON rows (a child process's report to the main one)."""
        counts = {
            name: [[*_labels(key), count] for key, count in getattr(self, name).items()]
            for name in SHARED_COUNTERS
        }
        counts[PAUSED] = [[*key, int(value)] for key, value in self.paused.items()]
        counts[DESTINATION_EVENTS] = [
            [store, destination, counter, count]
            for (store, destination), instance in self.destinations.items()
            for counter, count in instance.counters().items()
        ]
        return counts

    def absorb(self, peer: int, counts: dict[str, CounterRows]) -> None:
        """Keep the latest counts of child process ``peer`` (replacing its earlier ones)."""
        self.peers[peer] = {
            name: Counter({_key_of(name, row[:-1]): int(row[-1]) for row in rows})
            for name, rows in counts.items()
        }

    def retire(self, peer: int) -> None:
        """Child process ``peer`` exited: its counts stay (they happened), its gauges go."""
        self.peers.get(peer, {}).pop(PAUSED, None)

    def _total(self, name: str) -> Counter[Any]:
        """This process's counter ``name`` plus every child process's."""
        total = self._peers_total(name)
        total.update(getattr(self, name))
        return total

    def _peers_total(self, name: str) -> Counter[Any]:
        total: Counter[Any] = Counter()
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
            self._total("deliveries"),
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
        for (store, destination), value in sorted(self._total(PAUSED).items()):
            paused.add_metric([store, destination], float(value))
        yield paused
        children = GaugeMetricFamily(
            "tagless_child_processes",
            "Ingest and delivery processes running now (server.ingest_processes,"
            " server.delivery_processes): fewer than configured while one is started again.",
            labels=["kind"],
        )
        for kind, running in sorted(self.children.items()):
            children.add_metric([kind], float(running()))
        yield children
        own = CounterMetricFamily(
            "tagless_destination_events",
            "Destination-specific tallies, e.g. events sent without a usable customer IP.",
            labels=["store", "destination", "counter"],
        )
        tallies = self._peers_total(DESTINATION_EVENTS)
        for (store, destination), instance in self.destinations.items():
            tallies.update({(store, destination, k): n for k, n in instance.counters().items()})
        for labels, count in sorted(tallies.items()):
            own.add_metric(list(labels), count)
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
