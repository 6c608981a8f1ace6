"""The outbox's own commands: ``tagless migrate`` and ``tagless outbox copy``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from router.cli import _load, _run, emit

Command = Callable[[str, Callable[[argparse.Namespace], int]], Any]


def cmd_migrate(args: argparse.Namespace) -> int:
    """Bring the outbox's schema up to date (every start does it too); --dry-run says what
    would change and changes nothing."""
    from router.outbox.migrate import look, migrate

    config, _ = _load(args.config)
    found = _run(look(config.outbox) if args.dry_run else migrate(config.outbox))
    data = found.as_json() | {"dry_run": args.dry_run}
    if found.newer:
        emit(args, data, lambda: "")
        print(
            f"error: outbox {found.where}: schema version {found.version} was written by a newer"
            f" Tagless; this one knows up to {data['target']}: run that version",
            file=sys.stderr,
        )
        return 1

    def text() -> str:
        head = f"outbox {found.where} ({found.backend}): schema version {found.version}"
        if not found.steps:
            return f"{head}, up to date\n"
        if found.version == 0:
            verb = "would create" if args.dry_run else "created"
            return f"{head} (none yet): {verb} it at version {data['target']}\n"
        verb = "would migrate" if args.dry_run else "migrated"
        lines = [f"{head}: {verb} to {data['target']}"]
        lines += [f"  {step.version}: {step.what}" for step in found.steps]
        return "\n".join(lines) + "\n"

    emit(args, data, text)
    return 0


def cmd_outbox_copy(args: argparse.Namespace) -> int:
    """Copy every event and its delivery state from one config's outbox to another's."""
    import time

    from router.outbox.base import OutboxError
    from router.outbox.copy import copy_outbox
    from router.outbox.select import describe

    source, _ = _load(args.source)
    target, _ = _load(args.target)
    try:
        copied = _run(copy_outbox(source.outbox, target.outbox, time.time()))
    except OutboxError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    data = copied.as_json() | {"from": describe(source.outbox), "to": describe(target.outbox)}

    def text() -> str:
        states = ", ".join(f"{count} {state}" for state, count in sorted(copied.states.items()))
        return (
            f"copied {copied.events} events from {data['from']} to {data['to']}"
            f" ({copied.already_there} already there); per destination: {states or 'nothing'}\n"
        )

    emit(args, data, text)
    return 0


def register(command: Command, commands: Any) -> None:
    """Add the outbox's commands to the ``tagless`` parser."""
    migrate = command("migrate", cmd_migrate)
    migrate.add_argument(
        "--dry-run", action="store_true", help="say what would change; change nothing"
    )
    outbox = commands.add_parser("outbox", help="outbox tools: copy")
    tools = outbox.add_subparsers(dest="outbox_command", required=True)
    copy = tools.add_parser("copy", help=(cmd_outbox_copy.__doc__ or "").strip())
    copy.add_argument("--from", dest="source", required=True, help="config dir to copy from")
    copy.add_argument("--to", dest="target", required=True, help="config dir to copy into")
    copy.add_argument("--json", action="store_true", help="print one JSON document")
    copy.set_defaults(handler=cmd_outbox_copy)
