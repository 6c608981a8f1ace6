"""``tagless outbox copy``: SQLite to PostgreSQL and back, every event with its state per
destination, nothing lost and nothing that could go out twice."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest

from router import codec
from router.cli import main
from router.clock import FakeClock
from router.destination import DELIVERED, Outcome
from router.outbox.base import NewEvent
from router.outbox.policy import RetryPolicy
from router.outbox.postgres import PostgresOutbox
from router.outbox.sqlite import SqliteOutbox
from router.testing.events import make_event

NO_JITTER = RetryPolicy(max_attempts=5, jitter=lambda top: top)


def new(event_id: str, routes: tuple[str, ...]) -> NewEvent:
    body = codec.encode(make_event(event_id=event_id))
    return NewEvent("shop", event_id, 1_800_000_000.0, routes, body)


def config_dir(root: Path, outbox: str) -> str:
    (root / "stores").mkdir(parents=True)
    (root / "tagless.yaml").write_text(f"outbox: {outbox}\nadmin: {{token: t-0123456789}}\n")
    (root / "stores" / "shop.yaml").write_text(
        "store: shop\nwrite_keys: [k]\ndestinations:\n"
        "  - {id: hook, type: webhook, url: 'http://127.0.0.1:9/h'}\n"
        "  - {id: meta, type: webhook, url: 'http://127.0.0.1:9/m'}\n"
    )
    return str(root)


async def fill(box: Any) -> None:
    """sent: delivered to both; half: delivered to hook, waiting for meta; late: waiting for
    both (meta without user data); flaky: retrying at hook; bad: dead at hook."""
    await box.append([new("sent", ("hook", "meta")), new("half", ("hook", "meta"))])
    claim = await box.claim("shop", "meta", 1)
    await box.settle(claim, [(claim.items[0], DELIVERED)], NO_JITTER)
    await box.append([new("flaky", ("hook",)), new("bad", ("hook",))])
    claim = await box.claim("shop", "hook", 10)
    failed = [Outcome("retry", "http_503", 503), Outcome("rejected", "http_400", 400)]
    outcomes = [DELIVERED, DELIVERED, *failed]
    await box.settle(claim, list(zip(claim.items, outcomes, strict=True)), NO_JITTER)
    await box.append([new("late", ("hook", "meta!"))])


async def drain(box: Any, destination: str) -> list[tuple[str, bool]]:
    """Every event due for ``destination`` now: (event_id, without user data), settled delivered."""
    seen = []
    while (claim := await box.claim("shop", destination, 100)) is not None:
        seen += [(item.event_id, item.without_user_data) for item in claim.items]
        await box.settle(claim, [(item, DELIVERED) for item in claim.items], NO_JITTER)
    return sorted(seen)


def run_copy(capsys: pytest.CaptureFixture[str], source: str, target: str) -> dict[str, Any]:
    with pytest.raises(SystemExit) as done:
        main(["outbox", "copy", "--from", source, "--to", target, "--json"])
    out, err = capsys.readouterr()
    assert done.value.code in (0, None), err
    return dict(orjson.loads(out[out.index("{\n") :]))  # after any log line


@pytest.mark.parametrize("direction", ["sqlite_to_postgres", "postgres_to_sqlite"])
def test_copy_moves_waiting_retrying_and_dead_events_once(
    tmp_path: Path,
    pg_url: str,
    clock: FakeClock,
    capsys: pytest.CaptureFixture[str],
    direction: str,
) -> None:
    """After the copy the target sends exactly what the source still had to send (retries
    once due), keeps the dead letter, refuses a sender's retry of a copied event as known; a
    second copy is refused."""
    path = tmp_path / "outbox.db"
    sqlite_config = config_dir(tmp_path / "a", f"{{path: {path}}}")
    pg_config = config_dir(tmp_path / "b", f"{{url: '{pg_url}'}}")
    source_kind, target_kind = direction.split("_to_")
    configs = {"sqlite": sqlite_config, "postgres": pg_config}

    def make(kind: str) -> Any:
        if kind == "sqlite":
            return SqliteOutbox(path, clock=clock)
        return PostgresOutbox(pg_url, clock=clock)

    async def prepare() -> None:
        source = make(source_kind)
        await source.open()
        await fill(source)
        await source.close()

    asyncio.run(prepare())

    copied = run_copy(capsys, configs[source_kind], configs[target_kind])
    assert copied["events"] == 5 and copied["already_there"] == 0
    assert (copied["pending"], copied["retry"], copied["dead"]) == (3, 1, 1)
    with pytest.raises(SystemExit) as again:  # a second copy would make them due twice
        main(["outbox", "copy", "--from", configs[source_kind], "--to", configs[target_kind]])
    assert again.value.code == 1 and "has undelivered events" in capsys.readouterr().err

    async def check() -> None:
        target = make(target_kind)
        await target.open()
        try:
            assert await drain(target, "meta") == [("half", False), ("late", True)]
            assert await drain(target, "hook") == [("late", False)]
            clock.advance(10)  # the retry's backoff, kept from the source
            assert await drain(target, "hook") == [("flaky", False)]
            [dead] = await target.dead_letters("shop")
            assert (dead.event_id, dead.destination, dead.reason) == ("bad", "hook", "http_400")
            await target.append([new("sent", ("hook", "meta"))])  # a sender's late retry
            assert await drain(target, "hook") == [] and await drain(target, "meta") == []
        finally:
            await target.close()

    asyncio.run(check())


def test_copy_refuses_a_target_with_undelivered_events(
    tmp_path: Path, pg_url: str, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    """The target's own waiting events would be passed by its cursors: the copy refuses,
    names them, and changes nothing."""
    path = tmp_path / "outbox.db"

    async def prepare() -> None:
        box = SqliteOutbox(path, clock=clock)
        await box.open()
        await box.append([new("a", ("hook",))])
        await box.close()
        target = PostgresOutbox(pg_url, clock=clock)
        await target.open()
        await target.append([new("waiting", ("hook",))])
        await target.close()

    asyncio.run(prepare())
    with pytest.raises(SystemExit) as done:
        main(["outbox", "copy", "--from", config_dir(tmp_path / "a", f"{{path: {path}}}"),
              "--to", config_dir(tmp_path / "b", f"{{url: '{pg_url}'}}")])  # fmt: skip
    _, err = capsys.readouterr()
    assert done.value.code == 1
    assert "has undelivered events (1 of store 'shop' for 'hook')" in err

    async def check() -> None:
        target = PostgresOutbox(pg_url, clock=clock)
        await target.open()
        try:
            assert await drain(target, "hook") == [("waiting", False)]
        finally:
            await target.close()

    asyncio.run(check())
