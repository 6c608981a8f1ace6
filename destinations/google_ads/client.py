"""The Google Ads destination: maps, sends in its mode with a fresh token, checks health."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Final

from destinations.google_ads import click_upload, data_manager, mapping
from destinations.google_ads.config import GoogleAdsConfig
from router.sdk import (
    Destination,
    Event,
    GoogleAuth,
    GoogleAuthError,
    Health,
    HttpClient,
    Outcome,
    Response,
    TestAnswer,
    authorized_post,
    authorized_request,
)

HEALTH_TIMEOUT_SECS: Final = 10.0


class GoogleAdsDestination(Destination[GoogleAdsConfig]):
    """Google Ads conversions: Data Manager ``events:ingest`` or ``uploadClickConversions``."""

    name: ClassVar[str] = "google_ads"
    config_class: ClassVar[type[Any]] = GoogleAdsConfig

    def __init__(self, config: GoogleAdsConfig, http: HttpClient) -> None:
        super().__init__(config, http)
        self.auth = GoogleAuth(
            config.credentials,
            http,
            token_endpoint=config.token_endpoint,
            scopes=[config.scope],
        )

    @property
    def max_batch_size(self) -> int:
        return self.config.max_batch_size

    def routed_events(self) -> frozenset[str] | None:
        """Only events with a conversion action: the others are filtered at routing."""
        return frozenset(self.config.conversion_actions)

    def map(self, event: Event) -> dict[str, Any]:
        actions = self.config.conversion_actions
        if self.config.mode == "click_upload":
            return mapping.click_conversion(event, self.config.customer_id, actions)
        return mapping.data_manager_payload(event, actions)

    async def send(self, batch: Sequence[Any]) -> Sequence[Outcome]:
        return await self._send(batch, self._post, validate_only=False)

    async def send_test(self, batch: Sequence[Any]) -> TestAnswer:
        """Through ``validateOnly``: Google checks everything and records nothing."""
        seen: list[Response] = []

        async def post(url: str, body: bytes, headers: Mapping[str, str]) -> Response | Outcome:
            answer = await self._post(url, body, headers)
            if isinstance(answer, Response):
                seen.append(answer)
            return answer

        outcomes = await self._send(batch, post, validate_only=True)
        messages = tuple(
            f"{o.reason}: {o.detail}" if o.detail else o.reason
            for o in outcomes
            if o.kind != "delivered"
        )
        status = seen[-1].status if seen else None
        answer = "\n".join(r.excerpt for r in seen) or "no answer"
        return TestAnswer(not messages, status, answer, messages)

    async def health(self) -> Health:
        """A token for the mode's scope; click upload also lists the accessible customers
        (OAuth user and developer token both checked). No event data is sent."""
        try:
            await self.auth.token()
        except GoogleAuthError as error:
            return Health(ok=False, detail=f"auth_{error.reason}: {error}")
        if self.config.mode == "data_manager":
            return Health(
                ok=True,
                detail="access token issued; the account and conversion actions are checked"
                " by the first upload (or tagless send-test)",
            )
        url = f"{self.config.base_url}/{self.config.api_version}/customers:listAccessibleCustomers"
        answer = await authorized_request(
            self.auth,
            "GET",
            url,
            None,
            click_upload.headers(self.config),
            timeout_secs=HEALTH_TIMEOUT_SECS,
        )
        if isinstance(answer, Outcome):
            return Health(ok=False, detail=f"{answer.reason}: {answer.detail}")
        ok = 200 <= answer.status < 300
        detail = "credentials and developer token accepted" if ok else answer.excerpt
        return Health(ok=ok, detail=f"HTTP {answer.status}: {detail}")

    async def _send(
        self, batch: Sequence[Any], post: data_manager.Post, *, validate_only: bool
    ) -> list[Outcome]:
        if self.config.mode == "click_upload":
            return await click_upload.send(post, self.config, batch, validate_only=validate_only)
        return await data_manager.send(post, self.config, batch, validate_only=validate_only)

    async def _post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Response | Outcome:
        """POST with a bearer token; a 401 gets one retry with a fresh token, then pauses.

        Concurrent requests refused with the same token share one refresh (GoogleAuth
        refreshes once; ``invalidate`` drops a token only while it is still the cached one).
        """
        return await authorized_post(
            self.auth, url, body, headers, timeout_secs=self.config.timeout_secs
        )
