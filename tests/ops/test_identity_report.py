"""The identity-quality report, by API and by ``tagless identity``: shares of IP kinds and
identifiers per destination and event, and plain-language findings with evidence and fix."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import orjson
from ops_kit import CLOUDFLARE_IP, EMAIL, admin_get, eventually, message

from router.testing.fake_platform import FakePlatform
from router.testing.server import RunningTagless


async def send(running: RunningTagless, *messages: dict[str, Any]) -> None:
    status, answer = await running.post("/v1/batch", {"batch": list(messages)}, key="shop-key")
    assert status == 200, answer


async def report(running: RunningTagless, **params: str) -> dict[str, Any]:
    status, answer, text = await admin_get(running, "/api/identity", **params)
    assert status == 200, answer
    assert EMAIL.lower() not in text.lower() and CLOUDFLARE_IP not in text
    found: dict[str, Any] = answer
    return found


def row(found: dict[str, Any], destination: str, name: str) -> dict[str, Any]:
    [match] = [
        r for r in found["rows"] if (r["destination"], r["event_name"]) == (destination, name)
    ]
    return match


async def test_purchases_with_a_cloudflare_ip_as_context_ip_give_the_cdn_finding(
    running: RunningTagless, platform: FakePlatform
) -> None:
    """One purchase in three carries a Cloudflare address as ``context.ip``: the Spotify row
    shows a third CDN (Cloudflare), and a finding says so, with its evidence and the fix."""
    await send(
        running,
        message("p-1", ip=CLOUDFLARE_IP),
        message("p-2"),
        message("p-3"),
    )
    found = await report(running, store="shop", window="24h")
    spotify = row(found, "spotify", "purchase")
    assert spotify["events"] == 3
    assert spotify["ip"]["cdn"] == spotify["cdn_providers"]["cloudflare"] == 1 / 3
    assert spotify["ip"]["public_v4"] == 2 / 3
    assert spotify["fields"]["email"] == spotify["fields"]["user_agent"] == 1.0
    assert [r["destination"] for r in found["rows"]] == ["spotify"]  # leads takes no purchase
    [cdn] = [f for f in found["findings"] if "CDN" in f["text"]]
    assert cdn["severity"] == "warning"
    assert cdn["text"].startswith(
        "33% of Purchase events to spotify carry a CDN IP (Cloudflare): the store backend"
        " forwards the CDN's address, not the customer's."
    )
    assert "1 of 3 events" in cdn["evidence"] and "context.ip" in cdn["evidence"]
    assert "`context.ip`" in cdn["fix"] and "`cloudflare`" in cdn["fix"]
    assert "client_ip.trusted_proxies" in cdn["fix"]


async def test_purchases_without_ip_or_email_are_called_unmatchable(
    running: RunningTagless, platform: FakePlatform
) -> None:
    """Purchases with no IP of their own (the backend's own connection address is taken) and
    no email: a critical finding that Spotify cannot match them, and one about the server IP."""
    await send(running, *(message(f"n-{i}", ip=None, traits={}) for i in range(2)))
    found = await report(running, store="shop", window="1h")
    assert row(found, "spotify", "purchase")["ip"]["own_server"] == 1.0
    texts = {f["text"]: f for f in found["findings"]}
    unmatchable = texts[
        "Purchase events reach spotify without any usable IP or email: spotify cannot match them"
    ]
    assert unmatchable["severity"] == "critical"
    assert "2 of 2 events" in unmatchable["evidence"]
    own = texts["100% of Purchase events to spotify carry the store's own server IP: the"
                " backend sends its own address, not the customer's."]  # fmt: skip
    assert "the connection (2)" in own["evidence"] and "`context.ip`" in own["fix"]


async def test_the_report_says_what_is_wrong_with_its_parameters(
    running: RunningTagless,
) -> None:
    """No store, an unknown store or a window that is not 1h, 24h or 7d: 400 saying so."""
    status, answer, _ = await admin_get(running, "/api/identity")
    assert status == 400 and "store is required" in answer["error"]
    status, answer, _ = await admin_get(running, "/api/identity", store="nope")
    assert status == 400 and "'nope' is not configured" in answer["error"]
    status, answer, _ = await admin_get(running, "/api/identity", store="shop", window="2d")
    assert status == 400 and "1h, 24h, 7d" in answer["error"]


async def tagless(config: Path, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from router.cli import main; main()", *args,
        "--config", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_tagless_identity_prints_the_same_report(
    running: RunningTagless, platform: FakePlatform, tmp_path: Path
) -> None:
    """``tagless identity --json`` gives the API's report; without ``--json`` a table and the
    findings with evidence and fix; an unknown store exits 2 naming the configured ones."""
    await send(running, message("c-1", ip=CLOUDFLARE_IP), message("c-2"))
    await eventually(lambda: platform.requests)
    code, out, err = await tagless(tmp_path, "identity", "--store", "shop", "--json")
    assert code == 0, err
    as_json = orjson.loads(out)
    assert as_json["rows"] == (await report(running, store="shop", window="24h"))["rows"]
    code, out, _ = await tagless(tmp_path, "identity", "--store", "shop", "--window", "7d")
    assert code == 0
    assert "50% of Purchase events to spotify carry a CDN IP (Cloudflare)" in out
    assert "evidence: 1 of 2 events" in out and "fix: " in out
    assert EMAIL.lower() not in out.lower() and CLOUDFLARE_IP not in out
    code, _, err = await tagless(tmp_path, "identity", "--store", "nope")
    assert code == 2 and "stores: shop" in err


async def test_events_sent_without_user_data_by_consent_are_told_apart(
    running: RunningTagless, platform: FakePlatform
) -> None:
    """A lead whose customer denied ad data reaches the webhook without user data: its row
    shows the IP missing and the share stripped by consent, an info finding says so, and no
    finding blames the sender for the missing IP."""
    lead = message("l-1", event="Lead Generated")
    lead["context"]["consent"] = {"categoryPreferences": {"C0001": True, "C0004": False}}
    await send(running, lead)
    found = await report(running, store="shop", window="24h")
    leads = row(found, "leads", "generate_lead")
    assert (leads["ip"]["missing"], leads["stripped_consent"], leads["unmatchable"]) == (1, 1, 0)
    about_leads = [f for f in found["findings"] if f["destination"] == "leads"]
    assert [(f["severity"], f["text"]) for f in about_leads] == [
        ("info", "100% of Generate Lead events to leads went without user data, as the consent"
                 " policy says."),
    ]  # fmt: skip
