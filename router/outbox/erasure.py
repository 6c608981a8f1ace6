"""The SQLite outbox's erasure: a person's identity scrubbed from every event, row and page."""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, Literal

import attrs
import orjson

from router.outbox.operations import SqliteOperations
from router.outbox.writer import routes_text
from router.privacy import USER_DATA_FIELDS, normalize_email

IdentityKind = Literal["email", "user_id", "anonymous_id"]
IDENTITY_KINDS: Final = ("email", "user_id", "anonymous_id")
#: What an erased value becomes wherever it stood.
ERASED: Final = "<erased>"
#: An erased event goes to no destination (it is kept, scrubbed, so that a sender's retry of
#: the same messageId is still recognised and not stored again with the identity).
NO_ROUTES: Final = routes_text(())
#: Bytes read at a time when the files are searched for what was erased.
_CHUNK: Final = 1 << 20


@attrs.frozen
class Identity:
    """Who to erase: an email (matched as written anywhere in an event, any case, and as its
    SHA-256), a user id or an anonymous id (matched as a whole JSON string anywhere)."""

    kind: IdentityKind
    value: str

    @classmethod
    def parse(cls, kind: str, value: str) -> Identity:
        """The identity to erase; a ValueError says what is wrong."""
        if kind not in IDENTITY_KINDS:
            raise ValueError(f"identity kind {kind!r}: expected one of {list(IDENTITY_KINDS)}")
        if kind == "email":
            email = normalize_email(value, "meta")
            if email is None:
                raise ValueError("--email: not an email address (expected name@domain.tld)")
            return cls("email", email)
        if not value.strip():
            raise ValueError(f"--{kind.replace('_', '-')}: empty")
        return cls(kind, value)  # type: ignore[arg-type]  # checked against IDENTITY_KINDS

    def needles(self) -> tuple[str, ...]:
        """The texts whose presence is a trace of the identity (lowercase for an email)."""
        if self.kind == "email":
            return (self.value, hashlib.sha256(self.value.encode()).hexdigest())
        return (self.value,)

    def in_text(self, text: str) -> bool:
        if self.kind == "email":
            folded = text.lower()
            return any(needle in folded for needle in self.needles())
        return self.value in text

    def scrubbed(self, text: str) -> str:
        """``text`` with every occurrence replaced by :data:`ERASED`."""
        for needle in self.needles():
            flags = re.IGNORECASE if self.kind == "email" else 0
            text = re.sub(re.escape(needle), ERASED, text, flags=flags)
        return text


def scrub_body(identity: Identity, body: bytes) -> bytes:
    """An erased event's stored form: every identifying field gone, and the identity replaced
    wherever else it stood (properties, traits, page URL...)."""
    return orjson.dumps(_scrub_value(identity, without_user_data(orjson.loads(body))))


def without_user_data(stored: dict[str, Any]) -> dict[str, Any]:
    """A stored event's JSON without any identifying field (retention, erasure)."""
    for name in USER_DATA_FIELDS:
        stored.pop(name, None)
    stored["client_ip_origin"] = stored["client_ip_class"] = "missing"
    stored.pop("stitched_from", None)
    return stored


def _scrub_value(identity: Identity, value: Any) -> Any:
    if isinstance(value, str):
        return identity.scrubbed(value) if identity.in_text(value) else value
    if isinstance(value, dict):
        return {
            _scrub_value(identity, key): _scrub_value(identity, item) for key, item in value.items()
        }
    if isinstance(value, list):
        return [_scrub_value(identity, item) for item in value]
    return value


@attrs.frozen
class Found:
    """An event of the identity, before the erasure."""

    seq: int
    event_id: str
    routes: tuple[str, ...]


@attrs.frozen
class Erased:
    """What an erasure changed."""

    events: int
    #: Delivery rows of the erased events removed, by state (retry, dead).
    deliveries: dict[str, int]
    #: Erased events each destination had been handed (seq at or behind its cursor, settled).
    already_sent: dict[str, list[str]]
    #: Events that were still to be delivered, and now never will be.
    pending: int
    #: Other rows (dead letters' platform answers, the attempts log) the identity was
    #: scrubbed from.
    rows_scrubbed: int


class ErasureOperations(SqliteOperations):
    """Erase an identity from the outbox: events, delivery rows, any other table's text."""

    path: Path

    async def erase(self, store: str, identity: Identity) -> Erased:
        """Find the store's events carrying ``identity`` (on the reader: a whole-log scan
        must not hold the writer), then scrub them, and any stored since, in one transaction
        with SQLite's secure_delete on so freed space is zeroed, and every other table's
        text; the caller then checkpoints and checks the files (:func:`traces`)."""
        top = await self._read("SELECT coalesce(max(seq), 0) FROM events", ())
        latest = int(top[0][0])
        sql, params = _match_sql(store, identity, after=0)
        found = [
            Found(seq, event_id, tuple(routes.split()))
            for seq, event_id, routes in await self._read(sql, params)
            if seq <= latest
        ]
        cursors = {
            dest: (await self._lane(store, dest)).cursor for f in found for dest in _ids(f.routes)
        }

        def scrub(db: sqlite3.Connection) -> tuple[list[Found], dict[str, int], list[Any], int]:
            db.execute("PRAGMA secure_delete = ON")
            more = [
                Found(seq, event_id, tuple(routes.split()))
                for seq, event_id, routes in db.execute(*_match_sql(store, identity, after=latest))
            ]
            every = [*found, *more]
            seqs = [f.seq for f in every]
            open_rows = _delivery_rows(db, store, seqs)
            db.executemany(
                "DELETE FROM deliveries WHERE store = ? AND seq = ?", [(store, s) for s in seqs]
            )
            db.create_function("tagless_scrub_body", 1, lambda b: scrub_body(identity, b))
            db.executemany(
                "UPDATE events SET body = tagless_scrub_body(body), routes = ?,"
                " anonymous_id = NULL, user_id = NULL WHERE seq = ?",
                [(NO_ROUTES, s) for s in seqs],
            )
            return (
                every,
                Counter(state for _, _, state in open_rows),
                list(open_rows),
                (_scrub_tables(db, identity)),
            )

        every, states, open_rows, scrubbed = await self.writer.write(scrub)
        if every:  # the ids go from stitching's look-up index too
            await self.persons.prune(min(e.seq for e in every), max(e.seq for e in every))
        sent: dict[str, list[str]] = {}
        pending = 0
        held = {(dest, seq) for dest, seq, _ in open_rows}
        for event in every:
            for dest in _ids(event.routes):
                if (dest, event.seq) in held:
                    continue
                if event.seq <= cursors.get(dest, 0):
                    sent.setdefault(dest, []).append(event.event_id)
                else:
                    pending += 1
        return Erased(len(every), dict(states), sent, pending, scrubbed)


def _ids(routes: Sequence[str]) -> list[str]:
    return [route.rstrip("!") for route in routes]


def _match_sql(store: str, identity: Identity, *, after: int) -> tuple[str, list[Any]]:
    """The query for events of ``store`` past seq ``after`` carrying ``identity``."""
    head = "SELECT seq, event_id, routes FROM events WHERE +store = ? AND seq > ? AND ("
    if identity.kind == "email":
        value, digest = identity.needles()
        return (
            head + "instr(lower(CAST(body AS TEXT)), ?) > 0 OR instr(lower(CAST(body AS TEXT)), ?)"
            " > 0) ORDER BY seq",
            [store, after, value, digest],
        )
    quoted = orjson.dumps(identity.value).decode()
    return (
        head + "anonymous_id = ? OR user_id = ? OR instr(CAST(body AS TEXT), ?) > 0) ORDER BY seq",
        [store, after, identity.value, identity.value, quoted],
    )


def _delivery_rows(db: sqlite3.Connection, store: str, seqs: Sequence[int]) -> list[Any]:
    rows: list[Any] = []
    for start in range(0, len(seqs), 500):
        chunk = seqs[start : start + 500]
        rows += db.execute(
            f"SELECT destination, seq, state FROM deliveries WHERE store = ?"  # noqa: S608 - placeholders only
            f" AND seq IN ({','.join('?' * len(chunk))})",
            [store, *chunk],
        ).fetchall()
    return rows


def _scrub_tables(db: sqlite3.Connection, identity: Identity) -> int:
    """Replace the identity in every text column of every table but ``events`` (a dead
    letter's platform answer, the attempts log, whatever a later schema adds)."""
    db.create_function("tagless_scrub", 1, lambda t: identity.scrubbed(str(t)))
    # found in C (instr), scrubbed in Python only where found: the attempts log is long
    folded = identity.kind == "email"
    needles = identity.needles()
    changed = 0
    tables = [
        name
        for (name,) in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            " AND name != 'events'"
        )
    ]
    for table in tables:
        for column in db.execute(f"PRAGMA table_info({_quoted(table)})").fetchall():
            if str(column[2]).upper() in ("TEXT", "BLOB", ""):
                name = _quoted(column[1])
                text = f"lower(CAST({name} AS TEXT))" if folded else f"CAST({name} AS TEXT)"
                found = " OR ".join(f"instr({text}, ?) > 0" for _ in needles)
                cursor = db.execute(
                    f"UPDATE {_quoted(table)} SET {name} = tagless_scrub({name})"  # noqa: S608 - names from the schema, quoted
                    f" WHERE {name} IS NOT NULL AND ({found})",
                    needles,
                )
                changed += cursor.rowcount
    return changed


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def traces(paths: Sequence[Path], identity: Identity) -> list[str]:
    """The files among ``paths`` (the database, its WAL) that still hold the identity's bytes,
    any case (read a chunk at a time, overlapping by the longest needle)."""
    needles = [needle.encode() for needle in identity.needles()]
    overlap = max(len(n) for n in needles)
    fold: Callable[[bytes], bytes] = bytes.lower if identity.kind == "email" else bytes
    found = []
    for path in paths:
        if not path.exists():
            continue
        with path.open("rb") as handle:
            tail = b""
            while chunk := handle.read(_CHUNK):
                window = fold(tail + chunk)
                if any(needle in window for needle in needles):
                    found.append(path.name)
                    break
                tail = chunk[-overlap:]
    return found
