"""A broken plugin installed beside good ones: the stores that do not use it serve and deliver."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.cli import main
from router.testing.fake_platform import FakePlatform
from router.testing.server import RunningTagless, write_config_dir
from tests.process.harness import wait_until
from tests.sdk.installed import GOOD_PLUGIN, install_broken, install_ping

GOOD = """\
store: good
write_keys: [good-key-12345678]
destinations:
  - {{id: hook, type: webhook, url: "{url}/hook"}}
"""
BAD = """\
store: bad
write_keys: [bad-key-12345678]
destinations:
  - {id: tt, type: broken}
"""
BATCH = {
    "batch": [{"type": "track", "event": "Order Completed", "messageId": "m-1", "userId": "u1"}]
}


@pytest.fixture(autouse=True)
def broken_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_broken(tmp_path / "site", monkeypatch, "ImportError('no module named vendor_sdk')")


async def test_the_store_without_the_broken_plugin_serves_and_delivers(
    tmp_path: Path, platform: FakePlatform
) -> None:
    """The good store takes /v1/batch and its webhook gets the event; the store that uses the
    broken plugin is refused, with the plugin's name and error, and its sender gets a 503
    (retry later, nothing stored) rather than a 401 that would make it drop the events."""
    root = write_config_dir(tmp_path / "cfg", GOOD.format(url=platform.url), BAD)
    tagless = await RunningTagless(root).start()
    try:
        [refusal] = tagless.refused
        [issue] = refusal.issues
        assert refusal.store.store == "bad"
        assert "plugin 'broken'" in issue.message and "ImportError" in issue.message
        status, _ = await tagless.post("/v1/batch", BATCH, key="good-key-12345678")
        assert status == 200
        assert await wait_until(lambda: len(platform.delivered_events()) == 1, within=30)
        assert platform.delivered_events()[0]["event_id"] == "m-1"
        status, answer = await tagless.post("/v1/batch", BATCH, key="bad-key-12345678")
        assert (status, answer["error"]["code"]) == (503, "store_refused")
        assert "store 'bad' is not served" in answer["error"]["message"]
        status, _ = await tagless.post("/v1/batch", BATCH, key="no-such-key-1234")
        assert status == 401
    finally:
        await tagless.stop()


def test_check_fails_for_the_store_that_uses_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`tagless check` exits 2 naming file:line, destination, plugin package and error."""
    root = write_config_dir(tmp_path / "cfg", GOOD.format(url="http://127.0.0.1:9"), BAD)
    with pytest.raises(SystemExit) as exited:
        main(["check", "--config", str(root)])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"{root / 'stores' / 'store1.yaml'}:4: destinations[0].type: destination 'tt'" in err
    assert "tagless-destination-broken 0.3.0" in err and "no module named vendor_sdk" in err


def test_check_warns_about_a_broken_plugin_no_store_uses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Unused, the broken plugin does not fail the check but is reported once."""
    root = write_config_dir(tmp_path / "cfg", GOOD.format(url="http://127.0.0.1:9"))
    with pytest.raises(SystemExit) as exited:
        main(["check", "--config", str(root)])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.count("plugin 'broken'") == 1 and "(no store uses it)" in out


#: The ping plugin with a config class that crashes (a bug, not a ValueError) on its settings.
CRASHING_CONFIG = GOOD_PLUGIN.replace(
    "    timeout_secs: float = 5.0\n",
    "    timeout_secs: float = 5.0\n\n"
    "    def __attrs_post_init__(self):\n"
    "        raise RuntimeError(f'vendor table missing for {self.endpoint}')\n",
)
PING = """\
store: ping
write_keys: [ping-key-12345678]
destinations:
  - {{id: p, type: ping{settings}}}
"""


@pytest.mark.parametrize(
    ("source", "settings", "said"),
    [
        (CRASHING_CONFIG, ", endpoint: 'http://127.0.0.1:9/secret-path'", "RuntimeError"),
        (GOOD_PLUGIN, "", "endpoint"),
    ],
    ids=["config class crashes", "settings rejected"],
)
async def test_a_plugin_that_fails_on_a_stores_settings_leaves_the_other_stores_serving(
    tmp_path: Path,
    platform: FakePlatform,
    monkeypatch: pytest.MonkeyPatch,
    source: str,
    settings: str,
    said: str,
) -> None:
    """A third-party config class that raises on a store's settings, or rejects them, refuses
    that store only (naming the destination, the error and the plugin's package); the other
    store serves and delivers."""
    install_ping(tmp_path / "ping-site", monkeypatch, source)
    bad = PING.format(settings=settings)
    root = write_config_dir(tmp_path / "cfg", GOOD.format(url=platform.url), bad)
    tagless = await RunningTagless(root).start()
    try:
        [refusal] = tagless.refused
        assert refusal.store.store == "ping"
        text = " ".join(issue.message for issue in refusal.issues)
        assert said in text and "tagless-destination-ping 1.2.0" in text
        assert "secret-path" not in text, "a crash's message may quote the settings"
        status, _ = await tagless.post("/v1/batch", BATCH, key="good-key-12345678")
        assert status == 200
        assert await wait_until(lambda: len(platform.delivered_events()) == 1, within=30)
        status, answer = await tagless.post("/v1/batch", BATCH, key="ping-key-12345678")
        assert (status, answer["error"]["code"]) == (503, "store_refused")
    finally:
        await tagless.stop()


def test_check_names_a_crashing_config_class(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`tagless check` reports the crash as a config error at the destination (exit 2), and
    does not raise it."""
    install_ping(tmp_path / "ping-site", monkeypatch, CRASHING_CONFIG)
    bad = PING.format(settings=", endpoint: 'http://127.0.0.1:9/secret-path'")
    root = write_config_dir(tmp_path / "cfg", GOOD.format(url="http://127.0.0.1:9"), bad)
    with pytest.raises(SystemExit) as exited:
        main(["check", "--config", str(root)])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "destinations[0]" in err and "RuntimeError" in err
    assert "vendor table missing" not in err and "secret-path" not in err
    assert "tagless-destination-ping 1.2.0" in err
