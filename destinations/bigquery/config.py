"""Settings of the BigQuery destination: the table, Google credentials, endpoints and limits."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final
from urllib.parse import quote

import attrs

from router.sdk import DEFAULT_TOKEN_ENDPOINT, GoogleCredentials

#: BigQuery takes up to 50,000 rows per insertAll request and recommends about 500.
MAX_ROWS_PER_REQUEST: Final = 50_000
DEFAULT_BATCH_SIZE: Final = 500
#: The audit table's rows wait in memory at most this long before they are inserted ...
DEFAULT_AUDIT_FLUSH_SECS: Final = 5.0
#: ... and at most this many wait; more are counted and logged, not kept.
DEFAULT_AUDIT_MAX_BUFFERED_ROWS: Final = 10_000
#: Covers inserting rows and creating the dataset and table (``tagless bigquery create-table``).
SCOPES: Final = ("https://www.googleapis.com/auth/bigquery",)

# BigQuery's naming rules: project IDs 6 to 30 lowercase letters, digits and hyphens (an
# older domain-scoped project is ``example.com:project``); datasets letters, digits and
# underscores; tables also Unicode letters and dashes.
_PROJECT: Final = re.compile(r"(?:[a-z0-9.-]+:)?[a-z][a-z0-9-]{4,28}[a-z0-9]")
_DATASET: Final = re.compile(r"[A-Za-z0-9_]{1,1024}")
_TABLE: Final = re.compile(r"[\w-]{1,1024}")


def _matches(
    pattern: re.Pattern[str], rule: str
) -> Callable[[object, attrs.Attribute[str], str], None]:
    def check(_: object, attribute: attrs.Attribute[str], value: str) -> None:
        if not pattern.fullmatch(value):
            raise ValueError(f"expected {rule}, got {value!r}")

    return check


def _http_url(_: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"expected an http:// or https:// URL, got {value!r}")


def _without_trailing_slash(url: str) -> str:
    return url.rstrip("/")


def _batch_size(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not 1 <= value <= MAX_ROWS_PER_REQUEST:
        raise ValueError(
            f"expected 1 to {MAX_ROWS_PER_REQUEST} (BigQuery's limit per request), got {value}"
        )


def _audit_table(
    instance: object, attribute: attrs.Attribute[str | None], value: str | None
) -> None:
    if value is None:
        return
    if not _TABLE.fullmatch(value):
        raise ValueError(
            f"expected a table ID of letters, digits, underscores and dashes, got {value!r}"
        )
    if value == instance.table:  # type: ignore[attr-defined]  # runs once the instance exists
        raise ValueError(
            f"audit_table {value!r} is the events table: name another table (e.g. deliveries)"
        )


def _buffer_size(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        raise ValueError(f"expected 1 or more rows, got {value}")


def _positive(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value > 0:
        raise ValueError(f"expected a number above 0, got {value}")


@attrs.frozen(kw_only=True)
class BigQueryConfig:
    """One table (``project``.``dataset``.``table``) that receives one row per event."""

    #: the Google Cloud project ID (`my-project-123`, not its name or number)
    project: str = attrs.field(
        validator=_matches(_PROJECT, "a Google Cloud project ID like my-project-123")
    )
    #: dataset ID: letters, digits, `_`
    dataset: str = attrs.field(
        validator=_matches(_DATASET, "a dataset ID of letters, digits and underscores")
    )
    #: table ID: letters, digits, `_`, `-`
    table: str = attrs.field(
        validator=_matches(_TABLE, "a table ID of letters, digits, underscores and dashes")
    )
    #: `{service_account_file: PATH}` (a service account's JSON key), or `{client_id, client_secret,
    #: refresh_token}` (an OAuth user; put the secrets in `${ENV}`)
    credentials: GoogleCredentials
    #: base URL of the BigQuery API (a local emulator in tests)
    endpoint: str = attrs.field(
        default="https://bigquery.googleapis.com",
        converter=_without_trailing_slash,
        validator=_http_url,
    )
    #: Google's OAuth token endpoint (a local one in tests)
    token_endpoint: str = attrs.field(default=DEFAULT_TOKEN_ENDPOINT, validator=_http_url)
    #: Where ``tagless bigquery create-table`` creates the dataset (``EU``, ``US``,
    #: ``europe-west3``...); BigQuery's default (US) when unset. Sending does not use it.
    location: str | None = None
    #: rows per request, 1 to 50,000
    max_batch_size: int = attrs.field(default=DEFAULT_BATCH_SIZE, validator=_batch_size)
    #: time for one request (token requests too)
    timeout_secs: float = attrs.field(default=10.0, validator=_positive)
    #: A second table in the same dataset that receives one row per delivery attempt of the
    #: store's other destinations (destinations/bigquery/README.md); None: no audit table.
    audit_table: str | None = attrs.field(default=None, validator=_audit_table)
    #: audit rows wait at most this long before they are inserted (sooner when `max_batch_size` of
    #: them wait)
    audit_flush_secs: float = attrs.field(default=DEFAULT_AUDIT_FLUSH_SECS, validator=_positive)
    #: at most this many audit rows wait in memory; more are counted as dropped
    audit_max_buffered_rows: int = attrs.field(
        default=DEFAULT_AUDIT_MAX_BUFFERED_ROWS, validator=_buffer_size
    )

    @property
    def dataset_url(self) -> str:
        """``datasets.get`` of the configured dataset."""
        return f"{self.datasets_url}/{quote(self.dataset, safe='')}"

    @property
    def datasets_url(self) -> str:
        """``datasets.insert`` in the configured project."""
        return f"{self.endpoint}/bigquery/v2/projects/{quote(self.project, safe='')}/datasets"

    @property
    def tables_url(self) -> str:
        """``tables.insert`` in the configured dataset."""
        return f"{self.dataset_url}/tables"

    @property
    def table_url(self) -> str:
        """``tables.get`` of the configured table."""
        return self.url_of(self.table)

    @property
    def insert_url(self) -> str:
        """``tabledata.insertAll`` into the configured table."""
        return f"{self.table_url}/insertAll"

    @property
    def table_name(self) -> str:
        """``project.dataset.table``, as messages name it."""
        return self.name_of(self.table)

    def url_of(self, table: str) -> str:
        """``tables.get`` of ``table`` in the configured dataset (the audit table too)."""
        return f"{self.tables_url}/{quote(table, safe='')}"

    def name_of(self, table: str) -> str:
        """``project.dataset.<table>``, as messages name it."""
        return f"{self.project}.{self.dataset}.{table}"
