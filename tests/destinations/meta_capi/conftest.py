"""Meta fixtures: a running fake Graph API and the destination pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fake_meta import PIXEL, TOKEN, VERSION, FakeMeta

from destinations.meta_capi import MetaCapiConfig, MetaCapiDestination
from router.http import HttpClient
from router.secret import Secret


@pytest.fixture
async def meta() -> AsyncIterator[FakeMeta]:
    """A running fake Graph API."""
    fake = FakeMeta()
    async with fake.platform:
        yield fake


@pytest.fixture
def destination(meta: FakeMeta, http: HttpClient) -> MetaCapiDestination:
    """A Meta destination aimed at the fake, with the fake's token."""
    config = MetaCapiConfig(
        pixel_id=PIXEL, access_token=Secret(TOKEN), endpoint=meta.platform.url, api_version=VERSION
    )
    return MetaCapiDestination(config, http)
