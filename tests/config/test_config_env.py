"""${VAR} interpolation: whole and embedded references, defaults, escapes and missing variables."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from router.config._env import InterpolationError, expand, interpolate
from router.config._structure import INVALID, structure_class
from router.config._yaml import Report, parse
from router.secret import Secret


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${HOST}", "db.local"),
        ("http://${HOST}:9000/x", "http://db.local:9000/x"),
        ("${NOPE:-fallback}", "fallback"),
        ("${EMPTY:-fallback}", "fallback"),
        ("${EMPTY}", ""),
        ("${NOPE:-}", ""),
        ("cost: $${PRICE}", "cost: ${PRICE}"),
        ("$HOST and $$ stay", "$HOST and $$ stay"),
        ("${HOST}${HOST}", "db.localdb.local"),
    ],
)
def test_references_are_replaced(text: str, expected: str) -> None:
    """References are replaced wherever they appear; `$${` is a literal `${`."""
    assert expand(text, {"HOST": "db.local", "EMPTY": ""}) == expected


def test_a_missing_variable_names_the_variable() -> None:
    """A reference with no default to an unset variable is an error naming it."""
    with pytest.raises(InterpolationError, match=r"environment variable TOKEN is not set"):
        expand("${TOKEN}", {"OTHER": "value"})


@pytest.mark.parametrize("text", ["${TOKEN", "${1ABC}", "${A B}", "${A:-${B}}"])
def test_malformed_references_are_errors(text: str) -> None:
    """A reference that is not ${NAME} or ${NAME:-default} explains the syntax."""
    with pytest.raises(InterpolationError, match="malformed reference"):
        expand(text, {"TOKEN": "x", "A": "", "B": "y"})


@attrs.frozen
class Target:
    port: int = 0
    host: str = ""
    token: Secret | None = None
    ratio: float = 0.0


def load(text: str, env: dict[str, str]) -> tuple[Any, list[str]]:
    report = Report("f.yaml")
    tree = parse(text, report)
    assert tree is not None
    value = structure_class(interpolate(tree, env, "", report), Target, "", report)
    return value, [str(issue) for issue in report.issues]


def test_missing_variable_is_reported_at_its_key_without_value() -> None:
    """A missing variable becomes one issue at the value's line and key path."""
    value, issues = load("host: a\ntoken: ${TAGLESS_TOKEN}\n", {"UNRELATED": "zzz"})

    assert value is INVALID

    assert issues == [
        "f.yaml:2: token: environment variable TAGLESS_TOKEN is not set"
        " (write ${TAGLESS_TOKEN:-default} for a default)"
    ]


def test_unquoted_reference_is_read_as_yaml_after_replacement() -> None:
    """`port: ${PORT}` yields an integer, as if the number had been written there."""
    value, issues = load("port: ${PORT:-8080}\nratio: ${RATIO}\n", {"RATIO": "0.5"})

    assert issues == []
    assert (value.port, value.ratio) == (8080, 0.5)


def test_string_fields_take_the_replaced_text_as_is() -> None:
    """A secret or string that looks like a number stays the text of the variable."""
    value, issues = load("token: ${TOKEN}\nhost: ${HOST}\n", {"TOKEN": "0123", "HOST": "true"})

    assert issues == []
    assert value.token.reveal() == "0123"
    assert value.host == "true"


def test_quoted_reference_stays_a_string() -> None:
    """`port: "${PORT}"` is a string, so an integer field refuses it."""
    _, issues = load('port: "${PORT}"\n', {"PORT": "8080"})

    assert issues == ["f.yaml:1: port: expected an integer, got a string (remove the quotes)"]


def test_values_never_become_structure() -> None:
    """A variable holding YAML syntax stays a plain string: interpolation follows parsing."""
    value, issues = load("host: ${HOST}\n", {"HOST": "[a, b]\nport: 1"})

    assert issues == []
    assert value.host == "[a, b]\nport: 1"
    assert value.port == 0


def test_keys_are_not_interpolated() -> None:
    """Only values are interpolated; a reference in a key is an unknown key, as written."""
    _, issues = load("${KEY}: 1\n", {"KEY": "port"})

    assert issues == [
        "f.yaml:1: ['${KEY}']: unknown key '${KEY}'; valid keys: port, host, token, ratio"
    ]
