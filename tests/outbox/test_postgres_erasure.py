"""``tagless erase`` on a PostgreSQL outbox: the person leaves every event and every row of
the shared database; what platforms already got is reported; an audit line without them."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import asyncpg
import orjson
import pytest

from router import codec
from router.cli import main
from router.clock import FakeClock
from router.destination import DELIVERED, Outcome
from router.outbox.base import NewEvent
from router.outbox.policy import RetryPolicy
from router.outbox.postgres import PostgresOutbox
from router.testing.events import make_event

JANE = "jane.doe@example.com"


def config_dir(root: Path, url: str) -> str:
    (root / "stores").mkdir(parents=True)
    (root / "tagless.yaml").write_text(
        f"outbox: {{url: '{url}'}}\nadmin: {{token: t-0123456789}}\n"
    )
    (root / "stores" / "shop.yaml").write_text(
        "store: shop\nwrite_keys: [k]\ndestinations:\n"
        "  - {id: hook, type: webhook, url: 'http://127.0.0.1:9/h'}\n"
    )
    return str(root)


async def fill(url: str) -> None:
    """Jane's sent purchase, her dead one and her waiting one; Bob's event; a legacy attempts
    row whose platform answer echoes Jane's address in capitals."""
    box = PostgresOutbox(url, clock=FakeClock())
    await box.open()
    try:

        def event(event_id: str, email: str) -> NewEvent:
            body = codec.encode(make_event(event_id=event_id, emails=(email,)))
            return NewEvent("shop", event_id, 1_800_000_000.0, ("hook",), body)

        await box.append(
            [event("sent", JANE), event("dead", JANE), event("bob", "bob@example.org")]
        )
        claim = await box.claim("shop", "hook", 10)
        assert claim is not None
        rejected = Outcome("rejected", "http_400", 400)
        outcomes = [DELIVERED, rejected, DELIVERED]
        await box.settle(claim, list(zip(claim.items, outcomes, strict=True)), RetryPolicy())
        await box.append([event("waiting", JANE)])
    finally:
        await box.close()
    db = await asyncpg.connect(url)
    try:
        await db.execute(
            "INSERT INTO attempts (store, destination, at, seq_lo, seq_hi, delivered, retrying,"
            " dead, skipped, reason, answer) VALUES ('shop', 'hook', 1, 1, 1, 0, 0, 1, 0,"
            " 'http_400', $1)",
            f"unknown user {JANE.upper()}",
        )
    finally:
        await db.close()


async def everything(url: str) -> str:
    """Every row of every outbox table as text, bodies decoded, lowercased."""
    db = await asyncpg.connect(url)
    try:
        text = []
        for table in ("events", "deliveries", "attempts", "cursors", "leases", "pauses"):
            for row in await db.fetch(f"SELECT * FROM {table}"):  # noqa: S608 - fixed names
                text += [v.decode() if isinstance(v, bytes) else str(v) for v in row.values()]
        return "\n".join(text).lower()
    finally:
        await db.close()


def test_erase_by_email_leaves_no_trace_in_the_shared_database(
    tmp_path: Path, pg_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Jane's three events lose her address and their delivery state (the waiting one will
    not be sent); the attempts row is scrubbed; Bob stays; her sent event is reported; the
    audit line counts without naming her."""
    asyncio.run(fill(pg_url))
    digest = hashlib.sha256(JANE.encode()).hexdigest()
    before = asyncio.run(everything(pg_url))
    assert JANE in before and digest not in before  # stored raw; hashed only when sent
    monkeypatch.chdir(tmp_path)
    config = config_dir(tmp_path / "config", pg_url)
    with pytest.raises(SystemExit) as done:
        main(["erase", "--config", config, "--email", JANE.upper(), "--json"])
    out, _ = capsys.readouterr()
    assert done.value.code in (0, None)
    answer = orjson.loads(out[out.index("{\n") :])
    [shop] = answer["stores"]
    assert (shop["events"], shop["pending_dropped"], shop["deliveries_removed"]) == (
        3,
        1,
        {"dead": 1},
    )
    assert shop["already_sent"] == {"hook": ["sent"]} and shop["rows_scrubbed"] == 1
    assert answer["traces"] == []
    after = asyncio.run(everything(pg_url))
    assert JANE not in after and "bob@example.org" in after
    [line] = (tmp_path / "tagless-postgresql.erasures.jsonl").read_text().splitlines()
    assert JANE not in line.lower() and orjson.loads(line)["stores"][0]["events"] == 3
