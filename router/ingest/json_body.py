"""A request body's JSON into Python objects: syntax, a nesting limit, integers kept exact."""

from __future__ import annotations

import json
from typing import Any, Final

import orjson

from router.ingest.errors import IngestError

#: The deepest nesting of objects and arrays a body may have; the body's own object is level
#: 1, a batch's events are level 2. ``orjson`` reads 1,024 levels but writes only 255, and
#: every stored or delivered form wraps an event's ``properties`` in a few levels more.
MAX_JSON_DEPTH: Final = 64
#: The longest integer literal, in digits, a body may hold (ids and amounts are far shorter).
MAX_INTEGER_DIGITS: Final = 100

# Bytes tables for the scans below; ``bytes.translate`` runs them at memory speed.
_FOLD_BRACKETS: Final = bytes.maketrans(b"[]", b"{}")
_ALL_BUT_STRUCTURE: Final = bytes(c for c in range(256) if c not in b'"{}[]')
_DIGITS_ONLY: Final = bytes(0x30 if 0x30 <= c <= 0x39 else 0x20 for c in range(256))
#: ``orjson`` reads an integer outside [-2**63, 2**64) as a float, changing its digits; such a
#: literal has at least 19 digits in a row (2**63 has 19).
_LONG_DIGIT_RUN: Final = b"0" * 19


def parse_json(data: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """JSON into Python objects, or a 400 saying where it broke or how it nests too deep.

    Integers keep every digit: a body that may hold one beyond 64 bits is read again by the
    standard library's parser, which ``orjson`` has already shown the body to be valid for.
    """
    if not data:
        raise IngestError(400, "malformed_json", "the body is empty; expected a JSON object")
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise IngestError(400, "malformed_json", f"the body is not valid JSON: {error}") from error
    if nesting_exceeds(data, max_depth):
        raise IngestError(
            400,
            "too_deep",
            f"objects and arrays are nested more than {max_depth} levels deep",
            path=deep_path(document, max_depth) or None,
        )
    if _LONG_DIGIT_RUN in data.translate(_DIGITS_ONLY):
        document = _exact_integers(data)
    return document


def nesting_exceeds(data: bytes, limit: int) -> bool:
    """Whether valid JSON ``data`` nests objects and arrays more than ``limit`` levels deep.

    A walk over the parsed objects would cost more than parsing a batch; this stays in C:
    drop escapes (so every ``"`` left delimits a string), keep only quotes and brackets, drop
    the strings, then peel the innermost ``{}`` pairs, one level per pass.
    """
    if b"\\" in data:
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    shape = data.translate(_FOLD_BRACKETS, _ALL_BUT_STRUCTURE)  # quotes and { } left
    brackets = shape.translate(None, b'"')
    if brackets.count(b"{") <= limit:  # counts brackets inside strings too: an upper bound
        return False
    # A string without brackets is now "", so every run of quotes has an even length unless
    # some string holds a bracket (that string's opening quote ends an odd run): then, and
    # only then, cut the strings out exactly.
    if shape.count(b'""') * 2 != len(shape) - len(brackets):
        brackets = b"".join(shape.split(b'"')[::2])
    shape = brackets
    for _ in range(limit):
        shape = shape.replace(b"{}", b"")
        if not shape:
            return False
    return True


def deep_path(document: Any, limit: int) -> str:
    """The path of the message field under which ``document`` nests past ``limit`` (e.g.
    ``batch[3].properties``): the error path only, so a plain walk."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(document, ())]
    while stack:
        value, path = stack.pop()
        if len(path) >= limit and isinstance(value, dict | list):  # a level past the limit
            in_batch = len(path) > 1 and path[0] == "batch" and isinstance(path[1], int)
            return _render(path[: 3 if in_batch else 1])
        if isinstance(value, dict):
            stack.extend((v, (*path, k)) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, (*path, i)) for i, v in enumerate(value))
    return ""


def _render(path: tuple[str | int, ...]) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


class _TooManyDigits(ValueError):
    pass


def _exact_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise _TooManyDigits
    return int(text)


def _exact_integers(data: bytes) -> Any:
    """The body read again with every integer exact (Python ints have no size limit)."""
    try:
        return json.loads(data, parse_int=_exact_int)
    except _TooManyDigits:
        raise IngestError(
            400,
            "malformed_json",
            f"an integer in the body has more than {MAX_INTEGER_DIGITS} digits",
        ) from None
