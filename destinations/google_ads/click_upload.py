"""Google Ads API ``uploadClickConversions`` with partial failure: one outcome per row."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from destinations.google_ads import answers
from destinations.google_ads.answers import GOOGLE_ADS_ERROR_TYPES, GOOGLE_ADS_ERRORS
from destinations.google_ads.config import MAX_EVENTS, GoogleAdsConfig
from destinations.google_ads.data_manager import Post
from router.sdk import Outcome, Response, classify, dumps


def headers(config: GoogleAdsConfig) -> dict[str, str]:
    """``developer-token`` always, ``login-customer-id`` when going through a manager."""
    found = {"Content-Type": "application/json"}
    if config.developer_token is not None:
        found["developer-token"] = config.developer_token.reveal()
    if config.login_customer_id:
        found["login-customer-id"] = config.login_customer_id
    return found


def request_body(conversions: Sequence[Any], *, validate_only: bool) -> dict[str, Any]:
    """An ``UploadClickConversionsRequest``; ``partialFailure`` is required to be true."""
    body: dict[str, Any] = {"conversions": list(conversions), "partialFailure": True}
    if validate_only:
        body["validateOnly"] = True
    return body


async def send(
    post: Post,
    config: GoogleAdsConfig,
    conversions: Sequence[Mapping[str, Any]],
    *,
    validate_only: bool = False,
) -> list[Outcome]:
    """One outcome per conversion, in order; at most 2,000 conversions per request."""
    chunks = [conversions[i : i + MAX_EVENTS] for i in range(0, len(conversions), MAX_EVENTS)]
    answered = await asyncio.gather(
        *(_upload(post, config, chunk, validate_only) for chunk in chunks)
    )
    return [outcome for chunk in answered for outcome in chunk]


async def _upload(
    post: Post, config: GoogleAdsConfig, conversions: Sequence[Any], validate_only: bool
) -> list[Outcome]:
    body = dumps(request_body(conversions, validate_only=validate_only))
    answer = await post(config.upload_url, body, headers(config))
    if isinstance(answer, Outcome):
        return [answer] * len(conversions)
    if 200 <= answer.status < 300:
        return answers.click_upload_outcomes(
            answers.loads(answer.body),
            len(conversions),
            status=answer.status,
            overrides=config.error_classes,
            retry_later_secs=config.retry_later_secs,
            validate_only=validate_only,
        )
    return failed_request(answer, len(conversions), config)


def failed_request(response: Response, count: int, config: GoogleAdsConfig) -> list[Outcome]:
    """A request Google refused as a whole: its ``GoogleAdsFailure`` decides for every row.

    Should the failure name rows, those take their class and the others, which were not
    processed, are retried. An answer without Google errors follows the shared HTTP policy.
    """
    errors = answers.ads_failure_errors(answers.rpc_error(response.body))
    if not errors:
        return [classify(response)] * count

    def outcome_of(found: list[answers.GoogleError]) -> Outcome:
        return answers.settle(
            found,
            GOOGLE_ADS_ERRORS,
            config.error_classes,
            GOOGLE_ADS_ERROR_TYPES,
            status=response.status,
            retry_later_secs=config.retry_later_secs,
            retry_after=response.retry_after,
        )

    by_row = {e.index for e in errors if e.index is not None and 0 <= e.index < count}
    if not by_row:
        return [outcome_of(errors)] * count
    unprocessed = Outcome("retry", "request_failed", response.status, detail="another row failed")
    return [
        outcome_of([e for e in errors if e.index == row]) if row in by_row else unprocessed
        for row in range(count)
    ]
