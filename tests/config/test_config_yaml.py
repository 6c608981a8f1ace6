"""Safe YAML parsing: unsafe tags, syntax errors, duplicate keys and oversized documents."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.config import ConfigError, load_config
from router.config._yaml import Map, Report, Scalar, parse


def parse_issues(text: str) -> list[str]:
    report = Report("f.yaml")
    parse(text, report)
    return [str(issue) for issue in report.issues]


def test_python_object_tags_are_rejected_with_their_line() -> None:
    """A `!!python/...` tag is refused before anything is constructed."""
    text = "a: 1\nb: !!python/object/apply:os.system [echo pwned]\nc: !!python/name:os.system ''\n"

    assert parse_issues(text) == [
        "f.yaml:2: b: YAML tag '!!python/object/apply:os.system' is not allowed; config values"
        " are plain strings, numbers, booleans, null, lists and mappings",
        "f.yaml:3: c: YAML tag '!!python/name:os.system' is not allowed; config values"
        " are plain strings, numbers, booleans, null, lists and mappings",
    ]


def test_unsafe_tag_in_a_config_file_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """load_config turns an unsafe tag into an issue of the file, and runs nothing."""
    monkeypatch.chdir(tmp_path)
    Path("tagless.yaml").write_text("admin:\n  token: !!python/object:os.system {}\n")

    with pytest.raises(ConfigError) as caught:
        load_config(Path(), {}, {})

    (issue,) = caught.value.errors
    assert (issue.file, issue.line, issue.path) == ("tagless.yaml", 2, "admin.token")
    assert "'!!python/object:os.system' is not allowed" in issue.message


def test_custom_tags_are_rejected() -> None:
    """Any tag outside plain YAML values is refused, not only Python ones."""
    assert parse_issues("a: !secret x\n") == [
        "f.yaml:1: a: YAML tag '!secret' is not allowed; config values are plain strings,"
        " numbers, booleans, null, lists and mappings"
    ]


def test_a_syntax_error_is_one_issue_with_its_line() -> None:
    """Broken YAML gives a single issue at the line where parsing failed."""
    issues = parse_issues("a: 1\nb: [1, 2\nc: 3\n")

    assert len(issues) == 1
    assert issues[0].startswith("f.yaml:3: invalid YAML: ")


def test_duplicate_keys_are_errors() -> None:
    """A key written twice in one mapping is refused, pointing at the first one."""
    assert parse_issues("server:\n  port: 1\n  port: 2\n") == [
        "f.yaml:3: server.port: duplicate key (first on line 2)"
    ]


def test_merge_keys_are_refused() -> None:
    """`<<:` merges are not supported, so they cannot hide keys."""
    assert parse_issues("base: &b {a: 1}\nother:\n  <<: *b\n") == [
        "f.yaml:3: other: merge keys (<<) are not supported; repeat the keys"
    ]


def test_alias_explosion_is_bounded() -> None:
    """Nested aliases that would expand into millions of nodes stop with one issue."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 8)]

    issues = parse_issues("\n".join(lines) + "\n")

    assert len(issues) == 1
    assert "document too large" in issues[0]


def test_scalars_keep_their_lines_and_keys_stay_as_written() -> None:
    """Values keep their 1-based line; a key like `yes` stays the string 'yes'."""
    report = Report("f.yaml")

    tree = parse("a: 1\nyes: 'q'\n", report)

    assert isinstance(tree, Map)
    assert [(e.key, e.line) for e in tree.entries] == [("a", 1), ("yes", 2)]
    assert tree.get("yes") == Scalar("q", 2, plain=False)


def test_multiple_documents_are_refused() -> None:
    """A config file holds one YAML document."""
    issues = parse_issues("a: 1\n---\nb: 2\n")

    assert len(issues) == 1
    assert "invalid YAML" in issues[0]


def test_reference_inside_a_flow_mapping_parses() -> None:
    """`{token: ${VAR}}`, invalid YAML as written, reads as the reference it means."""
    report = Report("tagless.yaml")
    tree = parse("admin: {host: 127.0.0.1, port: 8081, token: ${TAGLESS_ADMIN_TOKEN}}\n", report)
    assert report.issues == []
    assert isinstance(tree, Map)
    admin = tree.get("admin")
    assert isinstance(admin, Map)
    token = admin.get("token")
    assert isinstance(token, Scalar)
    assert (token.value, token.plain, token.line) == ("${TAGLESS_ADMIN_TOKEN}", True, 1)
