"""What a client meets at /v1/: unknown paths, CORS per store, analytics.js's own paths."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from router.testing.server import RunningTagless, basic_auth, write_config_dir

SHOP = "https://shop.example"
OTHER = "https://other.example"


@pytest.fixture
async def two_stores(tmp_path: Path) -> AsyncIterator[RunningTagless]:
    """Two stores, each allowing its own browser origin."""
    stores = (
        f'store: shop\nwrite_keys: [shop-key]\nallowed_origins: ["{SHOP}"]\n'
        f"destinations:\n  - {{id: archive, type: file, path: {tmp_path / 'shop.jsonl'}}}\n",
        f'store: other\nwrite_keys: [other-key]\nallowed_origins: ["{OTHER}"]\n',
    )
    running = await RunningTagless(write_config_dir(tmp_path, *stores)).start()
    yield running
    await running.stop()


def message(**extra: object) -> dict[str, object]:
    return {"messageId": "m-1", "anonymousId": "a-1", "event": "Product Viewed", **extra}


async def test_an_unknown_path_under_v1_is_a_404_listing_the_endpoints(
    two_stores: RunningTagless,
) -> None:
    """POST /v1/trak answers 404 naming every endpoint, not 405."""
    status, body = await two_stores.post("/v1/trak", message(), key="shop-key")
    assert status == 404
    assert body["error"]["code"] == "not_found"
    for endpoint in ("POST /v1/track", "POST /v1/batch", "GET /v1/projects/{writeKey}/settings"):
        assert endpoint in body["error"]["message"]


async def test_a_wrong_method_on_an_endpoint_is_a_405_naming_the_right_one(
    two_stores: RunningTagless,
) -> None:
    """GET /v1/track answers 405 with Allow: POST."""
    assert two_stores.session is not None
    async with two_stores.session.get(two_stores.base + "/v1/track") as answer:
        assert answer.status == 405
        assert answer.headers["Allow"].startswith("POST")
        assert (await answer.json())["error"]["code"] == "method_not_allowed"


async def test_an_error_answer_echoes_only_the_origins_of_the_keys_store(
    two_stores: RunningTagless,
) -> None:
    """A refused request with the shop's key from the other store's origin gets no
    Access-Control-Allow-Origin, while the shop's own origin is echoed on its errors."""
    assert two_stores.session is not None
    url = two_stores.base + "/v1/track"
    foreign = {**basic_auth("shop-key"), "Origin": OTHER}
    async with two_stores.session.post(url, json=message(), headers=foreign) as answer:
        assert answer.status == 403
        assert "Access-Control-Allow-Origin" not in answer.headers
    own = {**basic_auth("shop-key"), "Origin": SHOP}
    async with two_stores.session.post(url, data=b"{not json", headers=own) as answer:
        assert answer.status == 400
        assert answer.headers["Access-Control-Allow-Origin"] == SHOP


async def test_analytics_js_short_paths_and_text_plain_bodies_are_accepted(
    two_stores: RunningTagless,
) -> None:
    """/v1/t and /v1/p take track and page calls sent as text/plain with the key in the body."""
    assert two_stores.session is not None
    track = message(writeKey="shop-key", type="track")
    page = {"messageId": "p-1", "anonymousId": "a-1", "type": "page", "writeKey": "shop-key"}
    for path, body in (("/v1/t", track), ("/v1/p", page)):
        headers = {"Content-Type": "text/plain", "Origin": SHOP}
        async with two_stores.session.post(
            two_stores.base + path, json=body, headers=headers
        ) as answer:
            assert answer.status == 200, await answer.text()
            assert answer.headers["Access-Control-Allow-Origin"] == SHOP


async def test_a_preflight_for_the_short_paths_allows_the_retry_header(
    two_stores: RunningTagless,
) -> None:
    """A CORS preflight for /v1/t from an allowed origin permits the headers analytics.js sends."""
    assert two_stores.session is not None
    headers = {"Origin": SHOP, "Access-Control-Request-Method": "POST"}
    async with two_stores.session.options(two_stores.base + "/v1/t", headers=headers) as answer:
        assert answer.status == 204
        assert answer.headers["Access-Control-Allow-Origin"] == SHOP
        allowed = answer.headers["Access-Control-Allow-Headers"]
        assert "X-Retry-Count" in allowed and "Authorization" in allowed
