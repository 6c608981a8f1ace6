"""The example plugin package, built and pip-installed into a throwaway venv beside Tagless:
a store uses it, events posted to /v1/batch reach its (fake) platform; a broken plugin beside
it stops only the store that uses it; uninstalled, `tagless check` names what is missing."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from router.testing.fake_platform import Answer, FakePlatform, Recorded
from tests.process import harness
from tests.process.harness import ServerFailed, TaglessConfig, TaglessServer, wait_until
from tests.sdk.plugin_venv import EXAMPLE, PluginVenv, broken_source, build_wheel

pytestmark = pytest.mark.slow

PIN_KEY = "pin-store-key-0001"
BROKEN_KEY = "broken-store-key-0001"


def pinterest_answer(request: Recorded) -> Answer:
    """Pinterest's documented 200 answer: every event ``processed``, in request order."""
    count = len(request.json()["data"])
    events = [{"status": "processed", "error_message": None, "warning_message": None}] * count
    body = {"num_events_received": count, "num_events_processed": count, "events": events}
    return Answer(200, body)


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The example package and a broken plugin, each built into a wheel once."""
    out = tmp_path_factory.mktemp("wheels")
    broken = broken_source(tmp_path_factory.mktemp("broken-src"))
    return {"pinterest": build_wheel(EXAMPLE, out), "broken": build_wheel(broken, out)}


@pytest.fixture
def plugin_venv(tmp_path: Path, wheels: dict[str, Path]) -> PluginVenv:
    env = PluginVenv(tmp_path / "venv")
    env.install(wheels["pinterest"])
    env.install(wheels["broken"])
    return env


@pytest_asyncio.fixture
async def pinterest() -> AsyncIterator[FakePlatform]:
    async with FakePlatform(responder=pinterest_answer) as server:
        yield server


@pytest.fixture
def config(tmp_path: Path, platform: FakePlatform, pinterest: FakePlatform) -> TaglessConfig:
    """Store ``shop`` (webhook), store ``pins`` (the plugin), store ``bad`` (the broken one)."""
    made = TaglessConfig(tmp_path / "config", platform.url)
    stores = made.directory / "stores"
    (stores / "pins.yaml").write_text(
        f"store: pins\nwrite_keys: [{PIN_KEY}]\n"
        "client_ip: {own_addresses: [192.0.2.10]}\n"
        "destinations:\n"
        "  - id: pinterest\n"
        "    type: pinterest_capi\n"
        '    ad_account_id: "549757463328"\n'
        "    access_token: ${PINTEREST_TOKEN}\n"
        f"    endpoint: {json.dumps(pinterest.url)}\n"
    )
    (stores / "bad.yaml").write_text(
        f"store: bad\nwrite_keys: [{BROKEN_KEY}]\n"
        "client_ip: {own_addresses: [192.0.2.10]}\n"
        "destinations:\n  - {id: tt, type: broken}\n"
    )
    return made


@pytest.fixture
def server(
    config: TaglessConfig, plugin_venv: PluginVenv, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TaglessServer]:
    """`tagless serve` run by the throwaway venv's interpreter."""
    monkeypatch.setattr(harness, "tagless_command", plugin_venv.command)
    monkeypatch.setenv("PINTEREST_TOKEN", "pinterest-conversion-token")
    made = TaglessServer(config)
    yield made
    made.cleanup()


async def start(server: TaglessServer, attempts: int = 3) -> None:
    """Start the server; if a port picked free was taken meanwhile (other processes run
    tests on this machine too), pick new ones and start again."""
    for attempt in range(attempts):
        try:
            await server.start(within=60)
            return
        except ServerFailed as error:
            if "address already in use" not in str(error) or attempt == attempts - 1:
                raise
            old = server.config
            server.config = TaglessConfig(old.directory, old.sink_url)


async def post(base: str, key: str, ids: list[str]) -> int:
    auth = {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}
    batch = {
        "batch": [
            {
                **harness.message(i),
                "context": {"ip": "81.2.69.142", "userAgent": "Mozilla/5.0 (X11; Linux x86_64)"},
            }
            for i in ids
        ]
    }
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{base}/v1/batch", json=batch, headers=auth, timeout=aiohttp.ClientTimeout(total=30)
        ) as answer,
    ):
        return answer.status


def sent_event_ids(platform: FakePlatform) -> list[str]:
    return [event["event_id"] for seen in platform.requests for event in seen.json()["data"]]


async def test_events_reach_the_plugin_platform_and_the_broken_plugin_stops_one_store(
    server: TaglessServer, pinterest: FakePlatform, platform: FakePlatform
) -> None:
    """With the example plugin and a broken one installed: the plugin's store delivers to the
    fake Pinterest (Bearer token, documented body), the webhook store delivers, the store of
    the broken plugin is refused (503: its sender retries) and the problem is logged once at
    start."""
    await start(server)
    base = server.config.ingest_url
    assert await post(base, PIN_KEY, ["p-1", "p-2", "p-3"]) == 200
    assert await wait_until(lambda: sorted(sent_event_ids(pinterest)) == ["p-1", "p-2", "p-3"], 60)
    first = pinterest.requests[0]
    assert first.path == "/v5/ad_accounts/549757463328/events"
    assert first.headers["Authorization"] == "Bearer pinterest-conversion-token"
    assert first.json()["data"][0]["event_name"] == "checkout"

    assert await post(base, harness.WRITE_KEY, ["w-1"]) == 200
    assert await wait_until(lambda: platform.delivered_events() != [], 60)
    assert await post(base, BROKEN_KEY, ["b-1"]) == 503  # refused: its sender retries later

    logged = server.log_events(slice(-1, None))  # the run that started
    broken = [r for r in logged if r.get("event") == "destination_plugin_broken"]
    refused = [r for r in logged if r.get("event") == "store_refused"]
    assert len(broken) == 1 and broken[0]["distribution"] == "tagless-destination-broken"
    assert "vendor_sdk" in broken[0]["error"]
    [store] = refused
    assert store["file"].endswith("bad.yaml") and "plugin 'broken'" in store["problem"]


def test_destinations_lists_the_plugin_and_the_broken_one(plugin_venv: PluginVenv) -> None:
    """`tagless destinations --json` shows the plugin's package and keys, and the broken
    plugin with its error; the built-ins are there too."""
    done = plugin_venv.tagless("destinations", "--json")
    assert done.returncode == 0, done.stderr
    listed: dict[str, Any] = {item["name"]: item for item in json.loads(done.stdout)}
    pin = listed["pinterest_capi"]
    assert (pin["distribution"], pin["version"]) == ("tagless-destination-pinterest", "0.1.0")
    keys = {key["name"]: key for key in pin["config_keys"]}
    assert keys["access_token"]["type"] == "secret" and keys["access_token"]["description"]
    assert pin["batch_limit"] == 1000 and pin["test_mode"] is True
    assert "vendor_sdk" in listed["broken"]["error"]
    assert {"webhook", "meta_capi", "ga4"} <= set(listed)


def test_check_fails_once_the_plugin_is_uninstalled(
    plugin_venv: PluginVenv, config: TaglessConfig
) -> None:
    """Installed, `tagless check` fails only for the broken plugin's store; uninstalled, it
    names the store file and line, the destination id and the missing type."""
    (config.directory / "stores" / "bad.yaml").unlink()
    ok = plugin_venv.tagless("check", "--config", str(config.directory))
    assert ok.returncode == 0, ok.stderr
    assert "warning: plugin 'broken'" in ok.stdout

    plugin_venv.uninstall("tagless-destination-pinterest")
    failed = plugin_venv.tagless("check", "--config", str(config.directory))
    assert failed.returncode == 2
    pins = config.directory / "stores" / "pins.yaml"
    assert (
        f"{pins}:6: destinations[0].type: destination 'pinterest' (type 'pinterest_capi'):"
        " unknown destination type 'pinterest_capi'" in failed.stderr
    )


def test_the_installed_example_passes_its_own_tests(plugin_venv: PluginVenv) -> None:
    """The example's tests (the contract kit, golden payloads) pass against the installed
    wheel, run from the package's folder as its author would."""
    done = subprocess.run(
        [str(plugin_venv.python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=EXAMPLE,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout
