"""The audit table: the store's delivery attempts, buffered in memory and streamed in batches.

Best effort by design: attempts are not written to the outbox (that would double the writes of
every delivery), so rows still buffered when the process dies are lost; every row that is not
inserted is counted (``audit_rows_dropped``, ``_rejected``, ``_unsent``) and logged.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, deque
from datetime import UTC, datetime
from typing import Any, Final

import structlog

from destinations.bigquery.config import BigQueryConfig
from destinations.bigquery.insert import insert_rows
from destinations.bigquery.mapping import timestamp
from router.sdk import Attempt, Clock, GoogleAuth, Outcome

log = structlog.get_logger("tagless.audit")

#: A failed insert is tried again after this long, doubling up to the maximum while it fails.
INITIAL_BACKOFF_SECS: Final = 1.0
MAX_BACKOFF_SECS: Final = 60.0


def audit_row(attempt: Attempt) -> dict[str, Any]:
    """The ``rows[]`` entry for one attempt. Its ``insertId`` names the try (destination, event,
    attempt and the microsecond it went out): a re-sent insert is dropped by BigQuery, while two
    tries with the same attempt number (a try that paused the destination spends none) stay
    two rows."""
    sent = datetime.fromtimestamp(attempt.attempted_at, UTC)
    micros = round(attempt.attempted_at * 1_000_000)
    return {
        "insertId": f"{attempt.destination}:{attempt.event_id}:{attempt.attempt}:{micros}",
        "json": {
            "store": attempt.store,
            "destination": attempt.destination,
            "destination_type": attempt.destination_type,
            "event_id": attempt.event_id,
            "attempt": attempt.attempt,
            "outcome": attempt.outcome,
            "status": attempt.status,
            "reason": attempt.reason,
            "latency_ms": None if attempt.latency_ms is None else round(attempt.latency_ms, 3),
            "attempted_at": timestamp(sent),
        },
    }


class AuditSink:
    """Buffers attempt rows and inserts them into ``audit_table`` in its own task.

    :meth:`observe` only appends (it is called on the dispatchers' path); a batch goes out when
    ``max_batch_size`` rows wait or every ``audit_flush_secs``. A failed insert keeps its rows and
    is tried again after a backoff; while it fails, at most ``audit_max_buffered_rows`` wait and
    the rest are counted and logged once per interval. :meth:`close` writes what is left.
    """

    def __init__(self, config: BigQueryConfig, auth: GoogleAuth, clock: Clock) -> None:
        assert config.audit_table is not None, "an audit sink needs audit_table"
        self.config = config
        self.auth = auth
        self.clock = clock
        self.table = config.name_of(config.audit_table)
        self.url = f"{config.url_of(config.audit_table)}/insertAll"
        #: Rows inserted, dropped (buffer full), rejected by BigQuery, unsent at shutdown.
        self.tally: Counter[str] = Counter()
        self._rows: deque[dict[str, Any]] = deque()
        self._in_flight = 0
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._backoff = INITIAL_BACKOFF_SECS
        self._retry_at = 0.0
        self._unreported = 0
        self._reported_at = clock.now()
        self._log = log.bind(table=self.table)

    @property
    def buffered(self) -> int:
        """Rows waiting in memory, the batch being inserted included."""
        return len(self._rows) + self._in_flight

    def counters(self) -> dict[str, int]:
        """For /metrics (``tagless_destination_events``): every row's fate, by name."""
        names = ("inserted", "dropped", "rejected", "unsent")
        return {f"audit_rows_{name}": self.tally[name] for name in names}

    def observe(self, attempt: Attempt) -> None:
        """Buffer one attempt's row; never waits. Beyond the cap the row is counted, not kept."""
        if self.buffered >= self.config.audit_max_buffered_rows:
            self.tally["dropped"] += 1
            self._unreported += 1
            return
        self._rows.append(audit_row(attempt))
        if len(self._rows) == self.config.max_batch_size:
            self._wake.set()

    def start(self) -> None:
        """Start inserting in the background (once)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"audit:{self.table}")
            self._task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        """A bug ended the task: say so (rows then wait up to the cap, and are counted)."""
        if not task.cancelled() and task.exception() is not None:
            # the type only, as every crash log: an exception's text may echo row data
            self._log.error("audit_sink_crashed", error=type(task.exception()).__name__)

    async def close(self, grace_secs: float) -> None:
        """Stop the background task, then try once more to insert every buffered row, for at
        most ``grace_secs``; rows still unsent are counted and logged."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await asyncio.wait({self._task})  # a crash was logged when it happened
        with contextlib.suppress(TimeoutError):  # what is left is counted below
            await asyncio.wait_for(self._flush(), grace_secs)
        self._report_dropped(force=True)
        if self.buffered:
            self.tally["unsent"] += self.buffered
            self._log.warning("audit_rows_unsent", rows=self.buffered)
            self._rows.clear()

    async def _run(self) -> None:
        while not self._closing:
            await self.clock.wait(self._wake, self._next_wait())
            self._wake.clear()
            self._report_dropped()
            if not self._closing and self.clock.now() >= self._retry_at:
                if not await self._flush():
                    self._retry_at = self.clock.now() + self._backoff
                    self._backoff = min(self._backoff * 2, MAX_BACKOFF_SECS)
                else:
                    self._backoff = INITIAL_BACKOFF_SECS

    def _next_wait(self) -> float:
        """The flush interval, or less when a backoff ends sooner."""
        interval = self.config.audit_flush_secs
        until_retry = self._retry_at - self.clock.now()
        return interval if until_retry <= 0 else min(interval, until_retry)

    async def _flush(self) -> bool:
        """Insert the buffered rows a batch at a time; False at the first batch that failed
        (its rows wait again, first in line)."""
        while self._rows:
            count = min(len(self._rows), self.config.max_batch_size)
            batch = [self._rows.popleft() for _ in range(count)]
            self._in_flight = count
            try:
                outcomes = await insert_rows(
                    self.auth,
                    self.url,
                    batch,
                    table=self.table,
                    timeout_secs=self.config.timeout_secs,
                )
            except BaseException:  # cancelled (close's grace ran out): the rows are not sent
                self._rows.extendleft(reversed(batch))
                raise
            finally:
                self._in_flight = 0
            again = self._settle(batch, outcomes)
            if again:
                self._rows.extendleft(reversed(again))
                return False
        return True

    def _settle(self, batch: list[dict[str, Any]], outcomes: list[Outcome]) -> list[Any]:
        """Count the rows that went in or were refused for good; return those to send again."""
        again = [row for row, o in zip(batch, outcomes, strict=True) if o.kind == "retry"]
        refused = [o for o in outcomes if o.kind == "rejected"]
        self.tally["inserted"] += sum(o.kind == "delivered" for o in outcomes)
        self.tally["rejected"] += len(refused)
        if refused:
            self._log.warning(
                "audit_rows_rejected", rows=len(refused), reason=refused[0].reason,
                detail=refused[0].detail,
            )  # fmt: skip
        if again:
            cause = next(o for o in outcomes if o.kind == "retry")
            self._log.warning(
                "audit_insert_failed", rows=len(again), reason=cause.reason, status=cause.status,
                retry_in_secs=self._backoff,
            )  # fmt: skip
        return again

    def _report_dropped(self, *, force: bool = False) -> None:
        """Log the rows dropped since the last report, at most once per flush interval."""
        now = self.clock.now()
        due = now - self._reported_at >= self.config.audit_flush_secs
        if self._unreported and (due or force):
            self._log.warning(
                "audit_rows_dropped",
                rows=self._unreported,
                cap=self.config.audit_max_buffered_rows,
                since_secs=round(now - self._reported_at, 1),
            )
            self._unreported = 0
            self._reported_at = now
