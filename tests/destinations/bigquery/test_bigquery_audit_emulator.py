"""The audit table against a real local BigQuery (bqemulator): made by ``tagless bigquery
create-table`` next to the events table, filled by a running Tagless with one row per webhook
attempt, read back with the google-cloud-bigquery client."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from emulator import Emulator, cli

from destinations.bigquery.schema import AUDIT_COLUMNS, COLUMNS
from router.testing.fake_platform import Answer, FakePlatform, Recorded
from router.testing.google_token import LocalTokenServer
from router.testing.server import RunningTagless, write_config_dir

PROJECT, TABLE, AUDIT = "tagless-test", "events", "deliveries"
_datasets = itertools.count(1)

STORE = """\
store: shop
write_keys: [shop-key]
destinations:
  - id: hook
    type: webhook
    url: "{hook}/hook"
    max_batch_size: 1
  - id: warehouse
    type: bigquery
    project: {project}
    dataset: {dataset}
    table: {table}
    audit_table: {audit}
    credentials: {{service_account_file: "{key}"}}
    endpoint: "{endpoint}"
    token_endpoint: "{token_endpoint}"
"""


def track(message_id: str) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Order Completed",
        "messageId": message_id,
        "userId": "customer-42",
        "timestamp": "2026-11-20T14:30:05Z",
        "properties": {"order_id": f"WC-{message_id}", "revenue": "10.00", "currency": "EUR"},
    }


def first_try_fails() -> Any:
    """The webhook answers 503 to an event's first request and 200 after."""
    tried: set[str] = set()

    def answer(seen: Recorded) -> Answer:
        ids = {event["event_id"] for event in seen.json()["events"]}
        fresh = ids - tried
        tried.update(ids)
        return Answer(503) if fresh else Answer(200)

    return answer


@pytest.fixture
def dataset() -> str:
    """A dataset of its own for each test: the emulator lives for the whole session."""
    return f"tagless_audit_{next(_datasets)}"


@pytest.fixture
async def hook() -> Any:
    async with FakePlatform(responder=first_try_fails()) as server:
        yield server


@pytest.fixture
def config_dir(
    tmp_path: Path, emulator: Emulator, tokens: LocalTokenServer, key_file: Path, dataset: str,
    service_account: dict[str, Any], hook: FakePlatform,
) -> Path:  # fmt: skip
    store = STORE.format(
        hook=hook.url, project=PROJECT, dataset=dataset, table=TABLE, audit=AUDIT,
        key=key_file, endpoint=emulator.url, token_endpoint=tokens.url,
    )  # fmt: skip
    return write_config_dir(tmp_path / "config", store)


def create_table_argv(config_dir: Path) -> tuple[str, ...]:
    return ("bigquery", "create-table", "--config", str(config_dir), "--store", "shop",
            "--destination", "warehouse")  # fmt: skip


async def test_every_webhook_attempt_is_a_row_of_the_audit_table(
    emulator: Emulator,
    config_dir: Path,
    dataset: str,
    hook: FakePlatform,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Two purchases via /v1/batch, each refused once by the webhook: four audit rows (retry
    503 then delivered 200 per event, with latencies), none for the warehouse itself."""
    code, out, _ = await cli(capsys, *create_table_argv(config_dir))
    assert code == 0, out
    assert out.splitlines()[1:] == [
        f"table {PROJECT}.{dataset}.{TABLE}: created with {len(COLUMNS)} columns, partitioned"
        " by day of occurred_at, clustered by store and name",
        f"table {PROJECT}.{dataset}.{AUDIT}: created with {len(AUDIT_COLUMNS)} columns,"
        " partitioned by day of attempted_at, clustered by store and destination",
    ]
    running = RunningTagless(config_dir)
    await running.start()
    try:
        batch = {"batch": [track("m-1"), track("m-2")]}
        assert await running.post("/v1/batch", batch, key="shop-key") == (200, {"success": True})
        for _ in range(300):
            if len(hook.delivered_events()) == 2:
                break
            await asyncio.sleep(0.02)
        assert len(hook.delivered_events()) == 2
    finally:
        await running.stop()  # writes the audit rows still buffered

    rows = sorted(
        emulator.read_back(PROJECT, dataset, AUDIT), key=lambda r: (r["event_id"], r["attempt"])
    )
    assert [list(row) for row in rows[:1]] == [[column.name for column in AUDIT_COLUMNS]]
    assert [
        (r["store"], r["destination"], r["destination_type"], r["event_id"], r["attempt"],
         r["outcome"], r["status"], r["reason"])
        for r in rows
    ] == [
        ("shop", "hook", "webhook", "m-1", 1, "retry", 503, "http_503"),
        ("shop", "hook", "webhook", "m-1", 2, "delivered", 200, "ok"),
        ("shop", "hook", "webhook", "m-2", 1, "retry", 503, "http_503"),
        ("shop", "hook", "webhook", "m-2", 2, "delivered", 200, "ok"),
    ]  # fmt: skip
    assert all(isinstance(r["latency_ms"], float) and r["latency_ms"] > 0 for r in rows)
    assert all(set(r["attempted_at"]) == {"timestamp"} for r in rows)
    assert [r["event_id"] for r in emulator.read_back(PROJECT, dataset, TABLE)] == ["m-1", "m-2"]


async def test_create_table_says_how_an_existing_audit_table_differs(
    emulator: Emulator, config_dir: Path, dataset: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """An audit table of the same name with another schema: the events table is made, the
    audit table's differences are listed, exit 1; a second run says the same."""
    base = f"{emulator.url}/bigquery/v2/projects/{PROJECT}/datasets"
    fields = [column.resource() for column in AUDIT_COLUMNS if column.name != "latency_ms"]
    fields.append({"name": "latency_ms", "type": "INTEGER", "mode": "NULLABLE"})
    reference = {"projectId": PROJECT, "datasetId": dataset}
    async with aiohttp.ClientSession() as session:
        async with session.post(base, json={"datasetReference": reference}) as made:
            assert made.status == 200
        table = {"tableReference": {**reference, "tableId": AUDIT}, "schema": {"fields": fields}}
        async with session.post(f"{base}/{dataset}/tables", json=table) as made:
            assert made.status == 200, await made.text()

    for _ in range(2):
        code, out, _ = await cli(capsys, *create_table_argv(config_dir))
        assert code == 1
        lines = out.splitlines()
        assert lines[1].startswith(f"table {PROJECT}.{dataset}.{TABLE}: ")
        assert lines[2:4] == [
            f"table {PROJECT}.{dataset}.{AUDIT}: exists with another schema (1 difference);"
            " Tagless's rows would not fit it:",
            "  latency_ms: is INTEGER NULLABLE, expected FLOAT NULLABLE",
        ]
