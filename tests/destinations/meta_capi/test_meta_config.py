"""The Meta destination's settings: the shipped example loads; bad values name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from destinations.meta_capi import MetaCapiConfig, MetaCapiDestination
from router.config import ConfigError, load_config
from router.config.examples import as_store
from router.secret import Secret

EXAMPLE = Path(__file__).resolve().parents[3] / "config" / "examples" / "meta_capi.yaml"
TYPES: dict[str, type] = {"meta_capi": MetaCapiConfig}


def config_dir(root: Path, store_text: str) -> Path:
    (root / "stores").mkdir(parents=True)
    (root / "tagless.yaml").write_text("admin: {token: admin-token}\n")
    (root / "stores" / "shop.yaml").write_text(store_text)
    return root


def test_the_example_store_file_loads(tmp_path: Path) -> None:
    """config/examples/meta_capi.yaml loads, with the token read from META_TOKEN."""
    root = config_dir(tmp_path, as_store(EXAMPLE.read_text()))
    config = load_config(root, TYPES, env={"META_TOKEN": "EAAB-from-env"})
    [destination] = config.stores[0].destinations
    settings = destination.settings
    assert isinstance(settings, MetaCapiConfig)
    assert (destination.type, settings.pixel_id) == ("meta_capi", "1234567890")
    assert settings.access_token.reveal() == "EAAB-from-env"
    assert "EAAB" not in repr(settings)
    assert settings.base_url == "https://graph.facebook.com/v23.0/1234567890"
    assert (settings.max_batch_size, settings.max_age_days, settings.test_event_code) == (
        1000,
        7,
        None,
    )
    assert MetaCapiDestination.config_class is MetaCapiConfig


@pytest.mark.parametrize(
    ("line", "key", "says"),
    [
        ("pixel_id: pixel-1", "pixel_id", "numeric pixel"),
        ("max_batch_size: 1001", "max_batch_size", "1 to 1000"),
        ("max_age_days: 8", "max_age_days", "1 to 7"),
        ("api_version: '21'", "api_version", "v23.0"),
        ("endpoint: graph.facebook.com", "endpoint", "https://"),
        ("access_token: ''", "access_token", "empty"),
        ("acess_token: x", "acess_token", ""),
    ],
)
def test_bad_settings_name_the_key(tmp_path: Path, line: str, key: str, says: str) -> None:
    """Each invalid or unknown key is reported at its own path with what would be valid."""
    settings = {"pixel_id": "pixel_id: '1'", "access_token": "access_token: t"}
    settings[line.split(":")[0]] = line
    body = ", ".join(settings.values())
    store = (
        f"store: shop\nwrite_keys: [k]\ndestinations:\n  - {{id: meta, type: meta_capi, {body}}}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(config_dir(tmp_path, store), TYPES, env={})
    text = str(caught.value)
    assert f"destinations[0].{key}" in text
    assert says in text


def test_defaults() -> None:
    """Only pixel_id and access_token are required."""
    config = MetaCapiConfig(pixel_id="1", access_token=Secret("t"))
    assert (config.endpoint, config.timeout_secs, config.api_version) == (
        "https://graph.facebook.com",
        10.0,
        "v23.0",
    )
