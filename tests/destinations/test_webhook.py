"""The webhook destination: body shape, signature, and how it reads the receiver's answers."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import orjson

from destinations.file import FileConfig, FileDestination
from destinations.webhook import WebhookConfig, WebhookDestination
from destinations.webhook.client import SIGNATURE_HEADER
from router.http import HttpClient
from router.plugins import discover
from router.secret import Secret
from router.testing.events import make_event
from router.testing.fake_platform import Answer, FakePlatform


async def test_posts_events_with_every_canonical_key(
    platform: FakePlatform, http: HttpClient
) -> None:
    """The body is {"events": [...]}, each element the canonical event with snake_case keys."""
    destination = WebhookDestination(WebhookConfig(url=platform.url + "/hook"), http)
    event = make_event(event_id="e-1")
    outcomes = await destination.send([destination.map(event)])
    assert [o.kind for o in outcomes] == ["delivered"]
    [sent] = platform.requests[0].json()["events"]
    for key in ("event_id", "store", "name", "source_name", "occurred_at", "client_ip"):
        assert key in sent
    assert (sent["event_id"], sent["client_ip_class"], sent["value"]) == ("e-1", "public", "59.90")
    assert sent["emails"] == ["jane.doe@example.com"]


async def test_signature_verifies_over_timestamp_and_body(
    platform: FakePlatform, http: HttpClient
) -> None:
    """X-Tagless-Signature is t=<unix>,v1=HMAC-SHA256(secret, "t.body")."""
    config = WebhookConfig(url=platform.url + "/hook", secret=Secret("s3cret"))
    destination = WebhookDestination(config, http)
    await destination.send([destination.map(make_event())])
    request = platform.requests[0]
    parts = dict(part.split("=", 1) for part in request.headers[SIGNATURE_HEADER].split(","))
    expected = hmac.new(b"s3cret", parts["t"].encode() + b"." + request.body, hashlib.sha256)
    assert hmac.compare_digest(parts["v1"], expected.hexdigest())


async def test_no_signature_without_secret(platform: FakePlatform, http: HttpClient) -> None:
    """Without a secret there is no signature header."""
    destination = WebhookDestination(WebhookConfig(url=platform.url + "/hook"), http)
    await destination.send([destination.map(make_event())])
    assert SIGNATURE_HEADER not in platform.requests[0].headers


async def test_a_4xx_is_a_whole_batch_rejection(platform: FakePlatform, http: HttpClient) -> None:
    """A 400 rejects the batch as a whole, so the dispatcher can split it."""
    platform.default = Answer(400, {"error": "bad"})
    destination = WebhookDestination(WebhookConfig(url=platform.url + "/hook"), http)
    outcomes = await destination.send([destination.map(make_event()) for _ in range(3)])
    assert {(o.kind, o.whole_batch, o.status) for o in outcomes} == {("rejected", True, 400)}


async def test_unreachable_receiver_is_a_retry(http: HttpClient) -> None:
    """A refused connection is retried, with the transport reason."""
    destination = WebhookDestination(WebhookConfig(url="http://127.0.0.1:9/hook"), http)
    [outcome] = await destination.send([destination.map(make_event())])
    assert (outcome.kind, outcome.reason) == ("retry", "connect_failed")


async def test_health_check_sends_no_event_data(platform: FakePlatform, http: HttpClient) -> None:
    """The health check posts an empty batch and reports the status."""
    destination = WebhookDestination(WebhookConfig(url=platform.url + "/hook"), http)
    health = await destination.health()
    assert health.ok
    assert platform.requests[0].json() == {"events": []}


async def test_file_destination_appends_json_lines(tmp_path: Path, http: HttpClient) -> None:
    """Each delivered event becomes one JSON line in the file."""
    path = tmp_path / "out" / "delivered.jsonl"
    destination = FileDestination(FileConfig(path=path), http)
    batch = [destination.map(make_event(event_id=f"f-{i}")) for i in range(3)]
    assert [o.kind for o in await destination.send(batch)] == ["delivered"] * 3
    await destination.send(batch[:1])
    lines = path.read_text().splitlines()
    assert [line.count('"event_id":"f-') for line in lines] == [1, 1, 1, 1]


def test_built_ins_load_through_the_entry_point_group() -> None:
    """webhook and file are discovered like any third-party plugin."""
    plugins = discover()
    assert plugins["webhook"] is WebhookDestination
    assert plugins["file"] is FileDestination


def test_fast_mapping_from_the_stored_form_sends_the_same_json(http: HttpClient) -> None:
    """map_stored (no Event built) and map(decode(...)) give the same JSON."""
    from router import codec
    from router.event import Consent

    config = WebhookConfig(url="http://127.0.0.1:9/hook")
    events = [
        make_event(),
        make_event(consent=Consent(), items=(), emails=(), phones=()),
        make_event(other_ids={"ttclid": "t"}, properties={"nested": {"a": [1, 2]}}),
    ]
    for destination in (
        WebhookDestination(config, http),
        FileDestination(FileConfig(path=Path("x")), http),
    ):
        for event in events:
            stored = codec.encode(event)
            slow = orjson.loads(codec.dumps(destination.map(codec.decode(stored))))
            assert orjson.loads(codec.dumps(destination.map_stored(stored))) == slow
