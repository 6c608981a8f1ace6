"""Streams mapped rows into BigQuery with ``tabledata.insertAll``; reads its answers per row."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Final

from destinations.bigquery.answers import request_outcome
from destinations.bigquery.audit import AuditSink
from destinations.bigquery.config import SCOPES, BigQueryConfig
from destinations.bigquery.insert import insert_rows
from destinations.bigquery.mapping import build_row
from router.sdk import (
    Clock,
    Destination,
    Event,
    GoogleAuth,
    Health,
    HttpClient,
    Outcome,
    Response,
    authorized_request,
    dumps,
)

#: BigQuery refuses insertAll requests over 10 MB; rows are split well below that.
MAX_REQUEST_BYTES: Final = 9_000_000
#: One ``send`` takes up to this many requests' worth of rows and posts them at once: the
#: outbox claims and settles them together (one claim and one commit per send, not per request).
REQUESTS_PER_SEND: Final = 4


def chunks(rows: Sequence[dict[str, Any]], max_rows: int) -> list[range]:
    """Index ranges of ``rows`` for one request each: at most ``max_rows`` rows and about
    MAX_REQUEST_BYTES of JSON (a single larger row goes alone; BigQuery then says why)."""
    found: list[range] = []
    start, size = 0, 0
    for index, row in enumerate(rows):
        row_size = len(dumps(row)) + 1
        if index > start and (index - start >= max_rows or size + row_size > MAX_REQUEST_BYTES):
            found.append(range(start, index))
            start, size = index, 0
        size += row_size
    if start < len(rows):
        found.append(range(start, len(rows)))
    return found


class BigQueryDestination(Destination[BigQueryConfig]):
    """One row per event in a BigQuery table, through the streaming ``insertAll`` API."""

    name: ClassVar[str] = "bigquery"
    config_class: ClassVar[type[Any]] = BigQueryConfig

    def __init__(self, config: BigQueryConfig, http: HttpClient) -> None:
        super().__init__(config, http)
        self.auth = GoogleAuth(
            config.credentials,
            http,
            token_endpoint=config.token_endpoint,
            scopes=SCOPES,
            timeout_secs=config.timeout_secs,
        )
        self.audit: AuditSink | None = None

    @property
    def max_batch_size(self) -> int:
        """Rows one ``send`` takes: ``REQUESTS_PER_SEND`` requests' worth, posted at once."""
        return self.config.max_batch_size * REQUESTS_PER_SEND

    def map(self, event: Event) -> dict[str, Any]:
        return build_row(event)

    async def send(self, batch: Sequence[Any]) -> Sequence[Outcome]:
        parts = chunks(batch, self.config.max_batch_size)
        answers = await asyncio.gather(*(self._insert([batch[i] for i in part]) for part in parts))
        return [outcome for part_outcomes in answers for outcome in part_outcomes]

    async def _insert(self, rows: list[dict[str, Any]]) -> list[Outcome]:
        return await insert_rows(
            self.auth,
            self.config.insert_url,
            rows,
            table=self.config.table_name,
            timeout_secs=self.config.timeout_secs,
        )

    def attempt_sink(self, clock: Clock) -> AuditSink | None:
        """The audit table's sink when ``audit_table`` is set (one per instance), sharing this
        destination's credentials and token cache."""
        if self.config.audit_table is not None and self.audit is None:
            self.audit = AuditSink(self.config, self.auth, clock)
        return self.audit

    def counters(self) -> Mapping[str, int]:
        return self.audit.counters() if self.audit is not None else {}

    async def health(self) -> Health:
        """``tables.get`` of the table: proves the token, the access and that the table exists,
        without sending event data."""
        answer = await authorized_request(
            self.auth, "GET", self.config.table_url, None, {}, timeout_secs=self.config.timeout_secs
        )
        if isinstance(answer, Outcome):
            return Health(ok=False, detail=f"{answer.reason}: {answer.detail}")
        return _table_health(answer, self.config.table_name)


def _table_health(response: Response, table: str) -> Health:
    if response.status == 200:
        return Health(ok=True, detail=f"{table} is reachable")
    outcome = request_outcome(response, table)
    return Health(ok=False, detail=f"{outcome.reason}: {outcome.detail}")
