"""Client IP resolution and classification: the B1 security tests 1-5 and the policy builder."""

from __future__ import annotations

import random
import re
from typing import cast

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from router.event import IP_CLASSES
from router.identity.client_ip import (
    ClientIpPolicy,
    ResolvedIp,
    cloudflare_networks,
    parse_ip,
    parse_range_file,
)


class FakeHeaders:
    """A minimal case-insensitive HeaderSource over (name, value) lines in arrival order."""

    def __init__(self, *lines: tuple[str, str]) -> None:
        self._lines = lines

    def getall(self, key: str, default: list[str], /) -> list[str]:
        found = [value for name, value in self._lines if name.lower() == key.lower()]
        return found or default


def xff(*lines: str) -> FakeHeaders:
    return FakeHeaders(*(("X-Forwarded-For", line) for line in lines))


def fwd(*lines: str) -> FakeHeaders:
    return FakeHeaders(*(("Forwarded", line) for line in lines))


NO_HEADERS = FakeHeaders()
PROXY = "10.0.0.1"  # a trusted proxy in front of the router
CF_PEER = "173.245.48.10"  # inside Cloudflare's 173.245.48.0/20
CF_PEER_V6 = "2606:4700::6810:1"
OUTSIDER = "198.51.100.77"  # an untrusted direct client

POLICY = ClientIpPolicy.build(["10.0.0.0/8", "fd00::/8"])
FORWARDED_ONLY = ClientIpPolicy.build(["10.0.0.0/8", "fd00::/8"], headers=["forwarded"])
CLOUDFLARE = ClientIpPolicy.build(["cloudflare", "10.0.0.0/8"])


def header(ip: str) -> ResolvedIp:
    return ResolvedIp(ip=ip, origin="header", ip_class=POLICY.classify(ip))


def peer(ip: str) -> ResolvedIp:
    """The peer fallback of a server key (the default): the store's own backend."""
    return ResolvedIp(ip=ip, origin="peer", ip_class="own_server")


# --- 1. Spoofed headers from an untrusted peer ------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        xff("1.2.3.4"),
        xff("1.2.3.4, 10.0.0.2"),
        fwd("for=1.2.3.4"),
        FakeHeaders(("CF-Connecting-IP", "1.2.3.4")),
        FakeHeaders(("True-Client-IP", "1.2.3.4")),
    ],
)
def test_spoofed_headers_from_untrusted_peer_are_ignored(headers: FakeHeaders) -> None:
    """A forwarding header sent straight from an untrusted peer is ignored: the peer wins."""
    for policy in (POLICY, CLOUDFLARE):
        assert policy.resolve(OUTSIDER, headers, None) == peer(OUTSIDER)


# --- 2. Right-to-left X-Forwarded-For walk ----------------------------------------------


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (["6.6.6.6, 203.0.113.7"], header("203.0.113.7")),
        (["6.6.6.6", "203.0.113.7"], header("203.0.113.7")),
        (["6.6.6.6, 203.0.113.7", "10.0.0.2"], header("203.0.113.7")),
        (["6.6.6.6, 203.0.113.7, 10.0.0.3, 10.0.0.2"], header("203.0.113.7")),
        (["a, b, c, d, 203.0.113.1"], header("203.0.113.1")),
        (["6.6.6.6, 203.0.113.7:4711"], header("203.0.113.7")),
        (["6.6.6.6, [2001:db8::7]:443, 10.0.0.2:80"], header("2001:db8::7")),
        (["6.6.6.6, [2001:db8::7]"], header("2001:db8::7")),
        (["6.6.6.6,2001:DB8:0::7"], header("2001:db8::7")),
        (["  6.6.6.6 ,\t203.0.113.7  "], header("203.0.113.7")),
        (["::ffff:203.0.113.7"], header("203.0.113.7")),
        (["203.0.113.7, fd00::2"], header("203.0.113.7")),
        (["10.0.0.5, 10.0.0.4"], header("10.0.0.5")),
        # A malformed entry stops the walk at the last good (trusted) address, if any.
        (["6.6.6.6, 203.000.113.7, 10.0.0.2"], header("10.0.0.2")),
        (["6.6.6.6, fe80::1%eth0, 10.0.0.2"], header("10.0.0.2")),
        (["6.6.6.6, not-an-ip, 10.0.0.2"], header("10.0.0.2")),
        (["6.6.6.6,, 10.0.0.2"], header("10.0.0.2")),
        (["6.6.6.6, 203.0.113.7, unknown"], peer(PROXY)),
        (["203.0.113.7, 010.0.0.2"], peer(PROXY)),
        (["203.0.113.7,"], peer(PROXY)),
        ([""], peer(PROXY)),
        (["203.0.113.7:99999"], peer(PROXY)),
        (["203.0.113.7:"], peer(PROXY)),
        (["[203.0.113.7]"], peer(PROXY)),
        (["[2001:db8::7"], peer(PROXY)),
        (["2001:db8::7:443"], header("2001:db8::7:443")),  # a valid IPv6, not a port
        (["203.0.113.7 1"], peer(PROXY)),
        (["２０３.0.113.7"], peer(PROXY)),
        (["203.0.113." + "7" * 80], peer(PROXY)),
    ],
)
def test_xff_walk_from_trusted_peer(lines: list[str], expected: ResolvedIp) -> None:
    """From a trusted peer the client is the rightmost untrusted XFF entry, never the leftmost."""
    assert POLICY.resolve(PROXY, xff(*lines), None) == expected


def test_xff_walk_trusts_ipv6_proxy_peer() -> None:
    """An IPv6 trusted peer is walked through the same way as an IPv4 one."""
    assert POLICY.resolve("fd00::1", xff("6.6.6.6, 203.0.113.7"), None) == header("203.0.113.7")


def test_xff_is_ignored_when_no_header_is_configured() -> None:
    """With an empty header list even a trusted peer's headers are not read."""
    policy = ClientIpPolicy.build(["10.0.0.0/8"], headers=[])
    assert policy.resolve(PROXY, xff("203.0.113.7"), None) == peer(PROXY)


def test_xff_lines_from_multidict_are_joined_in_order() -> None:
    """aiohttp's CIMultiDictProxy works as a header source, case-insensitively, with two lines."""
    raw = CIMultiDict([("X-Forwarded-For", "6.6.6.6"), ("x-forwarded-for", "203.0.113.7")])
    assert POLICY.resolve(PROXY, CIMultiDictProxy(raw), None) == header("203.0.113.7")


# --- 3. Cloudflare headers --------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "peer_ip", "headers", "expected"),
    [
        # CF-Connecting-IP is honoured only from a Cloudflare peer with "cloudflare" trusted.
        (CLOUDFLARE, CF_PEER, [("CF-Connecting-IP", "203.0.113.7")], "203.0.113.7"),
        (CLOUDFLARE, CF_PEER_V6, [("CF-Connecting-IP", "2001:db8::7")], "2001:db8::7"),
        (CLOUDFLARE, PROXY, [("CF-Connecting-IP", "203.0.113.7")], PROXY),
        (CLOUDFLARE, OUTSIDER, [("CF-Connecting-IP", "203.0.113.7")], OUTSIDER),
        (POLICY, CF_PEER, [("CF-Connecting-IP", "203.0.113.7")], CF_PEER),
        # Trusting Cloudflare's CIDRs by hand is not the named set: its headers stay off.
        (
            ClientIpPolicy.build(["173.245.48.0/20"]),
            CF_PEER,
            [("CF-Connecting-IP", "203.0.113.7")],
            CF_PEER,
        ),
        # It beats XFF; garbage or a second line falls through to XFF.
        (
            CLOUDFLARE,
            CF_PEER,
            [("X-Forwarded-For", "6.6.6.6"), ("CF-Connecting-IP", "203.0.113.7")],
            "203.0.113.7",
        ),
        (
            CLOUDFLARE,
            CF_PEER,
            [("CF-Connecting-IP", "bogus"), ("X-Forwarded-For", "6.6.6.6")],
            "6.6.6.6",
        ),
        (
            CLOUDFLARE,
            CF_PEER,
            [("CF-Connecting-IP", "203.0.113.7"), ("CF-Connecting-IP", "6.6.6.6")],
            CF_PEER,
        ),
        # Cloudflare appends to XFF; its own address is a trusted hop.
        (
            CLOUDFLARE,
            PROXY,
            [("X-Forwarded-For", "6.6.6.6, 203.0.113.7, " + CF_PEER)],
            "203.0.113.7",
        ),
        # True-Client-IP is off by default, even from Cloudflare.
        (CLOUDFLARE, CF_PEER, [("True-Client-IP", "203.0.113.7")], CF_PEER),
        (
            ClientIpPolicy.build(["cloudflare"], headers=["true-client-ip"]),
            CF_PEER,
            [("True-Client-IP", "203.0.113.7")],
            "203.0.113.7",
        ),
        (
            ClientIpPolicy.build(["cloudflare", "10.0.0.0/8"], headers=["true-client-ip"]),
            PROXY,
            [("True-Client-IP", "203.0.113.7")],
            PROXY,
        ),
        (
            ClientIpPolicy.build(["cloudflare"], headers=["true-client-ip"]),
            CF_PEER,
            [("CF-Connecting-IP", "203.0.113.7")],
            CF_PEER,
        ),
    ],
)
def test_cloudflare_headers(
    policy: ClientIpPolicy, peer_ip: str, headers: list[tuple[str, str]], expected: str
) -> None:
    """CF-Connecting-IP/True-Client-IP count only from Cloudflare peers, and only if configured."""
    resolved = policy.resolve(peer_ip, FakeHeaders(*headers), None)
    assert resolved.ip == expected
    assert resolved.origin == ("peer" if expected == peer_ip else "header")


# --- 4. RFC 7239 Forwarded --------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (["for=192.0.2.60;proto=http;by=203.0.113.43"], header("192.0.2.60")),
        (['for="[2001:db8:cafe::17]:4711"'], header("2001:db8:cafe::17")),
        (['for="[2001:db8:cafe::17]"'], header("2001:db8:cafe::17")),
        (['for="192.0.2.43:47011"'], header("192.0.2.43")),
        (["FOR=192.0.2.60"], header("192.0.2.60")),
        (["For=192.0.2.60;Proto=https"], header("192.0.2.60")),
        (["for=6.6.6.6, for=192.0.2.60, for=10.0.0.3"], header("192.0.2.60")),
        (["for=6.6.6.6", "for=192.0.2.60"], header("192.0.2.60")),
        ([" for=6.6.6.6 ; proto=https ,\tfor=192.0.2.60 "], header("192.0.2.60")),
        (['for="192.0.2.\\60"'], header("192.0.2.60")),
        (["for=[2001:db8::7]:80"], header("2001:db8::7")),  # should be quoted; tolerated
        (["for=10.0.0.5, for=10.0.0.4"], header("10.0.0.5")),
        # unknown, obfuscated and malformed hops stop the walk at the last good one.
        (["for=unknown"], peer(PROXY)),
        (["for=UNKNOWN, for=10.0.0.2"], header("10.0.0.2")),
        (["for=6.6.6.6, for=_hidden, for=10.0.0.2"], header("10.0.0.2")),
        (["for=_hidden"], peer(PROXY)),
        (['for=""'], peer(PROXY)),
        (["for=6.6.6.6, proto=https"], peer(PROXY)),
        (["for=6.6.6.6, by=10.0.0.2"], peer(PROXY)),
        (["for=6.6.6.6;for=192.0.2.60"], peer(PROXY)),
        (["for=192.0.2.60,"], peer(PROXY)),
        (["for=192.0.2.60;;proto=http"], header("192.0.2.60")),
        (["for = 192.0.2.60"], peer(PROXY)),
        (["for=192.0.2.60 x"], peer(PROXY)),
        (["for=010.0.0.2"], peer(PROXY)),
        (['for="[fe80::1%25eth0]"'], peer(PROXY)),
        (['for="fe80::1%eth0"'], peer(PROXY)),
        (['for="192.0.2.60'], peer(PROXY)),
        (['for=192.0.2.60"'], peer(PROXY)),
        (['for="192.0.2.60\\"'], peer(PROXY)),
        (['for=\\"192.0.2.60"'], peer(PROXY)),
        (['for=192.0.2.60;ext="a\\"'], peer(PROXY)),
        # Commas and semicolons inside quotes never split a hop or a pair.
        (['for="6.6.6.6, for=192.0.2.99"'], peer(PROXY)),
        (['for="192.0.2.99;for=6.6.6.6"'], peer(PROXY)),
        (['for="x, for=6.6.6.6", for=192.0.2.60'], header("192.0.2.60")),
        (['for=192.0.2.60;by="x, for=6.6.6.6"'], header("192.0.2.60")),
        (['for=192.0.2.60;ext="a\\", for=6.6.6.6"'], header("192.0.2.60")),
        (['for=6.6.6.6;ext="a\\\\", for=192.0.2.60'], header("192.0.2.60")),
        # A client-written prefix, even with an open quote, cannot change the appended hop.
        (['for="6.6.6.6, for=192.0.2.60'], header("192.0.2.60")),
        (['for="x', "for=192.0.2.60"], header("192.0.2.60")),
    ],
)
def test_forwarded_walk_from_trusted_peer(lines: list[str], expected: ResolvedIp) -> None:
    """RFC 7239 ``for=`` hops are walked right to left like XFF, quoting respected."""
    assert FORWARDED_ONLY.resolve(PROXY, fwd(*lines), None) == expected


@pytest.mark.parametrize(
    "entries",
    [
        ["6.6.6.6", "203.0.113.7"],
        ["6.6.6.6", "203.0.113.7", "10.0.0.3", "10.0.0.2"],
        ["6.6.6.6", "[2001:db8::7]:443", "10.0.0.2"],
        ["6.6.6.6", "203.0.113.7:4711"],
        ["6.6.6.6", "bogus", "10.0.0.2"],
        ["6.6.6.6", "010.0.0.9", "10.0.0.2"],
        ["203.0.113.7", "unknown"],
        ["10.0.0.5", "10.0.0.4"],
    ],
)
def test_forwarded_matches_xff_walk(entries: list[str]) -> None:
    """The same hops give the same result whether sent as XFF or as quoted Forwarded."""
    xff_result = POLICY.resolve(PROXY, xff(", ".join(entries)), None)
    forwarded = ", ".join(f'for="{entry}"' for entry in entries)
    assert FORWARDED_ONLY.resolve(PROXY, fwd(forwarded), None) == xff_result


def test_forwarded_and_xff_never_raise_on_junk() -> None:
    """Random junk in Forwarded and XFF never raises and yields the peer or a parsed address."""
    rng = random.Random(7239)
    alphabet = ['"', "\\", ",", ";", "=", " ", "for", "For", "[", "]", ":", "::1", "1.2.3.4"]
    alphabet += ["_x", "unknown", "%", "\t", "by=", "10.0.0.2", "é", "\x00"]
    for _ in range(3000):
        junk = "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 30)))
        for headers in (fwd(junk), xff(junk), fwd(junk, "for=10.0.0.2")):
            resolved = POLICY.resolve(PROXY, headers, None)
            assert resolved.origin in ("header", "peer")
            assert resolved.ip is not None and parse_ip(resolved.ip) is not None


@pytest.mark.parametrize(
    "line",
    [
        'for="' + ",x" * 4000,
        'for="' + '\\"' * 4000 + '"',
        ',for="' * 1300,
        "for=10.0.0.2," * 700 + "for=10.0.0.2",
        '"' + "\\" * 8000,
        "\\" * 8000,
    ],
)
def test_forwarded_survives_huge_hostile_lines(line: str) -> None:
    """Header-sized hostile Forwarded lines resolve without raising."""
    assert FORWARDED_ONLY.resolve(PROXY, fwd(line), None).origin in ("header", "peer")


# --- 5. Classification golden table -----------------------------------------------------

CLASSIFIER = ClientIpPolicy.build(
    [], own_addresses=["198.51.100.10", "2a01:4f8::/32"], cdn_ranges=["151.101.0.0/16"]
)


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("172.32.0.1", "public"),
        ("100.64.0.1", "cgnat"),
        ("100.127.255.254", "cgnat"),
        ("100.128.0.1", "public"),
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("169.254.169.254", "link_local"),
        ("192.0.2.1", "documentation"),
        ("198.51.100.1", "documentation"),
        ("203.0.113.1", "documentation"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("0.0.0.0", "reserved"),
        ("0.1.2.3", "reserved"),
        ("192.0.0.8", "reserved"),
        ("198.18.0.1", "reserved"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("81.2.69.142", "public"),
        ("81.2.69.142:443", "public"),
        ("::1", "loopback"),
        ("::", "reserved"),
        ("fe80::1", "link_local"),
        ("febf::1", "link_local"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("2001:db8::1", "documentation"),
        ("ff02::1", "multicast"),
        ("2001::1", "reserved"),
        ("4000::1", "reserved"),
        ("2a02:8070::1", "public"),
        ("64:ff9b::808:808", "public"),
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:81.2.69.142", "public"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:100.64.0.1", "cgnat"),
        ("104.16.1.1", "cdn"),
        ("131.0.72.1", "cdn"),
        ("2606:4700::1111", "cdn"),
        ("2a06:98c7:ffff::1", "cdn"),
        ("151.101.1.1", "cdn"),
        ("198.51.100.10", "own_server"),
        ("2a01:4f8::1", "own_server"),
        (None, "missing"),
        ("", "missing"),
        ("garbage", "missing"),
        ("fe80::1%eth0", "missing"),
    ],
)
def test_classification_golden_table(ip: str | None, expected: str) -> None:
    """Every address gets its explicit label, independent of the Python version's ipaddress."""
    assert CLASSIFIER.classify(ip) == expected
    assert expected in IP_CLASSES


def test_own_server_beats_cdn() -> None:
    """An own address inside a CDN range is labelled own_server, the first rule that matches."""
    policy = ClientIpPolicy.build([], own_addresses=["104.16.0.5"])
    assert (policy.classify("104.16.0.5"), policy.classify("104.16.0.6")) == ("own_server", "cdn")


def test_resolved_ip_carries_class() -> None:
    """A resolved address comes with its class, here a CGNAT client behind a trusted proxy."""
    resolved = POLICY.resolve(PROXY, xff("100.64.1.2"), None)
    assert resolved == ResolvedIp(ip="100.64.1.2", origin="header", ip_class="cgnat")


# --- Payload IP, peer and missing -------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ("198.51.100.7", "198.51.100.7"),
        (" 198.51.100.7 ", "198.51.100.7"),
        ("::ffff:8.8.8.8", "8.8.8.8"),
        ("2001:DB8::7", "2001:db8::7"),
        ("10.9.8.7", "10.9.8.7"),
    ],
)
def test_payload_ip_wins_over_headers_and_peer(payload: str, expected: str) -> None:
    """A parseable payload ``context.ip`` wins, even over a trusted proxy's headers."""
    resolved = POLICY.resolve(PROXY, xff("203.0.113.7"), payload)
    assert resolved == ResolvedIp(ip=expected, origin="payload", ip_class=POLICY.classify(expected))


@pytest.mark.parametrize(
    "payload", ["", "not-an-ip", "010.1.1.1", "fe80::1%eth0", "1.2.3.4.5", cast(str, 12345)]
)
def test_garbage_payload_ip_falls_through(payload: str) -> None:
    """A garbage payload IP is ignored without raising: headers, then the peer, decide."""
    assert POLICY.resolve(PROXY, xff("203.0.113.7"), payload) == header("203.0.113.7")
    assert POLICY.resolve(OUTSIDER, NO_HEADERS, payload) == peer(OUTSIDER)


@pytest.mark.parametrize("peer_ip", [None, "", "/run/tagless.sock", "not-an-ip"])
def test_missing_peer_is_missing(peer_ip: str | None) -> None:
    """No usable peer and no payload IP gives ip None, origin and class ``missing``."""
    assert POLICY.resolve(peer_ip, xff("203.0.113.7"), None) == ResolvedIp(
        ip=None, origin="missing", ip_class="missing"
    )


def test_peer_scope_id_is_stripped() -> None:
    """A kernel-reported link-local peer keeps its address but loses its scope id."""
    assert POLICY.resolve("fe80::1%eth0", NO_HEADERS, None) == peer("fe80::1")


def test_peer_is_normalised() -> None:
    """An IPv4-mapped peer (dual-stack socket) resolves to its IPv4 text and class."""
    assert POLICY.resolve("::ffff:10.0.0.1", xff("203.0.113.7"), None) == header("203.0.113.7")
    assert POLICY.resolve("::ffff:8.8.8.8", NO_HEADERS, None) == peer("8.8.8.8")


# --- parse_ip ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.2.3.4", "1.2.3.4"),
        (" 1.2.3.4\t", "1.2.3.4"),
        ("1.2.3.4:5678", "1.2.3.4"),
        ("2001:db8::1", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("::ffff:10.0.0.1", "10.0.0.1"),
        ("[::ffff:10.0.0.1]:80", "10.0.0.1"),
        ("010.1.1.1", None),
        ("1.2.3.04", None),
        ("fe80::1%eth0", None),
        ("[fe80::1%eth0]:80", None),
        ("1.2.3.4:", None),
        ("1.2.3.4:65536", None),
        ("1.2.3.4:port", None),
        ("[1.2.3.4]", None),
        ("[2001:db8::1]443", None),
        ("[2001:db8::1]:", None),
        ("1.2.3", None),
        ("256.1.1.1", None),
        ("\u00a01.2.3.4", None),
        ("1.2.3.4 5", None),
        ("", None),
        ("unknown", None),
        ("_hidden", None),
    ],
)
def test_parse_ip(text: str, expected: str | None) -> None:
    """parse_ip is strict, allows ports and brackets, and normalises IPv4-mapped IPv6."""
    addr = parse_ip(text)
    assert (None if addr is None else str(addr)) == expected


# --- Policy builder ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"trusted_proxies": ["10.0.0.300/8"]},
            "'10.0.0.300/8' is not an IP network; "
            "use a CIDR such as 10.0.0.0/8 or a named set: cloudflare",
        ),
        ({"trusted_proxies": ["cloudfare"]}, "'cloudfare' is not an IP network;"),
        ({"trusted_proxies": ["010.0.0.0/8"]}, "'010.0.0.0/8' is not an IP network;"),
        ({"trusted_proxies": ["fe80::%eth0/64"]}, "'fe80::%eth0/64' is not an IP network;"),
        ({"trusted_proxies": [""]}, "'' is not an IP network;"),
        (
            {"trusted_proxies": ["10.0.0.1/8"]},
            "'10.0.0.1/8' has host bits set; did you mean 10.0.0.0/8?",
        ),
        ({"trusted_proxies": "10.0.0.0/8"}, "trusted_proxies must be a list, not str"),
        ({"trusted_proxies": [10]}, "trusted_proxies: 10 is not a string"),
        (
            {"trusted_proxies": [], "headers": ["x-real-ip"]},
            "'x-real-ip' is not a supported client IP header; "
            "valid: cf-connecting-ip, true-client-ip, x-forwarded-for, forwarded",
        ),
        (
            {"trusted_proxies": [], "own_addresses": ["nope"]},
            "'nope' is not an IP network; use an IP or a CIDR such as 10.0.0.0/8",
        ),
        ({"trusted_proxies": [], "cdn_ranges": ["1.2.3.0/33"]}, "'1.2.3.0/33' is not an IP"),
    ],
)
def test_policy_builder_errors(kwargs: dict[str, object], message: str) -> None:
    """Bad config entries raise ValueError naming the entry and what would be valid."""
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        ClientIpPolicy.build(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("entries", "trusted_peer"),
    [
        (["192.0.2.1"], "192.0.2.1"),
        (["2001:db8::1"], "2001:db8::1"),
        ([" 10.0.0.0/8 "], "10.1.1.1"),
        (["10.0.0.0/255.0.0.0"], "10.1.1.1"),
        (["::ffff:10.0.0.0/104"], "10.1.1.1"),
        (["Cloudflare"], CF_PEER),
    ],
)
def test_policy_builder_accepts_ips_cidrs_and_named_sets(
    entries: list[str], trusted_peer: str
) -> None:
    """Bare IPs, CIDRs (v4, v6, IPv4-mapped) and the named set make a peer trusted."""
    policy = ClientIpPolicy.build(entries, headers=["x-forwarded-for"])
    assert policy.resolve(trusted_peer, xff("203.0.113.7"), None).origin == "header"
    assert policy.resolve("203.0.113.8", xff("203.0.113.7"), None).origin == "peer"


def test_policy_builder_normalises_header_names() -> None:
    """Header names are case-insensitive, trimmed and de-duplicated, keeping their order."""
    policy = ClientIpPolicy.build([], headers=[" Forwarded", "X-Forwarded-For", "forwarded"])
    assert policy.headers == ("forwarded", "x-forwarded-for")


# --- Cloudflare data file ---------------------------------------------------------------


def test_cloudflare_data_file_is_current() -> None:
    """The shipped list has Cloudflare's 15 IPv4 and 7 IPv6 ranges and none of the stale ones."""
    networks = {str(net) for net in cloudflare_networks()}
    assert sum(":" not in n for n in networks) == 15
    assert sum(":" in n for n in networks) == 7
    assert "104.16.0.0/13" in networks
    assert networks.isdisjoint({"104.16.0.0/12", "199.27.128.0/21"})


def test_range_file_errors_name_the_line() -> None:
    """A bad line in a range file is reported with its source and line number."""
    with pytest.raises(ValueError, match=r"^test.txt line 3: '1\.2\.3\.999/24' is not"):
        parse_range_file("# header\n1.2.3.0/24\n1.2.3.999/24  # bad\n", "test.txt")
