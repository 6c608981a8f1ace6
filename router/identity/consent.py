"""The customer's consent, read from every dialect a sender speaks, and the signals it means.

Dialects: Google consent-mode keys in ``context.consent`` (``ad_user_data``,
``ad_personalization``, ``analytics_storage``/``analytics``); Segment's
``context.consent.categoryPreferences`` with any category names or ids (OneTrust groups
``C0001``-``C0005``, named categories such as "Targeting Cookies"); RudderStack's
``context.consentManagement`` (``provider``, ``allowedConsentIds``, ``deniedConsentIds``); and
the IAB TCF string (``context.consent.tcf``/``tcfString`` or ``context.gdpr_consent``), whose
purposes become the categories ``tcf_purpose_1`` to ``tcf_purpose_11``.

Every category the event stated is kept on it (``Consent.categories``); the store's
:class:`ConsentCategories` says which of them mean each Google-style signal, and a signal the
sender stated itself wins over what its categories mean.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import attrs

from router.event import Consent, ConsentState
from router.fields import InvalidEvent, as_str, at, expected, opt_obj, opt_str
from router.identity.tcf import PURPOSE_CATEGORY, purposes_consent

_STATES: Final[Mapping[str, ConsentState]] = {
    "granted": "granted",
    "denied": "denied",
    "unknown": "unknown",
    "true": "granted",
    "false": "denied",
}
_VALID_STATES: Final = "granted, denied, unknown, true or false"
#: Google consent-mode keys and their slot in (ad_user_data, ad_personalization, analytics);
#: ``analytics`` comes last so that it wins over ``analytics_storage``.
_GOOGLE_KEYS: Final = (
    ("ad_user_data", 0),
    ("ad_personalization", 1),
    ("analytics_storage", 2),
    ("analytics", 2),
)


def as_state(v: object, base: str, key: str) -> ConsentState:
    """A consent value: granted/denied/unknown (any case) or a boolean."""
    if v is True:
        return "granted"
    if v is False:
        return "denied"
    state = _STATES.get(v.lower()) if type(v) is str else None
    if state is None:
        raise InvalidEvent(at(base, key), f"expected one of {_VALID_STATES}, got {v!r:.40}")
    return state


def category_names(_inst: object, attr: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    """attrs validator: every consent category is a non-empty name or id."""
    for name in value:
        if type(name) is not str or not name.strip():
            raise ValueError(f"{attr.name}: a category is a non-empty name or id, got {name!r}")


#: Categories that mean each signal when the store names none: Segment's own category names,
#: OneTrust's standard groups by id and name, and the TCF purposes Google's consent mode
#: reads (purposes 1 and 7 for ad user data, 3 and 4 for ad personalization).
DEFAULT_AD_USER_DATA: Final = (
    "advertising",
    "C0004",
    "Targeting Cookies",
    PURPOSE_CATEGORY.format(1),
    PURPOSE_CATEGORY.format(7),
)
DEFAULT_AD_PERSONALIZATION: Final = (
    "advertising",
    "C0004",
    "Targeting Cookies",
    PURPOSE_CATEGORY.format(3),
    PURPOSE_CATEGORY.format(4),
)
DEFAULT_ANALYTICS: Final = ("analytics", "C0002", "Performance Cookies")


@attrs.frozen(kw_only=True)
class ConsentCategories:
    """Which consent-manager categories mean each signal (a store's ``consent.categories``).

    A signal is denied when any of its categories the event stated is denied, granted when
    the ones it stated are all granted, and unknown when it stated none of them. Names match
    in any case. A signal the store leaves out keeps its defaults.
    """

    ad_user_data: tuple[str, ...] = attrs.field(
        default=DEFAULT_AD_USER_DATA, validator=category_names
    )
    ad_personalization: tuple[str, ...] = attrs.field(
        default=DEFAULT_AD_PERSONALIZATION, validator=category_names
    )
    analytics: tuple[str, ...] = attrs.field(default=DEFAULT_ANALYTICS, validator=category_names)

    def signals(
        self, categories: Mapping[str, ConsentState]
    ) -> tuple[ConsentState, ConsentState, ConsentState]:
        """(ad_user_data, ad_personalization, analytics) as the stated ``categories`` mean them."""
        folded = folded_categories(categories)
        return (
            _meaning(self.ad_user_data, folded),
            _meaning(self.ad_personalization, folded),
            _meaning(self.analytics, folded),
        )


DEFAULT_CATEGORIES: Final = ConsentCategories()


def folded_categories(categories: Mapping[str, ConsentState]) -> dict[str, ConsentState]:
    """The stated categories by case-folded name (a name stated twice: denied wins)."""
    folded: dict[str, ConsentState] = {}
    for name, state in categories.items():
        _note(folded, name.casefold(), state)
    return folded


def _meaning(names: tuple[str, ...], folded: Mapping[str, ConsentState]) -> ConsentState:
    state: ConsentState = "unknown"
    for name in names:
        stated = folded.get(name.casefold())
        if stated == "denied":
            return "denied"
        if stated == "granted":
            state = "granted"
    return state


def _note(categories: dict[str, ConsentState], name: str, state: ConsentState) -> None:
    """Record a stated category; a denial anywhere wins over a grant elsewhere."""
    if state != "unknown" and categories.get(name) != "denied":
        categories[name] = state


def read_consent(
    ctx: Mapping[str, Any], meaning: ConsentCategories = DEFAULT_CATEGORIES
) -> Consent:
    """The consent a message's ``context`` states, in every dialect it uses."""
    c = opt_obj(ctx, "consent", "context")
    categories: dict[str, ConsentState] = {}
    stated: list[ConsentState | None] = [None, None, None]
    tcf = None
    if c:
        base = "context.consent.categoryPreferences"
        for name, v in opt_obj(c, "categoryPreferences", "context.consent").items():
            if v is not None:
                _note(categories, name, as_state(v, base, name))
        for key, i in _GOOGLE_KEYS:
            if (v := c.get(key)) is not None:
                stated[i] = as_state(v, "context.consent", key)
        tcf = opt_str(c, "tcf", "context.consent") or opt_str(c, "tcfString", "context.consent")
    tcf = tcf or opt_str(ctx, "gdpr_consent", "context")
    managed = opt_obj(ctx, "consentManagement", "context")
    if managed:
        _consent_management(managed, categories)
    if tcf is not None:
        for purpose, granted in (purposes_consent(tcf) or {}).items():
            _note(categories, PURPOSE_CATEGORY.format(purpose), "granted" if granted else "denied")
    meant = meaning.signals(categories) if categories else ("unknown", "unknown", "unknown")
    ad_user_data, ad_personalization, analytics = (
        meant[i] if state is None else state for i, state in enumerate(stated)
    )
    return Consent(
        ad_user_data=ad_user_data,
        ad_personalization=ad_personalization,
        analytics=analytics,
        tcf_string=tcf,
        categories=categories,
    )


_MANAGED: Final = "context.consentManagement"
_MANAGED_IDS: Final[tuple[tuple[str, ConsentState], ...]] = (
    ("allowedConsentIds", "granted"),
    ("deniedConsentIds", "denied"),
)


def _consent_management(managed: Mapping[str, Any], categories: dict[str, ConsentState]) -> None:
    """RudderStack's ``consentManagement``: the ids the customer allowed and denied."""
    opt_str(managed, "provider", _MANAGED)  # any provider; checked to be a string
    for key, state in _MANAGED_IDS:
        ids = managed.get(key)
        if ids is None:
            continue
        if type(ids) is not list:
            raise expected(_MANAGED, key, "an array of consent ids", ids)
        for i, v in enumerate(ids):
            name = str(v) if type(v) is int else as_str(v, _MANAGED, f"{key}[{i}]")
            if name and (name := name.strip()):
                _note(categories, name, state)
