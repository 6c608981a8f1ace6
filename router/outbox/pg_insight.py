"""The admin pages' read-only queries on the PostgreSQL outbox: the SQLite ones, spelled for
PostgreSQL where the dialects differ (placeholders, ``strpos``, JSON paths), reading every
node's events."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, Literal

from router.outbox.insight import BY_INDEX, IndexedKind, Insight
from router.outbox.pg_operations import pg_path

Read = Callable[[str, Sequence[Any]], Awaitable[list[Any]]]

_PLACEHOLDER: Final = re.compile(r"\?(\d*)")
_EVENT_COLUMNS: Final = "seq, store, event_id, received_at, routes, body"
#: An event's body as jsonb.
_BODY: Final = "convert_from(body, 'UTF8')::jsonb"
#: The email key of ``tagless_email_key`` (router.outbox.insight.email_key) in SQL: a
#: SHA-256 hex digest as sent, else the digest of the trimmed, lowercased address.
_EMAIL_KEY: Final = (
    "CASE WHEN btrim(e.value) ~* '^[0-9a-f]{64}$' THEN lower(btrim(e.value))"
    " WHEN position('@' in btrim(e.value)) > 1"
    " THEN encode(sha256(convert_to(lower(btrim(e.value)), 'UTF8')), 'hex') END"
)


def postgres_sql(sql: str) -> str:
    """SQLite's spelling of a query in PostgreSQL's: ``?`` and ``?N`` placeholders, ``instr``,
    the ``+column`` that only steers SQLite's planner."""
    count = 0

    def number(match: re.Match[str]) -> str:
        nonlocal count
        if match.group(1):
            return f"${match.group(1)}"
        count += 1
        return f"${count}"

    sql = _PLACEHOLDER.sub(number, sql)
    return sql.replace("instr(", "strpos(").replace("+store", "store")


class PgInsight(Insight):
    """:class:`Insight` on PostgreSQL, through the outbox's pool (no connection of its own:
    a pool connection never delays the writer)."""

    def __init__(self, read: Read) -> None:  # not super().__init__: there is no SQLite file
        self._raw = read

    async def _read(self, sql: str, params: Sequence[Any]) -> list[Any]:
        return await self._raw(postgres_sql(sql), params)

    async def close(self) -> None:
        """Nothing to close: the outbox closes its pool."""

    async def events_by(
        self, kind: IndexedKind | Literal["order_id"], store: str, value: str, limit: int
    ) -> list[Any]:
        if kind != "order_id":
            found = await self._read(BY_INDEX[kind], (store, value, limit))
            if found or kind == "event_id":
                return found
        return await self._raw(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE store = $1"  # noqa: S608 - constant
            f" AND {_BODY} ->> $2 = $3 ORDER BY seq DESC LIMIT $4",
            (store, kind, value, limit),
        )

    async def events_by_email_key(self, store: str, key: str, limit: int) -> list[Any]:
        return await self._raw(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE store = $1 AND EXISTS (SELECT 1 FROM"  # noqa: S608 - constant
            f" jsonb_array_elements_text(coalesce({_BODY} -> 'emails', '[]')) AS e(value)"
            f" WHERE {_EMAIL_KEY} = $2) ORDER BY seq DESC LIMIT $3",
            (store, key, limit),
        )

    async def attempts_of(self, store: str, destination: str, seq: int) -> list[Any]:
        return await self._raw(
            "SELECT at, status, latency_ms, delivered, retrying, dead, skipped, reason, answer,"
            " next_retry_at FROM attempts WHERE store = $1 AND destination = $2"
            " AND seq_hi >= $3::bigint AND seq_lo <= $3::bigint AND (seqs IS NULL"
            " OR strpos(',' || seqs || ',', ',' || $3::bigint::text || ',') > 0) ORDER BY id",
            (store, destination, seq),
        )

    async def unrouted_since(self, store: str, destination: str, since_seq: int) -> list[Any]:
        return await self._raw(
            f"SELECT jsonb_build_array({_BODY} -> 'name', {_BODY} -> 'source_name',"  # noqa: S608 - constant
            f" {_BODY} -> 'consent')::text AS decided, count(*) FROM events WHERE seq >= $1"
            " AND store = $2 AND strpos(routes, $3) = 0 AND strpos(routes, $4) = 0"
            " GROUP BY decided",
            (since_seq, store, f" {destination} ", f" {destination}! "),
        )

    async def identities_since(
        self, store: str, since_seq: int, paths: Sequence[str], limit: int
    ) -> list[Any]:
        return await self._raw(
            f"SELECT routes, (SELECT jsonb_agg({_BODY} #> p.path::text[] ORDER BY p.n)::text"  # noqa: S608 - constant
            " FROM unnest($1::text[]) WITH ORDINALITY AS p(path, n)) FROM events"
            " WHERE seq >= $2 AND store = $3 ORDER BY seq DESC LIMIT $4",
            ([pg_path(p) for p in paths], since_seq, store, limit),
        )
