"""What ingest needs of each store, built once from config: keys, IP policy, names, routes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs

from router.config import StoreConfig
from router.destination import Destination
from router.ingest.client_ip import ClientIpPolicy
from router.ingest.names import NameMap


@attrs.frozen
class Route:
    """One destination of a store, as routing sees it."""

    id: str
    allow: frozenset[str] | None
    deny: frozenset[str]
    supported: frozenset[str] | None

    def admits(self, name: str) -> bool:
        """Whether an event of canonical ``name`` goes to this destination."""
        return (
            (self.allow is None or name in self.allow)
            and name not in self.deny
            and (self.supported is None or name in self.supported)
        )


@attrs.frozen
class StoreRuntime:
    """A store as the ingest path uses it; immutable, shared by every request."""

    name: str
    ip_policy: ClientIpPolicy
    names: NameMap
    routes: tuple[Route, ...]
    allowed_origins: frozenset[str]

    _by_name: dict[str, tuple[str, ...]] = attrs.field(factory=dict, init=False, eq=False)

    def route(self, name: str) -> tuple[str, ...]:
        """The destinations an event of canonical ``name`` goes to, decided at append time."""
        found = self._by_name.get(name)
        if found is None:
            found = self._by_name[name] = tuple(r.id for r in self.routes if r.admits(name))
        return found


def build_store(
    config: StoreConfig, destinations: Mapping[str, Destination[object]]
) -> StoreRuntime:
    """Compile one store's config; ``destinations`` holds its enabled destinations by id."""
    routes: list[Route] = []
    for dest in config.destinations:
        if not dest.enabled or dest.id not in destinations:
            continue
        supported = type(destinations[dest.id]).supported_events
        routes.append(
            Route(
                id=dest.id,
                allow=frozenset(dest.events.allow) or None,
                deny=frozenset(dest.events.deny),
                supported=supported,
            )
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
    )


def write_keys(stores: Sequence[StoreConfig]) -> list[tuple[str, str]]:
    """Every (write key, store) pair, for the key ring."""
    return [(key.reveal(), store.store) for store in stores for key in store.write_keys]
