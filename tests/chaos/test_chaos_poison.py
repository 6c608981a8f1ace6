"""Reliability tests 10, 11 and 12: poison events, batches that fail as a whole for one bad
event (the webhook's model and Meta's), and events older than a platform takes: each bad event
is dead-lettered with its reason at its own destination, and every other event is delivered
exactly once, none held behind it."""

from __future__ import annotations

import contextlib
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.rig import Platform, report, rig, scale
from tests.destinations.meta_capi.fake_meta import PIXEL, TOKEN, VERSION, FakeMeta
from tests.process.harness import read_only

EVENTS = scale(400, 4000)


def purchase(event_id: str, *, days_old: float = 0.0, currency: str = "EUR") -> dict[str, Any]:
    """An Order Completed from the store's backend, as complete as Meta wants it."""
    when = datetime.now(UTC) - timedelta(days=days_old, minutes=1)
    return {
        "type": "track",
        "event": "Order Completed",
        "messageId": event_id,
        "userId": f"customer-{event_id}",
        "timestamp": when.isoformat(),
        "context": {
            "ip": "81.2.69.142",
            "userAgent": "Mozilla/5.0 (X11; Linux x86_64)",
            "page": {"url": "https://shop.example/checkout/thanks"},
            "traits": {"email": f"{event_id}@example.com"},
        },
        "properties": {"order_id": f"o-{event_id}", "revenue": "19.90", "currency": currency},
    }


def dead_letters(path: Path) -> dict[tuple[str, str], str]:
    """(destination, event id) -> reason of every dead letter."""
    with contextlib.closing(read_only(path)) as db:
        rows = db.execute(
            "SELECT d.destination, e.event_id, d.reason FROM deliveries d"
            " JOIN events e ON e.seq = d.seq WHERE d.state = 'dead'"
        ).fetchall()
    return {(dest, event_id): reason for dest, event_id, reason in rows}


@pytest.mark.slow
async def test_poison_events_are_isolated_and_dead_lettered_without_holding_others(
    tmp_path: Path,
) -> None:
    """Among many good purchases: events the webhook refuses (its batch fails as a whole with
    400), events Meta refuses (an unknown currency: code 100 for the whole request) and events
    nine days old (past Meta's 7 days, fine for the webhook): each ends as a dead letter with
    its reason at the destination that refused it, and every other event reaches both
    platforms once."""
    rng = random.Random(10)
    meta = Platform("meta", inner=FakeMeta(), ids_key="data")
    await meta.start()
    extra = [
        {
            "id": "meta",
            "type": "meta_capi",
            "pixel_id": PIXEL,
            "access_token": "${META_TOKEN}",
            "endpoint": meta.url,
            "api_version": VERSION,
            "max_batch_size": 100,
        }
    ]
    async with rig(tmp_path, ["hook"], others=(meta,), extra=extra, max_batch_size=100) as r:
        r.server.env = {"META_TOKEN": TOKEN}
        await r.server.start()
        ids = [f"{r.run}-{n}" for n in range(EVENTS)]
        picks = rng.sample(ids, 30)
        hook_poison, meta_poison, too_old = set(picks[:10]), set(picks[10:20]), set(picks[20:])
        r.platforms["hook"].behaviour.poison = hook_poison
        messages = [
            purchase(
                i,
                days_old=9 if i in too_old else 0,
                currency="XYZ" if i in meta_poison else "EUR",
            )
            for i in ids
        ]
        await r.post_messages(messages)
        withheld = {"hook": hook_poison, "meta": meta_poison | too_old}
        drained, code, verdict = await r.finish(withheld=withheld)
        dead = dead_letters(r.config.db_path)
        reasons = sorted({reason for reason in dead.values()})
        report(
            "poison events, whole-batch failures, too-old events (10, 11, 12)",
            f"{EVENTS} purchases; 10 refused by the webhook, 10 by Meta (currency XYZ), 10 nine"
            f" days old; dead letters: {len(dead)} with reasons {reasons}",
            verdict.summary(),
        )
        verdict.assert_ok()
        assert drained, "good events were held behind the bad ones\n" + verdict.summary()
        assert code == 0, r.server.tail()
        expected = {("hook", i) for i in hook_poison} | {("meta", i) for i in withheld["meta"]}
        assert set(dead) == expected, f"dead letters differ: {set(dead) ^ expected}"
        assert {dead[("meta", i)] for i in too_old} == {"too_old"}
        sent_to_meta = {i for d in meta.deliveries() for i in d.ids}
        assert not too_old & sent_to_meta, "an event past Meta's age limit was sent"
        for name in ("hook", "meta"):
            assert verdict.figures[name].duplicates == 0, f"{name} got an event twice"
