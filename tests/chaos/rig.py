"""The fault rig: a `tagless serve` process with several webhook destinations, each in front of
its own fake platform whose answers a scenario can change, and clients that record every
request into a :class:`~tests.chaos.history.History`.

Everything talks to 127.0.0.1 only; the process is the one of ``tests/process/harness.py``
(own process group, SIGKILLed after the test whatever happens).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from aiohttp import web

from router.testing.fake_platform import Answer, FakePlatform, Recorded, Responder
from tests.chaos.history import Delivery, Fault, History, Verdict, check
from tests.process.harness import (
    ACKED,
    ADMIN_TOKEN,
    AUTHORIZATION,
    WRITE_KEY,
    Sent,
    TaglessConfig,
    TaglessServer,
    post_batch,
    wait_until,
)

Number = TypeVar("Number", int, float)

#: ``make chaos`` sets it: every scenario runs at full length (more kills, longer outages).
FULL = os.environ.get("TAGLESS_CHAOS") == "full"


def scale(fast: Number, full: Number) -> Number:
    """A scenario's size: ``fast`` inside ``make test``, ``full`` under ``make chaos``."""
    return full if FULL else fast


# -- the fake platforms ----------------------------------------------------------------------


@dataclass
class Behaviour:
    """How a platform answers right now; a scenario changes it while the run goes on."""

    #: Answer every request with this status (5xx, 429...), or None for 200.
    status: int | None = None
    #: The ``Retry-After`` header sent with ``status``.
    retry_after: str | None = None
    #: A batch holding one of these ids is refused with 400 as a whole (the webhook model).
    poison: set[str] = field(default_factory=set)
    #: Seconds to wait before answering (a slow platform).
    delay: float = 0.0


class Platform(FakePlatform):
    """A fake webhook receiver: records every request, answers as its :class:`Behaviour` says;
    with ``dedups`` it remembers event ids the way Meta and Spotify de-duplicate them."""

    def __init__(
        self,
        name: str,
        *,
        dedups: bool = False,
        inner: Responder | None = None,
        ids_key: str = "events",
    ) -> None:
        self.name = name
        self.dedups = dedups
        self.behaviour = Behaviour()
        #: The platform's own answers when no fault applies (a rule-checking fake), and where
        #: its request bodies list the events.
        self.inner = inner
        self.ids_key = ids_key
        #: When requests arrived whose answer Tagless no longer heard.
        self.unheard: list[float] = []
        super().__init__(responder=self._answer)

    def _answer(self, seen: Recorded) -> Answer | None:
        b = self.behaviour
        if b.status is not None:
            headers = {"Retry-After": b.retry_after} if b.retry_after is not None else {}
            return Answer(b.status, {"error": f"fault {b.status}"}, headers)
        if b.poison and b.poison & set(ids_of(seen, self.ids_key)):
            return Answer(400, {"error": "one event of this batch is invalid"})
        return self.inner(seen) if self.inner is not None else None

    async def _handle(self, request: web.Request) -> web.Response:
        if self.behaviour.delay:
            await asyncio.sleep(self.behaviour.delay)
        response = await super()._handle(request)
        if request.transport is None or request.transport.is_closing():
            # Tagless hung up before the answer (its timeout, on a busy machine): the platform
            # has the events, Tagless will send them again
            self.unheard.append(self.requests[-1].at)
        return response

    def deliveries(self) -> list[Delivery]:
        """Every request seen, as the history records deliveries."""
        return [
            Delivery(self.name, ids_of(seen, self.ids_key), seen.status, seen.at)
            for seen in self.requests
        ]

    def unique_events(self) -> int:
        """Distinct events taken with a 2xx: what a de-duplicating platform keeps."""
        return len({i for d in self.deliveries() if d.ok for i in d.ids})


def ids_of(seen: Recorded, key: str = "events") -> tuple[str, ...]:
    """The event ids of a request body: ``{key: [{"event_id": ...}, ...]}`` (``events`` for
    the webhook, ``data`` for Meta)."""
    try:
        body = seen.json()
    except ValueError:
        return ()
    events = body.get(key, []) if isinstance(body, dict) else []
    return tuple(e["event_id"] for e in events if isinstance(e, dict) and "event_id" in e)


# -- the config ------------------------------------------------------------------------------


@dataclass
class ChaosConfig(TaglessConfig):
    """The harness's config directory, with one webhook destination per platform URL of
    ``hooks`` (and the ``extra`` ones) and any server, outbox or delivery key set."""

    hooks: dict[str, str] = field(default_factory=dict)
    #: Destinations other than webhooks, as their YAML mappings (a ``meta_capi`` with its
    #: ``endpoint`` on a fake, say).
    extra: list[dict[str, Any]] = field(default_factory=list)
    outbox: dict[str, Any] = field(default_factory=dict)
    server: dict[str, Any] = field(default_factory=dict)
    delivery: dict[str, Any] = field(default_factory=dict)
    max_batch_size: int = 100
    webhook_timeout_secs: float = 5.0

    def __post_init__(self) -> None:
        (self.directory / "stores").mkdir(parents=True, exist_ok=True)
        self.write()

    def write(self) -> None:
        """(Re)write the files from the fields (a test may change ``hooks`` before a start)."""
        server = {"host": "127.0.0.1", "port": self.ingest_port}
        server["shutdown_grace_secs"] = self.shutdown_grace_secs
        delivery = {
            "initial_backoff_secs": self.initial_backoff_secs,
            "max_backoff_secs": self.max_backoff_secs,
            "timeout_secs": self.webhook_timeout_secs,
        }
        lines = {
            "server": {**server, **self.server},
            "outbox": {"path": str(self.db_path), "lease_secs": self.lease_secs, **self.outbox},
            "admin": {"host": "127.0.0.1", "port": self.admin_port, "token": ADMIN_TOKEN},
            "logging": {"level": "info", "format": "json"},
            "delivery": {**delivery, **self.delivery},
        }
        # JSON is YAML: every value is written exactly, paths quoted
        text = "".join(f"{key}: {json.dumps(value)}\n" for key, value in lines.items())
        (self.directory / "tagless.yaml").write_text(text)
        destinations = [
            {"id": name, "type": "webhook", "url": url, "max_batch_size": self.max_batch_size}
            for name, url in self.hooks.items()
        ]
        store = {
            "store": "shop",
            "write_keys": [WRITE_KEY],
            "client_ip": {"trusted_proxies": ["127.0.0.1/32"], "own_addresses": ["192.0.2.10"]},
            "destinations": [*destinations, *self.extra],
        }
        (self.directory / "stores" / "shop.yaml").write_text(json.dumps(store, indent=1))

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"


# -- the rig ---------------------------------------------------------------------------------


@dataclass
class Rig:
    """Platforms, the server, the history and the load of one scenario."""

    platforms: dict[str, Platform]
    server: TaglessServer
    history: History
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:6])

    @property
    def config(self) -> ChaosConfig:
        config = self.server.config
        assert isinstance(config, ChaosConfig)
        return config

    def collect(self) -> History:
        """Put every request the platforms saw into the history (call before checking), and
        every answer Tagless no longer heard as a fault that allows a duplicate."""
        self.history.deliveries = [d for p in self.platforms.values() for d in p.deliveries()]
        self.history.deliveries.sort(key=lambda d: d.at)
        for name, platform in self.platforms.items():
            for at in platform.unheard:
                unheard = Fault("answered after Tagless hung up", at, at, name, duplicates=True)
                self.history.faults.append(unheard)
        return self.history

    def delivered_everywhere(self, ids: set[str], withheld: dict[str, set[str]] | None = None):
        """A check for :func:`wait_until`: every platform took every id of ``ids`` with a 2xx."""
        withheld = withheld or {}

        def check() -> bool:
            for name, platform in self.platforms.items():
                got = {i for d in platform.deliveries() if d.ok for i in d.ids}
                if not ids - withheld.get(name, set()) <= got:
                    return False
            return True

        return check

    def through(self, name: str, url: str) -> None:
        """Send ``name``'s deliveries to ``url`` instead (a fault proxy); before a start."""
        self.config.hooks[name] = f"{url}/{name}"
        self.config.write()

    async def finish(
        self,
        within: float = 90.0,
        *,
        withheld: dict[str, set[str]] | None = None,
        dedups: tuple[str, ...] = (),
    ) -> tuple[bool, int, Verdict]:
        """Wait for every acknowledged event to arrive, stop the server (SIGTERM), and check
        the history: whether it drained, the exit code, the checker's verdict."""
        drained = await self.drained(within, withheld)
        code = await self.server.stop()
        verdict = check(
            self.collect(),
            routed=self.platforms,
            withheld=withheld,
            dedups=dedups,
            # the file's own checks; a PostgreSQL outbox (``outbox: {url}``) has no file
            outbox=None if "url" in self.config.outbox else self.config.db_path,
        )
        return drained, code, verdict

    async def drained(self, within: float, withheld: dict[str, set[str]] | None = None) -> bool:
        """Wait until every acknowledged event reached every platform."""
        check = self.delivered_everywhere(self.history.acked, withheld)
        return await wait_until(check, within, step=0.2)

    def load(
        self,
        *,
        clients: int,
        batch: tuple[int, int] = (10, 40),
        pause: float = 0.0,
        within: float = 5.0,
        seed: int = 0,
    ) -> Load:
        return Load(self, clients, batch, pause, within, seed)

    async def post(self, ids: list[str], *, within: float = 5.0) -> str:
        """One batch outside any load; recorded; returns its outcome."""
        async with aiohttp.ClientSession() as session:
            sent = await post_batch(session, self.config.ingest_url, ids, within=within)
        self.history.submitted(sent)
        return sent.outcome

    async def post_messages(self, messages: list[dict[str, Any]], per_batch: int = 40) -> None:
        """Post whole Segment messages in batches, each recorded; every one must be acked."""
        url = f"{self.config.ingest_url}/v1/batch"
        headers = {"Authorization": AUTHORIZATION, "Content-Type": "application/json"}
        async with aiohttp.ClientSession() as session:
            for start in range(0, len(messages), per_batch):
                chunk = messages[start : start + per_batch]
                began = time.monotonic()
                body = json.dumps({"batch": chunk})
                async with session.post(url, data=body, headers=headers) as answer:
                    text = await answer.text()
                assert answer.status == 200, text
                ids = tuple(m["messageId"] for m in chunk)
                self.history.submitted(Sent(ids, began, time.monotonic(), ACKED, answer.status))


class Load:
    """Clients posting batches of fresh ids until stopped; every request goes in the history."""

    def __init__(
        self,
        rig: Rig,
        clients: int,
        batch: tuple[int, int],
        pause: float,
        within: float,
        seed: int,
    ) -> None:
        self.rig = rig
        self.clients = clients
        self.batch = batch
        self.pause = pause
        self.within = within
        self.seed = seed
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Load:
        connector = aiohttp.TCPConnector(limit=self.clients, force_close=True)
        self._session = aiohttp.ClientSession(connector=connector)
        self._tasks = [asyncio.create_task(self._client(n)) for n in range(self.clients)]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        await asyncio.wait_for(asyncio.gather(*self._tasks), self.within + 15)
        if self._session is not None:
            await self._session.close()

    async def _client(self, n: int) -> None:
        assert self._session is not None
        rng = random.Random(self.seed * 1000 + n)
        url = self.rig.config.ingest_url
        number = 0
        while not self._stop.is_set():
            ids = [f"{self.rig.run}-c{n}-b{number}-{i}" for i in range(rng.randint(*self.batch))]
            number += 1
            sent = await post_batch(self._session, url, ids, within=self.within)
            self.rig.history.submitted(sent)
            if sent.outcome != ACKED:
                await asyncio.sleep(0.05)  # down, restarting or refusing: do not spin
            elif self.pause:
                await asyncio.sleep(self.pause)

    async def until_acked(self, events: int, within: float) -> bool:
        """Wait until at least ``events`` events were acknowledged during this load."""
        return await wait_until(lambda: len(self.rig.history.acked) >= events, within, step=0.05)


@asynccontextmanager
async def rig(
    directory: Path,
    names: list[str],
    *,
    dedups: tuple[str, ...] = (),
    others: tuple[Platform, ...] = (),
    **config: Any,
) -> AsyncIterator[Rig]:
    """Webhook platforms named ``names`` and the ``others`` (configured through ``extra``)
    started, a server configured for them (not started), and a history; the server is
    SIGKILLed and the platforms stopped afterwards."""
    platforms = {name: Platform(name, dedups=name in dedups) for name in names}
    for platform in platforms.values():
        await platform.start()
    hooks = {name: f"{p.url}/{name}" for name, p in platforms.items()}
    for other in others:
        if not other.url:  # one the caller started, to put its URL in ``extra``
            await other.start()
        platforms[other.name] = other
    server = TaglessServer(ChaosConfig(directory, "", hooks=hooks, **config))
    try:
        yield Rig(platforms, server, History())
    finally:
        server.cleanup()
        for platform in platforms.values():
            await platform.stop()


def report(title: str, did: str, figures: str) -> None:
    """Print what a scenario did and its figures (pytest shows it with -s or -rP)."""
    print(f"\n== {title}\n{did}\n{figures}")


def elapsed(since: float) -> float:
    return time.monotonic() - since


Check = Callable[[], bool]
