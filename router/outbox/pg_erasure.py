"""The PostgreSQL outbox's erasure: a person's identity scrubbed from every event and row, the
changed tables rewritten so no old row version keeps it."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Any, Final

import orjson

from router.outbox.erasure import NO_ROUTES, Erased, Found, Identity, scrub_body
from router.outbox.pg_retention import PgRetention
from router.outbox.pg_writer import Db

#: The body as text, for matching an identity wherever it stands.
_TEXT: Final = "convert_from(body, 'UTF8')"


def _match_sql(identity: Identity) -> tuple[str, list[Any]]:
    """The WHERE clause (after store = $1 AND seq > $2) matching events of ``identity``."""
    if identity.kind == "email":
        value, digest = identity.needles()
        return f"(strpos(lower({_TEXT}), $3) > 0 OR strpos(lower({_TEXT}), $4) > 0)", [
            value,
            digest,
        ]
    quoted = orjson.dumps(identity.value).decode()
    return (
        f"(anonymous_id = $3 OR user_id = $3 OR strpos({_TEXT}, $4) > 0)",
        [identity.value, quoted],
    )


def _regex(identity: Identity) -> str:
    """A POSIX regular expression matching any needle of ``identity``."""
    return "|".join(re.sub(r"([\\^$.|?*+()\[\]{}])", r"\\\1", n) for n in identity.needles())


class PgErasure(PgRetention):
    """Erase an identity from the PostgreSQL outbox: events, delivery rows, any other table's
    text (dead letters' answers, the attempts log)."""

    async def find_identity(self, store: str, identity: Identity) -> list[Found]:
        """The events of ``store`` that carry ``identity`` anywhere."""
        where, params = _match_sql(identity)
        rows = await self._read(
            f"SELECT seq, event_id, routes FROM events WHERE store = $1 AND seq > $2 AND {where}"  # noqa: S608 - fixed clauses
            " ORDER BY seq",
            (store, 0, *params),
        )
        return [Found(seq, event_id, tuple(routes.split())) for seq, event_id, routes in rows]

    async def erase(self, store: str, identity: Identity) -> Erased:
        """Find the store's events carrying ``identity``, then scrub them (and any stored
        since), drop their delivery rows and scrub every other table's text, in one
        transaction."""
        found = await self.find_identity(store, identity)
        where, params = _match_sql(identity)
        latest = max((f.seq for f in found), default=0)
        cursors = {
            dest: await self.durable_cursor(store, dest) for f in found for dest in _ids(f.routes)
        }

        async def scrub(db: Db) -> tuple[list[Found], list[Any], int]:
            more = await db.fetch(
                f"SELECT seq, event_id, routes FROM events WHERE store = $1 AND seq > $2"  # noqa: S608 - fixed clauses
                f" AND {where} ORDER BY seq FOR UPDATE",
                store, latest, *params,
            )  # fmt: skip
            every = [*found, *(Found(r[0], r[1], tuple(r[2].split())) for r in more)]
            seqs = [f.seq for f in every]
            held = await db.fetch(
                "DELETE FROM deliveries WHERE store = $1 AND seq = ANY($2::bigint[])"
                " RETURNING destination, seq, state",
                store, seqs,
            )  # fmt: skip
            bodies = await db.fetch(
                "SELECT seq, body FROM events WHERE seq = ANY($1::bigint[])", seqs
            )
            await db.executemany(
                "UPDATE events SET body = $1, routes = $2, anonymous_id = NULL, user_id = NULL"
                " WHERE seq = $3",
                [(scrub_body(identity, body), NO_ROUTES, seq) for seq, body in bodies],
            )
            return every, list(held), await _scrub_tables(db, identity)

        every, held, scrubbed = await self.writer.write(scrub)
        await self.writer.vacuum(["events", "deliveries", "attempts"])
        open_rows = {(row[0], row[1]) for row in held}
        sent: dict[str, list[str]] = {}
        pending = 0
        for event in every:
            for dest in _ids(event.routes):
                if (dest, event.seq) in open_rows:
                    continue
                if event.seq <= cursors.get(dest, 0):
                    sent.setdefault(dest, []).append(event.event_id)
                else:
                    pending += 1
        states = Counter(row[2] for row in held)
        return Erased(len(every), dict(states), sent, pending, scrubbed)

    async def traces(self, identity: Identity) -> list[str]:
        """The tables whose text still holds the identity (after an erasure: none)."""
        found = []
        for table, column in await self._read(_TEXT_COLUMNS, ()):
            rows = await self._read(
                f'SELECT 1 FROM "{table}" WHERE "{column}"::text ~* $1 LIMIT 1',  # noqa: S608 - names from the catalog
                (_regex(identity),),
            )
            if rows:
                found.append(f"{table}.{column}")
        in_bodies = f"SELECT 1 FROM events WHERE {_TEXT} ~* $1 LIMIT 1"  # noqa: S608 - constant
        rows = await self._read(in_bodies, (_regex(identity),))
        return found + (["events.body"] if rows else [])


#: Every text column of the outbox's tables but the events' (bodies are bytes; ids are cleared).
_TEXT_COLUMNS: Final = (
    "SELECT table_name, column_name FROM information_schema.columns"
    " WHERE table_schema = current_schema() AND data_type = 'text' AND table_name <> 'events'"
    " ORDER BY table_name, column_name"
)


def _ids(routes: Sequence[str]) -> list[str]:
    return [route.rstrip("!") for route in routes]


async def _scrub_tables(db: Db, identity: Identity) -> int:
    """Replace the identity in every text column of every table but ``events``."""
    changed = 0
    pattern = _regex(identity)
    for table, column in await db.fetch(_TEXT_COLUMNS):
        status = await db.execute(
            f'UPDATE "{table}" SET "{column}" = regexp_replace("{column}", $1, $2, \'gi\')'  # noqa: S608 - names from the catalog
            f' WHERE "{column}" ~* $1',
            pattern, "<erased>",
        )  # fmt: skip
        changed += int(status.split()[-1])
    return changed
