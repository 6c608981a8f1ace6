"""The contract kit's purity and privacy checks: no I/O inside ``map``, no raw identity in
logs or in requests that must carry no event data."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from router.privacy import sha256_hex
from router.testing.events import make_event
from router.testing.fake_platform import Recorded
from router.testing.golden import fixture_names, load_fixture


def raw_identity() -> list[str]:
    """The emails, phones and IPs of the canonical fixtures and of ``make_event``, trimmed
    and lowercased: none may ever be logged or reach a health check raw."""
    events = [load_fixture(name) for name in fixture_names()] + [make_event()]
    values = {
        value.strip().lower()
        for event in events
        for value in (*event.emails, *event.phones, event.client_ip or "")
        if value.strip()
    }
    return sorted(values)


class IoDuringMap(AssertionError):
    """``map`` opened a file, a socket or a process: it must be pure."""


_guard_active = False


def _io_guard(event: str, args: tuple[Any, ...]) -> None:
    if _guard_active and event in (
        "open",
        "socket.connect",
        "socket.getaddrinfo",
        "subprocess.Popen",
    ):
        raise IoDuringMap(f"map did I/O ({event} {args[:1]!r})")


sys.addaudithook(_io_guard)  # audit hooks stay for the process; it acts only inside no_io()


@contextmanager
def no_io() -> Iterator[None]:
    """Fail on any file, socket or process opened inside the block."""
    global _guard_active
    _guard_active = True
    try:
        yield
    finally:
        _guard_active = False


class CapturedLogs(logging.Handler):
    """Keeps every standard-library log record's text and fields."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.getMessage()} {record.__dict__!r}")


def assert_no_identity(requests: Sequence[Recorded]) -> None:
    """No request carries a fixture's email, phone or IP, raw or hashed, nor its names."""
    raw = raw_identity()
    forbidden = [*raw, *(sha256_hex(value) for value in raw), "jane", "john", "customer-42"]
    for request in requests:
        seen = f"{request.path} {dict(request.query)} {request.body.decode('utf-8', 'replace')}"
        for value in forbidden:
            assert value not in seen.lower(), f"{request.method} {request.path} sent event data"
