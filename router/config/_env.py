"""``${VAR}`` and ``${VAR:-default}`` interpolation in the string values of a parsed config."""

from __future__ import annotations

import re
from collections.abc import Mapping

from router.config._yaml import Entry, Map, Node, Report, Scalar, Seq, child_path, read_plain

_REFERENCE = re.compile(r"\$\$\{|\$\{(?P<body>[^}]*)(?P<close>\})?")
_BODY = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>.*))?", re.DOTALL)
_SYNTAX = "write ${NAME} or ${NAME:-default}, and $${ for a literal ${"


class InterpolationError(ValueError):
    """A reference that is malformed or names a variable that is not set."""


class UnsetVariable(InterpolationError):
    """A well-formed reference to a variable that is not set (and has no default)."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"environment variable {name} is not set (write ${{{name}:-default}} for a default)"
        )
        self.name = name


def expand(text: str, env: Mapping[str, str]) -> str:
    """Replace every reference in ``text``; errors name the variable, never a value."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        body = match.group("body")
        parsed = _BODY.fullmatch(body)
        if match.group("close") is None or parsed is None or "${" in body:
            raise InterpolationError(f"malformed reference '${{{body}'; {_SYNTAX}")
        name, default = parsed.group("name"), parsed.group("default")
        value = env.get(name)
        if default is not None and not value:  # like the shell: unset or empty takes the default
            return default
        if value is None:
            raise UnsetVariable(name)
        return value

    return _REFERENCE.sub(replace, text)


def interpolate(
    node: Node, env: Mapping[str, str], path: str, report: Report, *, lazy: bool = False
) -> Node:
    """A copy of the tree with references in string values replaced; keys stay as written.

    ``lazy``: a value naming an unset variable is kept as ``Scalar.unset`` instead of being
    reported, for commands that may not need it (structuring decides: only secrets may).
    """
    if isinstance(node, Map):
        entries = (
            Entry(
                e.key, e.line, interpolate(e.value, env, child_path(path, e.key), report, lazy=lazy)
            )
            for e in node.entries
        )
        return Map(tuple(entries), node.line)
    if isinstance(node, Seq):
        items = (
            interpolate(item, env, child_path(path, i), report, lazy=lazy)
            for i, item in enumerate(node.items)
        )
        return Seq(tuple(items), node.line)
    return _scalar(node, env, path, report, lazy)


def _scalar(node: Scalar, env: Mapping[str, str], path: str, report: Report, lazy: bool) -> Scalar:
    if not isinstance(node.value, str) or "${" not in node.value:
        return node
    try:
        text = expand(node.value, env)
    except UnsetVariable as exc:
        if lazy:
            return Scalar(None, node.line, unset=exc.name)
        report.add(node.line, path, str(exc))
        return Scalar(None, node.line, broken=True)
    except InterpolationError as exc:
        report.add(node.line, path, str(exc))
        return Scalar(None, node.line, broken=True)
    if node.plain:
        return read_plain(text, node.line)
    return Scalar(text, node.line, text=text)
