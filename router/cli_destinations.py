"""``tagless destinations``: the installed destination types, their config keys and errors."""

from __future__ import annotations

import argparse

import orjson

from router.catalog import as_json, as_text, entry
from router.plugins import load_plugins


def cmd_destinations(args: argparse.Namespace) -> int:
    """List installed destinations: package, events, batch limit, test mode, config keys."""
    entries = [entry(plugin) for plugin in load_plugins().all]
    if args.json:
        print(orjson.dumps(as_json(entries), option=orjson.OPT_INDENT_2).decode())
    else:
        print(as_text(entries), end="")
    return 0
