"""Address range tables: the special-purpose, CDN and cloud ranges a client IP is classed by."""

from __future__ import annotations

import functools
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from importlib import resources
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Final

import attrs

IpAddress = IPv4Address | IPv6Address
IpNetwork = IPv4Network | IPv6Network
Layers = Sequence[tuple[str, Sequence[IpNetwork]]]

CLOUDFLARE: Final = "cloudflare"
_MAPPED_V6: Final = IPv6Network("::ffff:0:0/96")
#: Shipped range files of ``data/``: ``<class>-<provider>.txt``, class cdn or cloud.
RANGE_CLASSES: Final = ("cdn", "cloud")

# Special-purpose layers in priority order (first match wins).
_SPECIAL: Final = (
    ("loopback", ("127.0.0.0/8", "::1/128")),
    (
        "documentation",
        ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32", "3fff::/20"),
    ),
    ("cgnat", ("100.64.0.0/10",)),
    ("link_local", ("169.254.0.0/16", "fe80::/10")),
    ("private", ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")),
    ("multicast", ("224.0.0.0/4", "ff00::/8")),
    # IPv4: "this network" (incl. unspecified), IETF protocol assignments, benchmarking,
    # 240/4 (incl. the limited broadcast 255.255.255.255). IPv6: unspecified, discard-only,
    # IETF protocol assignments, local-use NAT64, SRv6 SIDs.
    (
        "reserved",
        (
            *("0.0.0.0/8", "192.0.0.0/24", "198.18.0.0/15", "240.0.0.0/4"),
            *("::/128", "100::/64", "2001::/23", "64:ff9b:1::/48", "5f00::/16"),
        ),
    ),
)
# Only global unicast and the well-known NAT64 prefix are public IPv6; the rest is reserved.
# This layer comes last, under the CDN and cloud ranges it contains.
_PUBLIC_V6: Final = ("public", ("2000::/3", "64:ff9b::/96"))


#: A bucket's index entry: its one label, or (starts, labels) of the ranges covering it.
_Bucket = str | tuple[tuple[int, ...], tuple[str, ...]]
#: Tables this short are bisected whole (a trusted-proxy set, the Cloudflare list).
_UNINDEXED_MAX: Final = 64
#: Bits of an address that pick its bucket of the ranges index (the top 16 of either version).
_BUCKET_BITS: Final = 16
_BUCKET_SHIFT: Final = {4: 32 - _BUCKET_BITS, 6: 128 - _BUCKET_BITS}


@attrs.frozen(slots=True)
class _Ranges:
    """Disjoint sorted ranges of one IP version, each with a label, indexed by bucket (the
    address's top 16 bits): a bucket one label covers answers at once, the others bisect
    only their own ranges, so thousands of CDN and cloud ranges cost no more than a few
    dozen did."""

    starts: tuple[int, ...]
    labels: tuple[str, ...]
    shift: int
    #: Per bucket: its one label, or the starts and labels of the ranges that cover it.
    index: tuple[_Bucket, ...] = ()

    @classmethod
    def indexed(
        cls,
        starts: tuple[int, ...],
        labels: tuple[str, ...],
        shift: int,
        base: _Ranges | None = None,
        changed: set[int] | None = None,
    ) -> _Ranges:
        """The ranges with their bucket index (none for a short table: bisecting it is as
        quick and the index would cost memory); buckets not ``changed`` are ``base``'s."""
        made = cls(starts, labels, shift)
        if len(starts) <= _UNINDEXED_MAX:
            return made
        if base is None or changed is None or not base.index:
            index = [made.bucket(b) for b in range(1 << _BUCKET_BITS)]
        else:
            index = list(base.index)
            for bucket in changed:
                index[bucket] = made.bucket(bucket)
        return attrs.evolve(made, index=tuple(index))

    def bucket(self, bucket: int) -> _Bucket:
        """One bucket's index entry."""
        low = bucket << self.shift
        i = bisect_left(self.starts, low)
        j = bisect_left(self.starts, (bucket + 1) << self.shift, i)
        if j == i:  # no range starts inside: the one before covers the whole bucket
            return self.labels[i - 1]
        if j == i + 1 and self.starts[i] == low:
            return self.labels[i]
        # the range covering the bucket's first address, then those starting in it
        return (low, *self.starts[i:j]), (self.labels[i - 1], *self.labels[i:j])

    @classmethod
    def paint(cls, layers: Layers, default: str, version: int) -> _Ranges:
        """Flatten ``layers`` (first match wins) into disjoint ranges; gaps get ``default``.

        One sweep over the sorted range edges, counting the open ranges of each layer: the
        label at an edge is the first layer with one open (n log n for n ranges).
        """
        edges: list[tuple[int, int, int]] = []
        for rank, (_, nets) in enumerate(layers):
            for net in nets:
                edges.append((int(net.network_address), rank, 1))
                edges.append((int(net.broadcast_address) + 1, rank, -1))
        edges.sort()
        open_count = [0] * len(layers)
        starts, labels = [0], [default]
        i = 0
        end = 1 << (
            _BUCKET_SHIFT[version] + _BUCKET_BITS
        )  # past the last address: nothing starts there
        while i < len(edges) and edges[i][0] < end:
            edge = edges[i][0]
            while i < len(edges) and edges[i][0] == edge:
                open_count[edges[i][1]] += edges[i][2]
                i += 1
            top = next((rank for rank, n in enumerate(open_count) if n), None)
            _append(starts, labels, edge, default if top is None else layers[top][0])
        return cls.indexed(tuple(starts), tuple(labels), _BUCKET_SHIFT[version])

    def under(self, top: _Ranges) -> _Ranges:
        """These ranges with ``top`` painted over them; ``top``'s ``""`` ranges let them show.
        Buckets ``top`` leaves alone share this index's entries."""
        starts: list[int] = [0]
        labels: list[str] = [top.label(0) or self.label(0)]
        for edge in sorted({*self.starts, *top.starts}):
            _append(starts, labels, edge, top.label(edge) or self.label(edge))
        ends = (*top.starts[1:], 1 << (self.shift + _BUCKET_BITS))
        changed = {
            bucket
            for start, end, label in zip(top.starts, ends, top.labels, strict=True)
            if label
            for bucket in range(start >> self.shift, ((end - 1) >> self.shift) + 1)
        }
        return _Ranges.indexed(tuple(starts), tuple(labels), self.shift, self, changed)

    def label(self, value: int) -> str:
        return self.labels[bisect_right(self.starts, value) - 1]


def _append(starts: list[int], labels: list[str], edge: int, label: str) -> None:
    """Add a range starting at ``edge``, merging it with an equal neighbour."""
    if starts[-1] == edge:
        labels[-1] = label
        if len(labels) > 1 and labels[-2] == label:
            starts.pop()
            labels.pop()
    elif labels[-1] != label:
        starts.append(edge)
        labels.append(label)


@attrs.frozen(slots=True)
class AddressMap:
    """Labels for IPv4 and IPv6 addresses; a set when every label is ``"in"`` or ``""``."""

    v4: _Ranges
    v6: _Ranges

    @classmethod
    def build(cls, layers: Layers, default4: str, default6: str) -> AddressMap:
        """Paint ``layers`` (first match wins) per IP version over the version's default."""

        def of_version(version: int) -> list[tuple[str, Sequence[IpNetwork]]]:
            return [(label, [n for n in nets if n.version == version]) for label, nets in layers]

        return cls(
            _Ranges.paint(of_version(4), default4, 4), _Ranges.paint(of_version(6), default6, 6)
        )

    @classmethod
    def of(cls, networks: Sequence[IpNetwork]) -> AddressMap:
        return cls.build([("in", networks)], "", "")

    def under(self, layers: Layers) -> AddressMap:
        """This map with ``layers`` painted over it (first match wins)."""
        top = AddressMap.build(layers, "", "")
        return AddressMap(self.v4.under(top.v4), self.v6.under(top.v6))

    def label(self, addr: IpAddress) -> str:
        # _Ranges.label inlined: this runs for every address classified
        ranges = self.v4 if type(addr) is IPv4Address else self.v6
        value = int(addr)
        if not ranges.index:
            return ranges.labels[bisect_right(ranges.starts, value) - 1]
        entry = ranges.index[value >> ranges.shift]
        if isinstance(entry, str):
            return entry
        starts, labels = entry
        return labels[bisect_right(starts, value) - 1]

    def __contains__(self, addr: IpAddress) -> bool:
        return bool(self.label(addr))


def class_map(layers: Layers) -> AddressMap:
    """The store's own layers (first match wins) over the shared table of every class."""
    return shared_classes().under(layers) if any(nets for _, nets in layers) else shared_classes()


@functools.cache
def shared_classes() -> AddressMap:
    """Special-purpose, then shipped CDN and cloud ranges; unlisted IPv4 is public."""
    special = [(label, [ip_network(c) for c in cidrs]) for label, cidrs in _SPECIAL]
    shipped = [("cdn", cloudflare_networks()), *shipped_ranges()]
    public = [(_PUBLIC_V6[0], [ip_network(c) for c in _PUBLIC_V6[1]])]
    return AddressMap.build([*special, *shipped, *public], default4="public", default6="reserved")


def shipped_ranges() -> list[tuple[str, tuple[IpNetwork, ...]]]:
    """Each shipped ``<class>-<provider>.txt`` as (class, networks), CDNs before clouds."""
    folder = resources.files("router.identity").joinpath("data")
    found: list[tuple[str, tuple[IpNetwork, ...]]] = []
    for ip_class in RANGE_CLASSES:
        for item in sorted(folder.iterdir(), key=lambda entry: entry.name):
            if item.name.startswith(f"{ip_class}-") and item.name.endswith(".txt"):
                found.append((ip_class, parse_range_file(item.read_text("utf-8"), item.name)))
    return found


@functools.cache
def cloudflare_networks() -> tuple[IpNetwork, ...]:
    """Cloudflare's published ranges, read once from the shipped ``data/cloudflare.txt``."""
    text = resources.files("router.identity").joinpath("data/cloudflare.txt").read_text("utf-8")
    return parse_range_file(text, "cloudflare.txt")


def parse_range_file(text: str, source: str) -> tuple[IpNetwork, ...]:
    """Parse one CIDR per line (``#`` comments allowed); ValueError names the bad line."""
    networks: list[IpNetwork] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.partition("#")[0].strip()
        if not line:
            continue
        try:
            networks.append(parse_network(line))
        except ValueError as exc:
            raise ValueError(f"{source} line {number}: {exc}") from None
    return tuple(networks)


def parse_network(entry: str, *, named_sets: bool = False) -> IpNetwork:
    """Parse a CIDR or bare IP (config syntax); IPv4-mapped IPv6 networks become IPv4 ones."""
    if named_sets:
        valid = f"use a CIDR such as 10.0.0.0/8 or a named set: {CLOUDFLARE}"
    else:
        valid = "use an IP or a CIDR such as 10.0.0.0/8"
    text = entry.strip()
    try:
        if not text or "%" in text:
            raise ValueError(text)
        net = ip_network(text, strict=False)
    except ValueError:
        raise ValueError(f"{entry!r} is not an IP network; {valid}") from None
    if net.network_address != ip_address(text.partition("/")[0]):
        raise ValueError(f"{entry!r} has host bits set; did you mean {net}?")
    if isinstance(net, IPv6Network) and net.prefixlen >= 96 and net.subnet_of(_MAPPED_V6):
        mapped = int(net.network_address) - int(_MAPPED_V6.network_address)
        return IPv4Network((mapped, net.prefixlen - 96))
    return net
