"""What ``tagless destinations`` lists: each installed plugin and its config keys, read from
the plugin's own classes (attrs fields, their ``#:`` comments or ``description`` metadata)."""

from __future__ import annotations

import ast
import inspect
import textwrap
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import attrs

from router.destination import Destination
from router.plugins import Plugin
from router.secret import Secret


@attrs.frozen
class ConfigKey:
    """One key of a destination's settings; ``default`` is None when the key is required."""

    name: str
    type: str
    required: bool
    default: Any
    description: str


@attrs.frozen
class Entry:
    """One installed destination type, or one that failed to load (``error``)."""

    name: str
    distribution: str
    version: str
    supported_events: tuple[str, ...] | None = None
    batch_limit: int | None = None
    test_mode: bool = False
    config_keys: tuple[ConfigKey, ...] = ()
    error: str = ""


def entry(plugin: Plugin) -> Entry:
    """The listing of one plugin, derived from its classes."""
    head = Entry(plugin.name, plugin.distribution, plugin.version, error=plugin.error)
    cls = plugin.destination
    if cls is None:
        return head
    keys = tuple(config_keys(cls.config_class))
    events = None if cls.supported_events is None else tuple(sorted(cls.supported_events))
    return attrs.evolve(
        head,
        supported_events=events,
        batch_limit=_batch_limit(cls, keys),
        test_mode=cls.send_test is not Destination.send_test,
        config_keys=keys,
    )


def _batch_limit(cls: type[Destination[Any]], keys: tuple[ConfigKey, ...]) -> int | None:
    """The default of a ``max_batch_size`` key, else 1 when the class keeps the base's limit."""
    for key in keys:
        if key.name == "max_batch_size" and isinstance(key.default, int):
            return key.default
    return 1 if cls.max_batch_size is Destination.max_batch_size else None


def config_keys(cls: type, prefix: str = "") -> list[ConfigKey]:
    """Every key of an attrs config class, nested attrs classes flattened (``credentials.x``)."""
    hints = typing.get_type_hints(cls)
    described = descriptions(cls)
    keys: list[ConfigKey] = []
    for field in attrs.fields(cls):
        if not field.init:
            continue
        name = prefix + (field.alias or field.name)
        hint = hints.get(field.name, Any)
        required = field.default is attrs.NOTHING
        default = None if required else _default(field.default)
        text = str(field.metadata.get("description") or described.get(field.name, ""))
        keys.append(ConfigKey(name, type_name(hint), required, default, text))
        nested = _attrs_class(hint)
        if nested is not None:
            keys.extend(config_keys(nested, prefix=f"{name}."))
    return keys


def descriptions(cls: type) -> dict[str, str]:
    """The ``#:`` comment lines right above each field of the class's source."""
    try:
        lines, _ = inspect.getsourcelines(cls)
    except (OSError, TypeError):  # no source (a class built at run time): no descriptions
        return {}
    tree = ast.parse(textwrap.dedent("".join(lines)))
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    found: dict[str, str] = {}
    for node in body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            comment: list[str] = []
            row = node.lineno - 2
            while row >= 0 and lines[row].strip().startswith("#:"):
                comment.insert(0, lines[row].strip()[2:].strip())
                row -= 1
            if comment:
                found[node.target.id] = " ".join(comment)
    return found


def type_name(hint: Any) -> str:
    """A config key's type as a user reads it: ``str``, ``secret``, ``list of str``, ..."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        rest = [arg for arg in args if arg is not type(None)]
        inner = " or ".join(type_name(arg) for arg in rest)
        return f"{inner} (optional)" if len(rest) < len(args) else inner
    if origin is Literal:
        return "one of " + ", ".join(str(arg) for arg in args)
    if origin in (list, tuple, frozenset, set) or (origin and _is_sequence(origin)):
        return f"list of {type_name(args[0])}" if args else "list"
    if origin in (dict, Mapping) or (origin and _is_mapping(origin)):
        return f"mapping of {type_name(args[0])} to {type_name(args[1])}" if args else "mapping"
    if hint is Secret:
        return "secret"
    if hint is Path:
        return "path"
    if _attrs_class(hint) is not None:
        return "mapping"
    return getattr(hint, "__name__", str(hint))


def _is_sequence(origin: Any) -> bool:
    return isinstance(origin, type) and issubclass(origin, (list, tuple)) and origin is not str


def _is_mapping(origin: Any) -> bool:
    return isinstance(origin, type) and issubclass(origin, Mapping)


def _attrs_class(hint: Any) -> type | None:
    """A nested settings class (a mapping in YAML); a ``Secret`` is a single value."""
    nested = isinstance(hint, type) and attrs.has(hint) and hint is not Secret
    return hint if nested else None


def _default(default: Any) -> Any:
    """A field's default as JSON data."""
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]  # a class at run time
        default = default.factory() if not default.takes_self else None
    return _jsonable(default)


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(item) for item in value]
    return str(value)


def as_json(entries: list[Entry]) -> list[dict[str, Any]]:
    """The listing for scripts: one object per destination type."""
    return [attrs.asdict(item) for item in entries]


def as_text(entries: list[Entry]) -> str:
    """The listing for people: a header per destination, then its keys."""
    out: list[str] = []
    for item in entries:
        out.append(f"{item.name}  ({item.distribution} {item.version})")
        if item.error:
            out.append(f"  FAILED TO LOAD: {item.error}")
            out.append("")
            continue
        events = "all" if item.supported_events is None else ", ".join(item.supported_events)
        limit = "set by its config" if item.batch_limit is None else str(item.batch_limit)
        out.extend(
            textwrap.wrap(f"events: {events}", 100, initial_indent="  ", subsequent_indent="    ")
        )
        out.append(f"  batch limit: {limit}; test mode: {'yes' if item.test_mode else 'no'}")
        out.append("  config keys:")
        width = max((len(key.name) for key in item.config_keys), default=0)
        for key in item.config_keys:
            default = "required" if key.required else f"default {_shown(key.default)}"
            out.append(f"    {key.name:<{width}}  {key.type}; {default}")
            indent = " " * (width + 6)
            if key.description:
                out.extend(
                    textwrap.wrap(
                        key.description, 100, initial_indent=indent, subsequent_indent=indent
                    )
                )
        out.append("")
    return "\n".join(out)


def _shown(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
