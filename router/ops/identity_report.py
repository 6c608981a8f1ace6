"""The identity-quality report: per destination and event name over a window, what share of
events carries a usable customer IP and each identifier, with findings in plain language."""

from __future__ import annotations

from collections import Counter
from typing import Any, Final

import attrs
import orjson

from router.ops.findings import findings
from router.ops.ip_buckets import IP_BUCKETS, cdn_provider, ip_bucket
from router.ops.lanes import store_config
from router.ops.window import window_secs

#: The identifiers whose presence the report counts, by report name and canonical field.
FIELDS: Final = {
    "user_agent": "user_agent",
    "email": "emails",
    "phone": "phones",
    "fbc": "fbc",
    "fbp": "fbp",
    "gclid": "gclid",
    "gbraid": "gbraid",
    "wbraid": "wbraid",
    "ga_client_id": "ga_client_id",
    "spotify_device_id": "spotify_device_id",
}
_PATHS: Final = (
    "$.name",
    "$.client_ip_class",
    "$.client_ip",
    "$.client_ip_origin",
    *(f"$.{field}" for field in FIELDS.values()),
)
#: The newest events a report reads at most (the report says when it stopped there).
MAX_EVENTS: Final = 200_000


@attrs.define
class Tally:
    """What one (destination, event name) of the report has counted."""

    events: int = 0
    ip: Counter[str] = attrs.field(factory=Counter)
    cdn: Counter[str] = attrs.field(factory=Counter)
    #: The origin (payload, header, peer) of each unusable IP bucket's addresses.
    origins: Counter[tuple[str, str]] = attrs.field(factory=Counter)
    fields: Counter[str] = attrs.field(factory=Counter)
    #: Events with neither a public IP nor an email: nothing a platform matches reliably on.
    unmatchable: int = 0
    #: Events the consent policy sent without user data.
    stripped: int = 0

    def add(self, bucket: str, origin: str, provider: str | None, present: list[str]) -> None:
        """Count an event the destination got with its identity."""
        self.events += 1
        self.ip[bucket] += 1
        if provider is not None:
            self.cdn[provider] += 1
        self.origins[(bucket, origin)] += 1
        self.fields.update(present)
        if not bucket.startswith("public") and "email" not in present:
            self.unmatchable += 1

    def add_stripped(self) -> None:
        """Count an event the destination got without user data (consent): missing on
        purpose, so not unmatchable by a fault to fix."""
        self.events += 1
        self.ip["missing"] += 1
        self.origins[("missing", "consent")] += 1
        self.stripped += 1


async def identity_report(tagless: Any, store: str, window: str) -> dict[str, Any]:
    """The report of ``store`` over ``window`` (``1h``, ``24h``, ``7d``): rows of shares
    (floats 0..1) per destination and event name, and findings, most severe first."""
    seconds = window_secs(window)
    config = store_config(tagless, store)
    insight = tagless.outbox.insight
    since = await insight.first_id_since("events", tagless.clock.now() - seconds)
    rows = await insight.identities_since(store, since, _PATHS, MAX_EVENTS)
    tallies = _tally(rows)
    types = {d.id: d.type for d in config.destinations}
    report_rows = [
        _row(destination, name, tally)
        for (destination, name), tally in sorted(
            tallies.items(), key=lambda item: (item[0][0], -item[1].events, item[0][1])
        )
    ]
    return {
        "store": store,
        "window": window,
        "events": len(rows),
        "sampled": len(rows) >= MAX_EVENTS,
        "rows": report_rows,
        "findings": findings(store, report_rows, tallies, types),
    }


def _tally(rows: list[Any]) -> dict[tuple[str, str], Tally]:
    tallies: dict[tuple[str, str], Tally] = {}
    for routes, values in rows:
        name, ip_class, ip, origin, *identifiers = orjson.loads(values)
        bucket = ip_bucket(ip_class, ip)
        provider = cdn_provider(ip) if bucket == "cdn" else None
        present = [field for field, value in zip(FIELDS, identifiers, strict=True) if value]
        for route in routes.split():
            destination = route.rstrip("!")
            tally = tallies.setdefault((destination, name or "custom"), Tally())
            if route.endswith("!"):  # consent: the destination got no user data
                tally.add_stripped()
            else:
                tally.add(bucket, origin or "missing", provider, present)
    return tallies


def _row(destination: str, name: str, tally: Tally) -> dict[str, Any]:
    count = tally.events
    return {
        "destination": destination,
        "event_name": name,
        "events": count,
        "ip": {bucket: tally.ip[bucket] / count for bucket in IP_BUCKETS},
        "cdn_providers": {p: n / count for p, n in tally.cdn.most_common()},
        "fields": {field: tally.fields[field] / count for field in FIELDS},
        "unmatchable": tally.unmatchable / count,
        "stripped_consent": tally.stripped / count,
    }
