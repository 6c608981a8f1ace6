"""The client-IP decision as one table: write key kind x where the IP came from x its class."""

from __future__ import annotations

import pytest

from router.event import IP_CLASSES
from router.identity.client_ip import ClientIpPolicy, KeyKind, ResolvedIp
from router.identity.ranges import shipped_ranges

CUSTOMER = "81.2.69.142"  # an ordinary public address
BACKEND = "81.2.70.9"  # the store's backend, public, not listed anywhere
PROXY_PUBLIC = "81.2.69.200"  # the trusted proxy's own public address
LB = "10.0.0.1"  # the trusted load balancer the router sees as its peer
OWN = "198.51.100.10"  # listed in own_addresses
FASTLY = "151.101.1.1"  # Fastly's 151.101.0.0/16
AWS = "52.95.110.1"  # AWS (EC2 / S3), not CloudFront
FORGED = "81.2.69.66"  # what a page claims in context.ip

POLICY = ClientIpPolicy.build(
    ["10.0.0.0/8", PROXY_PUBLIC], headers=["x-forwarded-for"], own_addresses=[OWN]
)


class Headers:
    """X-Forwarded-For lines only: a minimal HeaderSource."""

    def __init__(self, *xff: str) -> None:
        self._xff = list(xff)

    def getall(self, key: str, default: list[str], /) -> list[str]:
        return self._xff if key.lower() == "x-forwarded-for" and self._xff else default


def mapped(ip: str) -> str:
    return f"::ffff:{ip}"


# kind, TCP peer, X-Forwarded-For, context.ip -> ip, origin, class
TABLE: list[tuple[KeyKind, str | None, tuple[str, ...], str | None, ResolvedIp]] = [
    # server key, no context.ip: the peer is the backend, never the customer (never sent)
    ("server", BACKEND, (), None, ResolvedIp(BACKEND, "peer", "own_server")),
    ("server", "127.0.0.1", (), None, ResolvedIp("127.0.0.1", "peer", "own_server")),
    ("server", mapped(BACKEND), (), None, ResolvedIp(BACKEND, "peer", "own_server")),
    ("server", BACKEND, (CUSTOMER,), None, ResolvedIp(BACKEND, "peer", "own_server")),
    # server key behind a trusted proxy: the header decides
    ("server", LB, (CUSTOMER,), None, ResolvedIp(CUSTOMER, "header", "public")),
    ("server", LB, (FASTLY,), None, ResolvedIp(FASTLY, "header", "cdn")),
    ("server", LB, (AWS,), None, ResolvedIp(AWS, "header", "cloud")),
    (
        "server",
        LB,
        (f"{PROXY_PUBLIC}, 10.0.0.2",),
        None,
        ResolvedIp(PROXY_PUBLIC, "header", "proxy"),
    ),
    # server key with context.ip: the payload wins, and is classed
    ("server", BACKEND, (), CUSTOMER, ResolvedIp(CUSTOMER, "payload", "public")),
    ("server", BACKEND, (), mapped(CUSTOMER), ResolvedIp(CUSTOMER, "payload", "public")),
    ("server", BACKEND, (), PROXY_PUBLIC, ResolvedIp(PROXY_PUBLIC, "payload", "proxy")),
    ("server", BACKEND, (), mapped(PROXY_PUBLIC), ResolvedIp(PROXY_PUBLIC, "payload", "proxy")),
    ("server", BACKEND, (), "10.1.2.3", ResolvedIp("10.1.2.3", "payload", "proxy")),
    ("server", BACKEND, (), OWN, ResolvedIp(OWN, "payload", "own_server")),
    ("server", BACKEND, (), mapped(OWN), ResolvedIp(OWN, "payload", "own_server")),
    ("server", BACKEND, (), FASTLY, ResolvedIp(FASTLY, "payload", "cdn")),
    ("server", BACKEND, (), mapped(FASTLY), ResolvedIp(FASTLY, "payload", "cdn")),
    ("server", BACKEND, (), AWS, ResolvedIp(AWS, "payload", "cloud")),
    ("server", BACKEND, (), mapped(AWS), ResolvedIp(AWS, "payload", "cloud")),
    ("server", BACKEND, (), "junk", ResolvedIp(BACKEND, "peer", "own_server")),
    ("server", None, (), None, ResolvedIp(None, "missing", "missing")),
    # browser key: context.ip is ignored, forged or not; the peer and proxy headers decide
    ("browser", CUSTOMER, (), FORGED, ResolvedIp(CUSTOMER, "peer", "public")),
    ("browser", CUSTOMER, (), None, ResolvedIp(CUSTOMER, "peer", "public")),
    ("browser", mapped(CUSTOMER), (), FORGED, ResolvedIp(CUSTOMER, "peer", "public")),
    ("browser", LB, (CUSTOMER,), FORGED, ResolvedIp(CUSTOMER, "header", "public")),
    ("browser", LB, (FORGED, CUSTOMER), FORGED, ResolvedIp(CUSTOMER, "header", "public")),
    ("browser", FASTLY, (), CUSTOMER, ResolvedIp(FASTLY, "peer", "cdn")),
    ("browser", mapped(FASTLY), (), None, ResolvedIp(FASTLY, "peer", "cdn")),
    ("browser", AWS, (), CUSTOMER, ResolvedIp(AWS, "peer", "cloud")),
    ("browser", mapped(AWS), (), None, ResolvedIp(AWS, "peer", "cloud")),
    ("browser", PROXY_PUBLIC, (), None, ResolvedIp(PROXY_PUBLIC, "peer", "proxy")),
    ("browser", OWN, (), None, ResolvedIp(OWN, "peer", "own_server")),
    ("browser", LB, (f"{PROXY_PUBLIC}",), None, ResolvedIp(PROXY_PUBLIC, "header", "proxy")),
    ("browser", None, (), FORGED, ResolvedIp(None, "missing", "missing")),
]


@pytest.mark.parametrize(("kind", "peer", "xff", "payload", "expected"), TABLE)
def test_client_ip_decision_table(
    kind: KeyKind, peer: str | None, xff: tuple[str, ...], payload: str | None, expected: ResolvedIp
) -> None:
    """Each key kind, origin and class combination resolves to the documented answer."""
    assert POLICY.resolve(peer, Headers(*xff), payload, kind) == expected
    assert expected.ip_class in IP_CLASSES


def test_a_server_keys_peer_is_never_a_customer_ip() -> None:
    """Whatever the peer's address, a server key's peer answer is own_server, never public."""
    for peer in (BACKEND, CUSTOMER, FASTLY, AWS, "127.0.0.1", mapped(CUSTOMER)):
        resolved = POLICY.resolve(peer, Headers(), None, "server")
        assert (resolved.origin, resolved.ip_class) == ("peer", "own_server")


def test_store_ranges_add_cdn_and_cloud_classes() -> None:
    """cdn_ranges and cloud_ranges add a store's own ranges; own_addresses still win."""
    policy = ClientIpPolicy.build(
        [],
        own_addresses=["81.2.70.9"],
        cdn_ranges=["81.2.70.0/24"],
        cloud_ranges=["2a02:8070::/32"],
    )
    assert [policy.classify(ip) for ip in ("81.2.70.8", "81.2.70.9", "2a02:8070::1")] == [
        "cdn",
        "own_server",
        "cloud",
    ]
    assert POLICY.classify("81.2.70.8") == "public"  # another store is not affected


def test_shipped_ranges_cover_every_named_provider() -> None:
    """Every provider the docs name has a non-empty shipped file with a source and a date."""
    from importlib import resources

    folder = resources.files("router.identity").joinpath("data")
    names = {item.name for item in folder.iterdir()}
    for name in (
        "cdn-fastly.txt", "cdn-cloudfront.txt", "cdn-google.txt", "cdn-akamai.txt",
        "cloud-aws.txt", "cloud-google.txt", "cloud-azure.txt", "cloud-oracle.txt",
        "cloud-digitalocean.txt", "cloud-hetzner.txt", "cloud-ovh.txt", "cloud-linode.txt",
    ):  # fmt: skip
        assert name in names
        text = folder.joinpath(name).read_text("utf-8")
        assert "# Source: https://" in text and "# Retrieved: " in text
    assert all(nets for _, nets in shipped_ranges())
