"""Canonical event fixtures for tests: realistic values, any field overridable."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import attrs

from router.event import Consent, Event, Item

_ids = itertools.count(1)
MOMENT = datetime(2026, 11, 20, 14, 30, 5, 123000, tzinfo=UTC)


def make_event(**overrides: Any) -> Event:
    """A purchase with two items and full identity; ``event_id`` is unique unless given."""
    base = Event(
        event_id=f"evt-{next(_ids):06d}",
        store="shop",
        name="purchase",
        source_name="Order Completed",
        source_type="track",
        occurred_at=MOMENT,
        received_at=MOMENT,
        page_url="https://shop.example/checkout/thanks",
        client_ip="81.2.69.142",
        client_ip_origin="payload",
        client_ip_class="public",
        user_agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
        user_id="customer-42",
        emails=("jane.doe@example.com",),
        phones=("+44 20 7946 0958",),
        first_name="Jane",
        last_name="Doe",
        city="London",
        country="GB",
        order_id="WC-1001",
        value=Decimal("59.90"),
        currency="EUR",
        items=(
            Item(id="SKU-1", name="Mug", price=Decimal("19.95"), quantity=2),
            Item(id="SKU-2", name="Tea", price=Decimal("20.00"), quantity=1),
        ),
        consent=Consent(ad_user_data="granted", ad_personalization="granted"),
    )
    return attrs.evolve(base, **overrides)
