"""The contract kit fails a destination for each rule it breaks (else it would pass anything)."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: A plugin test module as an author writes it, over a good destination and five broken ones.
MODULE = """
import itertools
import logging
from pathlib import Path

from router.sdk import Outcome, dumps
from router.testing.contract import DestinationContract
from destinations.webhook import WebhookDestination

EXAMPLE = "- id: hook\\n  type: webhook\\n  url: https://hooks.example/in\\n"
_counter = itertools.count()


class Base(DestinationContract):
    example_config = EXAMPLE

    def point_at(self, config, url):
        import attrs
        return attrs.evolve(config, url=url + "/hook")


class Changing(WebhookDestination):
    def map(self, event):
        return {**super().map(event), "n": next(_counter)}

    def map_stored(self, stored):
        return self.map(__import__("router.codec").codec.decode(stored))


class Reading(WebhookDestination):
    def map(self, event):
        Path(__file__).read_text()
        return super().map(event)


class OneOutcome(WebhookDestination):
    async def send(self, batch):
        return (await super().send(batch))[:1]


class RetriesBadRequests(WebhookDestination):
    async def send(self, batch):
        out = await super().send(batch)
        return [Outcome("retry", o.reason, o.status) if o.status == 400 else o for o in out]


class LogsEmail(WebhookDestination):
    def map(self, event):
        logging.getLogger("plugin").warning("mapping %s", event.emails[0])
        return super().map(event)


class LeakyHealth(WebhookDestination):
    async def health(self):
        await self.http.post(self.config.url, dumps({"email": "jane.doe@example.com"}), {},
                             timeout_secs=5)
        return await super().health()


class TestGood(Base):
    destination_class = WebhookDestination

class TestChanging(Base):
    destination_class = Changing

class TestReading(Base):
    destination_class = Reading

class TestOneOutcome(Base):
    destination_class = OneOutcome

class TestRetriesBadRequests(Base):
    destination_class = RetriesBadRequests

class TestLogsEmail(Base):
    destination_class = LogsEmail

class TestLeakyHealth(Base):
    destination_class = LeakyHealth
"""


@pytest.fixture(scope="module")
def failed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    """Run the module with pytest in its own process (strict asyncio mode, as a plugin's
    repository would have it); return each class's failed tests."""
    folder = tmp_path_factory.mktemp("plugin_tests")
    (folder / "test_plugin.py").write_text(MODULE)
    report = folder / "report.xml"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:randomly",
            "-p",
            "no:cacheprovider",
            f"--junitxml={report}",
            "--rootdir",
            str(folder),
            "-c",
            "/dev/null",
            str(folder),
        ],
        cwd=folder,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    out: dict[str, set[str]] = {}
    # our own pytest run's report, not untrusted input
    for case in ET.parse(report).getroot().iter("testcase"):  # noqa: S314
        cls = case.get("classname", "").rsplit(".", 1)[-1]
        out.setdefault(cls, set())
        if case.find("failure") is not None or case.find("error") is not None:
            out[cls].add(case.get("name", "").split("[")[0])
    return out


def test_a_conforming_destination_passes(failed: dict[str, set[str]]) -> None:
    """The webhook, written as a plugin author would test it, passes every check."""
    assert failed["TestGood"] == set()


@pytest.mark.parametrize(
    ("cls", "rule"),
    [
        ("TestChanging", "test_map_is_deterministic_json_and_free_of_io"),
        ("TestReading", "test_map_is_deterministic_json_and_free_of_io"),
        ("TestOneOutcome", "test_accepted_events_are_delivered"),
        ("TestRetriesBadRequests", "test_statuses_are_classified"),
        ("TestLogsEmail", "test_map_is_deterministic_json_and_free_of_io"),
        ("TestLeakyHealth", "test_health_check_sends_no_event_data"),
    ],
)
def test_each_broken_rule_fails_its_check(failed: dict[str, set[str]], cls: str, rule: str) -> None:
    """Non-deterministic map, I/O in map, one outcome for a batch, a 400 retried, a raw email
    logged, event data in the health check: each fails the check that states the rule."""
    assert rule in failed[cls]
