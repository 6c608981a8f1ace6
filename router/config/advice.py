"""Warnings about a valid config that is probably not what the operator meant."""

from __future__ import annotations

from ipaddress import IPv4Network
from pathlib import Path
from typing import Final

import attrs

from router.config.model import Config, StoreConfig, UnresolvedSettings
from router.identity.client_ip import CLOUDFLARE, parse_network
from router.identity.own_server import probable_own_address
from router.secret import Secret

#: Trusting a wider network than this lets hosts that are no proxy of the store set the
#: customer IP through forwarding headers (IPv4 /8 = 16.7M addresses; IPv6 /32 = one ISP).
_WIDEST_TRUSTED: Final = {4: 8, 6: 32}


def unset_secrets(config: Config) -> list[str]:
    """The environment variables of secrets that were left unset (a lazily read config)."""
    found: dict[str, None] = {}
    _walk_secrets(config, found)
    return list(found)


def _walk_secrets(value: object, found: dict[str, None]) -> None:
    if isinstance(value, Secret):
        if value.missing is not None:
            found[value.missing] = None
    elif isinstance(value, UnresolvedSettings):
        found.update(dict.fromkeys(value.variables))
    elif attrs.has(type(value)):
        for field in attrs.fields(type(value)):  # type: ignore[arg-type] # attrs.has checked it
            _walk_secrets(getattr(value, field.name), found)
    elif isinstance(value, tuple | list):
        for item in value:
            _walk_secrets(item, found)
    elif isinstance(value, dict):
        for item in value.values():
            _walk_secrets(item, found)


def without_unresolved(config: Config) -> Config:
    """The config less the destinations whose settings miss variables (see ``check``)."""
    stores = tuple(
        attrs.evolve(
            store,
            destinations=tuple(
                d for d in store.destinations if not isinstance(d.settings, UnresolvedSettings)
            ),
        )
        for store in config.stores
    )
    return attrs.evolve(config, stores=stores)


def config_warnings(config: Config, outbox: Path | None = None) -> list[str]:
    """``file: key.path: message`` for each setting that works but is likely a mistake.

    With ``outbox`` (read-only, if it exists), a store with server keys and no own_addresses
    is told the most frequent peer of its server-key events: probably its own backend.
    """
    found: list[str] = []
    for store in config.stores:
        found += [f"{store.file}: {path}: {message}" for path, message in _store(store)]
        if any(key.kind == "server" for key in store.write_keys) and not (
            store.client_ip.own_addresses
        ):
            message = _no_own_addresses(store, outbox)
            found.append(f"{store.file}: client_ip.own_addresses: {message}")
    return found


def _no_own_addresses(store: StoreConfig, outbox: Path | None) -> str:
    message = (
        "the store has server write keys but no own_addresses: list its backend's addresses"
        " so that one sent as context.ip is caught (class own_server), never sent as the"
        " customer's IP"
    )
    guess = None if outbox is None else probable_own_address(outbox, store.store)
    if guess is None:
        return message + "; once events arrive, 'tagless check' names the likely one"
    return (
        f"{message}; probably {guess.ip}: the peer of {guess.count} of the {guess.of} recent"
        " server-key events without a customer IP"
    )


def _store(store: StoreConfig) -> list[tuple[str, str]]:
    found = []
    for i, entry in enumerate(store.client_ip.trusted_proxies):
        if entry.strip().lower() == CLOUDFLARE:
            continue
        net = parse_network(entry)  # as the resolver reads it (validated at load)
        version = 4 if isinstance(net, IPv4Network) else 6
        if net.prefixlen < _WIDEST_TRUSTED[version]:
            found.append(
                (
                    f"client_ip.trusted_proxies[{i}]",
                    f"{entry} trusts forwarding headers from {net.num_addresses:,} addresses:"
                    " any host in it can choose the customer IP Tagless records; list your"
                    " proxies' own addresses (or the named set cloudflare)",
                )
            )
    if not any(d.enabled for d in store.destinations):
        found.append(
            (
                "destinations",
                "no enabled destination: events are accepted and stored but go nowhere",
            )
        )
    return found
