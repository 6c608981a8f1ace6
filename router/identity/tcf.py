"""The IAB TCF v2 consent string: the purposes the customer consented to, from its core segment."""

from __future__ import annotations

import base64
import binascii
from typing import Final

#: Bits before ``PurposesConsent`` in the v2 core segment: Version 6, Created 36, LastUpdated
#: 36, CmpId 12, CmpVersion 12, ConsentScreen 6, ConsentLanguage 12, VendorListVersion 12,
#: TcfPolicyVersion 6, IsServiceSpecific 1, UseNonStandardTexts 1, SpecialFeatureOptIns 12.
PURPOSES_OFFSET: Final = 152
#: ``PurposesConsent`` is a 24-bit field, one bit per purpose id (1 is its first bit).
PURPOSES_BITS: Final = 24
#: Purposes TCF v2.2 defines (1 "store and/or access information on a device" to 11 "use
#: limited data to select content"); the field's later bits are reserved.
DEFINED_PURPOSES: Final = 11
_VERSION_BITS: Final = 6
_CORE_BYTES: Final = (PURPOSES_OFFSET + PURPOSES_BITS + 7) // 8
#: The category name a purpose is stored under on the event (``tcf_purpose_1``, ...).
PURPOSE_CATEGORY: Final = "tcf_purpose_{}"


def purposes_consent(tc_string: str) -> dict[int, bool] | None:
    """Purpose id -> consented, for purposes 1 to ``DEFINED_PURPOSES``, from a TC string.

    ``None`` when the string is no TCF v2 string (another version, not base64url, or too
    short to hold the field): a consent string Tagless cannot read states nothing.
    """
    core = tc_string.split(".", 1)[0].strip()
    if not core:
        return None
    try:
        raw = base64.urlsafe_b64decode(core + "=" * (-len(core) % 4))
    except (binascii.Error, ValueError):
        return None
    if len(raw) < _CORE_BYTES:
        return None
    head = int.from_bytes(raw[:_CORE_BYTES], "big")
    width = _CORE_BYTES * 8
    if head >> (width - _VERSION_BITS) != 2:
        return None
    field = (head >> (width - PURPOSES_OFFSET - PURPOSES_BITS)) & ((1 << PURPOSES_BITS) - 1)
    return {
        purpose: bool(field >> (PURPOSES_BITS - purpose) & 1)
        for purpose in range(1, DEFINED_PURPOSES + 1)
    }
