"""The ids stitching looks events up by are stored only for a store with stitching on."""

from __future__ import annotations

import sqlite3
from typing import Any


async def test_a_store_without_stitching_stores_no_person_ids(tagless: Any) -> None:
    """Without stitching, an event's anonymous_id and user_id columns stay NULL: the partial
    indexes over them hold nothing and cost the store's ingest nothing."""
    identify = {"messageId": "id-1", "anonymousId": "anon-1", "userId": "u-1"}
    assert (await tagless.post("/v1/identify", identify))[0] == 200
    with sqlite3.connect(tagless.app.config.outbox.path) as db:
        rows = db.execute("SELECT event_id, anonymous_id, user_id FROM events").fetchall()
    assert rows == [("id-1", None, None)]
