"""The identity report's findings per destination type: the cloud address of a backend, a
missing user agent where the platform matches on it, missing click ids, CDN addresses that came
through a header; events read straight from an outbox, no server."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from router import codec
from router.clock import FakeClock
from router.ops.identity_report import identity_report
from router.ops.lanes import OfflineView
from router.outbox.base import NewEvent
from router.outbox.sqlite import SqliteOutbox
from router.testing.events import make_event

#: A store as identity_report reads its config: destination ids and types.
CONFIG = SimpleNamespace(
    stores=[
        SimpleNamespace(
            store="shop",
            destinations=[
                SimpleNamespace(id="meta", type="meta_capi", enabled=True),
                SimpleNamespace(id="ads", type="google_ads", enabled=True),
            ],
        )
    ]
)


async def store(outbox: SqliteOutbox, *events: dict[str, Any]) -> None:
    now = outbox.clock.now()
    await outbox.append(
        [
            NewEvent("shop", f"e-{n}", now, ("meta", "ads"), codec.encode(make_event(**fields)))
            for n, fields in enumerate(events)
        ]
    )


async def findings_of(outbox: SqliteOutbox, clock: FakeClock) -> list[dict[str, str]]:
    report = await identity_report(OfflineView(CONFIG, outbox, clock), "shop", "1h")
    found: list[dict[str, str]] = report["findings"]
    return found


async def test_a_backend_in_the_cloud_without_user_agents_or_click_ids(
    outbox: SqliteOutbox, clock: FakeClock
) -> None:
    """Purchases sent from a cloud server without a user agent or click ids: Meta's row gets
    the cloud-IP warning, the missing user agent (Meta matches on it) and the missing fbp/fbc
    note; Google Ads' row the missing click id, and no user-agent finding."""
    await store(
        outbox,
        *({"client_ip": "3.5.140.2", "client_ip_class": "cloud", "user_agent": None}
          for _ in range(4)),
    )  # fmt: skip
    found = {(f["destination"], f["severity"], f["text"]) for f in await findings_of(outbox, clock)}
    assert found >= {
        ("meta", "critical", "100% of Purchase events to meta carry a cloud provider's IP: the"
                             " address of a server, not the customer's device."),
        ("meta", "warning", "100% of Purchase events to meta carry no user agent, which"
                            " meta_capi matches on."),
        ("meta", "info", "100% of Purchase events to meta carry no Meta browser or click id"
                         " (fbp/fbc)."),
        ("ads", "info", "100% of Purchase events to ads carry no Google click id"
                        " (gclid/gbraid/wbraid)."),
    }  # fmt: skip
    assert not any(d == "ads" and "user agent" in text for d, _, text in found)


async def test_cdn_addresses_from_a_header_ask_to_trust_the_cdn(
    outbox: SqliteOutbox, clock: FakeClock
) -> None:
    """A Cloudflare address taken from a forwarding header (Cloudflare not trusted): the fix
    says to add ``cloudflare`` to the store's trusted proxies first."""
    cdn = {"client_ip": "104.16.5.9", "client_ip_class": "cdn", "client_ip_origin": "header"}
    await store(outbox, cdn, {})
    found = await findings_of(outbox, clock)
    [finding] = [f for f in found if "CDN" in f["text"] and f["destination"] == "meta"]
    assert finding["fix"] == (
        "Add `cloudflare` to `client_ip.trusted_proxies` of store shop, or send the customer's"
        " IP as `context.ip`."
    )
    assert finding["evidence"] == (
        "1 of 2 events in the window; the IP came from a forwarding header (1)"
    )
