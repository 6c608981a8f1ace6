"""The Google Ads destination's settings: the example loads; bad values name the key and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from destinations.google_ads import GoogleAdsConfig, GoogleAdsDestination
from router.config import ConfigError, load_config
from router.config.examples import as_store
from router.google_auth import GoogleCredentials
from router.http import HttpClient
from router.secret import Secret

EXAMPLE = Path(__file__).resolve().parents[3] / "config" / "examples" / "google_ads.yaml"
TYPES: dict[str, type] = {"google_ads": GoogleAdsConfig}
ENV = {
    "GOOGLE_OAUTH_CLIENT_ID": "client-1.apps.googleusercontent.com",
    "GOOGLE_OAUTH_CLIENT_SECRET": "secret-1",
    "GOOGLE_OAUTH_REFRESH_TOKEN": "1//refresh",
}
OAUTH = "{client_id: c, client_secret: s, refresh_token: r}"


def settings(**overrides: object) -> GoogleAdsConfig:
    base: dict[str, object] = {
        "customer_id": "1234567890",
        "conversion_actions": {"purchase": "987654321", "generate_lead": "987654322"},
        "credentials": GoogleCredentials(
            client_id="c", client_secret=Secret("s"), refresh_token=Secret("r")
        ),
    }
    return GoogleAdsConfig(**(base | overrides))  # type: ignore[arg-type]


def config_dir(root: Path, store_text: str) -> Path:
    (root / "stores").mkdir(parents=True)
    (root / "tagless.yaml").write_text("admin: {token: admin-token}\n")
    (root / "stores" / "shop.yaml").write_text(store_text)
    return root


def store(*lines: str) -> str:
    lines_by_key = {
        "customer_id": 'customer_id: "1234567890"',
        "conversion_actions": 'conversion_actions: {purchase: "987654321"}',
        "credentials": f"credentials: {OAUTH}",
    }
    for line in lines:
        lines_by_key[line.split(":")[0].strip()] = line
    entries = "\n".join(f"    {value}" for value in lines_by_key.values())
    head = "store: shop\nwrite_keys: [k]\ndestinations:\n  - id: ads\n    type: google_ads\n"
    return f"{head}{entries}\n"


def problems(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(config_dir(tmp_path, text), TYPES, env={})
    return str(caught.value)


def test_the_example_fragment_loads(tmp_path: Path) -> None:
    """config/examples/google_ads.yaml loads: data_manager, secrets from the environment."""
    config = load_config(config_dir(tmp_path, as_store(EXAMPLE.read_text())), TYPES, env=ENV)
    [destination] = config.stores[0].destinations
    loaded = destination.settings
    assert isinstance(loaded, GoogleAdsConfig)
    assert (loaded.mode, loaded.customer_id) == ("data_manager", "1234567890")
    assert loaded.conversion_actions == {"purchase": "987654321", "generate_lead": "987654322"}
    assert loaded.credentials.refresh_token is not None
    assert loaded.credentials.refresh_token.reveal() == "1//refresh"
    assert "1//refresh" not in repr(loaded) and "secret-1" not in repr(loaded)
    assert loaded.ingest_url == "https://datamanager.googleapis.com/v1/events:ingest"
    assert (destination.consent.denied, destination.consent.unknown) == ("skip", "send")


def test_endpoint_and_scope_follow_the_mode() -> None:
    """Each mode has its own default base URL and OAuth scope; api_version is click upload's."""
    click = settings(mode="click_upload", developer_token=Secret("dev-token"))
    data = settings()
    assert data.base_url == "https://datamanager.googleapis.com"
    assert data.scope == "https://www.googleapis.com/auth/datamanager"
    assert click.scope == "https://www.googleapis.com/auth/adwords"
    assert click.upload_url == (
        "https://googleads.googleapis.com/v26/customers/1234567890:uploadClickConversions"
    )
    moved = settings(endpoint="http://127.0.0.1:9999/")
    assert moved.ingest_url == "http://127.0.0.1:9999/v1/events:ingest"


def test_only_mapped_events_are_routed() -> None:
    """The destination admits the events conversion_actions names, nothing else."""
    destination = GoogleAdsDestination(settings(), HttpClient.__new__(HttpClient))
    assert destination.routed_events() == frozenset({"purchase", "generate_lead"})


@pytest.mark.parametrize(
    ("line", "key", "says"),
    [
        ('customer_id: "123-456-7890"', "customer_id", "without the hyphens: '1234567890'"),
        ('login_customer_id: "MCC"', "login_customer_id", "digits only"),
        ("conversion_actions: {}", "conversion_actions", "at least one"),
        ('conversion_actions: {order: "1"}', "conversion_actions", "not a canonical event"),
        ("conversion_actions: {purchase: abc}", "conversion_actions", "ctId="),
        ("conversion_actions: {purchase: 987654321}", "conversion_actions.purchase", "quote it"),
        ("mode: offline", "mode", "click_upload"),
        ("max_batch_size: 2001", "max_batch_size", "1 to 2000"),
        ("api_version: '26'", "api_version", "v26"),
        ("endpoint: datamanager.googleapis.com", "endpoint", "https://"),
        (
            "error_classes: {TOO_RECENT_EVENT: later}",
            "error_classes.TOO_RECENT_EVENT",
            "retry_later",
        ),
        ("developer_token: ''", "developer_token", "empty"),
        ("credentials: {client_id: c}", "credentials", "missing: client_secret, refresh_token"),
        (
            "credentials: {service_account_file: /nonexistent/key.json}",
            "service_account_file",
            "no such file",
        ),
        ("customer: x", "customer", "valid keys"),
    ],
)
def test_bad_settings_name_the_key(tmp_path: Path, line: str, key: str, says: str) -> None:
    """Each invalid or unknown key is reported at its own path with what would be valid."""
    text = problems(tmp_path, store(line))
    assert f".{key}" in text
    assert says in text


def test_click_upload_needs_a_developer_token(tmp_path: Path) -> None:
    """mode: click_upload without developer_token fails check, saying where to get one."""
    text = problems(tmp_path, store("mode: click_upload"))
    assert "destinations[0]" in text and "developer_token is required" in text
