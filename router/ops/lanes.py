"""A store's destinations as the admin pages see them: config, routing rule and running
instance; and why an event was not routed to one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import attrs

from router.config import DestinationConfig, StoreConfig
from router.event import Consent
from router.identity.consent import folded_categories
from router.stores import Route

#: Why an event did not reach a destination it was not routed to.
NOT_ROUTED: Final = ("unsupported", "filtered", "skipped_consent")


@attrs.frozen
class OpsLane:
    """One destination of a store: its config, its routing rule and, while Tagless runs, its
    instance (which maps events)."""

    store: str
    config: DestinationConfig
    route: Route
    instance: Any | None


def store_config(tagless: Any, store: str) -> StoreConfig:
    """The store's config; a ValueError naming the configured stores otherwise."""
    for config in tagless.config.stores:
        if config.store == store:
            found: StoreConfig = config
            return found
    names = ", ".join(s.store for s in tagless.config.stores) or "none"
    raise ValueError(f"store {store!r} is not configured (stores: {names})")


def lanes_of(tagless: Any, store: str) -> list[OpsLane]:
    """The store's enabled destinations, in config order."""
    config = store_config(tagless, store)
    running = {
        (lane.store, lane.destination_id): lane.destination
        for lane in getattr(tagless, "dispatchers", ())
    }
    lanes = []
    for dest in config.destinations:
        if not dest.enabled:
            continue
        instance = running.get((store, dest.id))
        supported = instance.routed_events() if instance is not None else None
        route = Route(id=dest.id, events=dest.events, supported=supported, consent=dest.consent)
        lanes.append(OpsLane(store, dest, route, instance))
    return lanes


def why_not_routed(
    route: Route, name: str, source_name: str, consent: Mapping[str, Any] | None
) -> tuple[str, str]:
    """Why an event was not routed to ``route``, decided again from today's config: the
    decision (one of :data:`NOT_ROUTED`) and a detail naming the rule."""
    if route.supported is not None and name not in route.supported:
        return "unsupported", f"the destination does not take {name} events"
    if not route.events.admits(name, source_name):
        allow, deny = route.events.allow, route.events.deny
        if allow and not attrs.evolve(route.events, deny=()).admits(name, source_name):
            return "filtered", f"not in events.allow ({', '.join(allow)})"
        return "filtered", f"events.deny ({', '.join(deny)})"
    stated = Consent(**consent) if consent else Consent()
    action, state = route.consent.decide(stated, folded_categories(stated.categories))
    if action == "skip":
        return "skipped_consent", f"consent_{state}"
    return "filtered", "not routed when received (the config has changed since)"


@attrs.frozen
class OfflineView:
    """What the ops functions read of a Tagless that is not running here (the CLI): its
    config, an opened outbox and a clock; no destination instances."""

    config: Any
    outbox: Any
    clock: Any
