"""Long operations show a bar on a terminal and plain lines elsewhere, on stderr, so that
``--json`` output on stdout stays one document; ``tagless purge`` enforces retention now."""

from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path

import orjson
import pytest
from cli_ops_kit import HOUR, settle_all, stored

from router.cli import main
from router.clock import FakeClock
from router.destination import Outcome
from router.outbox.base import NewEvent
from router.progress import progress
from tests.postgres_kit import outbox_at


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_not_a_terminal_gets_plain_lines_and_a_last_one() -> None:
    """Without a terminal: no escape codes, a count of the total, and a line when done."""
    out = io.StringIO()
    with progress("erase: stores", 2, stream=out) as advance:
        advance(1)
        advance(1)
    assert out.getvalue().splitlines()[-1] == "erase: stores: 2 of 2, done"
    assert "\x1b" not in out.getvalue()


def test_a_terminal_gets_a_bar() -> None:
    """On a terminal rich draws a bar with the count (and clears it when done)."""
    out = Terminal()
    with progress("replay: events", 4, stream=out) as advance:
        advance(3)
        advance(1)
    assert "replay: events" in out.getvalue()
    assert "━" in out.getvalue() and "4/4" in out.getvalue()


def test_purge_enforces_retention_now_with_progress_on_stderr(
    config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Delivered events past retention_hours (168) are purged, ones past pii_retention_hours
    (72) lose their user data; stdout is the JSON, stderr the progress lines."""
    now = time.time()

    async def fill() -> None:
        box = outbox_at(config_dir / "tagless.db", clock=FakeClock(now))
        await box.open()
        try:
            ages = {"old": 200 * HOUR, "middle": 100 * HOUR, "new": HOUR}
            await box.append(
                [
                    NewEvent("shop", e, now - a, ("archive",), stored(e, now - a))
                    for e, a in ages.items()
                ]
            )
            await settle_all(box, "archive", Outcome("rejected"), only=())
            await settle_all(box, "meta", Outcome("rejected"), only=())  # passes them by
        finally:
            await box.close()

    asyncio.run(fill())
    with pytest.raises(SystemExit) as done:
        main(["purge", "--config", str(config_dir), "--json"])
    out, err = capsys.readouterr()
    assert done.value.code == 0
    assert orjson.loads(out) == {
        "stores": [
            {"store": "shop", "dead_letters_expired": 0, "purged": 1, "user_data_removed": 1}
        ]
    }
    assert err.splitlines()[-1] == "purge: stores: 1 of 1, done"
