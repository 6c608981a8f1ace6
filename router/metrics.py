"""Prometheus metrics at the fixed telemetry points: received, delivered, retried, dead."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest


class Metrics:
    """One registry per Tagless instance (tests run several in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.received = Counter(
            "tagless_events_received",
            "Events committed to the outbox, by store and canonical name.",
            ["store", "name"],
            registry=self.registry,
        )
        self.client_ip = Counter(
            "tagless_events_client_ip",
            "Events by the class of their client IP (only `public` is usable) and its origin.",
            ["store", "ip_class", "origin"],
            registry=self.registry,
        )
        self.unrouted = Counter(
            "tagless_events_unrouted",
            "Events no destination takes (filtered by every event filter).",
            ["store"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "tagless_ingest_rejected_requests",
            "Ingest requests refused, by error code.",
            ["code"],
            registry=self.registry,
        )
        self.deliveries = Counter(
            "tagless_deliveries",
            "Delivery outcomes per event: delivered, retry or rejected (dead-lettered).",
            ["store", "destination", "outcome"],
            registry=self.registry,
        )
        self.paused = Gauge(
            "tagless_destination_paused",
            "1 while a destination rests after 429 or refused credentials.",
            ["store", "destination"],
            registry=self.registry,
        )
        self.commits = Counter(
            "tagless_outbox_commits", "Group commits of the outbox writer.", registry=self.registry
        )

    def count_received(self, store: str, events: Iterable[tuple[str, str, str, bool]]) -> None:
        """Tally one request's events: (name, ip_class, ip_origin, routed)."""
        names: Tally[str] = Tally()
        ips: Tally[tuple[str, str]] = Tally()
        unrouted = 0
        for name, ip_class, origin, routed in events:
            names[name] += 1
            ips[(ip_class, origin)] += 1
            unrouted += not routed
        for name, count in names.items():
            self.received.labels(store, name).inc(count)
        for (ip_class, origin), count in ips.items():
            self.client_ip.labels(store, ip_class, origin).inc(count)
        if unrouted:
            self.unrouted.labels(store).inc(unrouted)

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return generate_latest(self.registry)
