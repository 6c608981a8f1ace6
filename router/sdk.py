"""The public API for destination plugins: every name a destination needs, and nothing else.

A destination package, built-in or third-party, imports from this module only
(``from router.sdk import Destination, Outcome, ...``); ``router.testing`` is its test kit.
Everything else under ``router`` is the engine's own and may change in any release.

Compatibility promise (``API_VERSION`` is ``MAJOR.MINOR``):

- A minor release may add names here, add optional keyword arguments with defaults, add
  methods with a default to :class:`Destination`, add fields with defaults to the canonical
  :class:`Event` and its parts, and add reason codes. A plugin built against ``1.x`` keeps
  working on every later ``1.y``.
- Only a major release may remove or rename a name here, change a signature, an abstract
  method or the meaning of an :class:`Outcome` kind, change the status policy of
  :func:`classify`, or change a privacy profile's normalisation.
- A plugin states what it needs with ``requires_api`` (checked at discovery): ``"1"`` runs on
  every ``1.y``, ``"1.2"`` on ``1.2`` and later ``1.y``.
"""

from __future__ import annotations

from typing import Final

from router.attempts import Attempt, AttemptSink
from router.clock import Clock
from router.codec import dumps
from router.destination import (
    DELIVERED,
    CanonicalJson,
    Destination,
    Health,
    MappingError,
    MissingIdentity,
    Outcome,
    OutcomeKind,
    TestAnswer,
)
from router.event import (
    ACTION_SOURCES,
    CANONICAL_NAMES,
    CONSENT_STATES,
    IDENTITY_CALLS,
    IP_CLASSES,
    Consent,
    Event,
    Item,
)
from router.google_auth import (
    DEFAULT_TOKEN_ENDPOINT,
    GoogleAuth,
    GoogleAuthError,
    GoogleCredentials,
    authorized_post,
    authorized_request,
)
from router.http import (
    MAX_KEPT_BODY,
    HttpClient,
    Response,
    TransportError,
    classify,
    error_object,
    parse_retry_after,
    transport_outcome,
)
from router.privacy import (
    USER_DATA_FIELDS,
    Normaliser,
    Profile,
    hash_all,
    hash_city,
    hash_country,
    hash_date_of_birth,
    hash_email,
    hash_external_id,
    hash_gender,
    hash_name,
    hash_phone,
    hash_postal_code,
    hash_region,
    hash_with,
    is_hashed,
    normalize_city,
    normalize_country,
    normalize_date_of_birth,
    normalize_email,
    normalize_external_id,
    normalize_gender,
    normalize_name,
    normalize_phone,
    normalize_postal_code,
    normalize_region,
    sha256_hex,
    without_user_data,
)
from router.secret import Secret

#: The plugin API's version, ``MAJOR.MINOR`` (see the compatibility promise above).
API_VERSION: Final = "1.0"


def consent_denied(event: Event) -> bool:
    """Whether the event's consent denies ad use of its user data (``ad_user_data`` or
    ``ad_personalization`` denied): a platform opt-out flag (Spotify ``opt_out_targeting``,
    Pinterest ``opt_out``) should then be set. Routing already removed what the store's
    consent policy forbids; this is for the platforms that want the signal itself."""
    return "denied" in (event.consent.ad_user_data, event.consent.ad_personalization)


__all__ = [
    "ACTION_SOURCES",
    "API_VERSION",
    "CANONICAL_NAMES",
    "CONSENT_STATES",
    "DEFAULT_TOKEN_ENDPOINT",
    "DELIVERED",
    "IDENTITY_CALLS",
    "IP_CLASSES",
    "MAX_KEPT_BODY",
    "USER_DATA_FIELDS",
    "Attempt",
    "AttemptSink",
    "CanonicalJson",
    "Clock",
    "Consent",
    "Destination",
    "Event",
    "GoogleAuth",
    "GoogleAuthError",
    "GoogleCredentials",
    "Health",
    "HttpClient",
    "Item",
    "MappingError",
    "MissingIdentity",
    "Normaliser",
    "Outcome",
    "OutcomeKind",
    "Profile",
    "Response",
    "Secret",
    "TestAnswer",
    "TransportError",
    "authorized_post",
    "authorized_request",
    "classify",
    "consent_denied",
    "dumps",
    "error_object",
    "hash_all",
    "hash_city",
    "hash_country",
    "hash_date_of_birth",
    "hash_email",
    "hash_external_id",
    "hash_gender",
    "hash_name",
    "hash_phone",
    "hash_postal_code",
    "hash_region",
    "hash_with",
    "is_hashed",
    "normalize_city",
    "normalize_country",
    "normalize_date_of_birth",
    "normalize_email",
    "normalize_external_id",
    "normalize_gender",
    "normalize_name",
    "normalize_phone",
    "normalize_postal_code",
    "normalize_region",
    "parse_retry_after",
    "sha256_hex",
    "transport_outcome",
    "without_user_data",
]
