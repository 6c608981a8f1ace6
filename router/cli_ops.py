"""The ``tagless`` outbox operations: status, dead letters, replay and backfill, erase."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

import attrs
import orjson

from router.cli import STORE_HELP, _load, _outbox, _plural, _rfc3339, _run, _with_outbox, emit
from router.clock import Clock, SystemClock
from router.config import Config
from router.config.advice import without_unresolved
from router.config.model import UnresolvedSettings
from router.destination import Destination
from router.http import HttpClient
from router.outbox.replays import Replayable
from router.progress import progress
from router.secret import MissingSecret
from router.stores import StoreRuntime

Command = Callable[[str, Callable[[argparse.Namespace], int]], Any]


def cmd_status(args: argparse.Namespace) -> int:
    """Pending, retrying and dead counts per store and destination."""

    async def action(box: Any, config: Config) -> list[Any]:
        rows = []
        for store in config.stores:
            ids = [d.id for d in store.destinations if d.enabled]
            rows.extend(await box.status(store.store, ids))
        return rows

    rows = _with_outbox(args, action)

    def table() -> str:
        lines = [f"{'store':<16} {'destination':<20} {'pending':>9} {'retrying':>9} {'dead':>7}"]
        lines += [
            f"{r.store:<16} {r.destination:<20} {r.pending:>9} {r.retrying:>9} {r.dead:>7}"
            for r in rows
        ]
        return "\n".join(lines) + "\n"

    emit(args, {"lanes": [attrs.asdict(row) for row in rows]}, table)
    return 0


def cmd_dead_letters(args: argparse.Namespace) -> int:
    """List dead letters as JSON lines (event ids, reasons, statuses; no event data)."""

    async def action(box: Any, config: Config) -> list[Any]:
        result: list[Any] = await box.dead_letters(args.store, args.destination, args.limit)
        return result

    records = []
    for row in _with_outbox(args, action):
        record = attrs.asdict(row)
        record["updated_at"] = _rfc3339(row.updated_at)
        records.append(record)

    def lines() -> str:
        return "".join(orjson.dumps(record).decode() + "\n" for record in records)

    emit(args, {"dead_letters": records}, lines)
    return 0


@attrs.frozen
class _Source:
    """The CLI's :class:`~router.ops.replay.ReplaySource`: the outbox file and the config."""

    outbox: Replayable
    clock: Clock
    stores: Mapping[str, StoreRuntime]
    destinations: Mapping[tuple[str, str], Destination[Any]]


def with_source(
    args: argparse.Namespace, action: Callable[[_Source], Coroutine[Any, Any, Any]]
) -> Any:
    """Run ``action`` on the config's outbox and compiled stores. Destinations whose secrets
    are not set are left out, unless ``--destination`` names one: that needs its secrets."""
    from router.app import compile_stores

    config, plugins = _load(args.config)
    named = getattr(args, "destination", None)
    for store in config.stores:
        for dest in store.destinations:
            unresolved = isinstance(dest.settings, UnresolvedSettings)
            if unresolved and store.store == args.store and dest.id == named:
                raise MissingSecret(dest.settings.variables[0])
    box = _outbox(config)

    async def go() -> Any:
        http = HttpClient.create()
        await box.open()
        try:
            stores, instances = compile_stores(without_unresolved(config), plugins, http)
            return await action(_Source(box, SystemClock(), stores, instances))
        finally:
            await box.close()
            await http.close()

    return _run(go())


def cmd_replay(args: argparse.Namespace) -> int:
    """Replay dead letters, or backfill a destination with events it already got (--delivered)."""
    from router.ops.replay import replay

    async def action(source: _Source) -> dict[str, Any]:
        return await replay(
            source,
            args.store,
            destination=args.destination,
            seqs=args.seq,
            event_ids=args.event_id,
            reason=args.reason,
            since=args.since,
            until=args.until,
            delivered=args.delivered,
            dry_run=args.dry_run,
            progress=advance,
        )

    if args.delivered and (args.destination is None or args.since is None):
        raise SystemExit("--delivered (a backfill) needs --destination and --since")
    label = "backfill" if args.delivered else "replay"
    try:
        dry = " (dry run)" if args.dry_run else ""
        with progress(f"{label}{dry}: events") as advance:
            result = with_source(args, action)
    except ValueError as error:
        raise SystemExit(f"error: {error}") from None
    emit(args, result, lambda: _replay_text(result))
    return 0


def _replay_text(result: dict[str, Any]) -> str:
    what = "event" if result["kind"] == "backfill" else "dead letter"
    if result["dry_run"]:
        line = f"would replay {_plural(result['would_send'], what)}"
    else:
        line = f"replayed {_plural(result['replayed'], what)}"
    notes = []
    if result["would_refuse_age"]:
        notes.append(f"{result['would_refuse_age']:,} past the platform's age limit")
    if result["not_routed"]:
        notes.append(f"{result['not_routed']:,} not routed there (filters, consent)")
    if result["ahead_of_cursor"]:
        notes.append(f"{result['ahead_of_cursor']:,} not delivered yet, left to the destination")
    return line + (f" ({'; '.join(notes)})" if notes else "") + "\n"


def cmd_erase(args: argparse.Namespace) -> int:
    """Erase a person (email, user id or anonymous id) from every state of the outbox."""
    from router.ops.erase import erase

    kind, value = next(
        (k, v) for k in ("email", "user_id", "anonymous_id") if (v := getattr(args, k)) is not None
    )

    async def action(box: Any, config: Config) -> dict[str, Any]:
        names = [s.store for s in config.stores]
        if args.store is not None and args.store not in names:
            raise SystemExit(f"error: no store {args.store!r}; stores: {names}")
        stores = [args.store] if args.store else names
        with progress("erase: stores", len(stores)) as advance:
            return await erase(box, stores, kind, value, progress=advance)

    try:
        answer = _with_outbox(args, action)
    except ValueError as error:
        raise SystemExit(f"error: {error}") from None
    emit(args, answer, lambda: _erase_text(answer))
    return 1 if answer["traces"] else 0


def _erase_text(answer: dict[str, Any]) -> str:
    lines = []
    for s in answer["stores"]:
        removed = sum(s["deliveries_removed"].values())
        lines.append(
            f"{s['store']}: {_plural(s['events'], 'event')} scrubbed ({s['pending_dropped']:,}"
            f" no longer to be sent, {removed:,} retries or dead letters removed,"
            f" {s['rows_scrubbed']:,} other rows scrubbed)"
        )
        for dest, ids in sorted(s["already_sent"].items()):
            lines.append(
                f"  already sent to {dest}: {_plural(len(ids), 'event')} ({', '.join(ids)});"
                " only that platform can delete them there"
            )
    if answer["traces"]:
        lines.append(f"NOT ERASED everywhere: the value is still in {', '.join(answer['traces'])}")
    else:
        compacted = ", after compacting it" if answer["compacted"] else ""
        searched = f"database and WAL searched byte by byte: no trace left{compacted}"
        lines.append(answer.get("checked", searched))
    return "\n".join(lines) + "\n"


def cmd_purge(args: argparse.Namespace) -> int:
    """Enforce retention now: expire old dead letters, purge old events, strip user data."""
    from router.logs import to_stderr
    from router.ops.retention import enforce_retention

    to_stderr()

    async def action(box: Any, config: Config) -> list[dict[str, Any]]:
        with progress("purge: stores", len(config.stores)) as advance:
            now = box.clock.now()
            return await enforce_retention(box, config, now, rounds=1_000_000, progress=advance)

    done = _with_outbox(args, action)

    def text() -> str:
        return "".join(
            f"{s['store']}: {_plural(s['dead_letters_expired'], 'dead letter')} expired,"
            f" {_plural(s['purged'], 'event')} purged, user data removed from"
            f" {_plural(s['user_data_removed'], 'event')}\n"
            for s in done
        )

    emit(args, {"stores": done}, text)
    return 0


def register(command: Command) -> None:
    """Add the outbox operations to the ``tagless`` parser (``command`` adds one)."""
    command("status", cmd_status)
    dead = command("dead-letters", cmd_dead_letters)
    dead.add_argument("--store", required=True, help=STORE_HELP)
    dead.add_argument("--destination", help="only this destination's id (default: all)")
    dead.add_argument("--limit", type=int, default=100, help="newest N (default: 100)")
    replay = command("replay", cmd_replay)
    replay.add_argument("--store", required=True, help=STORE_HELP)
    replay.add_argument("--destination", help="only this destination's id (default: all)")
    replay.add_argument("--seq", type=int, action="append", help="outbox sequence number")
    replay.add_argument("--event-id", action="append", help="the event's id (its messageId)")
    replay.add_argument("--reason", help="dead letters whose reason starts with this")
    replay.add_argument("--since", help="ISO 8601 time (UTC if no offset): received at or after")
    replay.add_argument("--until", help="ISO 8601 time: events received before")
    replay.add_argument(
        "--delivered",
        action="store_true",
        help="backfill: send --destination again the events since --since it already got,"
        " and those it would get now but never did (a destination added later)",
    )
    replay.add_argument("--dry-run", action="store_true", help="count, change nothing")
    erase = command("erase", cmd_erase)
    erase.add_argument("--store", help=STORE_HELP + " (default: every store)")
    who = erase.add_mutually_exclusive_group(required=True)
    who.add_argument("--email", help="an email address, any case (also found as its SHA-256)")
    who.add_argument("--user-id", help="the sender's userId")
    who.add_argument("--anonymous-id", help="the sender's anonymousId")
    command("purge", cmd_purge)
