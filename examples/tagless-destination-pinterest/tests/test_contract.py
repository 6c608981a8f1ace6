"""The Tagless destination contract, checked by the kit every plugin uses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tagless_destination_pinterest import PinterestDestination

from router.sdk import OutcomeKind
from router.testing.contract import DestinationContract
from router.testing.fake_platform import Answer, Recorded

EXAMPLE = Path(__file__).resolve().parents[1] / "config-example.yaml"


def processed(count: int, failed: int | None = None) -> dict[str, Any]:
    """The documented 200 answer (``ConversionApiResponse``), event ``failed`` failing."""
    events = [{"status": "processed", "error_message": None} for _ in range(count)]
    if failed is not None:
        events[failed] = {"status": "failed", "error_message": "event_time is too old"}
    return {
        "num_events_received": count,
        "num_events_processed": count - (failed is not None),
        "events": events,
    }


class TestPinterestContract(DestinationContract):
    destination_class = PinterestDestination
    example_config = EXAMPLE.read_text()

    def success(self, request: Recorded) -> Answer:
        return Answer(200, processed(len(request.json()["data"])))

    def failure(self, status: int, request: Recorded) -> Answer:
        # the documented ``Error`` body: {"code": <int>, "message": <text>}
        return Answer(status, {"code": 4196 if status == 400 else 1, "message": "scripted"})

    def partial_failure(self, request: Recorded) -> tuple[Answer, list[OutcomeKind]] | None:
        count = len(request.json()["data"])
        kinds: list[OutcomeKind] = ["delivered"] * count
        kinds[1] = "rejected"
        return Answer(200, processed(count, failed=1)), kinds
