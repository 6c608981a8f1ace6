"""Validates ``config/examples``: whole store files, and destination fragments wrapped in a store.

A fragment is one or more entries of a store's ``destinations:`` list (its first entry line
starts with ``- ``), meant to be pasted into a store file. To validate it, it is wrapped in a
throwaway store, loaded with the engine config it would run with, and its destinations built,
exactly as ``tagless check`` does; problems are reported at the fragment's own file and line.
``${VAR}`` references get placeholder values, so no secret is needed.

    python -m router.config.examples config/examples/*.yaml
"""

from __future__ import annotations

import asyncio
import re
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from router.config import Config, ConfigError, ConfigIssue, load_config
from router.config.advice import config_warnings
from router.plugins import PluginError, config_classes, discover

#: The engine config an example is checked with, unless told otherwise.
DEFAULT_BASE = Path("config/tagless.yaml")
#: The store a fragment is wrapped in. The destinations come first, so that a fragment's
#: line N is line N + 1 of the wrapper and problems map back to the fragment exactly.
_WRAPPER_TAIL = (
    "store: example\nwrite_keys: [example-key]\nclient_ip: {own_addresses: [192.0.2.10]}\n"
)
_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")


@attrs.frozen
class Checked:
    """What checking one example found: problems (empty when valid), warnings, a summary."""

    problems: list[str]
    warnings: list[str]
    summary: str


def is_fragment(text: str) -> bool:
    """True when the first line that is not blank or a comment starts a list entry."""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            return stripped == "-" or stripped.startswith("- ")
    return False


def as_store(text: str) -> str:
    """A fragment as a whole store file (store ``example``); a whole store unchanged."""
    if not is_fragment(text):
        return text
    body = "".join(f"  {line}" if line.strip() else line for line in text.splitlines(True))
    return f"destinations:\n{body}\n{_WRAPPER_TAIL}"


def placeholders(*texts: str) -> dict[str, str]:
    """A stand-in value for every ``${VAR}`` the texts reference: ``example-VAR``."""
    names = {name for text in texts for name in _ENV_REFERENCE.findall(text)}
    return {name: f"example-{name}" for name in sorted(names)}


def check(example: Path, base: Path = DEFAULT_BASE) -> Checked:
    """Load and build ``example`` with ``base`` as its ``tagless.yaml``, as ``tagless check``."""
    text = example.read_text()
    fragment = is_fragment(text)
    plugins = discover()
    with tempfile.TemporaryDirectory(prefix="tagless-example-") as work:
        root = Path(work)
        (root / "stores").mkdir()
        (root / "tagless.yaml").write_text(base.read_text())
        store_file = root / "stores" / f"{example.stem}.yaml"
        store_file.write_text(as_store(text))
        places = {str(store_file): (str(example), -1 if fragment else 0)}
        places[str(root / "tagless.yaml")] = (str(base), 0)
        env = placeholders(text, base.read_text())
        try:
            config = load_config(root, config_classes(plugins), env)
            asyncio.run(_build(config, plugins))
        except ConfigError as error:
            return Checked([_relocate(issue, places) for issue in error.errors], [], "")
        warnings = [_rename(warning, places) for warning in config_warnings(config)]
    destinations = sum(len(store.destinations) for store in config.stores)
    noun = "destination" if destinations == 1 else "destinations"
    kind = "fragment" if fragment else f"store {config.stores[0].store}"
    return Checked([], warnings, f"{kind}, {destinations} {noun}")


async def _build(config: Config, plugins: dict[str, Any]) -> None:
    from router.app import compile_stores
    from router.http import HttpClient

    http = HttpClient.create()
    try:
        compile_stores(config, plugins, http)
    finally:
        await http.close()


def _relocate(issue: ConfigIssue, places: dict[str, tuple[str, int]]) -> str:
    file, shift = places.get(issue.file, (issue.file, 0))
    line = None if issue.line is None else max(issue.line + shift, 1)
    return str(ConfigIssue(file, line, issue.path, issue.message))


def _rename(text: str, places: dict[str, tuple[str, int]]) -> str:
    for temporary, (file, _) in places.items():
        text = text.replace(temporary, file)
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Check every file named; print ``<file>: ok (...)`` or its problems. Exit 2 on any."""
    paths = [Path(arg) for arg in (sys.argv[1:] if argv is None else argv)]
    if not paths:
        print("usage: python -m router.config.examples EXAMPLE.yaml ...", file=sys.stderr)
        return 2
    failed = 0
    for path in paths:
        try:
            result = check(path)
        except (OSError, PluginError) as error:
            print(f"{path}: {error}", file=sys.stderr)
            failed += 1
            continue
        for warning in result.warnings:
            print(f"warning: {warning}")
        if result.problems:
            failed += 1
            print(f"{path}: {len(result.problems)} config error(s):", file=sys.stderr)
            for problem in result.problems:
                print(f"  {problem}", file=sys.stderr)
        else:
            print(f"{path}: ok ({result.summary})")
    return 2 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
