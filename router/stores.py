"""What ingest needs of each store, built once from config: keys, IP policy, names, routes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

import attrs

from router.config import ConsentPolicy, EventFilter, StoreConfig
from router.destination import Destination
from router.event import CANONICAL_NAMES, UNKNOWN_CONSENT, Consent
from router.identity.client_ip import ClientIpPolicy
from router.identity.stitching import Stitcher
from router.ingest.names import NameMap

#: Marks a route whose events go out without user data (consent policy).
WITHOUT_USER_DATA: Final = "!"


@attrs.frozen
class Route:
    """One destination of a store, as routing sees it."""

    id: str
    events: EventFilter
    #: The canonical names the destination takes (``None``: all); identify, alias and group
    #: reach only a destination that declares them (or takes all), whatever the filter says.
    supported: frozenset[str] | None
    consent: ConsentPolicy = attrs.Factory(ConsentPolicy)

    def admits(self, name: str, source_name: str = "") -> bool:
        """Whether an event of canonical ``name``, sent as ``source_name``, goes here."""
        return (self.supported is None or name in self.supported) and self.events.admits(
            name, source_name
        )

    def token(self, name: str, consent: Consent, source_name: str = "") -> str | None:
        """This destination's route entry for the event, or None when it gets nothing."""
        if not self.admits(name, source_name):
            return None
        action = self.consent.action(getattr(consent, self.consent.signal))
        if action == "skip":
            return None
        return self.id + WITHOUT_USER_DATA if action == "without_user_data" else self.id


@attrs.frozen
class StoreRuntime:
    """A store as the ingest path uses it; immutable, shared by every request."""

    name: str
    ip_policy: ClientIpPolicy
    names: NameMap
    routes: tuple[Route, ...]
    allowed_origins: frozenset[str]

    #: The properties an event's value is read from, in order (``value_from``).
    value_from: tuple[str, ...] = ("total", "revenue", "value")
    #: Sender event names some filter lists (entries that are no canonical name).
    source_names: frozenset[str] = frozenset()
    #: Identity stitching's state, when the store turned it on.
    stitcher: Stitcher | None = None

    _by_name: dict[tuple[str, ...], tuple[str, ...]] = attrs.field(
        factory=dict, init=False, eq=False
    )

    def route(
        self, name: str, consent: Consent = UNKNOWN_CONSENT, source_name: str = ""
    ) -> tuple[str, ...]:
        """Where an event goes, decided once at append time: destination ids, each marked
        ``!`` when its consent policy says to send the event without user data."""
        # Only sender names a filter lists enter the cache key: senders choose names freely,
        # and a key per name would let them grow this cache without bound.
        source = source_name if source_name in self.source_names else ""
        key = (name, source, consent.ad_user_data, consent.ad_personalization, consent.analytics)
        found = self._by_name.get(key)
        if found is None:
            tokens = (r.token(name, consent, source) for r in self.routes)
            found = self._by_name[key] = tuple(t for t in tokens if t is not None)
        return found


def build_store(
    config: StoreConfig, destinations: Mapping[str, Destination[object]]
) -> StoreRuntime:
    """Compile one store's config; ``destinations`` holds its enabled destinations by id."""
    routes: list[Route] = []
    for dest in config.destinations:
        if not dest.enabled or dest.id not in destinations:
            continue
        supported = destinations[dest.id].routed_events()
        routes.append(
            Route(id=dest.id, events=dest.events, supported=supported, consent=dest.consent)
        )
    ip = config.client_ip
    return StoreRuntime(
        name=config.store,
        ip_policy=ClientIpPolicy.build(
            ip.trusted_proxies, headers=ip.headers, own_addresses=ip.own_addresses
        ),
        names=NameMap(config.event_names),
        routes=tuple(routes),
        allowed_origins=frozenset(config.allowed_origins),
        value_from=config.value_from,
        source_names=frozenset(
            entry
            for route in routes
            for entry in (*route.events.allow, *route.events.deny)
            if entry not in CANONICAL_NAMES
        ),
        stitcher=Stitcher(config.store, window_secs=config.stitching.window_hours * 3600)
        if config.stitching.enabled
        else None,
    )


def write_keys(stores: Sequence[StoreConfig]) -> list[tuple[str, str]]:
    """Every (write key, store) pair, for the key ring."""
    return [(key.reveal(), store.store) for store in stores for key in store.write_keys]
