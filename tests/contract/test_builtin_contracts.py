"""Every built-in destination passes the same contract kit a third-party plugin uses."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import attrs

from destinations.bigquery import BigQueryDestination
from destinations.file import FileDestination
from destinations.ga4 import Ga4Destination
from destinations.google_ads import GoogleAdsDestination
from destinations.meta_capi import MetaCapiDestination
from destinations.spotify_capi import SpotifyCapiDestination
from destinations.webhook import WebhookDestination
from router.sdk import OutcomeKind
from router.testing.contract import DestinationContract
from router.testing.fake_platform import Answer, Recorded
from tests.destinations.google_ads.fake_data_manager import rpc_error

EXAMPLES = Path(__file__).resolve().parents[2] / "config" / "examples"
TOKEN = Answer(200, {"access_token": "token-1", "expires_in": 3599, "token_type": "Bearer"})


class TestWebhookContract(DestinationContract):
    destination_class = WebhookDestination
    example_config = "- id: hook\n  type: webhook\n  url: https://hooks.example/tagless\n"

    def point_at(self, config: Any, url: str) -> Any:
        return attrs.evolve(config, url=f"{url}/hook")


class TestFileContract(DestinationContract):
    destination_class = FileDestination
    example_config = "- id: archive\n  type: file\n  path: var/events.jsonl\n"
    sends_http = False

    def point_at(self, config: Any, url: str) -> Any:
        return attrs.evolve(config, path=Path(tempfile.mkdtemp()) / "events.jsonl")


class TestMetaCapiContract(DestinationContract):
    destination_class = MetaCapiDestination
    example_config = (EXAMPLES / "meta_capi.yaml").read_text()

    def success(self, request: Recorded) -> Answer:
        return Answer(200, {"events_received": len(request.json()["data"])})


class TestSpotifyCapiContract(DestinationContract):
    destination_class = SpotifyCapiDestination
    example_config = (EXAMPLES / "spotify_capi.yaml").read_text()


class TestGa4Contract(DestinationContract):
    destination_class = Ga4Destination
    example_config = (EXAMPLES / "ga4.yaml").read_text()

    def success(self, request: Recorded) -> Answer:
        return Answer(204, b"")


class _GoogleContract(DestinationContract):
    """Both Google destinations get their access token from the fake platform's /token."""

    def point_at(self, config: Any, url: str) -> Any:
        return attrs.evolve(config, endpoint=url, token_endpoint=f"{url}/token")

    def other_answer(self, request: Recorded) -> Answer | None:
        return TOKEN if request.path == "/token" else None


class TestBigQueryContract(_GoogleContract):
    destination_class = BigQueryDestination
    example_config = (EXAMPLES / "bigquery.yaml").read_text()

    def success(self, request: Recorded) -> Answer:
        return Answer(200, {"kind": "bigquery#tableDataInsertAllResponse"})

    def partial_failure(self, request: Recorded) -> tuple[Answer, list[OutcomeKind]] | None:
        rows = len(request.json()["rows"])
        error = {"index": 1, "errors": [{"reason": "invalid", "message": "no such field"}]}
        kinds: list[OutcomeKind] = ["delivered"] * rows
        kinds[1] = "rejected"
        return Answer(200, {"insertErrors": [error]}), kinds


class TestGoogleAdsContract(_GoogleContract):
    destination_class = GoogleAdsDestination
    example_config = (EXAMPLES / "google_ads.yaml").read_text()

    def success(self, request: Recorded) -> Answer:
        return Answer(200, {"requestId": "request-1"})

    def partial_failure(self, request: Recorded) -> tuple[Answer, list[OutcomeKind]] | None:
        """Data Manager fails a request on its first bad event, naming it (``events[i]``):
        the order WC-1 is bad; without it, the request goes through."""
        ids = [event["transactionId"] for event in request.json()["events"]]
        if "WC-1" not in ids:
            return self.success(request), ["delivered"] * len(ids)
        bad = ids.index("WC-1")
        violation = (f"events[{bad}].transactionId", "INVALID_FORMAT", "scripted")
        body = rpc_error(400, "INVALID_ARGUMENT", "Invalid events", "INVALID_FORMAT", [violation])
        kinds: list[OutcomeKind] = ["delivered"] * len(ids)
        kinds[bad] = "rejected"
        return Answer(400, body), kinds
