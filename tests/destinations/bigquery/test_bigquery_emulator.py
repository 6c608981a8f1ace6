"""Against a real local BigQuery (bqemulator): the table made by ``tagless bigquery
create-table``, events posted to ``/v1/batch`` of a running Tagless, rows read back with the
google-cloud-bigquery client and compared column by column. Authentication goes through a
local token endpoint with a service-account key made by the test."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from emulator import Emulator, cli

from destinations.bigquery.schema import COLUMNS
from router.testing.google_token import LocalTokenServer
from router.testing.server import RunningTagless, write_config_dir

PROJECT, TABLE = "tagless-test", "events"
_datasets = itertools.count(1)

STORE = """\
store: shop
write_keys: [shop-key]
destinations:
  - id: warehouse
    type: bigquery
    project: {project}
    dataset: {dataset}
    table: {table}
    credentials: {{service_account_file: "{key}"}}
    endpoint: "{endpoint}"
    token_endpoint: "{token_endpoint}"
    consent: {{signal: analytics, denied: without_user_data, unknown: send}}
"""

PURCHASE = {
    "type": "track",
    "event": "Order Completed",
    "messageId": "m-1-purchase",
    "userId": "customer-42",
    "anonymousId": "anon-7f3a",
    "timestamp": "2026-11-20T14:30:05.123Z",
    "context": {
        "ip": "81.2.69.142",
        "userAgent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
        "locale": "en-GB",
        "page": {"url": "https://shop.example/thanks", "referrer": "https://open.spotify.com/"},
        "traits": {"email": " Jane.Doe@GMail.com", "phone": "+44 20 7946 0958"},
        "gclid": "Cj0KCQiA-test",
        "consent": {
            "ad_user_data": "granted",
            "ad_personalization": "denied",
            "analytics": "granted",
        },
    },
    "properties": {
        "order_id": "WC-1001",
        "revenue": "295.40",
        "tax": "49.23",
        "currency": "eur",
        "coupon": "PODCAST10",
        "products": [
            {
                "product_id": "SKU-1",
                "name": "Wool Sweater",
                "category": "Apparel",
                "price": "79.90",
                "quantity": 1,
                "brand": "Nordwool",
                "variant": "M",
            },
            {"product_id": "SKU-2", "name": "Trail Shoes", "price": 107.75, "quantity": 2},
        ],
        "gift_wrap": True,
    },
}
PAGE_WITHOUT_CONSENT = {
    "type": "page",
    "name": "Home",
    "messageId": "m-2-page",
    "anonymousId": "anon-9b1c",
    "timestamp": "2026-11-20T14:31:00Z",
    "context": {
        "ip": "81.2.69.143",
        "userAgent": "Mozilla/5.0 (iPhone)",
        "traits": {"email": "someone@example.com"},
        "consent": {"analytics": "denied"},
    },
    "properties": {"url": "https://shop.example/", "title": "Home"},
}


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def expected_purchase() -> dict[str, Any]:
    """Every column of the purchase's row, as the client reads it back."""
    return {
        "event_id": "m-1-purchase",
        "store": "shop",
        "name": "purchase",
        "source_name": "Order Completed",
        "source_type": "track",
        "occurred_at": {"timestamp": "2026-11-20T14:30:05.123000+00:00"},
        "received_at": "(a time)",
        "action_source": "web",
        "page_url": "https://shop.example/thanks",
        "referrer": "https://open.spotify.com/",
        "client_ip": "81.2.69.142",
        "client_ip_origin": "payload",
        "client_ip_class": "public",
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
        "locale": "en-GB",
        "user_id": "customer-42",
        "anonymous_id": "anon-7f3a",
        "email_sha256": [sha256("janedoe@gmail.com")],
        "phone_sha256": [sha256("+442079460958")],
        "click_ids": {
            "gclid": "Cj0KCQiA-test",
            "gbraid": None,
            "wbraid": None,
            "fbc": None,
            "fbp": None,
            "ga_client_id": None,
            "ga_session_id": None,
            "spotify_device_id": None,
        },
        "order_id": "WC-1001",
        "currency": "EUR",
        "value": Decimal("295.40"),
        "tax": Decimal("49.23"),
        "shipping": None,
        "discount": None,
        "coupon": "PODCAST10",
        "items": [
            {
                "product_id": "SKU-1",
                "name": "Wool Sweater",
                "category": "Apparel",
                "price": Decimal("79.90"),
                "quantity": 1,
                "brand": "Nordwool",
                "variant": "M",
            },
            {
                "product_id": "SKU-2",
                "name": "Trail Shoes",
                "category": None,
                "price": Decimal("107.75"),
                "quantity": 2,
                "brand": None,
                "variant": None,
            },
        ],
        "consent": {
            "ad_user_data": "granted",
            "ad_personalization": "denied",
            "analytics": "granted",
            "tcf_string": None,
        },
        "properties": PURCHASE["properties"],
    }


def typed(value: Any) -> Any:
    """The read-back's tagged NUMERICs as Decimal, recursively (timestamps stay tagged)."""
    if isinstance(value, dict) and set(value) == {"numeric"}:
        return Decimal(value["numeric"])
    if isinstance(value, dict):
        return {key: typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [typed(item) for item in value]
    return value


@pytest.fixture
def dataset() -> str:
    """A dataset of its own for each test: the emulator lives for the whole session."""
    return f"tagless_{next(_datasets)}"


@pytest.fixture
def config_dir(
    tmp_path: Path, emulator: Emulator, tokens: LocalTokenServer, key_file: Path, dataset: str,
    service_account: dict[str, Any],
) -> Path:  # fmt: skip
    store = STORE.format(
        project=PROJECT,
        dataset=dataset,
        table=TABLE,
        key=key_file,
        endpoint=emulator.url,
        token_endpoint=tokens.url,
    )
    return write_config_dir(tmp_path / "config", store)


async def row_count(emulator: Emulator, dataset: str) -> int:
    """tabledata.list's totalRows (cheap, unlike a client read-back)."""
    url = f"{emulator.url}/bigquery/v2/projects/{PROJECT}/datasets/{dataset}/tables/{TABLE}/data"
    async with aiohttp.ClientSession() as session, session.get(url) as answer:
        return int((await answer.json()).get("totalRows", 0))


async def test_events_from_v1_batch_are_read_back_column_by_column(
    emulator: Emulator,
    tokens: LocalTokenServer,
    config_dir: Path,
    dataset: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """create-table makes dataset and table; a purchase and a page view posted to /v1/batch
    arrive as rows whose every column (items and hashed identifiers included) is as expected;
    the page view, without analytics consent, carries no identity."""
    code, out, _ = await cli(
        capsys, "bigquery", "create-table", "--config", str(config_dir),
        "--store", "shop", "--destination", "warehouse",
    )  # fmt: skip
    assert code == 0, out
    assert out.splitlines() == [
        f"dataset {PROJECT}.{dataset}: created",
        f"table {PROJECT}.{dataset}.{TABLE}: created with {len(COLUMNS)} columns, partitioned"
        " by day of occurred_at, clustered by store and name",
    ]
    running = RunningTagless(config_dir)
    await running.start()
    try:
        batch = {"batch": [PURCHASE, PAGE_WITHOUT_CONSENT]}
        assert await running.post("/v1/batch", batch, key="shop-key") == (200, {"success": True})
        for _ in range(300):
            if await row_count(emulator, dataset) >= 2:
                break
            await asyncio.sleep(0.05)
    finally:
        await running.stop()

    purchase, page = (typed(row) for row in emulator.read_back(PROJECT, dataset, TABLE))
    expected = expected_purchase()
    assert list(purchase) == [column.name for column in COLUMNS]
    for column in COLUMNS:
        if column.name == "received_at":
            assert set(purchase["received_at"]) == {"timestamp"}
            continue
        assert purchase[column.name] == expected[column.name], f"column {column.name}"

    assert page["name"] == "page_view" and page["page_url"] == "https://shop.example/"
    for column in ("client_ip", "user_agent", "anonymous_id", "click_ids", "user_id"):
        assert page[column] is None, f"column {column}"
    assert page["email_sha256"] == [] and page["client_ip_class"] == "missing"
    assert page["consent"]["analytics"] == "denied"
    assert page["properties"] == {"url": "https://shop.example/", "title": "Home"}
    assert tokens.token_requests == 2  # one for create-table, one for the running Tagless
    assert all(request.claims and request.status == 200 for request in tokens.requests)


async def test_create_table_again_finds_everything_in_place(
    emulator: Emulator, config_dir: Path, dataset: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Run twice, the command succeeds the second time and says both exist as wanted."""
    argv = ("bigquery", "create-table", "--config", str(config_dir), "--store", "shop",
            "--destination", "warehouse")  # fmt: skip
    assert (await cli(capsys, *argv))[0] == 0
    code, out, _ = await cli(capsys, *argv)
    assert code == 0
    assert out.splitlines() == [
        f"dataset {PROJECT}.{dataset}: exists",
        f"table {PROJECT}.{dataset}.{TABLE}: exists with Tagless's schema ({len(COLUMNS)} columns)",
    ]


async def test_create_table_says_column_by_column_how_an_existing_table_differs(
    emulator: Emulator, config_dir: Path, dataset: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A table of the same name with another schema: exit 1, each difference on its own line."""
    base = f"{emulator.url}/bigquery/v2/projects/{PROJECT}/datasets"
    fields = [
        column.resource() for column in COLUMNS if column.name not in ("items", "value", "consent")
    ]
    fields += [
        {"name": "value", "type": "FLOAT", "mode": "NULLABLE"},
        {"name": "consent", "type": "RECORD", "mode": "NULLABLE",
         "fields": [{"name": "ad_user_data", "type": "BOOLEAN", "mode": "NULLABLE"}]},
        {"name": "notes", "type": "STRING", "mode": "REQUIRED"},
    ]  # fmt: skip
    reference = {"projectId": PROJECT, "datasetId": dataset}
    async with aiohttp.ClientSession() as session:
        async with session.post(base, json={"datasetReference": reference}) as made:
            assert made.status == 200
        table = {"tableReference": {**reference, "tableId": TABLE}, "schema": {"fields": fields}}
        async with session.post(f"{base}/{dataset}/tables", json=table) as made:
            assert made.status == 200, await made.text()

    code, out, _ = await cli(
        capsys, "bigquery", "create-table", "--config", str(config_dir),
        "--store", "shop", "--destination", "warehouse",
    )  # fmt: skip
    assert code == 1
    assert out.splitlines() == [
        f"dataset {PROJECT}.{dataset}: exists",
        f"table {PROJECT}.{dataset}.{TABLE}: exists with another schema (7 differences);"
        " Tagless's rows would not fit it:",
        "  value: is FLOAT NULLABLE, expected NUMERIC NULLABLE",
        "  items: missing (expected RECORD REPEATED)",
        "  consent.ad_user_data: is BOOLEAN NULLABLE, expected STRING NULLABLE",
        "  consent.ad_personalization: missing (expected STRING NULLABLE)",
        "  consent.analytics: missing (expected STRING NULLABLE)",
        "  consent.tcf_string: missing (expected STRING NULLABLE)",
        "  notes: not a Tagless column (STRING REQUIRED)",
        "Use another table name, or change the table (destinations/bigquery/README.md lists"
        " every column).",
    ]
