"""Ingest errors: each carries the HTTP status, a short code, and what would be valid."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web


class IngestError(Exception):
    """A request Tagless refuses; nothing of it is stored."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        path: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.path = path
        self.retry_after = retry_after

    def response(self) -> web.Response:
        """The JSON answer: ``{"success": false, "error": {"code", "message", "path"?}}``."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.path:
            error["path"] = self.path
        headers = {}
        if self.retry_after is not None:
            headers["Retry-After"] = str(max(1, round(self.retry_after)))
        return web.Response(
            status=self.status,
            body=orjson.dumps({"success": False, "error": error}),
            content_type="application/json",
            headers=headers,
        )


UNAUTHORIZED = IngestError(
    401,
    "unauthorized",
    "a valid write key is required: send it as the Basic-auth username or as writeKey",
)
