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


def register(command: Command, commands: Any) -> None:
    """Add the outbox's commands to the ``tagless`` parser."""
    migrate = command("migrate", cmd_migrate)
    migrate.add_argument(
        "--dry-run", action="store_true", help="say what would change; change nothing"
    )
