"""The ``tagless`` command line: serve, check, and the outbox operations."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import attrs
import orjson
import structlog

from router.config import Config, ConfigError, load_config
from router.config.advice import config_warnings
from router.http import HttpClient
from router.plugins import PluginError, config_classes, discover


def _load(directory: str) -> tuple[Config, dict[str, Any]]:
    plugins = discover()
    return load_config(Path(directory), config_classes(plugins)), plugins


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

    config, plugins = _load(args.config)
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
            compile_stores(config, plugins, http)
        finally:
            await http.close()

    _run(build())
    for warning in config_warnings(config):
        print(f"warning: {warning}")
    destinations = sum(len(store.destinations) for store in config.stores)
    print(f"{args.config}: ok ({len(config.stores)} stores, {destinations} destinations)")
    return 0


def cmd_send_test(args: argparse.Namespace) -> int:
    """Send one realistic test event through a destination's test mode; print what happened."""
    from router import sendtest

    config, plugins = _load(args.config)
    store = next((s for s in config.stores if s.store == args.store), None)
    if store is None:
        raise SystemExit(f"no store {args.store!r}; stores: {[s.store for s in config.stores]}")
    dest = next((d for d in store.destinations if d.id == args.destination), None)
    if dest is None:
        ids = [d.id for d in store.destinations]
        raise SystemExit(f"store {args.store!r} has no destination {args.destination!r}: {ids}")

    async def go() -> Any:
        http = HttpClient.create()
        try:
            return await sendtest.run(plugins[dest.type](dest.settings, http), store.store)
        finally:
            await http.close()

    payload, answer = _run(go())
    print("payload sent (identity redacted):")
    print(orjson.dumps(payload, option=orjson.OPT_INDENT_2).decode())
    print(f"platform answer ({answer.status}): {answer.answer}")
    for message in answer.messages:
        print(f"  - {message}")
    print("ok" if answer.ok else "NOT OK")
    return 0 if answer.ok else 1


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
        sys.stdout.write(orjson.dumps(attrs.asdict(row)).decode() + "\n")
    return 0


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
    print(f"{verb} {count} dead letters")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tagless", description=__doc__)
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
    test.add_argument("--store", required=True)
    test.add_argument("--destination", required=True)
    dead = command("dead-letters", cmd_dead_letters)
    dead.add_argument("--store", required=True)
    dead.add_argument("--destination")
    dead.add_argument("--limit", type=int, default=100)
    replay = command("replay", cmd_replay)
    replay.add_argument("--store", required=True)
    replay.add_argument("--destination")
    replay.add_argument("--seq", type=int, action="append", help="outbox sequence number")
    replay.add_argument("--since", help="ISO 8601 time: events received at or after")
    replay.add_argument("--until", help="ISO 8601 time: events received before")
    replay.add_argument("--dry-run", action="store_true", help="count, change nothing")
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
    raise SystemExit(code)
