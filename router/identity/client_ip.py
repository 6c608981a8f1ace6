"""Resolve and classify the real client IP of an ingest request, behind proxies and CDNs."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Sequence
from ipaddress import IPv4Address, IPv6Address
from typing import Final, Literal, Protocol

import attrs

from router.event import IpOrigin
from router.identity.ranges import (
    CLOUDFLARE,
    AddressMap,
    IpAddress,
    class_map,
    cloudflare_networks,
    parse_network,
    parse_range_file,
)

__all__ = [
    "CLOUDFLARE",
    "KEY_KINDS",
    "ClientIpPolicy",
    "KeyKind",
    "ResolvedIp",
    "check_entries",
    "cloudflare_networks",
    "parse_ip",
    "parse_network",
    "parse_range_file",
]

#: One of the labels in ``router.event.IP_CLASSES``; only ``public`` is a usable customer IP.
IpClass = str
#: Who holds a write key: the store's backend (``server``) or the customer's browser.
KeyKind = Literal["server", "browser"]
KEY_KINDS: Final = ("server", "browser")

_Parsed = tuple[IpAddress, str]  # an address and its normalised text

HEADER_NAMES: Final = ("cf-connecting-ip", "true-client-ip", "x-forwarded-for", "forwarded")
DEFAULT_HEADERS: Final = ("cf-connecting-ip", "x-forwarded-for", "forwarded")
_CLOUDFLARE_HEADERS: Final = frozenset({"cf-connecting-ip", "true-client-ip"})

# The longest useful text is a bracketed IPv6 with port: "[" + 45 + "]:65535" = 53 chars.
_MAX_IP_TEXT: Final = 64

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


_PAYLOAD_CACHE_SIZE: Final = 4096


@attrs.frozen(slots=True)
class ClientIpPolicy:
    """How one store resolves client IPs; build it once at config load with :meth:`build`."""

    trusted: AddressMap
    headers: tuple[str, ...]
    cloudflare_trusted: bool
    cloudflare: AddressMap
    classes: AddressMap
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
        cloud_ranges: Sequence[str] = (),
    ) -> ClientIpPolicy:
        """Validate the config lists; raise ValueError naming the bad entry and what is valid.

        Classes, first match wins: own_addresses (own_server), the trusted proxies' own
        CIDRs (proxy), cdn_ranges and cloud_ranges, then the shared table (special-purpose,
        the shipped CDN and cloud ranges, public).
        """
        cloudflare = cloudflare_networks()
        proxies = [
            parse_network(e, named_sets=True)
            for e in _entries("trusted_proxies", trusted_proxies)
            if e.strip().lower() != CLOUDFLARE
        ]
        cloudflare_trusted = len(proxies) < len(trusted_proxies)
        layers = [
            ("own_server", [parse_network(e) for e in _entries("own_addresses", own_addresses)]),
            ("proxy", proxies),
            ("cdn", [parse_network(e) for e in _entries("cdn_ranges", cdn_ranges)]),
            ("cloud", [parse_network(e) for e in _entries("cloud_ranges", cloud_ranges)]),
        ]
        return cls(
            trusted=AddressMap.of([*proxies, *(cloudflare if cloudflare_trusted else ())]),
            headers=_header_names(headers),
            cloudflare_trusted=cloudflare_trusted,
            cloudflare=_cloudflare_map(),
            classes=class_map(layers),
        )

    def resolve(
        self,
        peer: str | None,
        headers: HeaderSource,
        payload_ip: str | None,
        kind: KeyKind = "server",
    ) -> ResolvedIp:
        """Pick the client IP: a valid payload IP (server keys only), else trusted-proxy
        headers, else the peer. A server key's peer is the store's own backend, never the
        customer: it is kept as class ``own_server``. A browser cannot know its public IP,
        so a browser key's payload IP is ignored and the connection decides."""
        if isinstance(payload_ip, str) and kind == "server":
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
        if kind == "server":
            return ResolvedIp(ip=peer_parsed[1], origin="peer", ip_class="own_server")
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


def check_entries(field: str, entries: Sequence[str]) -> None:
    """Raise ValueError naming the first bad entry of a client_ip network list (config)."""
    for entry in _entries(field, entries):
        if field != "trusted_proxies" or entry.strip().lower() != CLOUDFLARE:
            parse_network(entry, named_sets=field == "trusted_proxies")


@functools.cache
def _cloudflare_map() -> AddressMap:
    return AddressMap.of(cloudflare_networks())


def _header_names(headers: Sequence[str]) -> tuple[str, ...]:
    names = tuple(h.strip().lower() for h in _entries("headers", headers))
    for name in names:
        if name not in HEADER_NAMES:
            valid = ", ".join(HEADER_NAMES)
            raise ValueError(f"{name!r} is not a supported client IP header; valid: {valid}")
    return tuple(dict.fromkeys(names))
