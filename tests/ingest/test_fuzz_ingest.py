"""Fuzzing the ingest API: every answer is 200 with the events stored exactly, or a JSON
4xx/503 with nothing stored, and the server goes on serving.

Bounded and derandomized for ``make test``. By hand, ``TAGLESS_FUZZ_EXAMPLES=5000`` runs that
many examples from a random seed (Hypothesis prints it with a failure; ``--hypothesis-seed=N``
repeats a run).
"""

from __future__ import annotations

import asyncio
import gzip
import itertools
import json
import os
import sqlite3
import zlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeAlias

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from router.ingest.segment import MAX_AHEAD
from router.testing.server import RunningTagless, basic_auth, write_config_dir

BY_HAND = os.environ.get("TAGLESS_FUZZ_EXAMPLES")
EXAMPLES = int(BY_HAND or 250)
KEY = "fuzz-key"
ENDPOINTS = ("track", "page", "screen", "identify", "group", "alias", "batch")
#: Stands for "a fresh messageId": the test puts a unique one in its place before sending, so
#: that every accepted event is new and can be compared with what was stored.
FRESH = "\x00fresh"
#: Stands for a run of nested arrays too deep to build as Python objects (see ``encode``).
DEEP = "\x00deep"
Strategy: TypeAlias = st.SearchStrategy[Any]

# -- values: a valid request, or one where any field may be hostile -------------------------


def repeated(char: str, times: int) -> st.SearchStrategy[str]:
    """``char * times``, with a short repr in Hypothesis' statistics."""
    return st.builds(str.__mul__, st.just(char), st.just(times))


huge_ints = st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64 + 5, -(2**63) - 1, 10**40])
ints = st.integers() | huge_ints
texts = st.text(max_size=30) | st.sampled_from(["", " ", "\u2028"]) | repeated("a", 9000)
scalars = (
    st.none() | st.booleans() | ints | st.floats(allow_nan=False, allow_infinity=False) | texts
)
json_values = st.recursive(
    scalars | st.sampled_from([1e20, 1e300, -0.0, 0.1]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=10,
)


def message_strategies(hostile: bool) -> tuple[Strategy, Strategy]:
    """Messages and batch item types: all valid, or each field hostile one time in three."""

    def either(valid: Strategy, bad: Strategy) -> Strategy:
        return valid | valid | bad if hostile else valid

    # ids: strings, integers of any size, integral floats
    good_ids = st.text(min_size=1, max_size=40) | ints | st.sampled_from([12.0, 1e20, -3.0])
    ids = either(good_ids, scalars | repeated("i", 8193) | st.lists(ints, max_size=2))
    good_amounts = (
        st.integers(-(10**15) + 1, 10**15 - 1)
        | st.floats(-1e15, 1e15, exclude_min=True, exclude_max=True)
        | st.sampled_from(["12.50", "-0", "1e3", "0.000001", " 7 "])
    )
    bad_amounts = st.sampled_from(
        ["NaN", "Infinity", "-inf", "9e999999", "1e20", "0x10", "1_000", "", "١٢", 1e300, 10**16]
    ) | repeated("9", 5000) | scalars  # fmt: skip
    amounts = either(good_amounts, bad_amounts)
    quantities = either(
        st.integers(0, 10**9) | st.sampled_from([2.0, "3"]),
        st.sampled_from([-1, 1.5, 1e20, "99999999999999999999", 2**64 + 5, "2 "]) | scalars,
    )
    good_times = st.datetimes(
        min_value=datetime(1900, 1, 1),
        max_value=datetime(2100, 1, 1),
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=14)), timezone(-timedelta(hours=9))]
        )
        | st.none(),
    ).map(datetime.isoformat)
    bad_times = st.sampled_from(
        ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00",
         "9999-12-31T23:59:59Z", "2024-13-01", "yesterday", "2024-01-01T00:00:00+25:00"]
    ) | scalars  # fmt: skip
    times = either(good_times, bad_times)
    products = st.lists(
        either(
            st.fixed_dictionaries(
                {},
                optional={
                    "product_id": ids,
                    "name": texts,
                    "price": amounts,
                    "quantity": quantities,
                },
            ),
            scalars,
        ),
        max_size=3,
    )
    properties = st.fixed_dictionaries(
        {},
        optional={
            "revenue": amounts,
            "tax": amounts,
            "currency": either(st.sampled_from(["EUR", "usd"]), st.sampled_from(["EURO", "€€€"])),
            "order_id": ids,
            "products": either(products, scalars),
            "product_id": ids,
            "fbc": ids,
            "nested": json_values,
            "deep": st.just(DEEP),
            "action_source": either(st.sampled_from(["web", "app"]), st.just("moon") | scalars),
        },
    )
    context = st.fixed_dictionaries(
        {},
        optional={
            "ip": st.sampled_from(["81.2.69.142", "10.0.0.1", "::1", "2001:db8::1", "1.2.3"])
            | scalars,
            "userAgent": either(texts, scalars),
            "traits": either(
                st.fixed_dictionaries(
                    {}, optional={"email": either(texts, st.lists(texts)), "phone": ids}
                ),
                scalars,
            ),
            "page": either(
                st.fixed_dictionaries(
                    {}, optional={"url": st.just("https://s.example/?gclid=G&fbclid=F%201") | texts}
                ),
                scalars,
            ),
            "consent": either(
                st.fixed_dictionaries(
                    {}, optional={"ad_user_data": either(st.just("granted"), st.just("maybe"))}
                ),
                scalars,
            ),
            "cookies": st.dictionaries(st.sampled_from(["_fbp", "_ga", "x"]), scalars, max_size=2),
            "click_ids": st.dictionaries(st.sampled_from(["gclid", "ttclid"]), ids, max_size=2),
        },
    )
    messages = st.fixed_dictionaries(
        {"messageId": either(st.just(FRESH), scalars | repeated("m", 201)), "userId": ids},
        optional={
            "event": either(st.text(min_size=1, max_size=40), scalars | repeated("e", 201)),
            "name": texts,
            "anonymousId": ids,
            "timestamp": times,
            "originalTimestamp": times,
            "sentAt": times,
            "properties": either(properties, scalars),
            "context": either(context, scalars),
            "traits": either(st.dictionaries(texts, json_values, max_size=3), scalars),
            "integrations": st.just({"Google Analytics 4": {"clientId": 12, "sessionId": 2**70}}),
        },
    )
    types = either(st.sampled_from(ENDPOINTS[:-1]), st.just("batch") | scalars)
    return messages, types


VALID, HOSTILE = message_strategies(hostile=False), message_strategies(hostile=True)
header_values = st.sampled_from(
    ["81.2.69.142", "10.0.0.1, 81.2.69.142", "1.2.3.4%eth0", "[::1]:80", "for=1.2.3.4", ""]
) | st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
#: Where the client IP may come from (the test client, 127.0.0.1, is a trusted proxy), and CORS.
client_headers = st.dictionaries(
    st.sampled_from(["X-Forwarded-For", "Forwarded", "CF-Connecting-IP", "Origin"]),
    header_values,
    max_size=3,
)


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    """One request: endpoint, key, body (JSON or raw bytes), encoding; hostile here and there."""
    endpoint = draw(st.sampled_from(ENDPOINTS))
    hostile = draw(st.booleans())
    messages, types = HOSTILE if hostile else VALID

    def either(valid: Strategy, bad: Strategy) -> Strategy:
        return valid | valid | bad if hostile else valid

    events = [draw(messages) for _ in range(draw(st.integers(1, 4)))]
    if endpoint == "batch":
        for message in events:
            message["type"] = draw(types)
        body: Any = {"batch": events}
    else:
        body = events[0]
        if hostile and draw(st.booleans()):
            body["type"] = draw(types)
    return {
        "endpoint": endpoint,
        "key": draw(either(st.just(KEY), st.sampled_from([None, "wrong"]))),
        "body": draw(
            either(
                st.just(body),
                json_values
                | st.binary(max_size=64)
                | st.just({"batch": []})
                | st.builds(dict, batch=scalars),
            )
        ),
        "depth": draw(st.sampled_from([3, 20, 61, 62, 63, 64, 200, 256, 1000, 1100])),
        "ascii": draw(st.booleans()),
        "encoding": draw(
            either(
                st.sampled_from([None, "gzip", "deflate", "identity", "x-gzip"]),
                st.sampled_from(["br", "zstd", "gzip, gzip", "compress"])
                | st.text(max_size=12),  # framing itself (8 KB header lines) is aiohttp's
            )
        ),
        "garbled": draw(either(st.just(False), st.just(True))),
        "headers": draw(either(st.just({}), client_headers)),
    }


# -- the server ------------------------------------------------------------------------------

STORE = f"""\
store: fuzz
write_keys: [{KEY}]
client_ip: {{trusted_proxies: [127.0.0.1/32]}}
destinations:
  - {{id: archive, type: file, path: "{{path}}"}}
"""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningTagless]:
    root = tmp_path_factory.mktemp("fuzz")
    running = RunningTagless(write_config_dir(root, STORE.replace("{path}", f"{root}/out.jsonl")))
    await running.start()
    yield running
    await running.stop()


_unique = itertools.count()


def with_fresh_ids(body: Any, prefix: str) -> Any:
    """``body`` with each FRESH messageId replaced by a unique one."""
    if isinstance(body, dict):
        if body.get("messageId") == FRESH:
            body = {**body, "messageId": f"{prefix}.{next(_unique)}"}
        if isinstance(body.get("batch"), list):
            body = {**body, "batch": [with_fresh_ids(m, prefix) for m in body["batch"]]}
    return body


def encode(request: dict[str, Any], body: Any) -> bytes:
    """The bytes sent: JSON (huge ints exact, DEEP as nested arrays), maybe encoded or cut."""
    if isinstance(body, bytes):
        data = body
    else:
        data = json.dumps(body, ensure_ascii=request["ascii"]).encode()
        depth = request["depth"]
        data = data.replace(json.dumps(DEEP).encode(), b"[" * depth + b"]" * depth)
    if request["garbled"]:
        data = data[: len(data) // 2] + b"\xff" + data[len(data) // 2 :]
    encoding = request["encoding"]
    if encoding in ("gzip", "x-gzip"):
        data = gzip.compress(data)
    elif encoding == "deflate":
        data = zlib.compress(data)
    return data


def headers(request: dict[str, Any]) -> dict[str, str]:
    sent = {"Content-Type": "application/json", **request["headers"]}
    if request["key"] is not None:
        sent.update(basic_auth(request["key"]))
    encoding = request["encoding"]
    if encoding is not None and encoding.isascii() and encoding.isprintable():
        sent["Content-Encoding"] = encoding
    return sent


def stored_since(running: RunningTagless, seq: int) -> list[tuple[int, str, str]]:
    with sqlite3.connect(running.app.config.outbox.path) as db:
        query = "SELECT seq, event_id, body FROM events WHERE seq > ? ORDER BY seq"
        return list(db.execute(query, (seq,)))


def outbox_state(running: RunningTagless) -> tuple[int, set[str]]:
    """The highest seq stored so far, and every event id stored so far."""
    with sqlite3.connect(running.app.config.outbox.path) as db:
        known = {row[0] for row in db.execute("SELECT event_id FROM events")}
        return int(db.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]), known


# -- what must hold --------------------------------------------------------------------------


def expected_id(value: Any) -> str | None:
    """An id as ingest keeps it: strings as sent, integers with every digit."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, float):
        return str(int(value))
    return None if value is None else str(value)


def assert_stored_exactly(message: dict[str, Any], stored: dict[str, Any]) -> None:
    """The stored canonical event says what the message said."""
    if message.get("messageId") is not None:
        assert stored["event_id"] == message["messageId"]
    for key, field in (("userId", "user_id"), ("anonymousId", "anonymous_id")):
        assert stored.get(field) == expected_id(message.get(key))
    props = message.get("properties") or {}
    if DEEP not in props.values():
        assert stored.get("properties", {}) == props
    if "order_id" in props:
        assert stored.get("order_id") == expected_id(props["order_id"])
    if stored["source_type"] == "track":
        assert stored["source_name"] == message["event"]
    ua = (message.get("context") or {}).get("userAgent")
    if isinstance(ua, str) and ua:
        assert stored["user_agent"] == ua
    if isinstance(message.get("timestamp"), str):
        sent = datetime.fromisoformat(message["timestamp"])
        sent = sent if sent.tzinfo else sent.replace(tzinfo=UTC)
        received = datetime.fromisoformat(stored["received_at"])
        if sent > received + MAX_AHEAD:  # a clock set ahead: clamped, the sender's time kept
            assert datetime.fromisoformat(stored["occurred_at"]) == received
            assert datetime.fromisoformat(stored["occurred_at_original"]) == sent
        else:
            assert datetime.fromisoformat(stored["occurred_at"]) == sent


_examples = itertools.count()


@pytest.mark.asyncio(loop_scope="module")
@settings(
    max_examples=EXAMPLES,
    derandomize=BY_HAND is None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(request=requests())
async def test_every_answer_is_a_stored_200_or_a_json_error_storing_nothing(
    server: RunningTagless, request: dict[str, Any]
) -> None:
    """200 stores every event of the request exactly; a 4xx/503 is JSON and stores nothing."""
    assert server.session is not None
    body = with_fresh_ids(request["body"], f"fz{next(_examples)}")
    before, known = outbox_state(server)
    url = f"{server.base}/v1/{request['endpoint']}"
    async with server.session.post(url, data=encode(request, body), headers=headers(request)) as r:
        status, content_type, raw = r.status, r.content_type, await r.read()
    expected_status = status == 200 or 400 <= status < 500 or status == 503
    assert expected_status and content_type == "application/json", (status, raw[:300])
    answer = json.loads(raw)
    event(f"{status} {answer.get('error', {}).get('code', '')}")
    rows = stored_since(server, before)
    if status != 200:
        assert answer["success"] is False and answer["error"]["code"], answer
        assert rows == [], f"{status} {answer} but stored {[row[1] for row in rows]}"
        return
    assert answer == {"success": True}
    sent = body["batch"] if request["endpoint"] == "batch" else [body]
    new = []
    for message in sent:  # a messageId stored before is a retry: 200, nothing new stored
        message_id = message.get("messageId")
        if message_id not in known:
            new.append(message)
            if message_id is not None:
                known.add(message_id)
    assert len(rows) == len(new), (len(rows), new)
    for message, (_, _, stored) in zip(new, rows, strict=True):
        assert_stored_exactly(message, json.loads(stored))


@pytest.mark.asyncio(loop_scope="module")
async def test_the_server_still_serves_and_delivers_after_the_fuzzing(
    server: RunningTagless,
) -> None:
    """After the fuzzing a good event is accepted, and every stored event reaches the file."""
    assert server.session is not None
    good = {"type": "track", "event": "Ping", "messageId": "after-fuzz", "userId": "u"}
    url, auth = f"{server.base}/v1/track", basic_auth(KEY)
    async with server.session.post(url, json=good, headers=auth) as response:
        assert response.status == 200
    out = Path(str(server.app.config.outbox.path)).parent / "out.jsonl"
    want = {row[1] for row in stored_since(server, 0)}
    for _ in range(300):
        lines = out.read_bytes().splitlines() if out.exists() else []
        if len(lines) >= len(want):
            break
        await asyncio.sleep(0.05)
    assert {json.loads(line)["event_id"] for line in lines} == want
