"""Consent decided once per destination at routing: the signal policy and listed categories."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from router.config import ConfigError, EventFilter, load_config
from router.event import Consent
from router.identity.client_ip import ClientIpPolicy
from router.identity.consent import ConsentCategories
from router.identity.consent_policy import ConsentPolicy
from router.ingest.names import NameMap
from router.stores import Route, Routing, StoreRuntime
from router.testing.server import write_config_dir


def store(*routes: Route) -> StoreRuntime:
    return StoreRuntime(
        name="shop",
        ip_policy=ClientIpPolicy.build(()),
        names=NameMap({}),
        routes=routes,
        allowed_origins=frozenset(),
    )


def route(dest: str, **policy: object) -> Route:
    return Route(dest, EventFilter(), None, ConsentPolicy(**policy))  # type: ignore[arg-type]


def consent(ad_user_data: str = "unknown", **categories: str) -> Consent:
    return Consent(ad_user_data=ad_user_data, categories=categories)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (consent("granted", C0004="granted"), Routing(("listed", "signal"))),
        (consent("granted", c0004="denied"), Routing(("signal",), (("listed", "consent_denied"),))),
        (consent("unknown", C0002="granted"), Routing(("listed", "signal"))),
        (consent("denied", C0004="granted"), Routing(("listed!", "signal!"))),
        (consent("denied"), Routing(("listed!", "signal!"))),
    ],
)  # fmt: skip
def test_a_destination_listing_categories_gets_events_only_when_all_are_granted(
    event: Consent, expected: Routing
) -> None:
    """A listed category denied (in any case) skips the destination with its reason; one not
    stated follows the ``unknown`` action; granted ones leave the signal policy to decide."""
    runtime = store(route("listed", categories=("C0004",)), route("signal"))
    assert runtime.route("purchase", event) == expected


def test_an_eea_store_skips_a_listed_category_the_event_does_not_state() -> None:
    """With ``unknown: skip``, a listed category missing from the event skips it as unknown."""
    runtime = store(route("eea", categories=("C0004", "C0002"), unknown="skip"))
    assert runtime.route("purchase", consent("granted", C0004="granted")) == Routing(
        (), (("eea", "consent_unknown"),)
    )
    assert runtime.route("purchase", consent("granted", C0004="granted", C0002="granted")) == (
        Routing(("eea",))
    )


def test_routing_is_cached_by_the_states_of_listed_categories_only() -> None:
    """Categories no destination lists do not split the routing cache (hostile input cannot
    grow it); the listed ones decide."""
    runtime = store(route("listed", categories=("C0004",)))
    for i in range(50):
        runtime.route("purchase", consent("granted", C0004="granted", **{f"x{i}": "denied"}))
    assert len(runtime._by_name) == 1


STORE = """\
store: shop
write_keys: [shop-key]
consent:
  categories: {{ad_user_data: [C0004, Marketing], analytics: [C0002]}}
destinations:
  - {{id: hook, type: webhook, url: "http://127.0.0.1:9/hook", consent: {consent}}}
"""


def test_store_and_destination_consent_categories_load(tmp_path: Path) -> None:
    """``consent.categories`` per store maps signals; per destination it lists categories."""
    config_dir = write_config_dir(tmp_path, STORE.format(consent="{categories: [C0004]}"))
    [shop] = load_config(config_dir, {"webhook": _Webhook}).stores
    assert shop.consent.categories == ConsentCategories(
        ad_user_data=("C0004", "Marketing"), analytics=("C0002",)
    )
    assert shop.destinations[0].consent.categories == ("C0004",)
    default = ConsentCategories()
    assert shop.consent.categories.ad_personalization == default.ad_personalization


@pytest.mark.parametrize(
    ("consent", "error"),
    [
        ("{categories: C0004}", "destinations[0].consent.categories: expected a list"),
        ("{categories: ['']}", "categories: a category is a non-empty name or id, got ''"),
        ("{category: [C0004]}", "unknown key 'category'"),
    ],
)
def test_malformed_consent_categories_are_config_errors(
    tmp_path: Path, consent: str, error: str
) -> None:
    """A category list that is not a list of names is refused with its key path."""
    config_dir = write_config_dir(tmp_path, STORE.format(consent=consent))
    with pytest.raises(ConfigError) as caught:
        load_config(config_dir, {"webhook": _Webhook})
    assert error in str(caught.value)


@attrs.frozen
class _Webhook:
    """Stand-in plugin config (only ``url``)."""

    url: str
