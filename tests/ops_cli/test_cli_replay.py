"""``tagless replay`` end to end on a populated outbox: dead letters with a dry run that counts
what a platform's age limit would refuse, and a backfill of delivered events to a destination
that Tagless then delivers."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from cli_ops_kit import DAY, HOUR, run, settle_all, stored

from router.clock import FakeClock
from router.destination import Outcome
from router.outbox.base import NewEvent
from router.testing.server import RunningTagless
from tests.postgres_kit import outbox_at

REJECTED = Outcome("rejected", "http_400", 400, detail="bad")


def populate(path: Path, now: float) -> None:
    """Dead letters for meta (one 10 days old, one an hour), events archive delivered, events
    stored before archive took them (a purchase; a page view archive's filter denies), one
    out of the backfill's range and one archive has not reached yet."""

    def event(event_id: str, age: float, routes: tuple[str, ...], name: str = "purchase"):
        return NewEvent("shop", event_id, now - age, routes, stored(event_id, now - age, name))

    async def fill() -> None:
        box = outbox_at(path, clock=FakeClock(now))
        await box.open()
        try:
            await box.append(
                [
                    event("old-dead", 10 * DAY, ("meta",)),
                    event("new-dead", HOUR, ("meta",)),
                    event("both", 2 * HOUR, ("archive", "meta")),
                    event("meta-only", 3 * HOUR, ("meta",)),
                    event("page", 3 * HOUR, ("meta",), name="page_view"),
                    event("last-week", 30 * HOUR, ("archive",)),
                ]
            )
            await settle_all(box, "meta", REJECTED, only=("old-dead", "new-dead"))
            await settle_all(box, "archive", REJECTED, only=())
            await box.append([event("not-yet", HOUR / 2, ("archive",))])
        finally:
            await box.close()

    asyncio.run(fill())


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def test_dead_letter_dry_run_counts_the_age_limit_then_replay_revives(
    config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The dry run says two dead letters would go and one is past Meta's 7 days, changing
    nothing; the replay then makes both due again with a fresh budget."""
    populate(config_dir / "tagless.db", time.time())
    base = ("--config", str(config_dir), "--store", "shop", "--destination", "meta")
    code, out, _ = run(capsys, "replay", *base, "--dry-run", "--json")
    answer = orjson.loads(out)
    assert code == 0
    assert (answer["kind"], answer["dry_run"], answer["replayed"]) == ("dead_letters", True, 0)
    assert (answer["matched"], answer["would_send"], answer["would_refuse_age"]) == (2, 2, 1)
    [meta] = answer["destinations"]
    assert (meta["id"], meta["max_event_age_secs"]) == ("meta", 7 * DAY)
    _, out, _ = run(capsys, "dead-letters", *base, "--json")
    assert len(orjson.loads(out)["dead_letters"]) == 2  # the dry run changed nothing

    code, out, _ = run(capsys, "replay", *base, "--event-id", "new-dead")
    assert (code, out) == (0, "replayed 1 dead letter\n")
    _, out, _ = run(capsys, "dead-letters", *base, "--json")
    assert [d["event_id"] for d in orjson.loads(out)["dead_letters"]] == ["old-dead"]
    _, out, _ = run(capsys, "status", "--config", str(config_dir), "--json")
    lanes = {lane["destination"]: lane for lane in orjson.loads(out)["lanes"]}
    assert (lanes["meta"]["retrying"], lanes["meta"]["dead"]) == (1, 1)


def test_replay_filters_by_reason_and_refuses_an_unknown_destination(
    config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--reason matches the start of a dead letter's reason; a destination the store lacks is
    an error naming the valid ones, as JSON with --json."""
    populate(config_dir / "tagless.db", time.time())
    base = ("--config", str(config_dir), "--store", "shop")
    _, out, _ = run(capsys, "replay", *base, "--reason", "http_5", "--dry-run", "--json")
    assert orjson.loads(out)["matched"] == 0
    _, out, _ = run(capsys, "replay", *base, "--reason", "http_4", "--dry-run", "--json")
    assert orjson.loads(out)["matched"] == 2
    code, out, _ = run(capsys, "replay", *base, "--destination", "tiktok", "--json")
    assert code == 1
    [error] = orjson.loads(out)["errors"]
    assert "no enabled destination 'tiktok'" in error and "['archive', 'meta']" in error


def test_backfill_sends_a_destination_the_range_again_and_tagless_delivers_it(
    config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--delivered re-sends what archive got in the range, adds what it would take now but was
    stored before it (not the page view its filter denies), leaves older events and those it
    has not reached yet alone; a running Tagless then writes them to the archive file."""
    now = time.time()
    populate(config_dir / "tagless.db", now)
    argv = ["replay", "--config", str(config_dir), "--store", "shop", "--destination", "archive"]
    argv += ["--delivered", "--since", iso(now - DAY)]
    code, out, _ = run(capsys, *argv, "--dry-run", "--json")
    answer = orjson.loads(out)
    assert code == 0
    assert answer["kind"] == "backfill"
    # new-dead, both, meta-only, page: behind archive's cursor, received in the last day
    assert (answer["matched"], answer["would_send"], answer["not_routed"]) == (4, 3, 1)
    assert (answer["ahead_of_cursor"], answer["would_refuse_age"]) == (1, 0)
    assert answer["replayed"] == 0

    code, out, _ = run(capsys, *argv)
    assert code == 0
    assert out.startswith("replayed 3 events (1 not routed there")

    sink = config_dir / "sink.jsonl"
    expected = {"new-dead", "both", "meta-only", "not-yet"}

    async def deliver() -> set[str]:
        running = await RunningTagless(config_dir).start()
        try:
            for _ in range(600):  # up to 30 s on a loaded machine
                lines = sink.read_bytes().splitlines() if sink.exists() else []
                seen = {orjson.loads(line)["event_id"] for line in lines}
                if expected <= seen:
                    return seen
                await asyncio.sleep(0.05)
            return seen
        finally:
            await running.stop()

    assert asyncio.run(deliver()) == expected


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"destination": "meta"}, "store: required"),
        ({"store": "shop", "dry_run": "no"}, "dry_run: expected true or false, got str"),
        ({"store": "shop", "event_ids": "e-1"}, "event_ids: expected a list, got str"),
        ({"store": "shop", "event_ids": [1]}, "event_ids: expected a list of strings"),
        ({"store": "shop", "since": "yesterday"}, "since: 'yesterday' is not a time"),
        ({"store": "shop", "limit": 5}, "unknown keys ['limit']; valid keys: ["),
    ],
)
def test_an_api_replay_body_that_is_wrong_says_what_and_what_is_valid(
    config_dir: Path, body: dict[str, object], message: str
) -> None:
    """POST /api/replay's body is checked key by key before anything is looked up."""
    from router.ops.replay import replay_request

    async def ask() -> None:
        running = RunningTagless(config_dir)
        await running.app.outbox.open()
        try:
            await replay_request(running.app, body)  # type: ignore[arg-type]
        finally:
            await running.app.outbox.close()

    with pytest.raises(ValueError, match=message.replace("[", r"\[")):
        asyncio.run(ask())
