"""GA4 settings: the example store file loads, and impossible settings are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from destinations.ga4 import Ga4Config, Ga4Destination
from router.config import ConfigError, load_config
from router.config.examples import as_store
from router.plugins import config_classes, discover
from router.secret import Secret

EXAMPLE = Path(__file__).resolve().parents[3] / "config" / "examples" / "ga4.yaml"
ENV = {"TAGLESS_SHOP_WRITE_KEY": "shop-key", "GA4_API_SECRET": "from-env", "ADMIN": "t"}


def config_dir(root: Path, store: str) -> Path:
    (root / "stores").mkdir(parents=True)
    (root / "tagless.yaml").write_text(
        f"outbox: {{path: {root / 't.db'}}}\nadmin: {{token: ${{ADMIN}}}}\n"
    )
    (root / "stores" / "shop.yaml").write_text(store)
    return root


def types() -> dict[str, type]:
    return config_classes({**discover(), "ga4": Ga4Destination})


def test_the_example_store_file_loads(tmp_path: Path) -> None:
    """config/examples/ga4.yaml parses into a Ga4Config with the secret from the environment."""
    root = config_dir(tmp_path, as_store(EXAMPLE.read_text()))
    config = load_config(root, types(), ENV)
    [destination] = config.stores[0].destinations
    settings = destination.settings
    assert isinstance(settings, Ga4Config)
    assert (settings.measurement_id, settings.endpoint) == (
        "G-XXXX",
        "https://www.google-analytics.com",
    )
    assert settings.api_secret.reveal() == "from-env"
    assert "from-env" not in repr(settings)


@pytest.mark.parametrize(
    ("keys", "says"),
    [
        ("api_secret: s", "exactly one of measurement_id"),
        ("api_secret: s, measurement_id: G-A1, firebase_app_id: x", "exactly one of"),
        ("api_secret: s, measurement_id: '123456'", "G-XXXXXXX"),
        ("api_secret: s, measurement_id: G-A1, max_batch_size: 26", "1 to 25"),
        ("api_secret: s, measurement_id: G-A1, max_age_hours: 100", "at most 72"),
        ("api_secret: s, measurement_id: G-A1, debug: true", "unknown key 'debug'"),
    ],
)
def test_impossible_settings_are_config_errors(tmp_path: Path, keys: str, says: str) -> None:
    """Missing or contradictory stream IDs and limits above GA4's are refused with a reason."""
    store = f"store: shop\nwrite_keys: [k]\ndestinations:\n  - {{id: ga4, type: ga4, {keys}}}\n"
    with pytest.raises(ConfigError, match=says):
        load_config(config_dir(tmp_path, store), types(), ENV)


def test_endpoint_trailing_slash_is_dropped() -> None:
    """An endpoint written with a trailing slash still builds /mp/collect correctly."""
    config = Ga4Config(api_secret=Secret("s"), measurement_id="G-A1", endpoint="http://x/")
    assert config.endpoint == "http://x"
