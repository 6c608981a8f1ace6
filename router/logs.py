"""structlog set-up: JSON lines (or console) with bound context, never raw PII or secrets.

Libraries log through the standard ``logging`` module (aiohttp's ``aiohttp.server`` writes a
traceback and the client's IP for every malformed request; ``asyncio`` reports callbacks that
failed). Those records are turned into structlog events here, so stderr carries one format:
one line per record, IP addresses masked, and for a client's protocol error (bad request
line, header, chunked or compressed body, or a client that went away) only the exception type
and a fixed reason, never the request's bytes and never a traceback.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import sys
import traceback
from typing import Any, Final

import structlog
from aiohttp.http_exceptions import (
    BadHttpMethod,
    BadStatusLine,
    ContentEncodingError,
    ContentLengthError,
    HttpProcessingError,
    InvalidHeader,
    InvalidURLError,
    LineTooLong,
    TransferEncodingError,
)
from aiohttp.web_protocol import RequestPayloadError

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}

#: Fixed reasons per client error, most specific class first; the exception's own message
#: often quotes the raw request line or header.
_CLIENT_FAULTS: Final[tuple[tuple[type[BaseException], str], ...]] = (
    (BadHttpMethod, "bad method in the request line"),
    (BadStatusLine, "malformed request line"),
    (LineTooLong, "request line or header too long"),
    (InvalidHeader, "invalid header"),
    (InvalidURLError, "invalid request target"),
    (TransferEncodingError, "bad chunked transfer encoding"),
    (ContentEncodingError, "body does not match its Content-Encoding"),
    (ContentLengthError, "body shorter than its Content-Length"),
    (HttpProcessingError, "malformed HTTP request"),
    (RequestPayloadError, "request body could not be read"),
    (ConnectionError, "client connection lost"),
)
#: aiohttp's messages that carry the peer address, and the event names they become.
_EVENTS: Final = {
    "Error handling request from %s": "request_failed",
    "Unhandled exception": "request_failed",
}
_MAX_REASON: Final = 200
_MAX_FRAMES: Final = 20
_IPV6_LIKE = re.compile(r"(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f.]*")
_IPV4_LIKE = re.compile(r"(?<!\d)(?:\d{1,3}\.){3}\d{1,3}(?!\d)")


def configure(level: str = "info", fmt: str = "json") -> None:
    """Route structlog, and the standard library's logging, to stderr at ``level``.

    ``fmt`` is ``json`` or ``console``. Library loggers stay at warning or above.
    """
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        # one write per line (WriteLogger; print() writes the newline apart): ingest processes
        # share the main process's stderr, and two half-lines would interleave there
        logger_factory=structlog.WriteLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, StdlibToStructlog)]:
        root.removeHandler(handler)
    root.addHandler(StdlibToStructlog())
    root.setLevel(max(_LEVELS[level], logging.WARNING))
    logging.captureWarnings(True)


class _Stderr:
    """Whatever ``sys.stderr`` is at the time of each write (tests swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def to_stderr() -> None:
    """Send structlog's lines to stderr, the rest of its configuration kept: a CLI command's
    stdout is its answer (``--json``), never log lines."""
    structlog.configure(logger_factory=structlog.WriteLoggerFactory(_Stderr()))  # type: ignore[arg-type]


class StdlibToStructlog(logging.Handler):
    """A ``logging`` handler that re-emits each record as one structlog event."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level, event, fields = describe(record)
            structlog.get_logger(record.name).log(level, event, **fields)
        except Exception:  # logging must never raise into the code that logged
            self.handleError(record)


def describe(record: logging.LogRecord) -> tuple[int, str, dict[str, Any]]:
    """A record's level, event name and fields, with no IP address or raw request data."""
    fields: dict[str, Any] = {"logger": record.name}
    error = record.exc_info[1] if record.exc_info else None
    if error is not None:
        reason = client_fault(error)
        if reason is not None:  # the client's mistake, answered with a 4xx: one quiet line
            fields.update(exc_type=type(error).__name__, reason=reason)
            # aiohttp raises a broken body's error again while it drains the rest after the
            # answer ("Unhandled exception"): that second record says nothing new
            again = record.msg == "Unhandled exception"
            return logging.DEBUG if again else logging.INFO, "http_client_error", fields
        fields.update(
            exc_type=type(error).__name__,
            reason=mask_addresses(str(error))[:_MAX_REASON],
            frames=[
                f"{frame.filename}:{frame.lineno} {frame.name}"
                for frame in traceback.extract_tb(error.__traceback__)[-_MAX_FRAMES:]
            ],
        )
    event = _EVENTS.get(str(record.msg))
    if event is None:
        # the access log's arguments are the request line and headers: keep the template
        raw = str(record.msg) if record.name == "aiohttp.access" else record.getMessage()
        event = mask_addresses(raw)
    return record.levelno, event, fields


def client_fault(error: BaseException) -> str | None:
    """The fixed reason when ``error`` (or what caused it) is a client's protocol error."""
    for candidate in (error.__cause__, error):
        for kind, reason in _CLIENT_FAULTS:
            if isinstance(candidate, kind):
                return reason
    return None


def mask_addresses(text: str) -> str:
    """``text`` with every IPv6 and IPv4 address replaced by ``<ip>``."""
    return _IPV4_LIKE.sub(_mask, _IPV6_LIKE.sub(_mask, text))


def _mask(match: re.Match[str]) -> str:
    token = match.group(0)
    core = token.rstrip(".")  # a full stop after an address is not part of it
    try:
        ipaddress.ip_address(core)
    except ValueError:
        return token
    return "<ip>" + token[len(core) :]
