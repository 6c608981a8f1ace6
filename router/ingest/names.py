"""Sender event names → canonical names: the Segment e-commerce v2 table, per-store overrides."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from router.event import CANONICAL_NAMES, IDENTITY_CALLS

#: Segment e-commerce spec v2 (and common lead/sign-up) names of ``track`` events.
SEGMENT_NAMES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "Order Completed": "purchase",
        "Product Viewed": "view_item",
        "Product Added": "add_to_cart",
        "Checkout Started": "begin_checkout",
        "Payment Info Entered": "add_payment_info",
        "Order Refunded": "refund",
        "Products Searched": "search",
        "Signed Up": "sign_up",
        "Lead Generated": "generate_lead",
        "Lead Created": "generate_lead",
        "Lead Submitted": "generate_lead",
        "Generate Lead": "generate_lead",
    }
)

#: Message types whose canonical name does not depend on the sender's name.
_BY_TYPE: Final[Mapping[str, str]] = {
    "page": "page_view",
    "screen": "page_view",
    "identify": "identify",
    "group": "group",
    "alias": "alias",
}
#: What a ``track`` event may be named: a conversion or ``custom``, never an identity call.
_TRACK_NAMES: Final = CANONICAL_NAMES - IDENTITY_CALLS


class NameMap:
    """One store's name resolution, built once per store from its ``event_names`` overrides.

    Only ``track`` events are looked up by name; ``page``/``screen`` are always ``page_view``,
    ``identify``, ``group`` and ``alias`` are their own names. For a ``track`` event the
    first hit wins: an override spelled exactly, an override in any case, the Segment table or a
    canonical name spelled exactly, then the same in any case; anything else is ``custom``.
    """

    __slots__ = ("_exact", "_folded")

    def __init__(self, overrides: Mapping[str, str] | None = None) -> None:
        overrides = overrides or {}
        for sender, canonical in overrides.items():
            if not sender:
                raise ValueError("event_names: an empty sender name")
            if canonical not in _TRACK_NAMES:
                valid = ", ".join(sorted(_TRACK_NAMES))
                raise ValueError(f"event_names.{sender}: {canonical!r} is not one of {valid}")
        table = {name: name for name in _TRACK_NAMES} | dict(SEGMENT_NAMES)
        folded_overrides = {k.casefold(): v for k, v in overrides.items()}
        # Precomputed so that a hit costs one or two dict lookups: an override in any case
        # beats the table spelled exactly, and an exact override beats everything.
        self._exact: dict[str, str] = {
            k: folded_overrides.get(k.casefold(), v) for k, v in table.items()
        } | dict(overrides)
        self._folded: dict[str, str] = {
            k.casefold(): v for k, v in table.items()
        } | folded_overrides

    def canonical(self, source_type: str, source_name: str) -> str:
        """The canonical name of a message of this type and sender name."""
        by_type = _BY_TYPE.get(source_type)
        if by_type is not None:
            return by_type
        name = self._exact.get(source_name)
        if name is None:
            name = self._folded.get(source_name.casefold(), "custom")
        return name


#: Resolution without store overrides.
DEFAULT_NAMES: Final = NameMap()
