"""Sending to a fake BigQuery that answers like the real one: insertId dedup, insertErrors per
row, Google API errors per request, and the bearer token from a local token endpoint."""

from __future__ import annotations

from typing import Any

import pytest
from fake_bigquery import INSERT_PATH, FakeBigQuery, google_error

from destinations.bigquery import BigQueryDestination
from destinations.bigquery.answers import row_outcome
from destinations.bigquery.client import MAX_REQUEST_BYTES, chunks
from router.testing.events import make_event
from router.testing.fake_platform import Answer
from router.testing.google_token import LocalTokenServer, Refusal


def rows(destination: BigQueryDestination, count: int, **overrides: Any) -> list[dict[str, Any]]:
    return [destination.map(make_event(event_id=f"evt-{n}", **overrides)) for n in range(count)]


def kinds(outcomes: Any) -> list[tuple[str, str]]:
    return [(outcome.kind, outcome.reason) for outcome in outcomes]


async def test_rows_are_inserted_with_their_insert_ids_and_a_bearer_token(
    destination: BigQueryDestination, bigquery: FakeBigQuery, tokens: LocalTokenServer
) -> None:
    """One insertAll request carries the batch with skipInvalidRows; every row is delivered."""
    outcomes = await destination.send(rows(destination, 3))
    assert kinds(outcomes) == [("delivered", "ok")] * 3
    [request] = bigquery.inserts
    body = request.json()
    assert body["skipInvalidRows"] is True and body["ignoreUnknownValues"] is False
    assert [row["insertId"] for row in body["rows"]] == ["evt-0", "evt-1", "evt-2"]
    assert request.headers["Authorization"] == "Bearer token-1"
    assert request.headers["Content-Type"] == "application/json"
    assert [row["event_id"] for row in bigquery.rows] == ["evt-0", "evt-1", "evt-2"]
    assert tokens.token_requests == 1


async def test_a_resent_event_is_stored_once_thanks_to_its_insert_id(
    destination: BigQueryDestination, bigquery: FakeBigQuery
) -> None:
    """At-least-once delivery re-sends the same event_id; the insertId makes it one row."""
    batch = rows(destination, 2)
    await destination.send(batch)
    await destination.send(batch[:1])
    assert [row["event_id"] for row in bigquery.rows] == ["evt-0", "evt-1"]
    assert len(bigquery.inserts) == 2


@pytest.mark.parametrize(
    ("errors", "expected"),
    [
        (
            [{"reason": "invalid", "location": "value", "message": "bad"}],
            ("rejected", "invalid_row"),
        ),
        ([{"reason": "stopped", "location": "", "message": ""}], ("retry", "row_stopped")),
        ([{"reason": "backendError", "message": "try again"}], ("retry", "row_backend_error")),
        ([{"reason": "timeout"}, {"reason": "stopped"}], ("retry", "row_timeout")),
        ([{"reason": "stopped"}, {"reason": "invalid"}], ("rejected", "invalid_row")),
        ([{"reason": "somethingNew", "message": "?"}], ("rejected", "row_error")),
        ([], ("rejected", "row_error")),
    ],
    ids=["invalid", "stopped", "backend", "transient-mix", "invalid-wins", "unknown", "empty"],
)
def test_row_errors_are_classified_by_reason(errors: list[Any], expected: tuple[str, str]) -> None:
    """invalid is the row's fault (dead letter); stopped and transient reasons retry; a reason
    BigQuery does not document as transient is dead-lettered with it, never retried in a loop."""
    outcome = row_outcome(errors)
    assert (outcome.kind, outcome.reason) == expected


async def test_insert_errors_settle_only_the_rows_they_name(
    destination: BigQueryDestination, bigquery: FakeBigQuery
) -> None:
    """A 200 with insertErrors: the named rows get their outcome, the others are delivered."""
    bigquery.row_errors["evt-1"] = [
        {"reason": "invalid", "location": "items.price", "message": "Invalid NUMERIC value"}
    ]
    bigquery.row_errors["evt-3"] = [{"reason": "stopped", "location": "", "message": ""}]
    outcomes = await destination.send(rows(destination, 4))
    assert kinds(outcomes) == [
        ("delivered", "ok"),
        ("rejected", "invalid_row"),
        ("delivered", "ok"),
        ("retry", "row_stopped"),
    ]
    assert "invalid at items.price: Invalid NUMERIC value" in outcomes[1].detail
    assert [row["event_id"] for row in bigquery.rows] == ["evt-0", "evt-2"]


async def test_a_row_the_table_refuses_is_dead_lettered_alone(
    destination: BigQueryDestination, bigquery: FakeBigQuery
) -> None:
    """The fake checks rows against the schema: a value of the wrong type is reported invalid."""
    batch = rows(destination, 2)
    batch[0]["json"]["value"] = 12.5  # a float, where NUMERIC wants a decimal string
    outcomes = await destination.send(batch)
    assert kinds(outcomes) == [("rejected", "invalid_row"), ("delivered", "ok")]


@pytest.mark.parametrize(
    ("status", "reason", "expected", "pause"),
    [
        (404, "notFound", ("retry", "table_not_found"), True),
        (403, "accessDenied", ("retry", "access_denied"), True),
        (403, "rateLimitExceeded", ("retry", "rate_limited"), True),
        (403, "quotaExceeded", ("retry", "quota_exceeded"), True),
        (403, "billingNotEnabled", ("retry", "billing_not_enabled"), True),
        (500, "backendError", ("retry", "http_500"), False),
        (503, "backendError", ("retry", "http_503"), False),
        (400, "invalid", ("rejected", "http_400_invalid"), False),
    ],
)
async def test_request_errors_are_classified_once(
    destination: BigQueryDestination,
    bigquery: FakeBigQuery,
    status: int,
    reason: str,
    expected: tuple[str, str],
    pause: bool,
) -> None:
    """Errors for the whole request: the table missing, access or quota pause the destination
    (events wait for the operator); 5xx retry; 400 splits the batch to isolate its cause."""
    bigquery.platform.script(Answer(status, google_error(status, reason, "it went wrong")))
    outcomes = await destination.send(rows(destination, 2))
    assert kinds(outcomes) == [expected] * 2
    assert all(outcome.pause is pause for outcome in outcomes)
    assert all(outcome.whole_batch is (status == 400) for outcome in outcomes)
    assert f"HTTP {status} {reason}: it went wrong" in outcomes[0].detail


async def test_a_missing_table_names_the_command_that_creates_it(
    destination: BigQueryDestination, bigquery: FakeBigQuery
) -> None:
    """notFound tells the operator what to run, in the detail every waiting event keeps."""
    bigquery.platform.script(Answer(404, google_error(404, "notFound", "Not found: Table x")))
    [outcome] = await destination.send(rows(destination, 1))
    assert "tagless bigquery create-table" in outcome.detail


async def test_an_unreadable_200_retries_every_row(
    destination: BigQueryDestination, bigquery: FakeBigQuery
) -> None:
    """When the answer cannot tell which rows went in, all are sent again (insertId dedups)."""
    bigquery.platform.script(Answer(200, b"<html>proxy</html>"))
    outcomes = await destination.send(rows(destination, 2))
    assert kinds(outcomes) == [("retry", "answer_unreadable")] * 2


async def test_a_revoked_token_is_replaced_once(
    destination: BigQueryDestination, bigquery: FakeBigQuery, tokens: LocalTokenServer
) -> None:
    """BigQuery answering 401 to a cached token: a fresh token, the request again, delivered."""
    await destination.send(rows(destination, 1))
    bigquery.revoked.add("token-1")
    outcomes = await destination.send(rows(destination, 1))
    assert kinds(outcomes) == [("delivered", "ok")]
    assert [r.headers["Authorization"] for r in bigquery.inserts] == [
        "Bearer token-1",
        "Bearer token-1",
        "Bearer token-2",
    ]


async def test_credentials_bigquery_keeps_refusing_pause_the_destination(
    destination: BigQueryDestination, bigquery: FakeBigQuery, tokens: LocalTokenServer
) -> None:
    """Two 401s in a row: every event waits (retry, pause) with reason auth_refused."""
    bigquery.revoked.update({"token-1", "token-2"})
    outcomes = await destination.send(rows(destination, 2))
    assert kinds(outcomes) == [("retry", "auth_refused")] * 2
    assert all(outcome.pause for outcome in outcomes)


async def test_a_refused_grant_pauses_without_sending(
    destination: BigQueryDestination, bigquery: FakeBigQuery, tokens: LocalTokenServer
) -> None:
    """The token endpoint refusing the service account: nothing reaches BigQuery."""
    tokens.refuse(Refusal(400, "invalid_grant", "Invalid JWT Signature."))
    outcomes = await destination.send(rows(destination, 2))
    assert kinds(outcomes) == [("retry", "auth_token_refused")] * 2
    assert outcomes[0].pause
    assert "Invalid JWT Signature." in outcomes[0].detail
    assert bigquery.inserts == []


async def test_big_batches_are_split_by_rows_and_bytes(
    destination: BigQueryDestination, bigquery: FakeBigQuery
) -> None:
    """max_batch_size rows a request at most, and requests stay under BigQuery's 10 MB."""
    batch = rows(destination, 5)
    assert [list(part) for part in chunks(batch, 2)] == [[0, 1], [2, 3], [4]]
    fat = [{"insertId": str(n), "json": {"x": "y" * (MAX_REQUEST_BYTES // 3)}} for n in range(5)]
    assert [len(part) for part in chunks(fat, 500)] == [2, 2, 1]
    outcomes = await destination.send(batch)
    assert kinds(outcomes) == [("delivered", "ok")] * 5


async def test_health_gets_the_table_without_sending_rows(
    destination: BigQueryDestination, bigquery: FakeBigQuery
) -> None:
    """The health check reads the table's metadata: token, access and table proven, no data."""
    health = await destination.health()
    assert health.ok, health.detail
    assert [r.method for r in bigquery.platform.requests] == ["GET"]
    assert not any(r.path == INSERT_PATH for r in bigquery.platform.requests)
