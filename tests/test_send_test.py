"""``tagless send-test`` sends one realistic event through the test mode, identity redacted."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from router.cli import main
from router.testing.fake_platform import FakePlatform


def test_send_test_prints_redacted_payload_and_answer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The webhook's test mode marks the request; the printout has no raw identity."""

    async def serve_once() -> None:
        async with FakePlatform() as platform:
            (tmp_path / "stores").mkdir()
            (tmp_path / "tagless.yaml").write_text("admin: {token: t}\n")
            (tmp_path / "stores" / "shop.yaml").write_text(
                "store: shop\nwrite_keys: [k]\n"
                f'destinations: [{{id: hook, type: webhook, url: "{platform.url}/hook"}}]\n'
            )
            loop = asyncio.get_running_loop()
            argv = ["send-test", "--config", str(tmp_path), "--store", "shop"]
            with pytest.raises(SystemExit) as done:
                await loop.run_in_executor(None, main, [*argv, "--destination", "hook"])
            assert done.value.code == 0
            [request] = platform.requests
            assert request.headers["X-Tagless-Test"] == "1"
            [event] = request.json()["events"]
            assert event["emails"] == ["jane.doe@example.com"]  # the platform gets it all

    asyncio.run(serve_once())
    out = capsys.readouterr().out
    assert "jane.doe@example.com" not in out and "81.2.69.142" not in out
    printed = orjson.loads(
        out.split("payload sent (identity redacted):\n", 1)[1].split("\nplatform")[0]
    )
    assert printed["emails"] == [
        "<redacted>",
    ]
    assert printed["name"] == "purchase"
    assert "ok" in out.splitlines()[-1]
