"""A small strict converter from the parsed YAML tree into frozen attrs classes.

It reads a class's fields (``attrs.fields`` and ``typing.get_type_hints``) and supports
``str``, ``int``, ``float``, ``bool``, ``Secret``, ``pathlib.Path``, ``X | None``,
``list[X]``, ``tuple[X, ...]``, ``dict[str, X]``, ``Literal[...]`` and nested attrs
classes (with an optional scalar shorthand, see :func:`structure`). Plugin config
classes go through the same function, so a plugin author writes
only an attrs class. Every problem is reported with its line and key path; conversion
goes on to find the others and returns ``INVALID`` for what could not be built.
"""

from __future__ import annotations

import enum
import types
import typing
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import attrs

from router.config._yaml import Entry, Map, Node, Report, Scalar, Seq, child_path
from router.secret import Secret

T = TypeVar("T")


class _Invalid(enum.Enum):
    INVALID = "INVALID"


#: What a conversion returns when it reported a problem instead of building a value.
INVALID: typing.Final = _Invalid.INVALID
Invalid = Literal[_Invalid.INVALID]


def structure(node: Node, tp: Any, path: str, report: Report) -> Any:
    """Convert ``node`` into a value of type ``tp``, or report why not and return INVALID.

    An attrs class with a ``__config_shorthand__`` field name also accepts a scalar: ``x``
    stands for ``{<that field>: x}`` (a plain write key string is ``{key: x}``).
    """
    shorthand = getattr(tp, "__config_shorthand__", None)
    if shorthand is not None and isinstance(node, Scalar):
        node = Map((Entry(shorthand, node.line, node),), node.line)
    if isinstance(node, Scalar) and node.broken:
        return INVALID  # already reported where it broke
    if isinstance(node, Scalar) and node.unset is not None:
        if tp is Secret or (
            typing.get_origin(tp) in (Union, types.UnionType) and Secret in typing.get_args(tp)
        ):
            return Secret.unset(node.unset)
        report.add(node.line, path, f"environment variable {node.unset} is not set")
        report.unset.append(node.unset)
        return INVALID
    leaf = _LEAVES.get(tp)
    if leaf is not None:
        return leaf(node, path, report)
    if attrs.has(tp):
        return structure_class(node, tp, path, report)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (Union, types.UnionType):
        return _optional(node, args, path, report)
    if origin is Literal:
        return _literal(node, args, path, report)
    if origin in (list, tuple, Sequence) and (origin is not tuple or args[1:] == (...,)):
        items = _sequence(node, args[0], path, report)
        return items if items is INVALID or origin is list else tuple(items)
    if origin in (dict, Mapping) and args[0] is str:
        return _mapping(node, args[1], path, report)
    raise TypeError(f"config field type {tp!r} is not supported")


def structure_class(
    node: Node,
    cls: type[T],
    path: str,
    report: Report,
    *,
    given: Mapping[str, object] | None = None,
    extra_keys: Collection[str] = (),
) -> T | Invalid:
    """Build ``cls`` from a mapping node by its fields.

    ``given`` supplies field values that do not come from the file; ``extra_keys`` are keys
    of the node the caller handles itself (skipped here, but listed as valid).
    """
    given = given or {}
    found = _as_map(node, "a mapping", path, report)
    if found is INVALID:
        return INVALID
    fields = {_key(f): f for f in _fields(cls) if f.init and _key(f) not in given}
    kwargs: dict[str, object] = dict(given)
    ok = _read_fields(found, cls, fields, kwargs, path, report, extra_keys)
    written = set(found.keys())
    for key, field in fields.items():
        if key not in written and field.default is attrs.NOTHING:
            report.add(found.line, path, f"missing required key {key!r}")
            ok = False
    if not ok:
        _blame_fields(cls, kwargs, found, path, report)  # still check the values that were read
        return INVALID
    return _construct(cls, kwargs, found, path, report)


def describe(node: Node) -> str:
    """How a value reads in an error message: 'a list', 'an integer', ..."""
    if isinstance(node, Map):
        return "a mapping"
    if isinstance(node, Seq):
        return "a list"
    return _KINDS.get(type(node.value), "a value")


def _read_fields(
    node: Map,
    cls: type[Any],
    fields: Mapping[str, attrs.Attribute[Any]],
    kwargs: dict[str, object],
    path: str,
    report: Report,
    extra_keys: Collection[str],
) -> bool:
    hints = _hints(cls)
    ok = True
    for entry in node.entries:
        field = fields.get(entry.key)
        if field is None:
            if entry.key not in extra_keys:
                valid = ", ".join([*fields, *extra_keys])
                message = f"unknown key {entry.key!r}; valid keys: {valid}"
                report.add(entry.line, child_path(path, entry.key), message)
                ok = False
            continue
        value = structure(entry.value, hints[field.name], child_path(path, entry.key), report)
        if value is INVALID:
            ok = False
        else:
            kwargs[entry.key] = value
    return ok


def _construct(
    cls: type[T], kwargs: dict[str, object], node: Map, path: str, report: Report
) -> T | Invalid:
    try:
        return cls(**kwargs)
    except ValueError as exc:
        if not _blame_fields(cls, kwargs, node, path, report):
            report.add(node.line, path, str(exc))
        return INVALID


def _blame_fields(
    cls: type[Any], kwargs: Mapping[str, object], node: Map, path: str, report: Report
) -> bool:
    """Run each field's validator alone, to report every failing key at its own path."""
    blamed = False
    for field in _fields(cls):
        key = _key(field)
        if field.validator is None or key not in kwargs:
            continue
        try:
            field.validator(None, field, kwargs[key])
        except (AttributeError, TypeError):
            continue  # it needs the whole instance; construction runs it once all else is valid
        except ValueError as exc:
            line = next((e.value.line for e in node.entries if e.key == key), node.line)
            report.add(line, child_path(path, key), str(exc))
            blamed = True
    return blamed


_HINTS: dict[type[Any], dict[str, Any]] = {}


def _hints(cls: type[Any]) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _fields(cls: type[Any]) -> tuple[attrs.Attribute[Any], ...]:
    return tuple(attrs.fields(cls))


def _key(field: attrs.Attribute[Any]) -> str:
    """The key a field is written as: its ``__init__`` name (``_value`` is written ``value``)."""
    return field.alias or field.name


def _as_map(node: Node, expected: str, path: str, report: Report) -> Map | Invalid:
    if isinstance(node, Map):
        return node
    if isinstance(node, Scalar) and node.value is None:
        return Map((), node.line)  # `key:` with nothing under it is an empty section
    return _wrong(node, expected, path, report)


def _sequence(node: Node, item_tp: Any, path: str, report: Report) -> list[Any] | Invalid:
    if isinstance(node, Scalar) and node.value is None:
        return []
    if not isinstance(node, Seq):
        return _wrong(node, "a list", path, report)
    items = [
        structure(item, item_tp, child_path(path, i), report) for i, item in enumerate(node.items)
    ]
    return INVALID if any(item is INVALID for item in items) else items


def _mapping(node: Node, value_tp: Any, path: str, report: Report) -> dict[str, Any] | Invalid:
    found = _as_map(node, "a mapping", path, report)
    if found is INVALID:
        return INVALID
    values = {
        e.key: structure(e.value, value_tp, child_path(path, e.key), report) for e in found.entries
    }
    return INVALID if any(value is INVALID for value in values.values()) else values


def _optional(node: Node, args: tuple[Any, ...], path: str, report: Report) -> Any:
    others = [arg for arg in args if arg is not type(None)]
    if len(others) != 1 or len(args) != 2:
        raise TypeError(f"config fields support only `X | None` unions, not {args!r}")
    if isinstance(node, Scalar) and node.value is None and not node.text:
        return None  # null, or a variable that is empty or unset with an empty default
    return structure(node, others[0], path, report)


def _literal(node: Node, choices: tuple[Any, ...], path: str, report: Report) -> Any:
    text = text_of(node)
    for choice in choices:
        if text == choice if isinstance(choice, str) else _same(node, choice):
            return choice
    got = describe(node) if text is None else repr(text)
    valid = ", ".join(str(choice) for choice in choices)
    report.add(node.line, path, f"expected one of: {valid}; got {got}")
    return INVALID


def _same(node: Node, choice: object) -> bool:
    """A non-string choice matches a scalar of the same type (``1`` is not ``True``)."""
    value = node.value if isinstance(node, Scalar) else None
    return type(value) is type(choice) and value == choice


def text_of(node: Node) -> str | None:
    """The string a scalar stands for: a string value, or the text of an interpolated one."""
    if not isinstance(node, Scalar):
        return None
    if isinstance(node.value, str):
        return node.value
    return node.text


def _wrong(node: Node, expected: str, path: str, report: Report) -> Invalid:
    message = f"expected {expected}, got {describe(node)}"
    if isinstance(node, Scalar) and node.value is not None:
        if expected.startswith("a string") or expected.startswith("a path"):
            message += " (quote it to make it a string)"
        elif isinstance(node.value, str) and not node.plain:
            message += " (remove the quotes)"
    report.add(node.line, path, message)
    return INVALID


def _string(node: Node, path: str, report: Report) -> str | Invalid:
    text = text_of(node)
    return _wrong(node, "a string", path, report) if text is None else text


def _non_empty_string(expected: str, path: str, node: Node, report: Report) -> str | Invalid:
    text = text_of(node)
    if text is None:
        return _wrong(node, expected, path, report)
    if not text:
        report.add(node.line, path, f"expected {expected}, got an empty string")
        return INVALID
    return text


def _secret(node: Node, path: str, report: Report) -> Secret | Invalid:
    text = _non_empty_string("a string (a secret)", path, node, report)
    return INVALID if text is INVALID else Secret(text)


def _path(node: Node, path: str, report: Report) -> Path | Invalid:
    text = _non_empty_string("a path", path, node, report)
    return INVALID if text is INVALID else Path(text)


def _int(node: Node, path: str, report: Report) -> int | Invalid:
    if isinstance(node, Scalar) and type(node.value) is int:
        return node.value
    return _wrong(node, "an integer", path, report)


def _float(node: Node, path: str, report: Report) -> float | Invalid:
    if isinstance(node, Scalar) and type(node.value) in (int, float):
        return float(typing.cast(float, node.value))
    return _wrong(node, "a number", path, report)


def _bool(node: Node, path: str, report: Report) -> bool | Invalid:
    if isinstance(node, Scalar) and isinstance(node.value, bool):
        return node.value
    return _wrong(node, "a boolean (true or false)", path, report)


_LEAVES: dict[Any, Callable[[Node, str, Report], Any]] = {
    str: _string,
    int: _int,
    float: _float,
    bool: _bool,
    Secret: _secret,
    Path: _path,
}
_KINDS = {
    type(None): "nothing (null)",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    str: "a string",
}
