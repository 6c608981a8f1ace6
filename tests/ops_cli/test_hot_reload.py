"""Hot reload under load: while clients post events without pause, the config is reloaded
through POST /api/reload (a new store, a destination changed), an invalid config and a
restart-only change are refused with their errors and the running config kept, and SIGHUP
reloads too. No request fails and every acknowledged event is delivered."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from router.app import Tagless
from router.config import load_config
from router.plugins import config_classes, discover
from router.testing.server import RunningTagless, basic_auth, write_config_dir

TOKEN = "test-admin-token"
WAIT_SECS = 60.0  # generous: two busy cores shared with other test runs


def store_yaml(name: str, key: str, sink: Path) -> str:
    return (
        f"store: {name}\nwrite_keys: [{key}]\n"
        f"destinations:\n  - {{id: archive, type: file, path: {sink}}}\n"
    )


class Load:
    """Clients posting tracks without pause, each to a store's write key; every answer kept."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.keys = ["shop-key"]
        self.acked: dict[str, list[str]] = {}
        self.failures: list[tuple[int, Any]] = []
        self._ids = itertools.count()
        self._stop = asyncio.Event()

    async def client(self, session: aiohttp.ClientSession, which: int) -> None:
        while not self._stop.is_set():
            key = self.keys[which % len(self.keys)]
            event_id = f"{key}-{next(self._ids)}"
            body = {
                "type": "track",
                "event": "Order Completed",
                "messageId": event_id,
                "anonymousId": "anon-1",
                "properties": {"order_id": event_id},
            }
            async with session.post(
                self.base + "/v1/track", json=body, headers=basic_auth(key)
            ) as answer:
                if answer.status == 200:
                    self.acked.setdefault(key, []).append(event_id)
                else:
                    self.failures.append((answer.status, await answer.text()))

    async def run(self, clients: int) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as session:
            tasks = [asyncio.create_task(self.client(session, n)) for n in range(clients)]
            try:
                yield
            finally:
                self._stop.set()
                await asyncio.gather(*tasks)

    def count(self) -> int:
        return sum(len(ids) for ids in self.acked.values())


async def grows(load: Load, by: int = 20) -> None:
    """Wait until the clients have had ``by`` more events acknowledged."""
    start = load.count()
    for _ in range(int(WAIT_SECS / 0.02)):
        if load.count() >= start + by or load.failures:
            return
        await asyncio.sleep(0.02)


def delivered(*sinks: Path) -> set[str]:
    found = set()
    for sink in sinks:
        if sink.exists():
            found |= {orjson.loads(line)["event_id"] for line in sink.read_bytes().splitlines()}
    return found


async def until_delivered(expected: set[str], *sinks: Path) -> set[str]:
    for _ in range(int(WAIT_SECS / 0.05)):
        if expected <= (seen := delivered(*sinks)):
            return seen
        await asyncio.sleep(0.05)
    return delivered(*sinks)


async def post_reload(
    session: aiohttp.ClientSession, admin: str, **headers: str
) -> tuple[int, Any]:
    async with session.post(admin + "/api/reload", headers=headers) as answer:
        return answer.status, await answer.json()


async def test_reload_under_load_loses_nothing_and_refuses_a_bad_config(tmp_path: Path) -> None:
    """Four clients post throughout; a reload adds store ``outlet`` and points shop's archive
    at a new file: events acknowledged after it land in the new file; a config with an
    unknown key and one changing server.port are refused (422, errors named, logged), the
    running config kept; no request fails; every acknowledged event is delivered."""
    root = write_config_dir(tmp_path, store_yaml("shop", "shop-key", tmp_path / "a.jsonl"))
    stores = root / "stores"
    running = await RunningTagless(root).start()
    app = running.app
    admin = f"http://127.0.0.1:{app.ports['admin']}"
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    load = Load(running.base)
    try:
        async with aiohttp.ClientSession() as session:
            async for _ in load.run(clients=4):
                await grows(load)
                status, _ = await post_reload(session, admin)  # no token: no reload
                assert status == 401 and app.last_reload is None

                (stores / "store0.yaml").write_text(
                    store_yaml("shop", "shop-key", tmp_path / "b.jsonl")
                )
                (stores / "store1.yaml").write_text(
                    store_yaml("outlet", "outlet-key", tmp_path / "c.jsonl")
                )
                status, answer = await post_reload(session, admin, **bearer)
                assert (status, answer["ok"]) == (200, True), answer
                assert answer["changes"] == ["store outlet: added", "store shop: changed"]
                reloaded_at = load.count()
                load.keys.append("outlet-key")  # half the clients now post to the new store
                await grows(load)

                (stores / "store2.yaml").write_text("store: broken\nwrite_keys: [k]\nbogus: 1\n")
                status, answer = await post_reload(session, admin, **bearer)
                assert (status, answer["ok"]) == (422, False)
                assert any("store2.yaml" in e and "bogus" in e for e in answer["errors"])
                assert app.last_reload is not None and not app.last_reload.ok
                (stores / "store2.yaml").unlink()
                await grows(load)

                tagless_yaml = root / "tagless.yaml"
                good = tagless_yaml.read_text()
                tagless_yaml.write_text(good.replace("port: 0}", "port: 1}", 1))
                status, answer = await post_reload(session, admin, **bearer)
                assert status == 422
                assert answer["errors"] == [
                    "server.port: changed, which takes a restart, not a reload"
                ]
                tagless_yaml.write_text(good)
                await grows(load)
            assert load.failures == []
            shop, outlet = load.acked["shop-key"], load.acked["outlet-key"]
            assert len(outlet) > 0
            sinks = [tmp_path / f"{name}.jsonl" for name in "abc"]
            seen = await until_delivered(set(shop) | set(outlet), *sinks)
            assert set(shop) | set(outlet) <= seen
            after = set(shop[reloaded_at:]) if reloaded_at < len(shop) else set()
            assert after.isdisjoint(delivered(tmp_path / "a.jsonl"))  # the old file: no more
            assert set(outlet) <= delivered(tmp_path / "c.jsonl")
    finally:
        await running.stop()


async def test_sighup_reloads_a_serving_tagless(tmp_path: Path) -> None:
    """SIGHUP to a process serving until signalled adds a store: its write key then works;
    SIGTERM still stops it."""
    root = write_config_dir(tmp_path, store_yaml("shop", "shop-key", tmp_path / "a.jsonl"))
    plugins = discover()
    app = Tagless(load_config(root, config_classes(plugins)), plugins)
    serving = asyncio.create_task(app.serve_until_signalled())
    try:
        for _ in range(int(WAIT_SECS / 0.02)):
            if "ingest" in app.ports or serving.done():
                break
            await asyncio.sleep(0.02)
        (root / "stores" / "store1.yaml").write_text(
            store_yaml("outlet", "outlet-key", tmp_path / "c.jsonl")
        )
        os.kill(os.getpid(), signal.SIGHUP)
        for _ in range(int(WAIT_SECS / 0.02)):
            if app.last_reload is not None:
                break
            await asyncio.sleep(0.02)
        assert app.last_reload is not None and app.last_reload.ok
        base = f"http://127.0.0.1:{app.ports['ingest']}"
        body = {"type": "track", "event": "Signed Up", "messageId": "m-1", "anonymousId": "a"}
        async with (
            aiohttp.ClientSession() as session,
            session.post(base + "/v1/track", json=body, headers=basic_auth("outlet-key")) as answer,
        ):
            assert answer.status == 200
    finally:
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(serving, WAIT_SECS)


async def test_a_reload_before_the_start_is_refused_and_reads_nothing(tmp_path: Path) -> None:
    """A SIGHUP or API call while Tagless starts (or stops) changes nothing and says why."""
    from router.reload import reload

    root = write_config_dir(tmp_path, store_yaml("shop", "shop-key", tmp_path / "a.jsonl"))
    plugins = discover()
    app = Tagless(load_config(root, config_classes(plugins)), plugins)
    result = await reload(app)
    assert (result.ok, result.errors) == (False, ["Tagless is starting or stopping"])
    assert app.last_reload is None
