"""The destination contract as a test suite: a plugin's test module subclasses it in a few lines.

::

    class TestTikTokContract(DestinationContract):
        destination_class = TikTokDestination
        example_config = Path("config-example.yaml").read_text()

        def success(self, request: Recorded) -> Answer:
            return Answer(200, {"code": 0, "message": "OK"})

It checks that the example config parses through the real config loader; that ``map`` is
deterministic, JSON-serialisable and free of I/O for every supported canonical fixture, that it
leaves its event as it was, and that ``map_stored`` gives the same JSON; how 200, 400, 401,
403, 408, 429 with ``Retry-After`` (seconds and HTTP date), 500, 503, timeouts and resets are
classified; one outcome per event, in order, for partial failures; that the health check and
``send_test`` send no event data (unless the platform's test mode needs it); and that nothing
logged carries a raw email, phone or IP. Each check is one test, so a failure names the rule
that was broken.
"""

from __future__ import annotations

import email.utils
import json
import logging
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import attrs
import pytest
import pytest_asyncio
import structlog

from router import codec
from router.config import load_config
from router.config.examples import as_store, placeholders
from router.destination import Destination, MappingError, Outcome, OutcomeKind
from router.event import Event
from router.http import HttpClient
from router.testing.fake_platform import Answer, FakePlatform, Recorded
from router.testing.golden import fixture_names, load_fixture
from router.testing.purity import CapturedLogs, assert_no_identity, no_io, raw_identity


class DestinationContract:
    """Subclass as ``Test<Name>Contract``; set the class attributes, override hooks as needed."""

    #: The plugin's Destination subclass.
    destination_class: ClassVar[type[Destination[Any]]]
    #: The example config: one entry of a store's ``destinations:`` list, as the plugin's
    #: README or config example shows it (``- id: ...``, ``type: ...``, its keys).
    example_config: ClassVar[str]
    #: Environment for ``${VAR}`` references of ``example_config`` (others get placeholders).
    example_env: ClassVar[Mapping[str, str]] = {}
    #: Whether ``send`` speaks HTTP (False skips the status and transport checks).
    sends_http: ClassVar[bool] = True
    #: How many events the multi-event checks send (capped by the batch limit).
    batch_events: ClassVar[int] = 3

    # -- hooks ----------------------------------------------------------------------------

    def point_at(self, config: Any, url: str) -> Any:
        """The config aimed at the fake platform; by default its ``endpoint`` key."""
        return attrs.evolve(config, endpoint=url)

    def success(self, request: Recorded) -> Answer:
        """The platform's answer when it accepts every event of ``request``."""
        return Answer(200, {"ok": True})

    def failure(self, status: int, request: Recorded) -> Answer:
        """The platform's answer with an error ``status`` (its own error body shape)."""
        return Answer(status, {"error": {"code": status, "message": "scripted failure"}})

    def other_answer(self, request: Recorded) -> Answer | None:
        """An answer for requests that are not event deliveries (a token endpoint, say)."""
        return None

    def partial_failure(self, request: Recorded) -> tuple[Answer, Sequence[OutcomeKind]] | None:
        """An answer failing some events of ``request`` and the kinds expected, in order;
        None when the platform answers for a batch as a whole (the check is skipped)."""
        return None

    def batch(self) -> list[Event]:
        """Events for the delivery checks: the first supported fixture that maps, happening
        now (platforms refuse old events), repeated with distinct ids."""
        now = datetime.now(UTC).replace(microsecond=0)
        return [
            attrs.evolve(
                self.sample_event(),
                event_id=f"contract-{i}",
                order_id=f"WC-{i}",
                occurred_at=now,
                received_at=now,
            )
            for i in range(self.batch_events)
        ]

    def sample_event(self) -> Event:
        for name in self.fixtures():
            event = load_fixture(name)
            try:
                self.destination_class.map(self._offline(), event)
            except MappingError:
                continue
            return event
        raise AssertionError("no canonical fixture maps; override sample_event()")

    # -- helpers --------------------------------------------------------------------------

    def fixtures(self) -> list[str]:
        supported = self.destination_class.supported_events
        return [
            name
            for name in fixture_names()
            if supported is None or load_fixture(name).name in supported
        ]

    def parsed_config(self) -> Any:
        """``example_config`` through the real config loader, as ``tagless check`` reads it."""
        name = self.destination_class.name
        env = {**placeholders(self.example_config), **self.example_env}
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder)
            (root / "stores").mkdir()
            (root / "tagless.yaml").write_text("admin: {token: contract-admin-token}\n")
            (root / "stores" / "shop.yaml").write_text(as_store(self.example_config))
            config = load_config(root, {name: self.destination_class.config_class}, env)
        entries = [d for store in config.stores for d in store.destinations if d.type == name]
        assert entries, f"example_config has no destination of type {name!r}"
        return entries[0].settings

    def _offline(self) -> Destination[Any]:
        """An instance whose HTTP client is never used (for map)."""
        return self.destination_class(self.parsed_config(), HttpClient.__new__(HttpClient))

    # -- fixtures -------------------------------------------------------------------------

    @pytest_asyncio.fixture
    async def platform(self) -> AsyncIterator[FakePlatform]:
        """The fake platform: scripted answers first, then the hooks."""

        def respond(request: Recorded) -> Answer | None:
            return self.other_answer(request) or self.success(request)

        async with FakePlatform(responder=respond) as server:
            yield server

    @pytest_asyncio.fixture
    async def destination(self, platform: FakePlatform) -> AsyncIterator[Destination[Any]]:
        http = HttpClient.create()
        config = self.point_at(self.parsed_config(), platform.url)
        yield self.destination_class(config, http)
        await http.close()

    @pytest.fixture(autouse=True)
    def no_raw_identity_logged(self) -> Iterator[None]:
        """Every check runs with logs captured; none may carry a raw email, phone or IP."""
        handler = CapturedLogs()
        root = logging.getLogger()
        root.addHandler(handler)
        old_level = root.level
        root.setLevel(logging.DEBUG)
        try:
            with structlog.testing.capture_logs() as entries:
                yield
        finally:
            root.removeHandler(handler)
            root.setLevel(old_level)
        logged = "\n".join([repr(entry) for entry in entries] + handler.lines).lower()
        for value in raw_identity():
            assert value not in logged, f"a raw identity value was logged: {value!r}"

    # -- the contract ---------------------------------------------------------------------

    def test_example_config_parses(self) -> None:
        """The example config is accepted by the config loader as the plugin's class."""
        assert isinstance(self.parsed_config(), self.destination_class.config_class)

    def test_map_is_deterministic_json_and_free_of_io(self) -> None:
        """For every supported fixture, ``map`` twice gives the same JSON without I/O, and
        ``map_stored`` gives the same JSON; a MappingError is a result too, and a stable one."""
        destination = self._offline()
        checked = 0
        for name in self.fixtures():
            event = load_fixture(name)
            first = _mapped(destination.map, event)
            with no_io():
                second = _mapped(destination.map, event)
                stored = _mapped(destination.map_stored, codec.encode(event))
            assert first == second, f"{name}: map is not deterministic"
            assert stored == first, f"{name}: map_stored differs from map"
            checked += first != "mapping_error"
        assert checked, "no supported fixture maps"

    def test_map_leaves_the_event_as_it_was(self) -> None:
        """``map`` changes nothing in the event it is given (its properties and traits are
        dicts): the dispatchers of a store share one decoded ``Event`` between them."""
        destination = self._offline()
        for name in self.fixtures():
            event = load_fixture(name)
            before = codec.encode(event)
            _mapped(destination.map, event)
            assert codec.encode(event) == before, f"{name}: map changed its event"

    async def _send(self, destination: Destination[Any], events: list[Event]) -> list[Outcome]:
        outcomes = list(await destination.send([destination.map(e) for e in events]))
        assert len(outcomes) == len(events), "send must return exactly one outcome per event"
        return outcomes

    def _events(self, destination: Destination[Any]) -> list[Event]:
        return self.batch()[: max(1, min(self.batch_events, destination.max_batch_size))]

    def _http_only(self) -> None:
        if not self.sends_http:
            pytest.skip("send does not speak HTTP")

    @pytest.mark.asyncio
    async def test_accepted_events_are_delivered(
        self, platform: FakePlatform, destination: Destination[Any]
    ) -> None:
        """The platform's success answer delivers every event of the batch."""
        self._http_only()
        outcomes = await self._send(destination, self._events(destination))
        assert {o.kind for o in outcomes} == {"delivered"}, outcomes

    @pytest.mark.asyncio
    @pytest.mark.parametrize(
        ("status", "kind", "pause"),
        [
            (400, "rejected", False),
            (401, "retry", True),
            (403, "retry", True),
            (408, "retry", False),
            (500, "retry", False),
            (503, "retry", False),
        ],
    )
    async def test_statuses_are_classified(
        self,
        platform: FakePlatform,
        destination: Destination[Any],
        status: int,
        kind: OutcomeKind,
        pause: bool,
    ) -> None:
        """400 is permanent; 401/403 retry and pause the destination; 408 and 5xx retry."""
        self._http_only()
        self._script_failures(platform, status)
        outcomes = await self._send(destination, self._events(destination))
        assert [(o.kind, o.pause) for o in outcomes] == [(kind, pause)] * len(outcomes), outcomes

    @pytest.mark.asyncio
    @pytest.mark.parametrize("form", ["seconds", "http_date"])
    async def test_429_honours_retry_after(
        self, platform: FakePlatform, destination: Destination[Any], form: str
    ) -> None:
        """429 retries, pauses the destination and carries the platform's wait, whether
        ``Retry-After`` is delay-seconds or an HTTP date."""
        self._http_only()
        value = (
            "120" if form == "seconds" else email.utils.formatdate(time.time() + 120, usegmt=True)
        )
        self._script_failures(platform, 429, {"Retry-After": value})
        outcomes = await self._send(destination, self._events(destination))
        for outcome in outcomes:
            assert (outcome.kind, outcome.pause) == ("retry", True), outcome
            assert outcome.retry_after is not None and 60 <= outcome.retry_after <= 121, outcome

    @pytest.mark.asyncio
    @pytest.mark.parametrize("failure", ["timeout", "reset"])
    async def test_no_answer_is_retried(
        self, platform: FakePlatform, destination: Destination[Any], failure: str
    ) -> None:
        """A timeout or a dropped connection retries every event (never a dead letter)."""
        self._http_only()
        if failure == "timeout":
            if "timeout_secs" not in attrs.fields_dict(type(destination.config)):
                pytest.skip("no timeout_secs key")
            destination.config = attrs.evolve(destination.config, timeout_secs=0.5)
        answer = Answer(hang=True) if failure == "timeout" else Answer(reset=True)
        platform.responder = lambda request: self.other_answer(request) or answer
        outcomes = await self._send(destination, self._events(destination))
        assert {o.kind for o in outcomes} == {"retry"}, outcomes

    @pytest.mark.asyncio
    async def test_partial_failure_gives_one_outcome_per_event_in_order(
        self, platform: FakePlatform, destination: Destination[Any]
    ) -> None:
        """When the platform fails some events of a batch, each event gets its own outcome,
        in the order sent."""
        self._http_only()
        expected: list[Sequence[OutcomeKind]] = []

        def respond(request: Recorded) -> Answer | None:
            other = self.other_answer(request)
            if other is not None:
                return other
            partial = self.partial_failure(request)
            if partial is None:
                return None
            expected.append(partial[1])
            return partial[0]

        platform.responder = respond
        events = self._events(destination)
        if len(events) < 2:
            pytest.skip("the destination takes one event per send")
        outcomes = await self._send(destination, events)
        if not expected:
            pytest.skip("the platform answers for a batch as a whole (no partial_failure)")
        assert [o.kind for o in outcomes] == list(expected[0]), outcomes

    @pytest.mark.asyncio
    async def test_health_check_sends_no_event_data(
        self, platform: FakePlatform, destination: Destination[Any]
    ) -> None:
        """The health check answers without sending any event's identity."""
        await destination.health()
        assert_no_identity(platform.requests)

    @pytest.mark.asyncio
    async def test_send_test_sends_nothing_without_a_test_mode(
        self, platform: FakePlatform, destination: Destination[Any]
    ) -> None:
        """Without a test mode, ``send_test`` says so and sends nothing; with one, what it
        sends is the platform's test mode's business."""
        if type(destination).send_test is not Destination.send_test:
            pytest.skip("the platform's test mode sends the test event")
        answer = await destination.send_test([destination.map(self.sample_event())])
        assert answer.ok is False and platform.requests == []

    def _script_failures(
        self, platform: FakePlatform, status: int, headers: Mapping[str, str] | None = None
    ) -> None:
        def respond(request: Recorded) -> Answer | None:
            other = self.other_answer(request)
            if other is not None:
                return other
            answer = self.failure(status, request)
            return attrs.evolve(answer, headers={**answer.headers, **(headers or {})})

        platform.responder = respond


def _mapped(function: Any, argument: Any) -> Any:
    try:
        return json.loads(codec.dumps(function(argument)))
    except MappingError as error:
        return {"mapping_error": error.reason}
