"""A real local BigQuery for the tests: ``bqemulator`` from its own venv (scripts/bqemulator.sh),
started on free ports, a read-back through google-cloud-bigquery in that same venv, and the
``tagless`` CLI run from a test."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from router.cli import main

ROOT = Path(__file__).resolve().parents[3]
VENV = ROOT / ".cache" / "bqemulator-venv"
READBACK = Path(__file__).with_name("readback.py")
_LISTEN = re.compile(
    r'"port": (\d+), "event": "rest\.listen"|"event": "rest\.listen".*"port": (\d+)'
)
START_TIMEOUT_SECS = 90.0


class Emulator:
    """``bqemulator start --ephemeral`` on random ports; :attr:`url` is its REST endpoint."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> Emulator:
        if not (VENV / ".installed").exists():
            raise RuntimeError(
                "the BigQuery emulator is not installed: run `bash scripts/bqemulator.sh`"
                " (`make test` does)"
            )
        env = {
            **os.environ,
            "HOME": str(VENV / "home"),  # DuckDB finds the copied spatial extension there
            "BQEMU_ENABLE_FORMAT_EXTENSIONS": "false",
            "PYTHONUNBUFFERED": "1",
        }
        command = [
            str(VENV / "bin" / "bqemulator"),
            "start",
            "--ephemeral",
            "--rest-port", "0",
            "--grpc-port", "0",
            "--log-level", "info",
            "--log-format", "json",
        ]  # fmt: skip
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        self.url = f"http://127.0.0.1:{self._port()}"
        self._wait_healthy()
        return self

    def _port(self) -> int:
        deadline = time.monotonic() + START_TIMEOUT_SECS
        while time.monotonic() < deadline:
            found = _LISTEN.search(self.log.read_text(errors="replace"))
            if found:
                return int(found.group(1) or found.group(2))
            self._check_alive()
            time.sleep(0.1)
        raise RuntimeError(f"bqemulator did not say its port; its log: {self.log}")

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECS
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as answer:  # noqa: S310  # a loopback URL of our own
                    if json.loads(answer.read()).get("status") == "ok":
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"bqemulator is not healthy; its log: {self.log}")

    def _check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            tail = self.log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"bqemulator exited ({self.process.returncode}):\n{tail}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def read_back(self, project: str, dataset: str, table: str) -> list[dict[str, Any]]:
        """Every row of the table, read with google-cloud-bigquery (ordered by event_id)."""
        done = subprocess.run(
            [str(VENV / "bin" / "python"), str(READBACK), self.url, project, dataset, table],
            capture_output=True,
            check=False,
            timeout=120,
        )
        if done.returncode != 0:
            sys.stderr.write(done.stderr.decode(errors="replace"))
            raise RuntimeError(f"read-back failed ({done.returncode})")
        rows: list[dict[str, Any]] = json.loads(done.stdout)
        return rows


async def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the ``tagless`` CLI in a thread (it runs its own event loop); code, stdout, stderr."""

    def run() -> int:
        try:
            main(list(argv))
        except SystemExit as done:
            return int(done.code or 0)
        return 0

    code = await asyncio.to_thread(run)
    out, err = capsys.readouterr()
    return code, out, err
