"""A store's own address, guessed from the outbox: the most frequent peer of server-key events."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Final

import attrs

#: Only the store's latest events are read, so the guess stays cheap on a large outbox.
RECENT_EVENTS: Final = 20_000

# A server key's event without context.ip (or a trusted proxy's header) keeps its TCP peer as
# client_ip, origin peer, class own_server: that peer is the store's backend.
_QUERY: Final = """
SELECT json_extract(doc, '$.client_ip') AS ip, count(*) AS n, sum(count(*)) OVER () AS total
FROM (SELECT CAST(body AS TEXT) AS doc FROM events WHERE store = ? ORDER BY seq DESC LIMIT ?)
WHERE json_extract(doc, '$.client_ip_origin') = 'peer'
  AND json_extract(doc, '$.client_ip_class') = 'own_server'
  AND json_extract(doc, '$.client_ip') IS NOT NULL
GROUP BY ip ORDER BY n DESC, ip LIMIT 1
"""


@attrs.frozen
class PeerGuess:
    """The most frequent peer of a store's server-key events among its recent ones."""

    ip: str
    count: int
    of: int  # server-key events without a customer IP among the recent events


def probable_own_address(outbox: Path, store: str) -> PeerGuess | None:
    """Read-only: None without an outbox, without such events, or if it cannot be read."""
    if not outbox.is_file():
        return None
    try:
        connection = sqlite3.connect(f"{outbox.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return None
    try:
        row = connection.execute(_QUERY, (store, RECENT_EVENTS)).fetchone()
    except sqlite3.Error:
        return None
    finally:
        connection.close()
    return None if row is None else PeerGuess(ip=row[0], count=row[1], of=row[2])
