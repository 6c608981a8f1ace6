"""Outbound HTTP for destinations: one shared session, capped answers, one status policy."""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Mapping
from typing import Any, Final

import aiohttp
import attrs
import orjson

from router.destination import Outcome

#: How much of a platform's answer is kept (for dead letters); answers may echo input.
MAX_KEPT_BODY: Final = 2048
#: How much of an answer is read at all; the rest is discarded unread.
MAX_READ_BODY: Final = 1 << 20


@attrs.frozen
class Response:
    """A platform's answer: status, headers we act on, and the body read up to a cap."""

    status: int
    body: bytes
    retry_after: float | None = None

    @property
    def excerpt(self) -> str:
        """The start of the body, for dead-letter records."""
        return self.body[:MAX_KEPT_BODY].decode("utf-8", "replace")


class TransportError(Exception):
    """The request did not get an HTTP answer: timeout, refused, reset, DNS."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def error_object(body: bytes) -> dict[str, Any] | None:
    """The ``error`` object of a JSON error answer (``{"error": {...}}``, the shape of Google
    APIs and Meta's Graph API), or None when the body is not one."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    error = data.get("error") if isinstance(data, dict) else None
    return error if isinstance(error, dict) else None


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delay-seconds or an HTTP-date (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(0.0, moment.timestamp() - current)


class HttpClient:
    """The process's outbound session: keep-alive, no redirects, bounded reads, timeouts."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    @classmethod
    def create(cls, *, limit: int = 64) -> HttpClient:
        """A client with its own connection pool (call inside a running loop)."""
        connector = aiohttp.TCPConnector(limit=limit, limit_per_host=limit)
        return cls(aiohttp.ClientSession(connector=connector, skip_auto_headers=("User-Agent",)))

    async def close(self) -> None:
        await self.session.close()

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], *, timeout_secs: float
    ) -> Response:
        """POST and read the answer; transport failures raise :class:`TransportError`."""
        return await self.request("POST", url, body, headers, timeout_secs=timeout_secs)

    async def get(
        self, url: str, headers: Mapping[str, str] | None = None, *, timeout_secs: float
    ) -> Response:
        """GET (health checks) with the same guarantees as :meth:`post`."""
        return await self.request("GET", url, None, headers or {}, timeout_secs=timeout_secs)

    async def request(
        self,
        method: str,
        url: str,
        body: bytes | None,
        headers: Mapping[str, str],
        *,
        timeout_secs: float,
    ) -> Response:
        """One request: no redirects, the answer read up to a cap, failures classified once."""
        timeout = aiohttp.ClientTimeout(total=timeout_secs)
        try:
            async with self.session.request(
                method, url, data=body, headers=headers, timeout=timeout, allow_redirects=False
            ) as answer:
                data = await _read_capped(answer.content)
                retry_after = parse_retry_after(answer.headers.get("Retry-After"))
                return Response(answer.status, data, retry_after)
        except TimeoutError as error:
            raise TransportError("timeout", f"no answer within {timeout_secs}s") from error
        except asyncio.CancelledError:
            raise
        except aiohttp.ClientConnectorError as error:
            raise TransportError("connect_failed", f"cannot connect: {error.os_error}") from error
        except aiohttp.ClientError as error:
            raise TransportError("network", type(error).__name__) from error


async def _read_capped(content: aiohttp.StreamReader) -> bytes:
    """The body up to ``MAX_READ_BODY``: ``read(n)`` returns what has arrived so far, not
    ``n`` bytes, so it is called until the answer ends or the cap is reached."""
    data = bytearray()
    while len(data) < MAX_READ_BODY:
        chunk = await content.read(MAX_READ_BODY - len(data))
        if not chunk:
            break
        data += chunk
    return bytes(data)


def classify(response: Response) -> Outcome:
    """The one status policy: 2xx delivered; 408, 429 and 5xx (but 501) retry; other 4xx reject.

    401 and 403 retry and pause the destination: the credentials are wrong for every event, so
    the events wait for the operator instead of being dead-lettered one by one. 429 pauses too.
    """
    status = response.status
    if 200 <= status < 300:  # with its status: the audit table records it
        return Outcome("delivered", "ok", status)
    reason = f"http_{status}"
    detail = response.excerpt
    if status in (401, 403):
        return Outcome("retry", reason, status, response.retry_after, detail, pause=True)
    if status == 429:
        return Outcome("retry", reason, status, response.retry_after, detail, pause=True)
    if status in (408, 423) or (status >= 500 and status != 501):
        return Outcome("retry", reason, status, response.retry_after, detail)
    return Outcome("rejected", reason, status, None, detail)


def transport_outcome(error: TransportError) -> Outcome:
    """A request that got no answer is always worth retrying."""
    return Outcome("retry", error.reason, None, None, str(error))
