"""Discovery: a broken or missing plugin is named precisely and stops only the stores using it."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.config import ConfigError, load_config, load_config_isolating_plugins
from router.plugins import Plugins, config_classes, load_plugins
from tests.sdk.installed import GOOD_PLUGIN, install_broken, install_ping

STORE = """\
store: {name}
write_keys: [{key}]
destinations:
  - id: {dest_id}
    type: {type}
{settings}"""


def config_dir(root: Path, *stores: dict[str, str]) -> Path:
    (root / "stores").mkdir(parents=True)
    (root / "tagless.yaml").write_text("admin: {token: t0ken-for-tests-1234}\n")
    for index, store in enumerate(stores):
        text = STORE.format(**{"settings": "", "key": f"key-{index}-abcdefgh", **store})
        (root / "stores" / f"{store['name']}.yaml").write_text(text)
    return root


def load(root: Path, found: Plugins) -> None:
    load_config(root, config_classes(found.loaded), {}, plugins=found.notes())


@pytest.fixture
def broken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Plugins:
    """``tagless-destination-broken`` 0.3.0, whose import raises, beside ``ping`` 1.2.0."""
    install_broken(tmp_path / "site", monkeypatch, "RuntimeError('the vendor SDK is missing')")
    install_ping(tmp_path / "site", monkeypatch, GOOD_PLUGIN)
    return load_plugins()


def test_a_plugin_whose_import_fails_does_not_stop_discovery(broken: Plugins) -> None:
    """The broken plugin is kept with its distribution, version and error; the built-ins and
    the good third-party plugin still load."""
    [bad] = broken.broken
    assert (bad.name, bad.distribution, bad.version) == (
        "broken",
        "tagless-destination-broken",
        "0.3.0",
    )
    assert bad.error == "import failed: RuntimeError: the vendor SDK is missing"
    assert {"webhook", "file", "meta_capi", "spotify_capi", "ga4", "ping"} <= set(broken.loaded)


def test_a_store_using_a_broken_plugin_is_an_error_naming_everything(
    broken: Plugins, tmp_path: Path
) -> None:
    """The error names store file and line, destination id, type, distribution, version and
    the plugin's own error."""
    root = config_dir(tmp_path / "cfg", {"name": "shop", "dest_id": "tt", "type": "broken"})
    with pytest.raises(ConfigError) as caught:
        load(root, broken)
    [issue] = caught.value.errors
    text = str(issue)
    assert text.startswith(f"{root / 'stores' / 'shop.yaml'}:5: destinations[0].type: ")
    for part in (
        "destination 'tt'",
        "type 'broken'",
        "tagless-destination-broken 0.3.0",
        "RuntimeError: the vendor SDK is missing",
    ):
        assert part in text


def test_a_type_that_is_not_installed_names_store_line_and_id(tmp_path: Path) -> None:
    """A store naming an uninstalled type: file:line, id, type, and the installed types."""
    root = config_dir(tmp_path / "cfg", {"name": "shop", "dest_id": "tt", "type": "tiktok"})
    with pytest.raises(ConfigError) as caught:
        load(root, load_plugins())
    [issue] = caught.value.errors
    assert (issue.line, issue.path) == (5, "destinations[0].type")
    assert "destination 'tt' (type 'tiktok'): unknown destination type 'tiktok'" in issue.message
    assert "no installed package provides it" in issue.message
    assert "webhook" in issue.message  # what would be valid


def test_settings_the_plugin_rejects_name_its_package(broken: Plugins, tmp_path: Path) -> None:
    """A plugin's config class refusing the settings: the issue names the key, the destination
    and the plugin's distribution and version."""
    root = config_dir(
        tmp_path / "cfg",
        {"name": "shop", "dest_id": "p1", "type": "ping", "settings": "    colour: red\n"},
    )
    with pytest.raises(ConfigError) as caught:
        load(root, broken)
    messages = [str(issue) for issue in caught.value.errors]
    assert any(
        "colour" in m
        and "destination 'p1' (type 'ping'), plugin from tagless-destination-ping 1.2.0" in m
        for m in messages
    ), messages
    assert any("missing required key 'endpoint'" in m for m in messages), messages


def test_serving_refuses_only_the_store_that_uses_the_broken_plugin(
    broken: Plugins, tmp_path: Path
) -> None:
    """Loaded for serving, the store using the broken plugin is left out with its issue; the
    store using the good plugin loads."""
    root = config_dir(
        tmp_path / "cfg",
        {"name": "bad", "dest_id": "tt", "type": "broken"},
        {
            "name": "good",
            "dest_id": "p1",
            "type": "ping",
            "settings": "    endpoint: http://127.0.0.1:9/\n",
        },
    )
    config, refused = load_config_isolating_plugins(
        root, config_classes(broken.loaded), broken.notes(), {}
    )
    assert [store.store for store in config.stores] == ["good"]
    [bad] = refused
    [issue] = bad.issues
    assert bad.store.store == "bad" and [k.key.reveal() for k in bad.store.write_keys] == [
        "key-0-abcdefgh"
    ]
    assert issue.file.endswith("bad.yaml") and "tagless-destination-broken 0.3.0" in issue.message


def test_a_store_with_other_errors_is_not_quietly_left_out(broken: Plugins, tmp_path: Path) -> None:
    """Isolation covers plugin problems only: a store that also has a plain config error
    still fails the whole load."""
    root = config_dir(
        tmp_path / "cfg",
        {"name": "bad", "dest_id": "tt", "type": "broken", "settings": "  bogus: 1\n"},
    )
    with pytest.raises(ConfigError):
        load_config_isolating_plugins(root, config_classes(broken.loaded), broken.notes(), {})


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "def PingDestination():\n    pass\n",
            "it is a function, not a subclass of router.sdk.Destination",
        ),
        (
            GOOD_PLUGIN + "\nPingDestination.name = 'pong'\n",
            "the class calls itself 'pong' but is registered as 'ping'",
        ),
        (
            GOOD_PLUGIN + "\nPingDestination.requires_api = '2'\n",
            "it requires plugin API 2; this Tagless has 1.0",
        ),
        (
            GOOD_PLUGIN + "\nPingDestination.requires_api = '1.9'\n",
            "it requires plugin API 1.9; this Tagless has 1.0",
        ),
    ],
)
def test_a_plugin_that_is_not_a_usable_destination_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, expected: str
) -> None:
    """Not a Destination, registered under another name, or needing another API: refused with
    the reason."""
    install_ping(tmp_path / "site", monkeypatch, source)
    [bad] = load_plugins().broken
    assert bad.error == expected
    assert bad.problem.startswith(
        "plugin 'ping' (ping_plugin:PingDestination) from tagless-destination-ping 1.2.0"
        " cannot be used: "
    )
