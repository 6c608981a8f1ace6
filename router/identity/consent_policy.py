"""What each destination gets given the customer's consent: decided once, when an event is routed.

The dispatcher applies the decision (a route marked "without user data") and never decides again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal

import attrs

from router.event import Consent, ConsentState
from router.identity.consent import category_names

ConsentAction = Literal["send", "without_user_data", "skip"]
_STRICTNESS: Final[Mapping[ConsentAction, int]] = {"send": 0, "without_user_data": 1, "skip": 2}


@attrs.frozen(kw_only=True)
class ConsentPolicy:
    """What a destination gets when the customer's consent (``signal``) is denied or unknown.

    ``send``: the whole event; ``without_user_data``: the event without identity (contact
    data, names, address, ids, IP, user agent, click ids); ``skip``: nothing. The default
    keeps the conversion but drops identity on a denial, and sends when consent is unknown;
    a store serving the EEA sets ``unknown: without_user_data`` (or ``skip``).

    ``categories`` (consent-manager category names or ids, such as OneTrust's ``C0004``): the
    destination gets an event only when every one of them is granted (the RudderStack and
    Segment rule); one denied skips the event, one the event does not state is ``unknown``.
    """

    signal: Literal["ad_user_data", "ad_personalization", "analytics"] = "ad_user_data"
    denied: ConsentAction = "without_user_data"
    unknown: ConsentAction = "send"
    categories: tuple[str, ...] = attrs.field(default=(), validator=category_names)

    def action(self, state: str) -> ConsentAction:
        """The action for a consent state (granted, denied or unknown)."""
        if state == "denied":
            return self.denied
        return "send" if state == "granted" else self.unknown

    def decide(
        self, consent: Consent, categories: Mapping[str, ConsentState]
    ) -> tuple[ConsentAction, ConsentState]:
        """The strictest action the signal and the listed categories call for, and the consent
        state that called for it; ``categories`` are the event's, by case-folded name."""
        state: ConsentState = getattr(consent, self.signal)
        action = self.action(state)
        for name in self.categories:
            stated = categories.get(name.casefold(), "unknown")
            wanted = "skip" if stated == "denied" else self.action(stated)
            if _STRICTNESS[wanted] > _STRICTNESS[action]:
                action, state = wanted, stated
        return action, state
