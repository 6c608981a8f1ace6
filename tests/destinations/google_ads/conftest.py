"""Google Ads fixtures: a local token endpoint, the two fake Google APIs, destinations on them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from fake_data_manager import FakeDataManager
from fake_google_ads import DEV_TOKEN, VERSION, FakeGoogleAds

from destinations.google_ads import GoogleAdsConfig, GoogleAdsDestination
from router.google_auth import GoogleCredentials
from router.http import HttpClient
from router.secret import Secret
from router.testing.google_token import LocalTokenServer, make_service_account

CUSTOMER = "1234567890"
ACTIONS = {"purchase": "987654321", "generate_lead": "987654322"}

Factory = Callable[..., GoogleAdsDestination]


@pytest.fixture
def key_file(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """A service-account key file with a fresh RSA key, and its JSON."""
    path = tmp_path / "service-account.json"
    return path, make_service_account(path)


@pytest.fixture
async def tokens(key_file: tuple[Path, dict[str, Any]]) -> AsyncIterator[LocalTokenServer]:
    """Google's token endpoint, locally, trusting the test's service account."""
    async with LocalTokenServer(service_accounts=[key_file[1]]) as server:
        yield server


@pytest.fixture
async def dm() -> AsyncIterator[FakeDataManager]:
    fake = FakeDataManager()
    async with fake.platform:
        yield fake


@pytest.fixture
async def ads() -> AsyncIterator[FakeGoogleAds]:
    fake = FakeGoogleAds()
    async with fake.platform:
        yield fake


def config(
    mode: str, base: str | None, key: Path | None, token_url: str, **overrides: Any
) -> GoogleAdsConfig:
    """A valid config of ``mode``; ``overrides`` replace any key (``credentials`` too)."""
    if "credentials" not in overrides:
        overrides["credentials"] = GoogleCredentials(service_account_file=key)
    settings: dict[str, Any] = {
        "mode": mode,
        "customer_id": CUSTOMER,
        "conversion_actions": dict(ACTIONS),
        "endpoint": base,
        "token_endpoint": token_url,
    }
    if mode == "click_upload":
        settings |= {"developer_token": Secret(DEV_TOKEN), "api_version": VERSION}
    return GoogleAdsConfig(**(settings | overrides))


@pytest.fixture
def data_manager(
    dm: FakeDataManager, tokens: LocalTokenServer, key_file: tuple[Path, Any], http: HttpClient
) -> Factory:
    """Builds a data_manager destination aimed at the fakes (keys overridable)."""

    def build(**overrides: Any) -> GoogleAdsDestination:
        made = config("data_manager", dm.platform.url, key_file[0], tokens.url, **overrides)
        return GoogleAdsDestination(made, http)

    return build


@pytest.fixture
def click_upload(
    ads: FakeGoogleAds, tokens: LocalTokenServer, key_file: tuple[Path, Any], http: HttpClient
) -> Factory:
    """Builds a click_upload destination aimed at the fakes (keys overridable)."""

    def build(**overrides: Any) -> GoogleAdsDestination:
        made = config("click_upload", ads.platform.url, key_file[0], tokens.url, **overrides)
        return GoogleAdsDestination(made, http)

    return build
