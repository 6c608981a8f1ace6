"""The ``tagless`` command line: serve, check, and the outbox operations."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import orjson
import structlog

from router.config import Config, ConfigError, load_config
from router.config.advice import config_warnings, unset_secrets, without_unresolved
from router.http import HttpClient
from router.plugins import PluginError, config_classes, discover
from router.secret import MissingSecret


def _load(directory: str, *, lazy_secrets: bool = True) -> tuple[Config, dict[str, Any]]:
    """The config and plugins. Secrets load lazily unless asked: a command fails on a missing
    variable only if it uses that secret (``serve`` needs them all, so it loads strictly)."""
    plugins = discover()
    config = load_config(Path(directory), config_classes(plugins), lazy_secrets=lazy_secrets)
    return config, plugins


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


def _run(coro: Coroutine[Any, Any, Any]) -> Any:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.run(coro)
    return uvloop.run(coro)


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve ingest and deliver until SIGTERM."""
    from router.app import Tagless
    from router.logs import configure
    from router.startup import StartupError
    from router.tuning import tune_for_serving

    config, plugins = _load(args.config, lazy_secrets=False)
    configure(config.logging.level, config.logging.format)
    for warning in config_warnings(config):
        structlog.get_logger("tagless.config").warning("config_warning", warning=warning)
    tune_for_serving()
    try:
        _run(Tagless(config, plugins).serve_until_signalled())
    except StartupError as error:  # everything started was stopped again; say why, once
        structlog.get_logger("tagless").error("startup_failed", error=str(error))
        return 1
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Validate the config directory; print every problem as file:line: path: message."""
    from router.app import compile_stores

    config, plugins = _load(args.config)

    async def build() -> None:
        http = HttpClient.create()
        try:
            compile_stores(without_unresolved(config), plugins, http)
        finally:
            await http.close()

    _run(build())
    for variable in unset_secrets(config):
        print(f"warning: environment variable {variable} is not set; 'tagless serve' needs it")
    for warning in config_warnings(config, config.outbox.path):
        print(f"warning: {warning}")
    destinations = sum(len(store.destinations) for store in config.stores)
    stores = _plural(len(config.stores), "store")
    print(f"{args.config}: ok ({stores}, {_plural(destinations, 'destination')})")
    return 0


def cmd_send_test(args: argparse.Namespace) -> int:
    """Send one realistic test event through a destination's test mode; print what happened."""
    from router import sendtest

    if args.dry_run:
        return _print_test_payload(args)
    store, dest, plugins = _destination_of(args)

    async def go() -> Any:
        http = HttpClient.create()
        try:
            destination = plugins[dest.type](dest.settings, http)
            if not sendtest.has_test_mode(destination):
                return None
            return await sendtest.run(destination, store.store)
        finally:
            await http.close()

    result = _run(go())
    if result is None:
        print(
            f"{args.destination} ({dest.type}) has no test mode: nothing was sent."
            " 'tagless send-test --dry-run' prints the payload it would send.",
            file=sys.stderr,
        )
        return 1
    payload, answer = result
    print("payload sent (identity redacted):")
    print(orjson.dumps(payload, option=orjson.OPT_INDENT_2).decode())
    print(f"platform answer ({answer.status}): {answer.answer}")
    for message in answer.messages:
        print(f"  - {message}")
    print("ok" if answer.ok else "NOT OK")
    return 0 if answer.ok else 1


def _destination_of(args: argparse.Namespace) -> tuple[Any, Any, dict[str, Any]]:
    """The store and destination config the arguments name (exits naming the valid ones)."""
    config, plugins = _load(args.config)
    store = next((s for s in config.stores if s.store == args.store), None)
    if store is None:
        raise SystemExit(f"no store {args.store!r}; stores: {[s.store for s in config.stores]}")
    dest = next((d for d in store.destinations if d.id == args.destination), None)
    if dest is None:
        ids = [d.id for d in store.destinations]
        raise SystemExit(f"store {args.store!r} has no destination {args.destination!r}: {ids}")
    return store, dest, plugins


def _print_test_payload(args: argparse.Namespace) -> int:
    """``send-test --dry-run``: the payload the test event maps to; nothing is sent."""
    from router import sendtest

    store, dest, plugins = _destination_of(args)

    async def go() -> Any:
        http = HttpClient.create()
        try:
            return sendtest.payload(plugins[dest.type](dest.settings, http), store.store)
        finally:
            await http.close()

    print("payload (identity redacted; dry run, nothing sent):")
    print(orjson.dumps(_run(go()), option=orjson.OPT_INDENT_2).decode())
    return 0


def _outbox(config: Config) -> Any:
    from router.outbox.sqlite import SqliteOutbox

    if not config.outbox.path.exists():
        raise SystemExit(f"no outbox at {config.outbox.path}: has Tagless run with this config?")
    return SqliteOutbox(config.outbox.path)


def _with_outbox(
    args: argparse.Namespace, action: Callable[[Any, Config], Coroutine[Any, Any, Any]]
) -> Any:
    config, _ = _load(args.config)
    box = _outbox(config)

    async def go() -> Any:
        await box.open()
        try:
            return await action(box, config)
        finally:
            await box.close()

    return _run(go())


def cmd_status(args: argparse.Namespace) -> int:
    """Pending, retrying and dead counts per store and destination."""

    async def action(box: Any, config: Config) -> list[Any]:
        rows = []
        for store in config.stores:
            ids = [d.id for d in store.destinations if d.enabled]
            rows.extend(await box.status(store.store, ids))
        return rows

    rows = _with_outbox(args, action)
    print(f"{'store':<16} {'destination':<20} {'pending':>9} {'retrying':>9} {'dead':>7}")
    for row in rows:
        print(
            f"{row.store:<16} {row.destination:<20} {row.pending:>9} {row.retrying:>9}"
            f" {row.dead:>7}"
        )
    return 0


def cmd_dead_letters(args: argparse.Namespace) -> int:
    """List dead letters as JSON lines (event ids, reasons, statuses; no event data)."""

    async def action(box: Any, config: Config) -> list[Any]:
        result: list[Any] = await box.dead_letters(args.store, args.destination, args.limit)
        return result

    for row in _with_outbox(args, action):
        record = attrs.asdict(row)
        record["updated_at"] = _rfc3339(row.updated_at)
        sys.stdout.write(orjson.dumps(record).decode() + "\n")
    return 0


def _rfc3339(seconds: float) -> str:
    """Unix seconds as RFC 3339 UTC with milliseconds: 2026-11-30T14:05:00.123Z."""
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _timestamp(text: str | None) -> float | None:
    return None if text is None else datetime.fromisoformat(text).timestamp()


def cmd_replay(args: argparse.Namespace) -> int:
    """Make dead letters due again, by sequence number or by destination and time range."""

    async def action(box: Any, config: Config) -> int:
        count: int = await box.replay(
            args.store,
            args.destination,
            seqs=args.seq or None,
            since=_timestamp(args.since),
            until=_timestamp(args.until),
            dry_run=args.dry_run,
        )
        return count

    count = _with_outbox(args, action)
    verb = "would replay" if args.dry_run else "replayed"
    print(f"{verb} {_plural(count, 'dead letter')}")
    return 0


def cmd_identity(args: argparse.Namespace) -> int:
    """Identity quality of a store's events: how many carry a usable IP and each id; findings."""
    from router.clock import SystemClock
    from router.ops.identity_report import identity_report
    from router.ops.identity_text import render_identity
    from router.ops.lanes import OfflineView

    async def action(box: Any, config: Config) -> Any:
        view = OfflineView(config=config, outbox=box, clock=SystemClock())
        return await identity_report(view, args.store, args.window)

    try:
        report = _with_outbox(args, action)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
    else:
        print(render_identity(report))
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    """Copy the outbox to a file while Tagless runs (SQLite online backup)."""
    from router.backup import BackupError, backup_outbox

    config, _ = _load(args.config)
    try:
        size = backup_outbox(config.outbox.path, Path(args.to))
    except BackupError as error:
        raise SystemExit(str(error)) from None
    print(f"backed up {config.outbox.path} to {args.to} ({size:,} bytes, integrity ok)")
    return 0


def cmd_bigquery_create_table(args: argparse.Namespace) -> int:
    """Create a bigquery destination's dataset and table, or say how an existing one differs."""
    from destinations.bigquery.tables import FAILED, create_table

    _, dest, _ = _destination_of(args)
    if dest.type != "bigquery":
        print(f"{args.destination} is a {dest.type} destination, not bigquery", file=sys.stderr)
        return FAILED

    async def go() -> Any:
        http = HttpClient.create()
        try:
            return await create_table(dest.settings, http)
        finally:
            await http.close()

    report = _run(go())
    print("\n".join(report.lines), file=sys.stderr if report.code == FAILED else sys.stdout)
    return int(report.code)


DESCRIPTION = (
    "Tagless: serve the ingest API and deliver events, check the config, operate the outbox."
)
STORE_HELP = "the store's name (its 'store:' key in config/stores/*.yaml)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tagless", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, handler: Callable[[argparse.Namespace], int]) -> Any:
        sub = commands.add_parser(name, help=(handler.__doc__ or "").strip())
        sub.add_argument("--config", default="config", help="directory with tagless.yaml")
        sub.set_defaults(handler=handler)
        return sub

    command("serve", cmd_serve)
    command("check", cmd_check)
    command("status", cmd_status)
    test = command("send-test", cmd_send_test)
    test.add_argument("--store", required=True, help=STORE_HELP)
    test.add_argument("--destination", required=True, help="the destination's id in that store")
    test.add_argument(
        "--dry-run", action="store_true", help="print the payload it would send; send nothing"
    )
    dead = command("dead-letters", cmd_dead_letters)
    dead.add_argument("--store", required=True, help=STORE_HELP)
    dead.add_argument("--destination", help="only this destination's id (default: all)")
    dead.add_argument("--limit", type=int, default=100, help="newest N (default: 100)")
    replay = command("replay", cmd_replay)
    replay.add_argument("--store", required=True, help=STORE_HELP)
    replay.add_argument("--destination", help="only this destination's id (default: all)")
    replay.add_argument("--seq", type=int, action="append", help="outbox sequence number")
    replay.add_argument("--since", help="ISO 8601 time: events received at or after")
    replay.add_argument("--until", help="ISO 8601 time: events received before")
    replay.add_argument("--dry-run", action="store_true", help="count, change nothing")
    identity = command("identity", cmd_identity)
    identity.add_argument("--store", required=True, help=STORE_HELP)
    identity.add_argument("--window", default="24h", help="1h, 24h or 7d (default: 24h)")
    identity.add_argument("--json", action="store_true", help="the report as JSON")
    backup = command("backup", cmd_backup)
    backup.add_argument("--to", required=True, help="file to write the copy to (replaced)")
    bigquery = commands.add_parser("bigquery", help="BigQuery tools: create-table")
    tools = bigquery.add_subparsers(dest="bigquery_command", required=True)
    create = tools.add_parser(
        "create-table", help=(cmd_bigquery_create_table.__doc__ or "").strip()
    )
    create.add_argument("--config", default="config", help="directory with tagless.yaml")
    create.add_argument("--store", required=True, help=STORE_HELP)
    create.add_argument("--destination", required=True, help="the bigquery destination's id")
    create.set_defaults(handler=cmd_bigquery_create_table)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``tagless`` console script."""
    args = _parser().parse_args(argv)
    try:
        code = args.handler(args)
    except ConfigError as error:
        print(f"{len(error.errors)} config error(s):", file=sys.stderr)
        for issue in error.errors:
            print(f"  {issue}", file=sys.stderr)
        code = 2
    except PluginError as error:
        print(str(error), file=sys.stderr)
        code = 2
    except MissingSecret as error:
        print(f"error: {error}", file=sys.stderr)
        code = 2
    raise SystemExit(code)
