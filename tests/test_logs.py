"""Library log records become structlog events without IPs, raw request bytes or noise."""

from __future__ import annotations

import logging
import sys

import pytest
from aiohttp.http_exceptions import BadStatusLine, InvalidHeader
from aiohttp.web_protocol import RequestPayloadError

from router.logs import describe, mask_addresses


def record(
    name: str, msg: str, *args: object, error: BaseException | None = None
) -> logging.LogRecord:
    exc_info = None
    if error is not None:
        try:
            raise error
        except BaseException:
            exc_info = sys.exc_info()
    return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, args, exc_info)


def test_addresses_are_masked_and_other_numbers_kept() -> None:
    """IPv4, IPv6 and mapped addresses become <ip>; versions, times and durations stay."""
    text = "from 203.0.113.9, ('2001:db8::1', 443) ::ffff:10.0.0.1. Python 3.11.7 at 12:30:45"
    assert mask_addresses(text) == ("from <ip>, ('<ip>', 443) <ip>. Python 3.11.7 at 12:30:45")


def test_a_client_protocol_error_is_one_fixed_reason_without_the_request_bytes() -> None:
    """aiohttp's 'Error handling request from <peer>' for a bad header: type and fixed reason."""
    error = InvalidHeader(b"X-Card: 4111-1111")
    level, event, fields = describe(
        record("aiohttp.server", "Error handling request from %s", "198.51.100.7", error=error)
    )
    assert (level, event) == (logging.INFO, "http_client_error")
    assert fields == {
        "logger": "aiohttp.server",
        "exc_type": "InvalidHeader",
        "reason": "invalid header",
    }


def test_a_body_error_drained_again_after_the_answer_is_not_logged_twice() -> None:
    """aiohttp's second record of the same broken body ('Unhandled exception') drops to debug."""
    error = RequestPayloadError("bad gzip")
    error.__cause__ = BadStatusLine("x")
    level, _event, fields = describe(record("aiohttp.server", "Unhandled exception", error=error))
    assert level == logging.DEBUG and fields["reason"] == "malformed request line"


def test_a_server_error_keeps_its_frames_and_masks_addresses() -> None:
    """A handler bug keeps its type, a masked reason and the frames that locate it."""
    level, event, fields = describe(
        record(
            "aiohttp.server",
            "Error handling request from %s",
            "198.51.100.7",
            error=KeyError("peer 198.51.100.7"),
        )
    )
    assert (level, event) == (logging.ERROR, "request_failed")
    assert fields["exc_type"] == "KeyError" and "198.51.100.7" not in fields["reason"]
    assert fields["frames"] and "test_logs.py" in fields["frames"][-1]


def test_other_library_messages_keep_their_text_with_addresses_masked() -> None:
    """An asyncio message keeps its words; only the addresses in it are masked."""
    _level, event, _fields = describe(record("asyncio", "Fatal error on %s", "('192.0.2.4', 80)"))
    assert event == "Fatal error on ('<ip>', 80)"


class _Writes:
    """A stderr that keeps each write() call apart."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def write(self, text: str) -> int:
        self.calls.append(text)
        return len(text)

    def flush(self) -> None:
        pass


def test_each_log_line_is_one_write_with_its_newline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ingest processes share the main process's stderr: a line written in two parts (the
    record, then its newline) interleaves with another process's into broken JSON."""
    import structlog

    from router.logs import configure

    writes = _Writes()
    monkeypatch.setattr(sys, "stderr", writes)
    configure("info", "json")
    try:
        structlog.get_logger("tagless.test").info("one_line", n=1)
    finally:
        monkeypatch.undo()
        configure("info", "json")
    assert len(writes.calls) == 1, writes.calls
    assert writes.calls[0].endswith("}\n") and '"event": "one_line"' in writes.calls[0]
