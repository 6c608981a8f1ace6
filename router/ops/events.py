"""The event debugger's data: find events by id, order, user or email, and show for each what
every destination decided, the payload it was sent and the delivery attempts."""

from __future__ import annotations

from typing import Any, Final

import orjson

from router import codec, privacy
from router.destination import MappingError
from router.ops.lanes import OpsLane, lanes_of, store_config, why_not_routed
from router.ops.masking import mask_event, mask_payload, personal_values
from router.outbox.insight import email_key
from router.privacy import is_hashed, scrub

#: The look-ups tried in turn for a query that is not an email: indexed ones first.
_KINDS: Final = ("event_id", "user_id", "anonymous_id", "order_id")
MAX_LIMIT: Final = 200


async def find_events(
    tagless: Any, q: str, *, store: str | None = None, limit: int = 20
) -> dict[str, Any]:
    """Events matching ``q``, newest first, with their routing, payloads and attempts.

    ``q`` is an event id, user id, anonymous id or order id (tried in that order; the first
    kind that finds something answers), or an email, which is normalised and hashed here before
    the look-up (a SHA-256 hex is taken as an email's hash). Nothing personal is shown raw.
    """
    query = q.strip()
    if not query:
        raise ValueError("q is empty: give an event id, order id, user id, anonymous id or email")
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit {limit} is not between 1 and {MAX_LIMIT}")
    stores = [store_config(tagless, store).store] if store else [
        s.store for s in tagless.config.stores
    ]  # fmt: skip
    kind, rows = await _look_up(tagless.outbox.insight, stores, query, limit)
    rows.sort(key=lambda row: row[3], reverse=True)
    events = [await _explain(tagless, row) for row in rows[:limit]]
    return {"query_kind": kind, "events": events}


async def _look_up(
    insight: Any, stores: list[str], query: str, limit: int
) -> tuple[str, list[Any]]:
    if "@" in query or is_hashed(query):
        key = email_key(query)
        if key is None:
            raise ValueError("q looks like an email but is not one")
        found: list[Any] = []
        for name in stores:
            found.extend(await insight.events_by_email_key(name, key, limit))
        return "email", found
    for kind in _KINDS:
        found = []
        for name in stores:
            found.extend(await insight.events_by(kind, name, query, limit))
        if found:
            return kind, found
    return "none", []


async def _explain(tagless: Any, row: Any) -> dict[str, Any]:
    seq, store, event_id, received_at, routes, body = row
    stored = orjson.loads(body)
    known = personal_values(stored)
    destinations = [
        await _destination(tagless.outbox.insight, lane, seq, routes, body, stored, known)
        for lane in lanes_of(tagless, store)
    ]
    return {
        "store": store,
        "seq": seq,
        "event_id": event_id,
        "event_name": stored.get("name"),
        "source_name": stored.get("source_name"),
        "type": stored.get("source_type"),
        "received_at": received_at,
        "event": mask_event(stored),
        "destinations": destinations,
    }


async def _destination(
    insight: Any,
    lane: OpsLane,
    seq: int,
    routes: str,
    body: bytes,
    stored: dict[str, Any],
    known: set[str],
) -> dict[str, Any]:
    dest = lane.config
    answer: dict[str, Any] = {"id": dest.id, "type": dest.type, "payload": None, "attempts": []}
    plain, marked = f" {dest.id} " in routes, f" {dest.id}! " in routes
    if not (plain or marked):
        decision, detail = why_not_routed(
            lane.route, stored.get("name", ""), stored.get("source_name", ""), stored.get("consent")
        )
        return answer | {"decision": decision, "detail": detail}
    # the state first, then the attempts: a settlement commits its attempts with the cursor or
    # the delivery row, so a later read sees the attempts of the state read (two statements
    # are two snapshots: the other order showed a settled event with no attempt)
    held = await insight.delivery(lane.store, dest.id, seq)
    settled = seq <= await insight.cursor(lane.store, dest.id)
    attempts = await insight.attempts_of(lane.store, dest.id, seq)
    answer["attempts"] = [_attempt(row) for row in attempts]
    decision, detail = _state(held, settled, marked, attempts)
    answer |= {"decision": decision, "detail": detail}
    payload, problem = _payload(lane, body, without_user_data=marked)
    if payload is not None:
        answer["payload"] = mask_payload(payload, known)
    elif problem and decision != "skipped_consent":  # its detail says why already
        answer["detail"] = f"{detail}; {problem}" if detail else problem
    return answer


def _state(row: Any, settled: bool, marked: bool, attempts: list[Any]) -> tuple[str, str]:
    """Where a routed event stands at a destination (its delivery row, whether its cursor is
    past it), and a detail saying why."""
    if row is not None:
        state, tries, reason, status, _, _ = row
        said = f", last status {status}" if status is not None else ""
        if state == "retry":
            return "retrying", f"{reason} after {tries} attempt(s){said}"
        return "dead", f"{reason} after {tries} attempt(s){said}"
    if not settled:
        return "pending", "waiting to be sent"
    if attempts and _counts(attempts[-1]) == {"skipped"}:
        return "skipped_consent", f"consent left nothing to match on ({attempts[-1][7]})"
    if marked:
        return "stripped_consent", "sent without user data (consent policy)"
    return "sent", "delivered" if attempts else "delivered (its attempts are past retention)"


def _counts(row: Any) -> set[str]:
    states = ("delivered", "retry", "dead", "skipped")
    return {state for state, count in zip(states, row[3:7], strict=True) if count}


def _attempt(row: Any) -> dict[str, Any]:
    at, status, latency_ms, *_, reason, answer, next_retry_at = row
    return {
        "at": at,
        "status": status,
        "latency_ms": latency_ms,
        "outcome": "/".join(sorted(_counts(row))) or "unknown",
        "reason": reason,
        "answer": None if answer is None else scrub(answer),
        "next_retry_at": next_retry_at,
    }


def _payload(lane: OpsLane, body: bytes, *, without_user_data: bool) -> tuple[Any, str]:
    """The payload the destination sends for the event (mapping is pure: the same as sent), or
    None and why not."""
    if lane.instance is None:
        return None, "the destination is not running here: its payload cannot be shown"
    try:
        if without_user_data:
            return lane.instance.map(privacy.without_user_data(codec.decode(body))), ""
        return lane.instance.map_stored(body), ""
    except MappingError as error:
        return None, f"cannot be mapped: {error.reason}"
    except Exception as error:  # a mapping bug: show the event anyway
        return None, f"mapping crashed: {type(error).__name__}"
