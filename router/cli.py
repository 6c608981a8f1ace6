"""The ``tagless`` command line: serve, check, and the outbox operations."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import orjson
import structlog

from router.cli_destinations import cmd_destinations
from router.config import (
    Config,
    ConfigError,
    RefusedStore,
    load_config,
    load_config_isolating_plugins,
)
from router.config.advice import config_warnings, unset_secrets, without_unresolved
from router.http import HttpClient
from router.plugins import PluginError, config_classes, load_plugins
from router.secret import MissingSecret

if TYPE_CHECKING:
    from router.app import Tagless
    from router.destination import Destination


def _load(directory: str, *, lazy_secrets: bool = True) -> tuple[Config, dict[str, Any]]:
    """The config and plugins. Secrets load lazily unless asked: a command fails on a missing
    variable only if it uses that secret (``serve`` needs them all, so it loads strictly)."""
    found = load_plugins()
    config = load_config(
        Path(directory),
        config_classes(found.loaded),
        lazy_secrets=lazy_secrets,
        plugins=found.notes(),
    )
    return config, found.loaded


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


def emit(args: argparse.Namespace, data: Any, text: Callable[[], str]) -> None:
    """Print ``data`` as one JSON document with ``--json``, else ``text()`` for people."""
    if getattr(args, "json", False):
        sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        sys.stdout.write(text())


def _run(coro: Coroutine[Any, Any, Any]) -> Any:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.run(coro)
    return uvloop.run(coro)


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve ingest and deliver until SIGTERM."""
    from router.app import Tagless

    config, plugins, refused = load_for_serving(args)
    return serve(Tagless(config, plugins, refused=refused, json_logs=bool(args.json)))


def load_for_serving(
    args: argparse.Namespace, process: str | None = None
) -> tuple[Config, dict[str, type[Destination[Any]]], list[RefusedStore]]:
    """Load plugins and the config of ``args.config`` and set up logging, as serving does:
    a store that uses a broken or missing plugin is refused; the others serve."""
    from router.logs import configure

    found = load_plugins()
    config, refused = load_config_isolating_plugins(
        Path(args.config), config_classes(found.loaded), found.notes()
    )
    configure(config.logging.level, "json" if args.json else config.logging.format)
    if process is not None:
        structlog.contextvars.bind_contextvars(process=process)
    found.log_problems(refused)
    if process is None:  # the main process warns once for all
        for warning in config_warnings(config):
            structlog.get_logger("tagless.config").warning("config_warning", warning=warning)
    return config, found.loaded, refused


def serve(tagless: Tagless) -> int:
    """Run ``tagless`` until SIGTERM; 1 if it could not start (the reason is logged)."""
    from router.startup import StartupError
    from router.tuning import tune_for_serving

    tune_for_serving()
    try:
        _run(tagless.serve_until_signalled())
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
    warnings = (
        [f"{broken.problem} (no store uses it)" for broken in load_plugins().broken]
        + [
            f"environment variable {variable} is not set; 'tagless serve' needs it"
            for variable in unset_secrets(config)
        ]
        + config_warnings(config, config.outbox.path)
    )
    destinations = sum(len(store.destinations) for store in config.stores)
    stores = _plural(len(config.stores), "store")
    lines = "".join(f"warning: {warning}\n" for warning in warnings)
    lines += f"{args.config}: ok ({stores}, {_plural(destinations, 'destination')})\n"
    counts = {"stores": len(config.stores), "destinations": destinations}
    emit(args, {"ok": True, **counts, "warnings": warnings}, lambda: lines)
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
        why = (
            f"{args.destination} ({dest.type}) has no test mode: nothing was sent."
            " 'tagless send-test --dry-run' prints the payload it would send."
        )
        if args.json:
            emit(args, {"sent": False, "errors": [why]}, str)
        else:
            print(why, file=sys.stderr)
        return 1
    payload, answer = result
    if args.json:
        emit(args, {"sent": True, "payload": payload, **attrs.asdict(answer)}, str)
        return 0 if answer.ok else 1
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

    payload = _run(go())
    text = orjson.dumps(payload, option=orjson.OPT_INDENT_2).decode()
    head = "payload (identity redacted; dry run, nothing sent):\n"
    emit(args, {"sent": False, "payload": payload}, lambda: f"{head}{text}\n")
    return 0


def _outbox(config: Config) -> Any:
    from router.outbox.select import make_outbox

    if config.outbox.url is None and not config.outbox.path.exists():
        raise SystemExit(f"no outbox at {config.outbox.path}: has Tagless run with this config?")
    return make_outbox(config.outbox, shared=config.server.ingest_processes > 0)


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


def _rfc3339(seconds: float) -> str:
    """Unix seconds as RFC 3339 UTC with milliseconds: 2026-11-30T14:05:00.123Z."""
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


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
    emit(args, report, lambda: render_identity(report) + "\n")
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    """Copy the outbox to a file while Tagless runs (SQLite online backup)."""
    from router.backup import BackupError, backup_outbox

    config, _ = _load(args.config)
    if config.outbox.url is not None:
        raise SystemExit(
            "tagless backup copies a SQLite outbox; this config's outbox is PostgreSQL"
            " (outbox.url): back it up with pg_dump, sequences included (docs/cluster.md)"
        )
    try:
        size = backup_outbox(config.outbox.path, Path(args.to))
    except BackupError as error:
        raise SystemExit(str(error)) from None
    line = f"backed up {config.outbox.path} to {args.to} ({size:,} bytes, integrity ok)\n"
    copy = {"from": str(config.outbox.path), "to": args.to, "bytes": size, "integrity": "ok"}
    emit(args, copy, lambda: line)
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
    if args.json:
        emit(args, {"code": int(report.code), "lines": list(report.lines)}, str)
    else:
        print("\n".join(report.lines), file=sys.stderr if report.code == FAILED else sys.stdout)
    return int(report.code)


DESCRIPTION = (
    "Tagless: serve the ingest API and deliver events, check the config, operate the outbox."
)
STORE_HELP = "the store's name (its 'store:' key in config/stores/*.yaml)"
JSON_HELP = "print one JSON document for scripts instead of text"


def _parser() -> argparse.ArgumentParser:
    from router import cli_ops, cli_outbox

    parser = argparse.ArgumentParser(prog="tagless", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, handler: Callable[[argparse.Namespace], int]) -> Any:
        sub = commands.add_parser(name, help=(handler.__doc__ or "").strip())
        sub.add_argument("--config", default="config", help="directory with tagless.yaml")
        sub.add_argument("--json", action="store_true", help=JSON_HELP)
        sub.set_defaults(handler=handler)
        return sub

    command("serve", cmd_serve)
    command("destinations", cmd_destinations)
    command("check", cmd_check)
    test = command("send-test", cmd_send_test)
    test.add_argument("--store", required=True, help=STORE_HELP)
    test.add_argument("--destination", required=True, help="the destination's id in that store")
    test.add_argument(
        "--dry-run", action="store_true", help="print the payload it would send; send nothing"
    )
    cli_ops.register(command)
    cli_outbox.register(command, commands)
    identity = command("identity", cmd_identity)
    identity.add_argument("--store", required=True, help=STORE_HELP)
    identity.add_argument("--window", default="24h", help="1h, 24h or 7d (default: 24h)")
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
    create.add_argument("--json", action="store_true", help=JSON_HELP)
    create.set_defaults(handler=cmd_bigquery_create_table)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``tagless`` console script."""
    args = _parser().parse_args(argv)
    try:
        code = args.handler(args)
    except SystemExit as stop:  # a command's own refusal: its message, as JSON if asked
        if not (args.json and isinstance(stop.code, str)):
            raise
        code, errors = 1, [stop.code]
    except ConfigError as error:
        code, errors = 2, [str(issue) for issue in error.errors]
        head = f"{len(error.errors)} config error(s):"
        text = "\n".join([head, *(f"  {issue}" for issue in error.errors)])
    except PluginError as error:
        code, errors, text = 2, [str(error)], str(error)
    except MissingSecret as error:
        code, errors, text = 2, [str(error)], f"error: {error}"
    else:
        raise SystemExit(code)
    if args.json:
        emit(args, {"ok": False, "errors": errors}, str)
    else:
        print(text, file=sys.stderr)
    raise SystemExit(code)
