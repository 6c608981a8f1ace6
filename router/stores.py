"""What ingest needs of each store, built once from config: keys, IP policy, names, routes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final, NamedTuple

import attrs

from router.config import EventFilter, StoreConfig
from router.destination import Destination
from router.event import CANONICAL_NAMES, UNKNOWN_CONSENT, Consent, ConsentState
from router.identity.client_ip import ClientIpPolicy, KeyKind
from router.identity.consent import DEFAULT_CATEGORIES, ConsentCategories, folded_categories
from router.identity.consent_policy import ConsentPolicy
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

    def token(
        self,
        name: str,
        consent: Consent,
        categories: Mapping[str, ConsentState],
        source_name: str = "",
    ) -> tuple[str | None, str]:
        """This destination's route entry for the event (None when it gets nothing) and, when
        consent skips it, why (``consent_denied``, ``consent_unknown``)."""
        if not self.admits(name, source_name):
            return None, ""
        action, state = self.consent.decide(consent, categories)
        if action == "skip":
            return None, f"consent_{state}"
        return (self.id + WITHOUT_USER_DATA if action == "without_user_data" else self.id), ""


class Routing(NamedTuple):
    """Where an event goes, and the destinations consent kept it from, with the reason."""

    routes: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...] = ()


@attrs.frozen
class StoreRuntime:
    """A store as the ingest path uses it; immutable, shared by every request."""

    name: str
    ip_policy: ClientIpPolicy
    names: NameMap
    routes: tuple[Route, ...]
    allowed_origins: frozenset[str]
    #: Which consent-manager categories mean each consent signal (the store's map).
    consent_categories: ConsentCategories = DEFAULT_CATEGORIES
    #: The properties an event's value is read from, in order (``value_from``).
    value_from: tuple[str, ...] = ("total", "revenue", "value")
    #: Sender event names some filter lists (entries that are no canonical name).
    source_names: frozenset[str] = frozenset()
    #: Identity stitching's state, when the store turned it on.
    stitcher: Stitcher | None = None

    _by_name: dict[tuple[str, ...], Routing] = attrs.field(factory=dict, init=False, eq=False)
    #: The categories some destination lists, case-folded: only their states change routing.
    _watched: tuple[str, ...] = attrs.field(init=False, eq=False)

    @_watched.default
    def _categories_listed(self) -> tuple[str, ...]:
        listed = {c.casefold(): None for r in self.routes for c in r.consent.categories}
        return tuple(listed)

    def route(
        self, name: str, consent: Consent = UNKNOWN_CONSENT, source_name: str = ""
    ) -> Routing:
        """Where an event goes, decided once at append time: destination ids, each marked
        ``!`` when its consent policy says to send the event without user data, and the
        destinations its consent skips."""
        # Only sender names a filter lists enter the cache key: senders choose names freely,
        # and a key per name would let them grow this cache without bound.
        source = source_name if source_name in self.source_names else ""
        key: tuple[str, ...] = (
            name,
            source,
            consent.ad_user_data,
            consent.ad_personalization,
            consent.analytics,
        )
        folded: dict[str, ConsentState] = {}
        if self._watched and consent.categories:
            folded = folded_categories(consent.categories)
            key += tuple(folded.get(c, "unknown") for c in self._watched)
        found = self._by_name.get(key)
        if found is None:
            routes, skipped = [], []
            for r in self.routes:
                token, why = r.token(name, consent, folded, source)
                if token is not None:
                    routes.append(token)
                elif why:
                    skipped.append((r.id, why))
            found = self._by_name[key] = Routing(tuple(routes), tuple(skipped))
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
            ip.trusted_proxies,
            headers=ip.headers,
            own_addresses=ip.own_addresses,
            cdn_ranges=ip.cdn_ranges,
            cloud_ranges=ip.cloud_ranges,
        ),
        names=NameMap(config.event_names),
        routes=tuple(routes),
        allowed_origins=frozenset(config.allowed_origins),
        consent_categories=config.consent.categories,
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


def write_keys(stores: Sequence[StoreConfig]) -> list[tuple[str, str, KeyKind]]:
    """Every (write key, store, key kind), for the key ring."""
    return [(k.key.reveal(), s.store, k.kind) for s in stores for k in s.write_keys]
