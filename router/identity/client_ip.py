"""Resolve and classify the real client IP of an ingest request, behind proxies and CDNs."""

from __future__ import annotations

import functools
import re
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from importlib import resources
from ipaddress import (
    IPv4Address,
    IPv4Network,
    IPv6Address,
    IPv6Network,
    ip_address,
    ip_network,
)
from typing import Final, Protocol

import attrs

from router.event import IpOrigin

#: One of the labels in ``router.event.IP_CLASSES``; only ``public`` is a usable customer IP.
IpClass = str

IpAddress = IPv4Address | IPv6Address
IpNetwork = IPv4Network | IPv6Network
_Parsed = tuple[IpAddress, str]  # an address and its normalised text

CLOUDFLARE: Final = "cloudflare"
HEADER_NAMES: Final = ("cf-connecting-ip", "true-client-ip", "x-forwarded-for", "forwarded")
DEFAULT_HEADERS: Final = ("cf-connecting-ip", "x-forwarded-for", "forwarded")
_CLOUDFLARE_HEADERS: Final = frozenset({"cf-connecting-ip", "true-client-ip"})

# The longest useful text is a bracketed IPv6 with port: "[" + 45 + "]:65535" = 53 chars.
_MAX_IP_TEXT: Final = 64
_MAPPED_V6: Final = IPv6Network("::ffff:0:0/96")

# Classification layers in priority order (first match wins); own_server and cdn go on top.
_CLASS_LAYERS_V4: Final = (
    ("loopback", ("127.0.0.0/8",)),
    ("documentation", ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")),
    ("cgnat", ("100.64.0.0/10",)),
    ("link_local", ("169.254.0.0/16",)),
    ("private", ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")),
    ("multicast", ("224.0.0.0/4",)),
    # "this network" (incl. unspecified), IETF protocol assignments, benchmarking,
    # 240/4 (incl. the limited broadcast 255.255.255.255).
    ("reserved", ("0.0.0.0/8", "192.0.0.0/24", "198.18.0.0/15", "240.0.0.0/4")),
)
_CLASS_LAYERS_V6: Final = (
    ("loopback", ("::1/128",)),
    ("documentation", ("2001:db8::/32", "3fff::/20")),
    ("link_local", ("fe80::/10",)),
    ("private", ("fc00::/7",)),
    ("multicast", ("ff00::/8",)),
    # unspecified, discard-only, IETF protocol assignments, local-use NAT64, SRv6 SIDs.
    ("reserved", ("::/128", "100::/64", "2001::/23", "64:ff9b:1::/48", "5f00::/16")),
    # Only global unicast and the well-known NAT64 prefix are public; the rest is reserved.
    ("public", ("2000::/3", "64:ff9b::/96")),
)

# RFC 7230 tchar; values also accept ':' and brackets: an IPv6 that should have been quoted.
_TCHAR: Final = r"\-!#$%&'*+.^_`|~0-9A-Za-z"
_VALUE_TOKEN: Final = re.compile(rf"[{_TCHAR}:\[\]]+")
_EQUALS_NAME: Final = re.compile(rf"=([{_TCHAR}]+)")
# In reversed text an escape's backslash follows the character it escapes, so a quote is
# unescaped when an even run of backslashes (often none) follows it.
_UNESCAPED_QUOTE: Final = re.compile(r'"(?:\\\\)*+(?!\\)')
_QUOTED_PAIR: Final = re.compile(r"\\(.)")


class HeaderSource(Protocol):
    """Case-insensitive multi-valued headers; aiohttp's ``CIMultiDictProxy`` satisfies it."""

    def getall(self, key: str, default: list[str], /) -> list[str]: ...


@attrs.frozen(slots=True)
class ResolvedIp:
    """The client IP of one request, where it came from and what kind of address it is."""

    ip: str | None
    origin: IpOrigin
    ip_class: IpClass


MISSING: Final = ResolvedIp(ip=None, origin="missing", ip_class="missing")


def parse_ip(text: str) -> IpAddress | None:
    """Parse one address strictly (optional port, brackets for IPv6); None for anything else."""
    parsed = _parse_text(text) if isinstance(text, str) else None
    return None if parsed is None else parsed[0]


@functools.lru_cache(maxsize=4096)
def _parse(text: str) -> _Parsed | None:
    """:func:`parse_ip` plus the normalised text; cached, as peers and proxies repeat."""
    if not text.isascii() or "%" in text:  # a scope id is host-local; never believe one
        return None
    text = text.strip()
    try:
        addr = _parse_host_port(text)
    except ValueError:
        return None
    if isinstance(addr, IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr, str(addr)


def _parse_text(text: str | None) -> _Parsed | None:
    """Parse with the length guard in front of the cache, so long junk is never stored."""
    return _parse(text) if text is not None and len(text) <= _MAX_IP_TEXT else None


def _parse_host_port(text: str) -> IpAddress:
    """Parse ``a.b.c.d``, ``a.b.c.d:port``, an IPv6, ``[v6]`` or ``[v6]:port``."""
    if text.startswith("["):
        host, closed, rest = text[1:].partition("]")
        if not closed or (rest and not (rest[0] == ":" and _is_port(rest[1:]))):
            raise ValueError(text)
        return IPv6Address(host)
    colons = text.count(":")
    if colons == 1:
        host, _, port = text.partition(":")
        if not _is_port(port):
            raise ValueError(text)
        return IPv4Address(host)
    return IPv6Address(text) if colons else IPv4Address(text)


def _is_port(text: str) -> bool:
    return text.isdigit() and len(text) <= 5 and int(text) <= 65535


@attrs.frozen(slots=True)
class _Ranges:
    """Disjoint sorted ranges of one IP version, each with a label; looked up by bisection."""

    starts: tuple[int, ...]
    labels: tuple[str, ...]

    @classmethod
    def paint(cls, layers: Sequence[tuple[str, Sequence[IpNetwork]]], default: str) -> _Ranges:
        """Flatten ``layers`` (first match wins) into disjoint ranges; gaps get ``default``."""
        spans = [
            (int(net.network_address), int(net.broadcast_address) + 1, label)
            for label, nets in layers
            for net in nets
        ]
        edges = sorted({0} | {edge for start, end, _ in spans for edge in (start, end)})
        starts: list[int] = []
        labels: list[str] = []
        for edge in edges:
            label = next((lab for start, end, lab in spans if start <= edge < end), default)
            if not labels or labels[-1] != label:
                starts.append(edge)
                labels.append(label)
        return cls(tuple(starts), tuple(labels))

    def label(self, value: int) -> str:
        return self.labels[bisect_right(self.starts, value) - 1]


@attrs.frozen(slots=True)
class _AddressMap:
    """Labels for IPv4 and IPv6 addresses; a set when every label is ``"in"`` or ``""``."""

    v4: _Ranges
    v6: _Ranges

    @classmethod
    def build(
        cls, layers: Sequence[tuple[str, Sequence[IpNetwork]]], default4: str, default6: str
    ) -> _AddressMap:
        """Paint ``layers`` (first match wins) per IP version over the version's default."""

        def of_version(version: int) -> list[tuple[str, Sequence[IpNetwork]]]:
            return [(label, [n for n in nets if n.version == version]) for label, nets in layers]

        return cls(_Ranges.paint(of_version(4), default4), _Ranges.paint(of_version(6), default6))

    @classmethod
    def of(cls, networks: Sequence[IpNetwork]) -> _AddressMap:
        return cls.build([("in", networks)], "", "")

    def label(self, addr: IpAddress) -> str:
        return (self.v4 if type(addr) is IPv4Address else self.v6).label(int(addr))

    def __contains__(self, addr: IpAddress) -> bool:
        return bool(self.label(addr))


_PAYLOAD_CACHE_SIZE: Final = 4096


@attrs.frozen(slots=True)
class ClientIpPolicy:
    """How one store resolves client IPs; build it once at config load with :meth:`build`."""

    trusted: _AddressMap
    headers: tuple[str, ...]
    cloudflare_trusted: bool
    cloudflare: _AddressMap
    classes: _AddressMap
    #: A payload IP's answer depends on its text only; server-side senders repeat customers.
    _payload_results: dict[str, ResolvedIp] = attrs.field(
        factory=dict, init=False, eq=False, repr=False
    )

    @classmethod
    def build(
        cls,
        trusted_proxies: Sequence[str],
        *,
        headers: Sequence[str] = DEFAULT_HEADERS,
        own_addresses: Sequence[str] = (),
        cdn_ranges: Sequence[str] = (),
    ) -> ClientIpPolicy:
        """Validate the config lists; raise ValueError naming the bad entry and what is valid."""
        cloudflare = cloudflare_networks()
        trusted: list[IpNetwork] = []
        cloudflare_trusted = False
        for entry in _entries("trusted_proxies", trusted_proxies):
            if entry.strip().lower() == CLOUDFLARE:
                cloudflare_trusted = True
                trusted.extend(cloudflare)
            else:
                trusted.append(parse_network(entry, named_sets=True))
        layers = [
            ("own_server", [parse_network(e) for e in _entries("own_addresses", own_addresses)]),
            ("cdn", [*cloudflare, *(parse_network(e) for e in _entries("cdn_ranges", cdn_ranges))]),
        ]
        return cls(
            trusted=_AddressMap.of(trusted),
            headers=_header_names(headers),
            cloudflare_trusted=cloudflare_trusted,
            cloudflare=_AddressMap.of(cloudflare),
            classes=_class_map(layers),
        )

    def resolve(
        self, peer: str | None, headers: HeaderSource, payload_ip: str | None
    ) -> ResolvedIp:
        """Pick the client IP: a valid payload IP, else trusted-proxy headers, else the peer."""
        if isinstance(payload_ip, str):
            known = self._payload_results.get(payload_ip)
            if known is not None:
                return known
            if (parsed := _parse_text(payload_ip)) is not None:
                if len(self._payload_results) >= _PAYLOAD_CACHE_SIZE:
                    self._payload_results.clear()
                result = self._payload_results[payload_ip] = self._resolved(parsed, "payload")
                return result
        # The TCP peer comes from the kernel, so a scope id on it is stripped, not rejected.
        peer_parsed = _parse_text(peer.partition("%")[0]) if peer else None
        if peer_parsed is None:
            return MISSING
        if peer_parsed[0] in self.trusted:
            parsed = self._from_headers(peer_parsed[0], headers)
            if parsed is not None:
                return self._resolved(parsed, "header")
        return self._resolved(peer_parsed, "peer")

    def trusts(self, peer: str | None) -> bool:
        """Whether the TCP peer is one of the store's trusted proxies (its headers count)."""
        parsed = _parse_text(peer.partition("%")[0]) if peer else None
        return parsed is not None and parsed[0] in self.trusted

    def classify(self, ip: str | None) -> IpClass:
        """Label ``ip`` (own_server, cdn, loopback, ..., public); ``missing`` if unparseable."""
        addr = parse_ip(ip) if ip is not None else None
        return "missing" if addr is None else self.classes.label(addr)

    def _resolved(self, parsed: _Parsed, origin: IpOrigin) -> ResolvedIp:
        return ResolvedIp(ip=parsed[1], origin=origin, ip_class=self.classes.label(parsed[0]))

    def _from_headers(self, peer: IpAddress, headers: HeaderSource) -> _Parsed | None:
        for name in self.headers:
            lines = headers.getall(name, [])
            if not lines:
                continue
            if name in _CLOUDFLARE_HEADERS:
                parsed = self._from_cloudflare(peer, lines)
            elif name == "x-forwarded-for":
                parsed = self._walk(_xff_hops(lines))
            else:
                parsed = self._walk(_forwarded_hops(lines))
            if parsed is not None:
                return parsed
        return None

    def _from_cloudflare(self, peer: IpAddress, lines: list[str]) -> _Parsed | None:
        """CF-Connecting-IP / True-Client-IP: one IP, believed only from a Cloudflare peer."""
        if not self.cloudflare_trusted or peer not in self.cloudflare or len(lines) != 1:
            return None
        return _parse_text(lines[0])

    def _walk(self, hops: Iterable[str | None]) -> _Parsed | None:
        """Walk hops (given right to left) past trusted ones; a malformed hop stops the walk
        at the last good one, the nearest trusted hop's claim not being believed further."""
        last: _Parsed | None = None
        for hop in hops:
            parsed = _parse_text(hop)
            if parsed is None:
                return last
            if parsed[0] not in self.trusted:
                return parsed
            last = parsed
        return last


def _xff_hops(lines: list[str]) -> Iterator[str]:
    """X-Forwarded-For entries, right to left across all lines."""
    for line in reversed(lines):
        yield from reversed(line.split(","))


def _forwarded_hops(lines: list[str]) -> Iterator[str | None]:
    """RFC 7239 ``for=`` values, right to left; parsing from the right keeps the hops our
    proxies appended independent of whatever the client wrote before them. A malformed
    element, or one without ``for``, yields None and ends the walk."""
    for line in reversed(lines):
        text, pos = line[::-1], 0
        while True:
            try:
                found, pos = _reversed_element(text, pos)
            except ValueError:
                found = None
            yield found
            if found is None:
                return
            if pos >= len(text):
                break
            pos += 1  # the comma


def _reversed_element(text: str, pos: int) -> tuple[str | None, int]:
    """Parse one element of the reversed header from ``pos``; return its ``for`` value and
    the index of the ``,`` that ends it (or the end of the text)."""
    found: str | None = None
    seen = False
    while True:
        pos = _skip_ows(text, pos)
        if pos < len(text) and text[pos] not in ",;":
            name, value, pos = _reversed_pair(text, pos)
            if name.lower() == "for":
                if seen:
                    raise ValueError(text)
                seen, found = True, value
            pos = _skip_ows(text, pos)
        if pos >= len(text) or text[pos] == ",":
            return found, pos
        if text[pos] != ";":
            raise ValueError(text)
        pos += 1


def _reversed_pair(text: str, pos: int) -> tuple[str, str, int]:
    """Parse one ``name=value`` pair of the reversed header; return name, value and end."""
    if text[pos] == '"':
        value, pos = _reversed_quoted(text, pos)
    else:
        token = _VALUE_TOKEN.match(text, pos)
        if token is None:
            raise ValueError(text)
        value, pos = token[0][::-1], token.end()
    name = _EQUALS_NAME.match(text, pos)
    if name is None:
        raise ValueError(text)
    return name[1][::-1], value, name.end()


def _reversed_quoted(text: str, pos: int) -> tuple[str, int]:
    """Read a quoted-string backwards from its closing quote at ``pos``; return the unescaped
    value and the index after its opening quote."""
    opening = _UNESCAPED_QUOTE.search(text, pos + 1)
    if _UNESCAPED_QUOTE.match(text, pos) is None or opening is None:
        raise ValueError(text)
    end = opening.start()
    value = text[end - 1 : pos : -1]
    if "\\" in value and len(value) <= 3 * _MAX_IP_TEXT:  # longer cannot be an address anyway
        value = _QUOTED_PAIR.sub(r"\1", value)
    return value, end + 1


def _skip_ows(line: str, pos: int) -> int:
    while pos < len(line) and line[pos] in " \t":
        pos += 1
    return pos


def _entries(field: str, value: Sequence[str]) -> Sequence[str]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValueError(f"{field} must be a list, not {type(value).__name__} {value!r}")
    for entry in value:
        if not isinstance(entry, str):
            raise ValueError(f"{field}: {entry!r} is not a string")
    return value


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


def _header_names(headers: Sequence[str]) -> tuple[str, ...]:
    names = tuple(h.strip().lower() for h in _entries("headers", headers))
    for name in names:
        if name not in HEADER_NAMES:
            valid = ", ".join(HEADER_NAMES)
            raise ValueError(f"{name!r} is not a supported client IP header; valid: {valid}")
    return tuple(dict.fromkeys(names))


def _class_map(extra: Sequence[tuple[str, Sequence[IpNetwork]]]) -> _AddressMap:
    """Own and CDN layers on top of the fixed special-purpose table; unlisted IPv4 is public."""
    fixed = [
        (label, [ip_network(cidr) for cidr in cidrs])
        for label, cidrs in (*_CLASS_LAYERS_V4, *_CLASS_LAYERS_V6)
    ]
    return _AddressMap.build([*extra, *fixed], default4="public", default6="reserved")


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
