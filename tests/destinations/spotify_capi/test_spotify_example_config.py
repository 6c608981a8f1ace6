"""config/examples/spotify_capi.yaml loads in a store, and bad settings name their key."""

from __future__ import annotations

from pathlib import Path

import pytest

from destinations.spotify_capi import SpotifyCapiConfig
from router.config import ConfigError, load_config
from router.config.examples import as_store

EXAMPLE = Path(__file__).resolve().parents[3] / "config" / "examples" / "spotify_capi.yaml"
TYPES = {"spotify_capi": SpotifyCapiConfig}


def config_dir(root: Path, store_yaml: str | None = None) -> Path:
    (root / "stores").mkdir()
    (root / "tagless.yaml").write_text("admin: {token: test-admin-token}\n")
    text = EXAMPLE.read_text() if store_yaml is None else store_yaml
    (root / "stores" / "shop.yaml").write_text(as_store(text))
    return root


def test_example_store_file_loads(tmp_path: Path) -> None:
    """The example parses with the token read from SPOTIFY_CAPI_TOKEN."""
    config = load_config(config_dir(tmp_path), TYPES, env={"SPOTIFY_CAPI_TOKEN": "tok-1"})
    [store] = config.stores
    [destination] = store.destinations
    settings = destination.settings
    assert isinstance(settings, SpotifyCapiConfig)
    assert (destination.id, destination.type) == ("spotify", "spotify_capi")
    assert settings.token.reveal() == "tok-1"
    assert settings.events_url == "https://capi.spotify.com/capi-direct/events/"
    assert settings.custom_events == {"Gift Card Redeemed": "CUSTOM_EVENT_1"}
    assert "tok-1" not in repr(settings)


def test_wrong_custom_slot_and_connection_id_name_their_keys(tmp_path: Path) -> None:
    """An invalid slot and a connection id with spaces are reported at their key paths."""
    store = EXAMPLE.read_text().replace('"3f2b8c1e-0a4d-4e6f-9b7a-1c2d3e4f5a6b"', '"my connection"')
    store = store.replace(": CUSTOM_EVENT_1", ": CUSTOM_EVENT_6")
    with pytest.raises(ConfigError) as caught:
        load_config(config_dir(tmp_path, store), TYPES, env={"SPOTIFY_CAPI_TOKEN": "tok-1"})
    text = str(caught.value)
    assert "custom_events" in text and "CUSTOM_EVENT_6" in text
    assert "connection_id" in text and "without spaces" in text
