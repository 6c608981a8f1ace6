"""The generic structurer: any attrs class built strictly from YAML, with key paths and lines."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import attrs
import pytest

from router.config._structure import INVALID, structure_class
from router.config._yaml import Report, parse
from router.secret import Secret


def _non_negative(_inst: object, _attr: object, value: int) -> None:
    if value < 0:
        raise ValueError(f"must be 0 or more, got {value}")


@attrs.frozen
class Listen:
    host: str
    port: int = 8080


@attrs.frozen
class Item:
    name: str
    weight: float = 1.0


@attrs.frozen
class Everything:
    """A plugin-like class using the whole supported field vocabulary."""

    listen: Listen = attrs.Factory(lambda: Listen(host="localhost"))
    mode: Literal["fast", "safe"] = "safe"
    token: Secret | None = None
    nickname: str | None = "x"
    enabled: bool = True
    ratio: float = 0.5
    retries: int = attrs.field(default=3, validator=_non_negative)
    limit: int = attrs.field(default=1, validator=_non_negative)
    tags: list[str] = attrs.Factory(list)
    items: tuple[Item, ...] = ()
    labels: dict[str, int] = attrs.Factory(dict)
    path: Path = Path("out")


def build(cls: type[Any], text: str) -> tuple[Any, list[str]]:
    report = Report("f.yaml")
    tree = parse(text, report)
    assert tree is not None
    value = structure_class(tree, cls, "", report)
    return value, [str(issue) for issue in report.issues]


def test_every_supported_field_type_is_built() -> None:
    """Nested classes, Literal, Optional, bool, float, int, lists, tuples, dicts and paths load."""
    text = """\
listen: {host: 0.0.0.0, port: 9000}
mode: fast
token: s3cret
nickname: null
enabled: false
ratio: 2
tags: [a, b]
items: [{name: x}, {name: y, weight: 0.25}]
labels: {a: 1}
path: var/out.jsonl
"""
    value, issues = build(Everything, text)

    assert issues == []
    assert value.listen == Listen(host="0.0.0.0", port=9000)
    assert (value.mode, value.nickname, value.enabled) == ("fast", None, False)
    assert value.token.reveal() == "s3cret"
    assert value.ratio == 2.0 and isinstance(value.ratio, float)
    assert value.tags == ["a", "b"]
    assert value.items == (Item("x"), Item("y", 0.25))
    assert value.labels == {"a": 1}
    assert value.path == Path("var/out.jsonl")


def test_unknown_keys_list_the_valid_keys() -> None:
    """A misspelt key is refused and the message lists what would be valid."""
    value, issues = build(Listen, "host: a\nhosts: b\n")

    assert value is INVALID
    assert issues == ["f.yaml:2: hosts: unknown key 'hosts'; valid keys: host, port"]


def test_missing_required_keys_are_reported_at_the_mapping() -> None:
    """A field without a default must be written."""
    _, issues = build(Everything, "listen: {port: 1}\n")

    assert issues == ["f.yaml:1: listen: missing required key 'host'"]


@pytest.mark.parametrize(
    ("text", "issue"),
    [
        (
            "listen: {host: 1}",
            "listen.host: expected a string, got an integer (quote it to make it a string)",
        ),
        ("listen: [a]", "listen: expected a mapping, got a list"),
        ("retries: true", "retries: expected an integer, got a boolean"),
        ("retries: '3'", "retries: expected an integer, got a string (remove the quotes)"),
        ("retries: 1.5", "retries: expected an integer, got a number"),
        ("ratio: yes", "ratio: expected a number, got a boolean"),
        ("enabled: 1", "enabled: expected a boolean (true or false), got an integer"),
        ("tags: a", "tags: expected a list, got a string"),
        ("labels: {a: x}", "labels.a: expected an integer, got a string"),
        ("token: ''", "token: expected a string (a secret), got an empty string"),
        ("path: 7", "path: expected a path, got an integer (quote it to make it a string)"),
    ],
)
def test_wrong_types_say_what_was_expected(text: str, issue: str) -> None:
    """A value of the wrong kind names the expected kind and what was found."""
    _, issues = build(Everything, text + "\n")

    assert issues == [f"f.yaml:1: {issue}"]


def test_bad_literal_lists_the_valid_values() -> None:
    """A value outside a Literal's choices lists the choices."""
    _, issues = build(Everything, "mode: quick\n")

    assert issues == ["f.yaml:1: mode: expected one of: fast, safe; got 'quick'"]


def test_errors_inside_lists_carry_the_index() -> None:
    """An error inside a list item names the item's index and its own line."""
    _, issues = build(Everything, "items:\n  - name: a\n  - name: [b]\n")

    assert issues == ["f.yaml:3: items[1].name: expected a string, got a list"]


def test_keys_that_are_not_identifiers_are_quoted_in_paths() -> None:
    """A key with spaces is shown in brackets so the path stays readable."""
    _, issues = build(Everything, "labels: {Order Completed: x}\n")

    assert issues == ["f.yaml:1: labels['Order Completed']: expected an integer, got a string"]


def test_every_failing_validator_is_reported_at_its_key() -> None:
    """attrs validators raising ValueError become issues at their own key, all of them."""
    _, issues = build(Everything, "retries: -1\nlimit: -2\n")

    assert issues == [
        "f.yaml:1: retries: must be 0 or more, got -1",
        "f.yaml:2: limit: must be 0 or more, got -2",
    ]


def test_validators_still_run_when_another_key_is_wrong() -> None:
    """A type error elsewhere does not hide a validator failure."""
    _, issues = build(Everything, "retries: -1\nmode: quick\n")

    assert issues == [
        "f.yaml:2: mode: expected one of: fast, safe; got 'quick'",
        "f.yaml:1: retries: must be 0 or more, got -1",
    ]


def test_an_empty_section_means_defaults() -> None:
    """`listen:` with nothing under it is an empty mapping, not an error."""
    value, issues = build(Everything, "tags:\nlabels:\n")

    assert issues == []
    assert (value.tags, value.labels) == ([], {})


def test_unsupported_field_types_are_a_programming_error() -> None:
    """A plugin class using a type the structurer cannot read fails loudly, not silently."""

    @attrs.frozen
    class Odd:
        when: complex

    with pytest.raises(TypeError, match="not supported"):
        build(Odd, "when: 1\n")


def test_private_fields_are_written_by_their_init_name() -> None:
    """An attrs field `_value` is written `value`, as in the class's __init__."""

    @attrs.frozen
    class Wrapped:
        _value: int = attrs.field(alias="value")

    value, issues = build(Wrapped, "value: 3\n")

    assert issues == []
    assert value == Wrapped(value=3)
