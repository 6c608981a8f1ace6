"""``create-table`` failures, against a fake BigQuery that refuses: each says what to fix.
(Success and schema differences run against the emulator: test_bigquery_emulator.py.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fake_bigquery import bigquery_config, google_error

from destinations.bigquery.schema import COLUMNS, schema_differences
from destinations.bigquery.tables import FAILED, create_table
from router.http import HttpClient
from router.testing.fake_platform import Answer, FakePlatform, Recorded
from router.testing.google_token import LocalTokenServer, Refusal


def refusing(status: int, reason: str, message: str, method: str = "POST") -> Any:
    """Datasets and tables are missing; calls with ``method`` are refused."""

    def answer(seen: Recorded) -> Answer:
        if seen.method == method:
            return Answer(status, google_error(status, reason, message))
        return Answer(404, google_error(404, "notFound", f"Not found: {seen.path}"))

    return answer


async def test_no_right_to_create_the_dataset_says_which_role_is_missing(
    tokens: LocalTokenServer, key_file: Path, http: HttpClient
) -> None:
    """403 on datasets.insert: exit 2, Google's message and the permission it takes."""
    responder = refusing(403, "accessDenied", "Access Denied: Project tagless-test")
    async with FakePlatform(responder=responder) as fake:
        report = await create_table(bigquery_config(fake.url, tokens.url, key_file), http)
    assert report.code == FAILED
    [line] = report.lines
    assert line.startswith(
        "error: datasets.insert: HTTP 403 accessDenied: Access Denied: Project tagless-test"
    )
    assert "bigquery.datasets.create on the project" in line


async def test_a_disabled_api_is_reported_with_googles_own_message(
    tokens: LocalTokenServer, key_file: Path, http: HttpClient
) -> None:
    """The 403 Google sends when the BigQuery API is off names the fix: it is shown as is."""
    message = "BigQuery API has not been used in project 123 before or it is disabled."
    responder = refusing(403, "accessDenied", message, method="GET")
    async with FakePlatform(responder=responder) as fake:
        report = await create_table(bigquery_config(fake.url, tokens.url, key_file), http)
    assert report.code == FAILED
    assert message in report.lines[0]


async def test_refused_credentials_stop_before_any_call(
    tokens: LocalTokenServer, key_file: Path, http: HttpClient
) -> None:
    """A refused token grant: exit 2 with the grant's error; BigQuery is never called."""
    tokens.refuse(Refusal(400, "invalid_grant", "Invalid JWT Signature."))
    async with FakePlatform() as fake:
        report = await create_table(bigquery_config(fake.url, tokens.url, key_file), http)
        assert fake.requests == []
    assert report.code == FAILED
    assert "auth_token_refused" in report.lines[0]
    assert "Invalid JWT Signature." in report.lines[0]


def test_the_schema_matches_itself_and_legacy_type_names() -> None:
    """Tagless's own columns show no difference, even spelled with GoogleSQL names or with
    the default mode left out; order and descriptions do not count."""
    fields = [column.resource() for column in reversed(COLUMNS)]
    for field in fields:
        field.pop("description", None)
        if field["type"] == "INTEGER":
            field["type"] = "INT64"
        if field["mode"] == "NULLABLE":
            del field["mode"]
    assert schema_differences(fields) == []
