"""What ingest needs of each store, built once from config: keys, IP policy, names, routes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

import attrs

from router.config import ConsentPolicy, StoreConfig
from router.destination import Destination
from router.event import UNKNOWN_CONSENT, Consent
from router.identity.client_ip import ClientIpPolicy, KeyKind
from router.ingest.names import NameMap

#: Marks a route whose events go out without user data (consent policy).
WITHOUT_USER_DATA: Final = "!"


@attrs.frozen
class Route:
    """One destination of a store, as routing sees it."""

    id: str
    allow: frozenset[str] | None
    deny: frozenset[str]
    supported: frozenset[str] | None
    consent: ConsentPolicy = attrs.Factory(ConsentPolicy)

    def admits(self, name: str) -> bool:
        """Whether an event of canonical ``name`` goes to this destination."""
        return (
            (self.allow is None or name in self.allow)
            and name not in self.deny
            and (self.supported is None or name in self.supported)
        )

    def token(self, name: str, consent: Consent) -> str | None:
        """This destination's route entry for the event, or None when it gets nothing."""
        if not self.admits(name):
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

    _by_name: dict[tuple[str, ...], tuple[str, ...]] = attrs.field(
        factory=dict, init=False, eq=False
    )

    def route(self, name: str, consent: Consent = UNKNOWN_CONSENT) -> tuple[str, ...]:
        """Where an event goes, decided once at append time: destination ids, each marked
        ``!`` when its consent policy says to send the event without user data."""
        key = (name, consent.ad_user_data, consent.ad_personalization, consent.analytics)
        found = self._by_name.get(key)
        if found is None:
            tokens = (r.token(name, consent) for r in self.routes)
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
            Route(
                id=dest.id,
                allow=frozenset(dest.events.allow) or None,
                deny=frozenset(dest.events.deny),
                supported=supported,
                consent=dest.consent,
            )
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
    )


def write_keys(stores: Sequence[StoreConfig]) -> list[tuple[str, str, KeyKind]]:
    """Every (write key, store, key kind), for the key ring."""
    return [(k.key.reveal(), s.store, k.kind) for s in stores for k in s.write_keys]
