"""Request JSON: the bytes-level nesting scan agrees with a walk; big integers stay exact."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.ingest.errors import IngestError
from router.ingest.json_body import deep_path, nesting_exceeds, parse_json


def depth(value: Any) -> int:
    """Levels of objects and arrays, the reference the scan must agree with."""
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    return 0


#: Strings that try to fool a scan of the bytes: brackets, quotes and backslashes inside them.
tricky_text = st.text(alphabet='[]{}"\\ab,:\n\u00e9', max_size=8)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | tricky_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(tricky_text, inner, max_size=3),
    max_leaves=40,
)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(value=json_values, limit=st.integers(min_value=0, max_value=8))
def test_the_nesting_scan_agrees_with_a_walk(value: Any, limit: int) -> None:
    """For any JSON (strings full of brackets, quotes and escapes) the scan is exact."""
    for text in (json.dumps(value), json.dumps(value, ensure_ascii=False, indent=1)):
        data = text.encode()
        assert nesting_exceeds(data, limit) == (depth(value) > limit)


@pytest.mark.parametrize(
    "text",
    [
        '{"a":"\\\\"}',  # an escaped backslash right before the closing quote
        '{"a":"\\"[[[[[\\""}',  # escaped quotes around brackets
        '{"a":"]]]]]","b":"[[[[["}',
        '["\\\\\\"{{{{"]',
    ],
)
def test_escapes_and_brackets_in_strings_do_not_count(text: str) -> None:
    """Only structural brackets count: these all nest one or two levels."""
    assert depth(json.loads(text)) <= 2
    assert not nesting_exceeds(text.encode(), 2)
    assert nesting_exceeds(text.encode(), depth(json.loads(text)) - 1)


def test_the_deep_path_names_the_message_field() -> None:
    """The path stops at the field of the message that holds the deep part."""
    deep: Any = []
    for _ in range(10):
        deep = [deep]
    assert deep_path({"batch": [{}, {"properties": {"x": deep}}]}, 5) == "batch[1].properties"
    assert deep_path({"context": {"a": deep}}, 5) == "context"
    assert deep_path({"context": {}}, 5) == ""


def test_integers_beyond_64_bits_keep_every_digit() -> None:
    """orjson would read these as floats; parse_json returns the exact integers."""
    data = b'{"a":18446744073709551621,"b":[-9223372036854775809],"c":1.5,"d":"x"}'
    assert parse_json(data) == {
        "a": 18446744073709551621,
        "b": [-9223372036854775809],
        "c": 1.5,
        "d": "x",
    }


def test_long_digit_runs_in_strings_change_nothing() -> None:
    """A string of digits sends the body through the exact reader; the result is the same."""
    data = b'{"id":"12345678901234567890123","n":12,"f":0.1}'
    assert parse_json(data) == orjson.loads(data)


def test_integers_longer_than_the_limit_are_refused() -> None:
    """A 101-digit integer is a 400, not a 4,300-digit conversion error."""
    with pytest.raises(IngestError) as caught:
        parse_json(b'{"n":-' + b"1" * 101 + b"}")
    assert (caught.value.status, caught.value.code) == (400, "malformed_json")
