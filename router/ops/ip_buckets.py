"""What the identity report counts an event's client IP as, and which CDN a CDN address is."""

from __future__ import annotations

import functools
from importlib import resources
from ipaddress import ip_address
from typing import Final

from router.identity.ranges import CLOUDFLARE, AddressMap, cloudflare_networks, parse_range_file

#: The report's IP buckets, in display order.
IP_BUCKETS: Final = (
    "public_v4",
    "public_v6",
    "private",
    "loopback",
    "cgnat",
    "cdn",
    "cloud",
    "proxy",
    "own_server",
    "reserved",
    "missing",
)
#: Address classes the report folds into a wider bucket.
_FOLDED: Final = {
    "link_local": "private",
    "documentation": "reserved",
    "multicast": "reserved",
    "reserved": "reserved",
}
#: A CDN address in none of the shipped provider tables (the store's own ``cdn_ranges``).
OTHER_CDN: Final = "other"


def ip_bucket(ip_class: str | None, ip: str | None) -> str:
    """The bucket of an event's stored IP class (``public`` split by IP version)."""
    if ip_class is None or ip_class == "missing" or not ip:
        return "missing"
    if ip_class == "public":
        return "public_v6" if ":" in ip else "public_v4"
    return _FOLDED.get(ip_class, ip_class if ip_class in IP_BUCKETS else "reserved")


@functools.cache
def _providers() -> AddressMap:
    """The shipped CDN tables by provider name: Cloudflare's, then every ``cdn-<name>.txt``."""
    folder = resources.files("router.identity").joinpath("data")
    layers = [(CLOUDFLARE, cloudflare_networks())]
    for item in sorted(folder.iterdir(), key=lambda entry: entry.name):
        if item.name.startswith("cdn-") and item.name.endswith(".txt"):
            name = item.name.removeprefix("cdn-").removesuffix(".txt")
            layers.append((name, parse_range_file(item.read_text("utf-8"), item.name)))
    return AddressMap.build(layers, "", "")


def cdn_provider(ip: str) -> str:
    """Which CDN an address of class ``cdn`` belongs to (``cloudflare``, ``fastly``, ...)."""
    try:
        return _providers().label(ip_address(ip.strip())) or OTHER_CDN
    except ValueError:
        return OTHER_CDN
