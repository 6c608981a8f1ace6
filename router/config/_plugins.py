"""What config errors say about plugins: the destination, and the plugin's package and version."""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from router.config._structure import INVALID, Invalid, text_of
from router.config._yaml import Map, Report
from router.config.model import ConfigIssue, StoreConfig


@attrs.frozen
class PluginNotes:
    """What the loader says about plugins beyond their config classes: the broken ones'
    problems (type -> sentence) and the usable ones' ``distribution version``."""

    unavailable: Mapping[str, str] = attrs.Factory(dict)
    origins: Mapping[str, str] = attrs.Factory(dict)


def unusable_type(
    node: Map,
    name: str,
    line: int,
    path: str,
    report: Report,
    known: Mapping[str, type],
    notes: PluginNotes,
) -> ConfigIssue:
    """Report a destination type that is not installed or whose plugin is broken."""
    who = destination_named(node, name)
    problem = notes.unavailable.get(name)
    if problem is None:
        installed = ", ".join(sorted(known)) or "(none installed)"
        message = (
            f"{who}: unknown destination type {name!r}: no installed package provides it"
            f" (entry-point group tagless.destinations); installed types: {installed};"
            " install the plugin's package or fix the type"
        )
    else:
        message = f"{who}: {problem}"
    report.add(line, path, message)
    return report.issues[-1]


def name_plugin(report: Report, before: int, node: Map, name: str, notes: PluginNotes) -> None:
    """Say which destination and which plugin package rejected the settings (the issues
    reported since ``before``)."""
    origin = notes.origins.get(name)
    if not origin:
        return
    suffix = f" ({destination_named(node, name)}, plugin from {origin})"
    report.issues[before:] = [
        attrs.evolve(issue, message=issue.message + suffix) for issue in report.issues[before:]
    ]


def destination_named(node: Map, name: str) -> str:
    """``destination 'id' (type 'name')`` for messages."""
    id_node = node.get("id")
    ident = None if id_node is None else text_of(id_node)
    return f"destination {ident!r} (type {name!r})" if ident else f"destination of type {name!r}"


#: The Tagless distribution: its destinations are built in, not third-party plugins.
OWN_DISTRIBUTION = "tagless"


def is_builtin(name: str, notes: PluginNotes) -> bool:
    """Whether destination type ``name`` ships with Tagless (an unknown origin counts as one)."""
    origin = notes.origins.get(name)
    return origin is None or origin.split(" ", 1)[0] == OWN_DISTRIBUTION


@attrs.frozen
class RefusedStore:
    """A store left out at start because a destination type it uses cannot be loaded: its
    config without destinations (its name and write keys, to answer its senders) and why."""

    store: StoreConfig
    issues: tuple[ConfigIssue, ...]


def leave_out(
    files: list[tuple[Report, StoreConfig | Invalid]],
    plugin_issues: Mapping[str, list[ConfigIssue]],
) -> list[RefusedStore]:
    """Each store file whose only problems are unusable destination types (``plugin_issues``,
    by file), its issues moved out of its report."""
    refused = []
    for report, store in files:
        own = plugin_issues.get(report.file, [])
        if own and all(issue in own for issue in report.issues) and store is not INVALID:
            issues = tuple(sorted(report.issues, key=lambda issue: issue.line or 0))
            refused.append(RefusedStore(store, issues))
            report.issues.clear()
    return refused
