"""Retention: delivered events lose their user data after ``pii_retention_hours`` (a dead letter
keeps it for a replay), dead letters go after ``dead_letter_retention_hours`` with a log line
each, settled events after ``retention_hours``; the scrub's position survives a restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from cli_ops_kit import HOUR, settle_all, stored
from structlog.testing import capture_logs

from router.clock import FakeClock
from router.config import Config, load_config
from router.destination import Outcome
from router.ops.retention import enforce_retention, retention_settings
from router.outbox.base import NewEvent
from router.outbox.select import make_outbox
from router.plugins import config_classes, discover

T0 = 1_796_000_000.0
DEAD = Outcome("rejected", "http_400", 400)


def config(config_dir: Path) -> Config:
    text = (
        (config_dir / "tagless.yaml")
        .read_text()
        .replace(
            "outbox: {",
            "outbox: {pii_retention_hours: 1, dead_letter_retention_hours: 5,"
            " retention_hours: 10, ",
        )
    )
    (config_dir / "tagless.yaml").write_text(text)
    return load_config(config_dir, config_classes(discover()))


async def bodies(box: Any) -> dict[str, dict[str, object]]:
    rows = await box._read("SELECT event_id, body FROM events", ())
    return {event_id: orjson.loads(body) for event_id, body in rows}


async def test_user_data_then_dead_letters_then_events_go_in_turn(config_dir: Path) -> None:
    """At 2 h the delivered purchase has no email, IP or ids left but its order; the dead
    letter's event and the one not delivered yet keep theirs; at 6 h the dead letter is
    deleted and logged; at 11 h the events are purged."""
    settings = config(config_dir)
    assert retention_settings(settings.outbox) == {
        "pii_retention_hours": 1.0,
        "retention_hours": 10.0,
        "dead_letter_retention_hours": 5.0,
        "attempts_retention_hours": 168.0,
        "attempts_max_rows": 1_000_000,
    }
    clock = FakeClock(T0)
    box = make_outbox(settings.outbox, clock)
    await box.open()
    try:
        events = [
            NewEvent("shop", e, T0, ("archive", "meta"), stored(e, T0), "anon-1", "customer-42")
            for e in ("sent", "dead")
        ]
        await box.append(events)
        await settle_all(box, "archive", DEAD, only=())
        await settle_all(box, "meta", DEAD, only=("dead",))
        await box.append([NewEvent("shop", "later", T0, ("archive",), stored("later", T0))])

        clock.advance(2 * HOUR)
        await enforce_retention(box, settings, clock.now())
        found = await bodies(box)
        assert not {"emails", "client_ip", "user_id", "anonymous_id"} & found["sent"].keys()
        assert (found["sent"]["order_id"], found["sent"]["client_ip_class"]) == (
            "WC-1001",
            "missing",
        )
        assert found["dead"]["emails"] == ["jane.doe@example.com"]  # a replay needs it
        assert found["later"]["emails"] == ["jane.doe@example.com"]  # not delivered yet
        assert await box._read("SELECT anonymous_id FROM events WHERE event_id = 'sent'", ()) == [
            (None,)
        ]
    finally:
        await box.close()

    box = make_outbox(settings.outbox, clock)  # a restart
    await box.open()
    try:
        assert await box.scrub_delivered("shop", ["archive", "meta"], clock.now()) == 0
        clock.advance(4 * HOUR)
        with capture_logs() as logs:
            await enforce_retention(box, settings, clock.now())
        assert await box.dead_letters("shop") == []
        [expired] = [log for log in logs if log["event"] == "dead_letters_expired"]
        assert (expired["destination"], expired["dead_letters"]) == ("meta", 1)
        assert (await bodies(box))["dead"]["emails"] == ["jane.doe@example.com"]

        clock.advance(5 * HOUR)
        await enforce_retention(box, settings, clock.now())
        assert set(await bodies(box)) == {"later"}  # pending for archive: never purged
    finally:
        await box.close()
