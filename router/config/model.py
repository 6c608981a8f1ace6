"""The config model: the frozen classes config files become, and the shape of their errors."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, Final, Literal

import attrs

from router.event import CANONICAL_NAMES, IDENTITY_CALLS
from router.identity.client_ip import KeyKind, check_entries
from router.identity.consent import ConsentCategories
from router.identity.consent_policy import ConsentPolicy
from router.secret import Secret

_CANONICAL_LIST = ", ".join(sorted(CANONICAL_NAMES))
_STORE_NAME = re.compile(r"[a-z0-9_-]{1,64}")
_DESTINATION_ID = re.compile(r"[a-z0-9_-]+")
_ORIGIN = re.compile(r"https?://[^/?#\s]+")


# --- errors ---------------------------------------------------------------------------------


@attrs.frozen
class ConfigIssue:
    """One problem in one config file: where it is and what would be valid."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(Exception):
    """Every problem found in a config directory, raised once after all files were read."""

    def __init__(self, errors: list[ConfigIssue]) -> None:
        super().__init__("\n".join(str(issue) for issue in errors))
        self.errors = errors


#: Ingest and delivery processes at most (``server.ingest_processes``,
#: ``server.delivery_processes``); a nice increment at most.
MAX_INGEST_PROCESSES: Final = 64
MAX_DELIVERY_PROCESSES: Final = 64
MAX_NICE: Final = 19


# --- field validators (attrs validators raising ValueError become issues at the key path) ----


def positive(_inst: object, _attr: attrs.Attribute[Any], value: float) -> None:
    """Reject zero, negative and NaN numbers."""
    if not value > 0:
        raise ValueError(f"must be greater than 0, got {value}")


def _zero_or_more(_inst: object, _attr: attrs.Attribute[Any], value: float) -> None:
    if not value >= 0:
        raise ValueError(f"must be 0 (off) or more, got {value}")


def _port(_inst: object, _attr: attrs.Attribute[int], value: int) -> None:
    if not 0 <= value <= 65535:
        raise ValueError(
            f"must be a port number from 0 to 65535 (0 picks a free port), got {value}"
        )


def _delivery_processes(_inst: object, _attr: attrs.Attribute[int], value: int) -> None:
    if not 0 <= value <= MAX_DELIVERY_PROCESSES:
        raise ValueError(
            f"must be 0 (delivery in the main process) to {MAX_DELIVERY_PROCESSES} delivery"
            f" processes, got {value}"
        )


def _ingest_processes(_inst: object, _attr: attrs.Attribute[int], value: int) -> None:
    if not 0 <= value <= MAX_INGEST_PROCESSES:
        raise ValueError(
            f"must be 0 (ingest in the main process) to {MAX_INGEST_PROCESSES} ingest processes,"
            f" got {value}"
        )


def _nice(_inst: object, _attr: attrs.Attribute[int], value: int) -> None:
    if not 0 <= value <= MAX_NICE:
        raise ValueError(f"must be a nice increment from 0 (as ingest) to {MAX_NICE}, got {value}")


def _store_name(_inst: object, _attr: attrs.Attribute[str], value: str) -> None:
    if not _STORE_NAME.fullmatch(value):
        raise ValueError(f"must be 1 to 64 characters of a-z, 0-9, '_' or '-', got {value!r}")


def destination_id(_inst: object, _attr: attrs.Attribute[str], value: str) -> None:
    """Destination ids are short lowercase slugs: they appear in logs, metrics and the outbox."""
    if not _DESTINATION_ID.fullmatch(value):
        raise ValueError(f"must be made of a-z, 0-9, '_' or '-', got {value!r}")


def _canonical(names: Collection[str], what: str) -> None:
    for name in names:
        if name not in CANONICAL_NAMES:
            raise ValueError(
                f"{what} {name!r} is not a canonical event name; valid names: {_CANONICAL_LIST}"
            )


def _canonical_targets(
    _inst: object, _attr: attrs.Attribute[Any], value: Mapping[str, str]
) -> None:
    _canonical(value.values(), "target")
    for name in value.values():
        if name in IDENTITY_CALLS:
            raise ValueError(
                f"target {name!r} is an identity call: identify, alias and group come only from"
                " their own Segment calls; map a track event onto a conversion or custom"
            )


def _non_empty(_inst: object, _attr: attrs.Attribute[Any], value: tuple[object, ...]) -> None:
    if not value:
        raise ValueError("must list at least one write key")


def _origins(_inst: object, _attr: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    for origin in value:
        if not _ORIGIN.fullmatch(origin):
            raise ValueError(
                f"{origin!r} is not an origin; write scheme://host[:port] with no path or "
                "trailing slash, e.g. https://shop.example"
            )


# --- tagless.yaml ---------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ServerConfig:
    """The ingest listener and its request limits."""

    host: str = "127.0.0.1"
    port: int = attrs.field(default=8080, validator=_port)
    max_request_bytes: int = attrs.field(default=512_000, validator=positive)
    max_event_bytes: int = attrs.field(default=32_768, validator=positive)
    max_batch_events: int = attrs.field(default=2500, validator=positive)
    shutdown_grace_secs: float = attrs.field(default=10.0, validator=positive)
    #: A connection's request headers must arrive within this long (from its opening, or from
    #: the first byte of its next request).
    header_timeout_secs: float = attrs.field(default=10.0, validator=positive)
    #: A request's whole body must arrive within this long of its headers.
    body_timeout_secs: float = attrs.field(default=30.0, validator=positive)
    #: An idle keep-alive connection is closed after this long.
    keepalive_timeout_secs: float = attrs.field(default=75.0, validator=positive)
    #: Open ingest connections at most; None derives it from the open-file limit.
    max_connections: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(positive)
    )
    #: 0: ingest runs in the main process beside delivery. N: N ingest processes share the
    #: port (SO_REUSEPORT) and the main process delivers (router/ingest_pool.py).
    ingest_processes: int = attrs.field(default=0, validator=_ingest_processes)
    #: With ingest or delivery processes: how much lower the CPU priority of the processes
    #: that deliver is (a nice increment, 0..19), so that acknowledging events goes before
    #: delivering them.
    delivery_nice: int = attrs.field(default=0, validator=_nice)
    #: With ingest or delivery processes: the processes that deliver run under Linux's
    #: SCHED_IDLE policy instead (a CPU only when no other process wants one; ingest takes it
    #: back at once), and ``delivery_nice`` lowers only a main process that does not deliver.
    delivery_idle: bool = False
    #: 0: the main process delivers. N: N delivery processes share the lanes out between them,
    #: each on a core of its own, and the main process delivers nothing
    #: (router/delivery_pool.py).
    delivery_processes: int = attrs.field(default=0, validator=_delivery_processes)


def _postgres_url(_inst: object, _attr: attrs.Attribute[Any], value: Secret | None) -> None:
    if value is None or value.missing is not None:
        return
    if not value.reveal().startswith(("postgresql://", "postgres://")):
        raise ValueError(
            "must be a PostgreSQL URL: postgresql://user[:password]@host[:port]/database"
        )


@attrs.frozen(kw_only=True)
class OutboxConfig:
    """The durable outbox. A relative ``path`` is relative to the working directory Tagless
    is started from, not to the config directory. ``url`` (``postgresql://...``) selects the
    PostgreSQL backend instead, shared by several nodes; ``path`` then goes unused."""

    path: Path = Path("var/tagless.db")
    url: Secret | None = attrs.field(default=None, validator=_postgres_url)
    synchronous: Literal["full", "normal"] = "full"
    #: Backpressure: while a store has this many undelivered events (its destination with the
    #: most: routed and not yet settled, plus retries waiting), its ingest answers 503.
    max_pending_events: int = attrs.field(default=200_000, validator=positive)
    #: Backpressure: below this much free space (MB) on the outbox's filesystem, ingest
    #: answers 503 (0: off).
    min_free_disk_mb: int = attrs.field(default=256, validator=_zero_or_more)
    lease_secs: float = attrs.field(default=60.0, validator=positive)
    retention_hours: float = attrs.field(default=168.0, validator=positive)
    wal_checkpoint_secs: float = attrs.field(default=30.0, validator=positive)
    #: Delivered events lose their user data (identity, IP, user agent, click ids) after this
    #: long; the conversion itself stays until ``retention_hours`` deletes it.
    pii_retention_hours: float = attrs.field(default=72.0, validator=positive)
    #: Dead letters are deleted this long after their last try (each deletion is logged).
    dead_letter_retention_hours: float = attrs.field(default=720.0, validator=positive)
    #: The attempts log (one row per batch tried) keeps rows this long, and this many at most.
    attempts_retention_hours: float = attrs.field(default=168.0, validator=positive)
    attempts_max_rows: int = attrs.field(default=1_000_000, validator=positive)


@attrs.frozen(kw_only=True)
class AdminConfig:
    """The admin UI and API listener; ``token`` protects it and is required."""

    host: str = "127.0.0.1"
    port: int = attrs.field(default=8081, validator=_port)
    token: Secret


@attrs.frozen(kw_only=True)
class LoggingConfig:
    """Log level and renderer."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["json", "console"] = "json"


@attrs.frozen(kw_only=True)
class RetryConfig:
    """How a destination is retried; ``delivery`` sets the defaults, a destination's ``retry``
    overrides them key by key."""

    max_attempts: int = attrs.field(default=8, validator=positive)
    max_age_secs: float = attrs.field(default=86_400.0, validator=positive)
    initial_backoff_secs: float = attrs.field(default=1.0, validator=positive)
    max_backoff_secs: float = attrs.field(default=300.0, validator=positive)
    #: The longest a destination rests, however long the platform's ``Retry-After`` asks for.
    max_pause_secs: float = attrs.field(default=300.0, validator=positive)
    timeout_secs: float = attrs.field(default=10.0, validator=positive)
    concurrency: int = attrs.field(default=4, validator=positive)


# --- stores/<name>.yaml ---------------------------------------------------------------------


def _filter_entries(_inst: object, _attr: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    for entry in value:
        if not entry.strip():
            raise ValueError(
                "an empty entry; write a canonical event name or the sender's own event name"
            )


@attrs.frozen(kw_only=True)
class EventFilter:
    """Which events a destination receives: an empty ``allow`` admits all. An entry that is a
    canonical name matches the canonical name; any other entry matches the sender's own event
    name (``source_name``) exactly, so two custom events can be told apart."""

    allow: tuple[str, ...] = attrs.field(default=(), validator=_filter_entries)
    deny: tuple[str, ...] = attrs.field(default=(), validator=_filter_entries)

    def admits(self, name: str, source_name: str = "") -> bool:
        """Whether an event with canonical ``name`` and sender name ``source_name`` passes."""
        allowed = not self.allow or _matches(self.allow, name, source_name)
        return allowed and not _matches(self.deny, name, source_name)


def _matches(entries: tuple[str, ...], name: str, source_name: str) -> bool:
    return name in entries or (source_name not in CANONICAL_NAMES and source_name in entries)


@attrs.frozen
class UnresolvedSettings:
    """A destination's settings read lazily while ``variables`` were not set: it cannot be
    built (that raises :class:`~router.secret.MissingSecret`), but commands that never build
    it (status, dead letters, ...) run."""

    variables: tuple[str, ...]


@attrs.frozen(kw_only=True)
class DestinationConfig:
    """One destination of a store: the generic keys, and the plugin's own config in ``settings``."""

    id: str = attrs.field(validator=destination_id)
    type: str
    enabled: bool = True
    events: EventFilter = attrs.Factory(EventFilter)
    consent: ConsentPolicy = attrs.Factory(ConsentPolicy)
    #: Already merged with the ``delivery`` defaults of tagless.yaml.
    retry: RetryConfig = attrs.Factory(RetryConfig)
    #: An instance of the plugin's attrs config class (typed per plugin, hence ``Any``).
    settings: Any = None


def _networks(_inst: object, attr: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    check_entries(attr.name, value)  # the resolver owns the syntax


@attrs.frozen(kw_only=True)
class ClientIpConfig:
    """How the customer's IP is found; entries are checked by the client-IP resolver's rules."""

    trusted_proxies: tuple[str, ...] = attrs.field(default=(), validator=_networks)
    headers: tuple[Literal["cf-connecting-ip", "x-forwarded-for", "forwarded"], ...] = (
        "cf-connecting-ip",
        "x-forwarded-for",
        "forwarded",
    )
    own_addresses: tuple[str, ...] = attrs.field(default=(), validator=_networks)
    #: Additions to the shipped CDN (class cdn) and cloud/hosting (class cloud) ranges.
    cdn_ranges: tuple[str, ...] = attrs.field(default=(), validator=_networks)
    cloud_ranges: tuple[str, ...] = attrs.field(default=(), validator=_networks)


@attrs.frozen(kw_only=True)
class WriteKey:
    """One write key and who holds it: the store's backend (``server``, the default, also
    what a plain string is) or the customer's browser (``browser``)."""

    #: A plain string entry fills this field.
    __config_shorthand__ = "key"

    key: Secret
    kind: KeyKind = "server"


@attrs.frozen(kw_only=True)
class StoreConsent:
    """A store's ``consent``: ``categories`` says which consent-manager categories mean each
    signal (``ad_user_data``, ``ad_personalization``, ``analytics``)."""

    categories: ConsentCategories = attrs.Factory(ConsentCategories)


@attrs.frozen(kw_only=True)
class StitchingConfig:
    """Identity stitching: an event lacking a customer IP or user agent (a server callback) is
    filled from its person's earlier committed events (same userId or anonymousId, or linked by
    an event carrying both) within ``window_hours``: public IP, user agent, ids, hashed email."""

    enabled: bool = False
    #: How old what an earlier event carried may be to fill a later one.
    window_hours: float = attrs.field(default=24.0, validator=positive)


def _value_from(_inst: object, _attr: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    if not value:
        raise ValueError("must list at least one of total, revenue, value")
    if len(set(value)) != len(value):
        raise ValueError(f"lists a property twice: {', '.join(value)}")


@attrs.frozen(kw_only=True)
class StoreConfig:
    """One store: who may send its events and where they go. ``file`` is where it was read."""

    store: str = attrs.field(validator=_store_name)
    write_keys: tuple[WriteKey, ...] = attrs.field(validator=_non_empty)
    allowed_origins: tuple[str, ...] = attrs.field(default=(), validator=_origins)
    client_ip: ClientIpConfig = attrs.Factory(ClientIpConfig)
    #: Sender event name -> canonical name, on top of the built-in Segment mapping.
    event_names: dict[str, str] = attrs.field(factory=dict, validator=_canonical_targets)
    consent: StoreConsent = attrs.Factory(StoreConsent)
    #: The properties an event's value is read from, first one sent wins; else Σ products.
    value_from: tuple[Literal["total", "revenue", "value"], ...] = attrs.field(
        default=("total", "revenue", "value"), validator=_value_from
    )
    stitching: StitchingConfig = attrs.Factory(StitchingConfig)
    destinations: tuple[DestinationConfig, ...] = ()
    file: str = ""


@attrs.frozen(kw_only=True)
class Config:
    """The whole configuration: tagless.yaml plus every stores/*.yaml of ``source_dir``."""

    server: ServerConfig = attrs.Factory(ServerConfig)
    outbox: OutboxConfig = attrs.Factory(OutboxConfig)
    admin: AdminConfig
    logging: LoggingConfig = attrs.Factory(LoggingConfig)
    delivery: RetryConfig = attrs.Factory(RetryConfig)
    stores: tuple[StoreConfig, ...] = ()
    source_dir: Path = Path("config")
