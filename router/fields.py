"""Generic checks of parsed JSON fields, shared by ingest and identity: types, lengths, paths."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

# The ``as_*`` functions take a value that is present (not ``None``) and the path of the
# object holding it (``base``) and its ``key``, which name the field only if it is wrong.

#: Longest string Tagless keeps in any one field, in characters.
MAX_STRING: Final = 8192
#: A shared empty mapping for absent objects; never mutated.
EMPTY: Final[Mapping[str, Any]] = {}

_JSON_TYPES: Final[Mapping[type, str]] = {
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    list: "array",
    dict: "object",
    type(None): "null",
}


class InvalidEvent(ValueError):
    """A message Tagless cannot accept; ``path`` names the field, e.g. ``batch[3].event``."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(path, message)
        self.path = path
        self.message = message

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"

    def under(self, prefix: str) -> InvalidEvent:
        """The same error, for a message nested at ``prefix``."""
        return InvalidEvent(f"{prefix}.{self.path}", self.message)


def json_type(value: object) -> str:
    """The JSON name of a parsed value's type, for error messages."""
    return _JSON_TYPES.get(type(value), type(value).__name__)


def at(base: str, key: str) -> str:
    """The path of ``key`` inside the object at ``base`` (``""`` is the message itself)."""
    return f"{base}.{key}" if base else key


def expected(base: str, key: str, what: str, value: object) -> InvalidEvent:
    """The error for a value of the wrong JSON type."""
    return InvalidEvent(at(base, key), f"expected {what}, got {json_type(value)}")


def too_long(base: str, key: str) -> InvalidEvent:
    """The error for a string longer than ``MAX_STRING``."""
    return InvalidEvent(at(base, key), f"longer than {MAX_STRING} characters")


def as_obj(v: object, base: str, key: str) -> Mapping[str, Any]:
    """A JSON object."""
    if type(v) is not dict:
        raise expected(base, key, "an object", v)
    return v


def as_str(v: object, base: str, key: str) -> str | None:
    """A string of at most ``MAX_STRING`` characters; ``""`` counts as not sent."""
    if type(v) is not str:
        raise expected(base, key, "a string", v)
    if len(v) > MAX_STRING:
        raise too_long(base, key)
    return v or None


def opt_obj(d: Mapping[str, Any], key: str, base: str) -> Mapping[str, Any]:
    """The object at ``key``, or ``EMPTY`` when absent or null."""
    v = d.get(key)
    return EMPTY if v is None else as_obj(v, base, key)


def opt_str(d: Mapping[str, Any], key: str, base: str) -> str | None:
    """The string at ``key``; absent, null and ``""`` are all ``None``."""
    v = d.get(key)
    return None if v is None else as_str(v, base, key)
