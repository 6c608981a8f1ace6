"""The destinations Tagless delivers to in the bench: the webhook sink and the five fake platforms.

:class:`Rig` starts them once for the whole bench; :meth:`Rig.destinations` is the store's
``destinations:`` block for each way Tagless is measured, with the environment its secrets need.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Final, Self

import platforms as p
from common import OUT, BenchError
from procs import Counter, Fake, Service, Sink

from router.testing.google_token import make_service_account

#: The five platforms, in the order the tables list them.
PLATFORMS: Final = ("spotify", "meta", "ga4", "google_ads", "bigquery")
PLATFORM_TYPES: Final = {
    "spotify": "spotify_capi",
    "meta": "meta_capi",
    "ga4": "ga4",
    "google_ads": "google_ads",
    "bigquery": "bigquery",
}
SECRETS: Final = {
    "BENCH_SPOTIFY_TOKEN": p.SPOTIFY_TOKEN,
    "BENCH_META_TOKEN": p.META_TOKEN,
    "BENCH_GA4_SECRET": p.GA4_SECRET,
}
#: What each way of running Tagless delivers to (see common.TAGLESS_KINDS).
DESTINATION_SETS: Final = ("down", "five", "file", "hook")


class Rig(contextlib.ExitStack):
    """The sink and (when ``five``) one fake process per platform, stopped on exit."""

    def __init__(self, *, five: bool) -> None:
        super().__init__()
        self.sink = Sink()
        self.fakes = {name: Fake(name) for name in PLATFORMS} if five else {}
        self.key_file = OUT / "bench-service-account.json"

    def __enter__(self) -> Self:
        super().__enter__()
        try:
            for counter in self.counters:
                self.enter_context(counter)
            if self.fakes and not self.key_file.exists():
                self.key_file.parent.mkdir(parents=True, exist_ok=True)
                make_service_account(self.key_file)
            for counter in self.counters:
                counter.wait_ready(f"{counter.url}/stats")
        except BaseException:
            self.close()
            raise
        return self

    @property
    def counters(self) -> list[Counter]:
        return [self.sink, *self.fakes.values()]

    @property
    def services(self) -> list[Service]:
        return list(self.counters)

    def reset(self) -> None:
        for counter in self.counters:
            counter.reset()

    def destinations(self, which: str, workdir: Path) -> str:
        """The store's ``destinations:`` block (YAML) for ``which`` of DESTINATION_SETS."""
        hook = f"http://127.0.0.1:{self.sink.port}"
        if which == "down":
            return f'  - {{id: hook, type: webhook, url: "{hook}/down"}}\n'
        if which == "hook":  # the drain's outage: probed every 2 s, no event given up on
            return (
                f'  - id: hook\n    type: webhook\n    url: "{hook}/hook"\n'
                "    retry: {max_attempts: 1000, max_pause_secs: 2}\n"
            )
        if which == "file":
            return f'  - {{id: archive, type: file, path: "{workdir / "delivered.jsonl"}"}}\n'
        if which == "five":
            if not self.fakes:
                raise BenchError("the five platform fakes were not started")
            urls = {name: fake.url for name, fake in self.fakes.items()}
            return five_destinations(urls, self.key_file)
        raise BenchError(f"unknown destination set {which!r}")


def five_destinations(url: dict[str, str], key_file: Path) -> str:
    """The ``destinations:`` block of the five platforms, each aimed at its fake's base URL
    (``url`` by platform name); Google's service-account key in ``key_file``."""
    google = f'credentials: {{service_account_file: "{key_file}"}}'
    return (
        "  - id: spotify\n    type: spotify_capi\n    connection_id: bench-connection\n"
        f'    token: ${{BENCH_SPOTIFY_TOKEN}}\n    endpoint: "{url["spotify"]}"\n'
        f'  - id: meta\n    type: meta_capi\n    pixel_id: "{p.META_PIXEL}"\n'
        f'    access_token: ${{BENCH_META_TOKEN}}\n    endpoint: "{url["meta"]}"\n'
        f"    api_version: {p.META_VERSION}\n"
        f"  - id: ga4\n    type: ga4\n    measurement_id: {p.GA4_MEASUREMENT_ID}\n"
        f'    api_secret: ${{BENCH_GA4_SECRET}}\n    endpoint: "{url["ga4"]}"\n'
        "  - id: google_ads\n    type: google_ads\n    mode: data_manager\n"
        f'    customer_id: "{p.ADS_CUSTOMER}"\n'
        f'    conversion_actions: {{purchase: "{p.ADS_ACTION}"}}\n    {google}\n'
        f'    endpoint: "{url["google_ads"]}"\n'
        f'    token_endpoint: "{url["google_ads"]}/token"\n'
        f"  - id: bigquery\n    type: bigquery\n    project: {p.BQ_PROJECT}\n"
        f"    dataset: {p.BQ_DATASET}\n    table: {p.BQ_TABLE}\n    {google}\n"
        f'    endpoint: "{url["bigquery"]}"\n'
        f'    token_endpoint: "{url["bigquery"]}/token"\n'
    )
