"""The identity report as ``tagless identity`` prints it on a terminal."""

from __future__ import annotations

from typing import Any, Final

#: The columns of the table: (heading, where the share is in a row).
_COLUMNS: Final = (
    ("public", ("ip", "public_v4", "public_v6")),
    ("cdn", ("ip", "cdn")),
    ("own", ("ip", "own_server")),
    ("no ip", ("ip", "missing")),
    ("ua", ("fields", "user_agent")),
    ("email", ("fields", "email")),
    ("phone", ("fields", "phone")),
)


def render_identity(report: dict[str, Any]) -> str:
    """Rows of shares per destination and event name, then every finding with its evidence
    and fix."""
    lines = [
        f"identity quality of store {report['store']}, last {report['window']}:"
        f" {report['events']:,} events" + (" (the newest only)" if report["sampled"] else "")
    ]
    heading = f"{'destination':<16} {'event':<18} {'events':>7}"
    lines.append(heading + "".join(f" {name:>6}" for name, _ in _COLUMNS))
    for row in report["rows"]:
        line = f"{row['destination']:<16} {row['event_name']:<18} {row['events']:>7}"
        for _, (group, *keys) in _COLUMNS:
            share = sum(row[group][key] for key in keys)
            line += f" {share:>6.0%}"
        lines.append(line)
    if not report["rows"]:
        lines.append("(no events in the window)")
    lines.append("")
    lines.append("findings:" if report["findings"] else "findings: none")
    for finding in report["findings"]:
        lines.append(f"[{finding['severity']}] {finding['text']}")
        lines.append(f"    evidence: {finding['evidence']}")
        lines.append(f"    fix: {finding['fix']}")
    return "\n".join(lines)
