"""GA4's pipelined sender: in-order answers, closes, resets, timeouts, framing, TLS, outcomes."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import uvloop

from destinations.ga4 import Ga4Config, Ga4Destination, pipeline
from destinations.ga4.pipeline import PipelinedClient
from router.http import HttpClient, Response, TransportError
from router.secret import Secret
from router.testing.events import make_event
from tests.destinations.ga4.pipeline_server import Act, PipelineServer, answer, self_signed

HEADERS = {"Content-Type": "application/json"}
NO_CONTENT = Act()


def numbered(count: int) -> list[bytes]:
    return [b"request-%d" % n for n in range(count)]


def echo(number: int, body: bytes) -> Act:
    """Answers each request with its own body: answers can be matched to requests."""
    return Act(answer(200, body))


async def post_all(client: PipelinedClient, bodies: list[bytes], wait: float = 5.0) -> list[Any]:
    return await client.post_all("/mp/collect?x=1", bodies, HEADERS, timeout_secs=wait)


def bodies_of(answers: list[Any]) -> list[bytes]:
    assert all(isinstance(a, Response) for a in answers), answers
    return [a.body for a in answers]


async def test_requests_are_pipelined_and_answered_in_order() -> None:
    """The server answers only once it holds 5 requests of a connection: only a client that
    writes without waiting gets answers; each answer goes to its own request."""
    async with PipelineServer(echo, gather=5) as server:
        client = PipelinedClient(server.url, connections=2, depth=10)
        sent = numbered(20)
        assert bodies_of(await post_all(client, sent)) == sent
        assert len(server.connections) == 2
        assert sorted(server.bodies) == sorted(sent)
        client.close()


def test_it_pipelines_on_uvloop_the_loop_tagless_serve_runs_on() -> None:
    """uvloop's transports are not asyncio.Transport subclasses: the sender must not care
    (an isinstance check once made every GA4 delivery fail there, and only there)."""

    async def scenario() -> list[bytes]:
        async with PipelineServer(echo, gather=3) as server:
            client = PipelinedClient(server.url, connections=1, depth=10)
            try:
                return bodies_of(await post_all(client, numbered(6)))
            finally:
                client.close()

    assert uvloop.run(scenario()) == numbered(6)


async def test_a_full_pool_queues_requests_until_answers_make_room() -> None:
    """With one connection of depth 3, 10 requests are all answered, in order, on it."""
    async with PipelineServer(echo) as server:
        client = PipelinedClient(server.url, connections=1, depth=3)
        sent = numbered(10)
        assert bodies_of(await post_all(client, sent)) == sent
        assert server.connections == [sent]
        client.close()


async def test_requests_after_a_connection_close_answer_are_sent_again() -> None:
    """The server says Connection: close on every 3rd answer and processes nothing after it:
    those requests go again on a new connection; every one is answered once, none twice."""

    def close_every_third(number: int, body: bytes) -> Act:
        if number % 3 == 2:
            return Act(answer(200, body, "Connection: close"), close=True)
        return echo(number, body)

    async with PipelineServer(close_every_third) as server:
        client = PipelinedClient(server.url, connections=1, depth=10)
        sent = numbered(10)
        assert bodies_of(await post_all(client, sent)) == sent
        assert len(server.connections) >= 4
        # a request written after a close answer may reach the server, unprocessed: only the
        # first three requests of each connection were answered
        answered = [body for seen in server.connections for body in seen[:3]]
        assert Counter(answered) == Counter(sent)
        client.close()


async def test_a_reset_mid_pipeline_fails_only_the_unanswered_requests() -> None:
    """Two answers, then a reset: those two are answered, the rest fail as network errors
    (the server may have processed them: they are not resent blindly)."""

    def reset_third(number: int, body: bytes) -> Act:
        return Act(reset=True) if number == 2 else echo(number, body)

    async with PipelineServer(reset_third, gather=6) as server:
        client = PipelinedClient(server.url, connections=1, depth=10)
        answers = await post_all(client, numbered(6))
        assert bodies_of(answers[:2]) == numbered(2)
        assert all(isinstance(a, TransportError) for a in answers[2:])
        assert {a.reason for a in answers[2:]} == {"network"}
        assert len(server.connections) == 1
        # the pool opens a new connection for what comes next
        server.gather = 1
        assert bodies_of(await post_all(client, [b"again"])) == [b"again"]
        client.close()


async def test_no_answer_within_the_timeout_fails_the_stalled_connection() -> None:
    """A server that never answers the 2nd request: the 1st is answered, the others time out
    (they are stuck behind it), and the connection is replaced for later requests."""

    def hang_second(number: int, body: bytes) -> Act:
        return Act(hang=True) if number == 1 else echo(number, body)

    async with PipelineServer(hang_second) as server:
        client = PipelinedClient(server.url, connections=1, depth=10)
        answers = await post_all(client, numbered(4), wait=0.3)
        assert bodies_of(answers[:1]) == numbered(1)
        assert [(type(a), a.reason) for a in answers[1:]] == [(TransportError, "timeout")] * 3
        assert client.open_connections == 0
        assert bodies_of(await post_all(client, [b"later"])) == [b"later"]
        client.close()


async def test_requests_queued_behind_a_timeout_are_given_up_unsent() -> None:
    """One connection of depth 1, its request never answered: the queued requests time out
    too, and none of them is sent afterwards on a new connection."""

    def hang_first(number: int, body: bytes) -> Act:
        return Act(hang=True) if number == 0 else echo(number, body)

    async with PipelineServer(hang_first) as server:
        client = PipelinedClient(server.url, connections=1, depth=1)
        answers = await post_all(client, numbered(3), wait=0.3)
        assert [a.reason for a in answers] == ["timeout"] * 3
        await asyncio.sleep(0.1)
        assert server.bodies == numbered(1)
        assert client.open_connections == 0
        client.close()


async def test_chunked_length_and_until_close_answers_are_read() -> None:
    """Chunked (with extensions and trailers), Content-Length and 1xx interim answers share a
    connection; an answer without a length ends with the connection."""
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2;x=y\r\nab\r\n3\r\ncde\r\n0\r\nT: 1\r\n\r\n"
    )
    interim = b"HTTP/1.1 100 Continue\r\n\r\n" + answer(200, b"after 100")
    until_close = b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\nthe rest"
    acts = [
        Act(chunked),
        Act(interim),
        NO_CONTENT,
        Act(answer(200, b"sized")),
        Act(until_close, close=True),
    ]

    async with PipelineServer(lambda n, body: acts[n], gather=5) as server:
        client = PipelinedClient(server.url, connections=1, depth=10)
        answers = await post_all(client, numbered(5))
        assert [(a.status, a.body) for a in answers] == [
            (200, b"abcde"),
            (200, b"after 100"),
            (204, b""),
            (200, b"sized"),
            (200, b"the rest"),
        ]
        client.close()


async def test_a_long_body_is_capped_and_the_next_answer_still_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past the cap a body is read and dropped, so the pipeline stays in step."""
    monkeypatch.setattr(pipeline, "MAX_READ_BODY", 10)
    acts = [Act(answer(400, b"x" * 5000)), Act(answer(200, b"next"))]
    async with PipelineServer(lambda n, body: acts[n], gather=2) as server:
        client = PipelinedClient(server.url, connections=1)
        answers = await post_all(client, numbered(2))
        assert [(a.status, a.body) for a in answers] == [(400, b"x" * 10), (200, b"next")]
        client.close()


async def test_an_unreadable_answer_fails_its_connection() -> None:
    """Garbage instead of HTTP: the requests on the connection fail as network errors."""
    async with PipelineServer(lambda n, body: Act(b"SSH-2.0-nonsense\r\n\r\n")) as server:
        client = PipelinedClient(server.url, connections=1)
        answers = await post_all(client, numbered(2))
        assert [a.reason for a in answers] == ["network", "network"]
        client.close()


async def test_a_refused_connection_fails_with_connect_failed() -> None:
    client = PipelinedClient("http://127.0.0.1:9")
    answers = await post_all(client, numbered(3))
    assert [a.reason for a in answers] == ["connect_failed"] * 3


async def test_tls_is_verified_against_the_trusted_certificates(tmp_path: Path) -> None:
    """https works with a context that trusts the server's certificate; the default context
    (the system's CAs) refuses the self-signed one: connect_failed, nothing sent."""
    server_tls, trusting = self_signed(tmp_path)
    async with PipelineServer(echo, tls=server_tls) as server:
        client = PipelinedClient(server.url, ssl_context=trusting)
        assert bodies_of(await post_all(client, numbered(3))) == numbered(3)
        client.close()
        default = PipelinedClient(server.url)
        [refused] = await post_all(default, [b"secret"])
        assert isinstance(refused, TransportError)
        assert refused.reason == "connect_failed"
        assert b"secret" not in server.bodies


async def test_an_idle_connection_is_closed() -> None:
    async with PipelineServer(echo) as server:
        client = PipelinedClient(server.url, idle_secs=0.05)
        await post_all(client, numbered(1))
        assert client.open_connections == 1
        await asyncio.sleep(0.2)
        assert client.open_connections == 0


async def test_a_cancelled_caller_leaves_the_pipeline_in_step() -> None:
    """Answers to a cancelled call are read and dropped; the next call gets its own."""
    async with PipelineServer(echo, gather=3) as server:
        client = PipelinedClient(server.url, connections=1)
        first = asyncio.ensure_future(post_all(client, numbered(2)))
        await asyncio.sleep(0.05)
        first.cancel()
        assert bodies_of(await post_all(client, [b"mine"])) == [b"mine"]
        client.close()


# the destination over the pipeline: one outcome per event, as the shared status policy says


def destination(url: str, http: HttpClient, **settings: Any) -> Ga4Destination:
    config = Ga4Config(
        measurement_id="G-TEST1234", api_secret=Secret("s3cret"), endpoint=url, **settings
    )
    return Ga4Destination(config, http)


def batch_of(dest: Ga4Destination, count: int) -> list[dict[str, Any]]:
    moment = datetime.now(UTC) - timedelta(minutes=1)
    return [
        dest.map(make_event(occurred_at=moment, received_at=moment, ga_client_id=f"{n}.{n}"))
        for n in range(count)
    ]


def client_of(body: bytes) -> str:
    client: str = orjson.loads(body)["client_id"]
    return client


async def test_one_failing_request_of_a_pipeline_gets_its_own_outcome(http: HttpClient) -> None:
    """429 with Retry-After on one request and 500 on another: those events retry (429 pauses,
    with the platform's wait), the others are delivered, in batch order."""

    def by_client(number: int, body: bytes) -> Act:
        client = client_of(body)
        if client == "2.2":
            return Act(answer(429, b"slow down", "Retry-After: 7"))
        if client == "4.4":
            return Act(answer(500, b"oops"))
        return NO_CONTENT

    async with PipelineServer(by_client, gather=6) as server:
        dest = destination(server.url, http)
        dest.collector = PipelinedClient(server.url, connections=1)  # all six in one pipeline
        outcomes = await dest.send(batch_of(dest, 6))
        assert [(o.kind, o.reason, o.pause, o.retry_after) for o in outcomes] == [
            ("delivered", "ok", False, None),
            ("delivered", "ok", False, None),
            ("retry", "http_429", True, 7.0),
            ("delivered", "ok", False, None),
            ("retry", "http_500", False, None),
            ("delivered", "ok", False, None),
        ]
        assert outcomes[2].detail == "slow down"
        dest.collector.close()


async def test_events_never_answered_are_never_reported_delivered(http: HttpClient) -> None:
    """One answer says Connection: close, one request meets a reset, one is never answered:
    an event is delivered only if the server answered 2xx for it, every other one retries,
    and what followed the close is sent again, not lost."""
    answered: list[str] = []

    def troubles(number: int, body: bytes) -> Act:
        client = client_of(body)
        if client == "4.4":
            return Act(reset=True)
        if client == "6.6":
            return Act(hang=True)
        answered.append(client)
        if client == "1.1":
            return Act(answer(204, b"", "Connection: close"), close=True)
        return NO_CONTENT

    async with PipelineServer(troubles) as server:
        dest = destination(server.url, http, timeout_secs=0.5)
        dest.collector = PipelinedClient(server.url, connections=2)
        outcomes = await dest.send(batch_of(dest, 10))
        delivered = {f"{n}.{n}" for n, o in enumerate(outcomes) if o.kind == "delivered"}
        assert delivered <= set(answered)
        assert {(o.kind, o.reason) for o in outcomes if o.kind != "delivered"} <= {
            ("retry", "network"),
            ("retry", "timeout"),
        }
        assert outcomes[1].kind == "delivered"
        assert outcomes[4].kind == outcomes[6].kind == "retry"
        assert len(delivered) >= 4  # what neither the reset nor the hang held up got through
        dest.collector.close()


async def test_the_collect_target_keeps_the_endpoint_path_and_query(http: HttpClient) -> None:
    """An endpoint with a path prefix keeps it; the stream and secret are in the query."""
    seen: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    dest = destination(f"http://127.0.0.1:{port}/prefix", http)
    [outcome] = await dest.send(batch_of(dest, 1))
    server.close()
    assert outcome.kind == "delivered"
    assert seen[0].startswith(
        b"POST /prefix/mp/collect?measurement_id=G-TEST1234&api_secret=s3cret HTTP/1.1\r\n"
    )
    assert f"Host: 127.0.0.1:{port}\r\n".encode() in seen[0]
    dest.collector.close()
