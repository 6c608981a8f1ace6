"""The CLI operations' test kit: a config dir, stored events in every state (pending, retrying,
dead, delivered), and a way to run the CLI (a module of its own: ``conftest`` names collide)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from router import codec
from router.cli import main
from router.destination import DELIVERED, Outcome
from router.outbox.policy import RetryPolicy
from router.testing.events import make_event

HOUR = 3600.0
DAY = 86_400.0

STORE_YAML = """\
store: shop
write_keys: [shop-key]
destinations:
  - {{id: archive, type: file, path: {sink}, events: {{deny: [page_view]}}}}
  - {{id: meta, type: meta_capi, pixel_id: '123456', access_token: meta-token,
      endpoint: 'http://127.0.0.1:9'}}
"""


@pytest.fixture(params=["sqlite", "postgres"])
def config_dir(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """Store ``shop``: ``archive`` (a file; page views denied) and ``meta`` (Meta CAPI, whose
    age limit is 7 days, aimed at a closed local port); its outbox on either backend (the
    SQLite file ``tagless.db``, or the test run's PostgreSQL database)."""
    (tmp_path / "stores").mkdir()
    outbox = f"{{path: {tmp_path / 'tagless.db'}}}"
    if request.param == "postgres":
        outbox = f"{{url: '{request.getfixturevalue('pg_url')}'}}"
    (tmp_path / "tagless.yaml").write_text(
        "server: {host: 127.0.0.1, port: 0}\n"
        f"outbox: {outbox}\n"
        "admin: {host: 127.0.0.1, port: 0, token: test-admin-token}\n"
    )
    (tmp_path / "stores" / "shop.yaml").write_text(STORE_YAML.format(sink=tmp_path / "sink.jsonl"))
    yield tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the ``tagless`` CLI; return its exit code, stdout and stderr."""
    with pytest.raises(SystemExit) as done:
        main(list(argv))
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out, err


def stored(event_id: str, received_at: float, name: str = "purchase", **fields: object) -> bytes:
    """A canonical purchase (or ``name``) as stored, received and occurred at ``received_at``."""
    moment = datetime.fromtimestamp(received_at, UTC)
    event = make_event(
        event_id=event_id, name=name, occurred_at=moment, received_at=moment, **fields
    )
    return codec.encode(event)


async def settle_all(
    box: Any, destination: str, outcome: Outcome, only: Sequence[str] | None = None
) -> None:
    """Claim everything due for ``destination`` and settle it with ``outcome``
    (``only``: those event ids; the rest delivered)."""
    while (claim := await box.claim("shop", destination, 100)) is not None:
        pairs = [
            (item, outcome if only is None or item.event_id in only else DELIVERED)
            for item in claim.items
        ]
        await box.settle(claim, pairs, RetryPolicy(max_attempts=1))
