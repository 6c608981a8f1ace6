"""Google Ads auth against a local token endpoint: caching, expiry, one refresh, 401s."""

from __future__ import annotations

import asyncio
from typing import Any

from conftest import Factory, config
from fake_data_manager import FakeDataManager

from destinations.google_ads import GoogleAdsDestination
from destinations.google_ads.config import SCOPES
from router.clock import FakeClock
from router.google_auth import GoogleCredentials
from router.http import HttpClient
from router.secret import Secret
from router.testing.events import make_event
from router.testing.google_token import LocalTokenServer, Refusal


def one(destination: GoogleAdsDestination) -> list[Any]:
    return [destination.map(make_event())]


async def test_many_concurrent_sends_share_one_token_request(
    dm: FakeDataManager, tokens: LocalTokenServer, data_manager: Factory
) -> None:
    """Twenty sends at once, no token yet: one token request, every request carries it."""
    destination = data_manager()
    results = await asyncio.gather(*(destination.send(one(destination)) for _ in range(20)))
    assert {o.kind for outcomes in results for o in outcomes} == {"delivered"}
    assert tokens.token_requests == 1
    assert set(dm.tokens_seen) == {"token-1"}


async def test_a_token_is_reused_until_shortly_before_it_expires(
    dm: FakeDataManager, tokens: LocalTokenServer, data_manager: Factory
) -> None:
    """Cached while it has more than a minute to live; renewed after that, by the clock."""
    clock = FakeClock()
    destination = data_manager()
    destination.auth.clock = clock
    await destination.send(one(destination))
    clock.advance(tokens.expires_in - 61)
    await destination.send(one(destination))
    assert tokens.token_requests == 1
    clock.advance(2)
    await destination.send(one(destination))
    assert tokens.token_requests == 2
    assert dm.tokens_seen == ["token-1", "token-1", "token-2"]


async def test_a_401_gets_one_fresh_token_and_the_request_again(
    dm: FakeDataManager, tokens: LocalTokenServer, data_manager: Factory
) -> None:
    """A token revoked early: invalidated, a new one fetched, the request delivered."""
    dm.revoked = {"token-1"}
    destination = data_manager()
    [outcome] = await destination.send(one(destination))
    assert outcome.kind == "delivered"
    assert dm.tokens_seen == ["token-1", "token-2"]
    assert tokens.token_requests == 2


async def test_a_second_401_pauses_the_destination(
    dm: FakeDataManager, tokens: LocalTokenServer, data_manager: Factory
) -> None:
    """A fresh token refused too: the events wait and the destination pauses, clearly."""
    dm.revoked = {"token-1", "token-2"}
    destination = data_manager()
    [outcome] = await destination.send(one(destination))
    assert (outcome.kind, outcome.reason, outcome.status, outcome.pause) == (
        "retry",
        "auth_refused",
        401,
        True,
    )
    assert "API is not enabled" in outcome.detail
    assert tokens.token_requests == 2


async def test_a_refused_grant_pauses_without_calling_google_ads(
    dm: FakeDataManager, tokens: LocalTokenServer, data_manager: Factory
) -> None:
    """The token endpoint says invalid_grant: auth_token_refused, nothing sent to the API."""
    tokens.refuse(Refusal(400, "invalid_grant", "Invalid JWT Signature."))
    destination = data_manager()
    [outcome] = await destination.send(one(destination))
    assert (outcome.reason, outcome.pause) == ("auth_token_refused", True)
    assert "Invalid JWT Signature" in outcome.detail
    assert dm.requests == []


async def test_each_mode_asks_for_its_own_scope(
    tokens: LocalTokenServer, data_manager: Factory, click_upload: Factory
) -> None:
    """The service account's assertion names the Data Manager or the AdWords scope."""
    await data_manager().health()
    await click_upload().health()
    scopes = [r.claims["scope"] for r in tokens.requests if r.claims is not None]
    assert scopes == [SCOPES["data_manager"], SCOPES["click_upload"]]


async def test_an_oauth_user_refresh_token_works(dm: FakeDataManager, http: HttpClient) -> None:
    """client_id, client_secret and refresh_token: the refresh_token grant, then delivery."""
    client = ("client-1.apps.googleusercontent.com", "secret-1")
    async with LocalTokenServer(refresh_tokens={"1//refresh": client}) as server:
        credentials = GoogleCredentials(
            client_id=client[0], client_secret=Secret(client[1]), refresh_token=Secret("1//refresh")
        )
        settings = config(
            "data_manager", dm.platform.url, None, server.url, credentials=credentials
        )
        destination = GoogleAdsDestination(settings, http)
        [outcome] = await destination.send(one(destination))
    assert outcome.kind == "delivered"
    assert server.requests[0].form["grant_type"] == "refresh_token"
