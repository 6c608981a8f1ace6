"""One ``tabledata.insertAll`` request, read into one outcome per row (events and audit rows)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from destinations.bigquery.answers import request_outcome, row_outcomes
from router.sdk import GoogleAuth, Outcome, authorized_post, dumps

_HEADERS: Final = {"Content-Type": "application/json"}


async def insert_rows(
    auth: GoogleAuth, url: str, rows: Sequence[Any], *, table: str, timeout_secs: float
) -> list[Outcome]:
    """POST ``rows`` (``{"insertId", "json"}`` each) to ``url``; bad rows are skipped by
    BigQuery and reported per row. ``table`` names the table in outcome details."""
    body = {
        "kind": "bigquery#tableDataInsertAllRequest",
        "skipInvalidRows": True,
        "ignoreUnknownValues": False,
        "rows": rows,
    }
    answer = await authorized_post(auth, url, dumps(body), _HEADERS, timeout_secs=timeout_secs)
    if isinstance(answer, Outcome):
        return [answer] * len(rows)
    if answer.status == 200:
        return row_outcomes(answer, len(rows))
    return [request_outcome(answer, table)] * len(rows)
