"""Range tables: the painted, bucket-indexed lookup answers as a plain first-match scan would."""

from __future__ import annotations

import random
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

import pytest

from router.identity.ranges import AddressMap, IpAddress, IpNetwork, shared_classes

Layers = list[tuple[str, list[IpNetwork]]]


def random_layers(rng: random.Random, version: int, count: int, labels: str) -> Layers:
    bits = 32 if version == 4 else 128
    layers: Layers = []
    for label in labels:
        nets: list[IpNetwork] = []
        for _ in range(count):
            prefix = rng.randint(4, bits)
            value = rng.getrandbits(bits) >> (bits - prefix) << (bits - prefix)
            if version == 4:
                nets.append(IPv4Network((value, prefix)))
            else:
                # most near one /16, to fill a few buckets densely
                value = (0x2A02 << 112) | (value >> 16)
                nets.append(IPv6Network((value, max(prefix, 16)), strict=False))
        layers.append((label, nets))
    return layers


def first_match(layers: Layers, addr: IpAddress, default: str) -> str:
    return next((label for label, nets in layers for net in nets if addr in net), default)


def probes(rng: random.Random, layers: Layers, version: int) -> list[IpAddress]:
    """Random addresses plus every range's first, last and neighbouring addresses."""
    make = IPv4Address if version == 4 else IPv6Address
    top = (1 << (32 if version == 4 else 128)) - 1
    found = [make(rng.getrandbits(32 if version == 4 else 128)) for _ in range(200)]
    for _, nets in layers:
        for net in nets:
            for value in (int(net.network_address) - 1, int(net.broadcast_address) + 1):
                if 0 <= value <= top:
                    found.append(make(value))
            found += [net.network_address, net.broadcast_address]
    return found


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(("version", "count"), [(4, 5), (4, 60), (6, 5), (6, 60)])
def test_painted_lookup_equals_first_match(seed: int, version: int, count: int) -> None:
    """Short (bisected whole) and long (bucket-indexed) tables, and a table painted over
    another, all answer as the first matching layer would."""
    rng = random.Random(seed * 100 + version + count)
    base = random_layers(rng, version, count, "abc")
    top = random_layers(rng, version, max(1, count // 10), "xy")
    built = AddressMap.build(base, "d4", "d6")
    over = built.under(top)
    default = "d4" if version == 4 else "d6"
    for addr in probes(rng, base + top, version):
        assert built.label(addr) == first_match(base, addr, default), addr
        assert over.label(addr) == first_match(top + base, addr, default), addr


def test_the_shared_table_is_indexed_and_answers_its_edges() -> None:
    """The shipped table is long enough to be indexed; its first and last addresses answer."""
    table = shared_classes()
    assert table.v4.index and table.v6.index
    assert table.label(ip_address("0.0.0.0")) == "reserved"
    assert table.label(ip_address("255.255.255.255")) == "reserved"
    assert table.label(ip_address("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")) == "multicast"
