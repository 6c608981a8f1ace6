"""The events and audit tables: their columns, the resource ``create-table`` sends, schema diffs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import attrs


@attrs.frozen
class Column:
    """One column of the table, in BigQuery's REST ``TableFieldSchema`` terms."""

    name: str
    type: str
    mode: str = "NULLABLE"
    description: str = ""
    fields: tuple[Column, ...] = ()

    def resource(self) -> dict[str, Any]:
        """The column as ``tables.insert`` takes it."""
        out: dict[str, Any] = {"name": self.name, "type": self.type, "mode": self.mode}
        if self.description:
            out["description"] = self.description
        if self.fields:
            out["fields"] = [field.resource() for field in self.fields]
        return out


def _string(name: str, description: str, mode: str = "NULLABLE") -> Column:
    return Column(name, "STRING", mode, description)


def _numeric(name: str, description: str) -> Column:
    return Column(name, "NUMERIC", "NULLABLE", description)


ITEM_COLUMNS: Final = (
    _string("product_id", "the product's id or SKU as the store sent it"),
    _string("name", "product name"),
    _string("category", "product category"),
    _numeric("price", "unit price, in the event's currency"),
    Column("quantity", "INTEGER", "NULLABLE", "units"),
    _string("brand", "product brand"),
    _string("variant", "product variant"),
)
CLICK_ID_COLUMNS: Final = (
    _string("gclid", "Google Ads click id"),
    _string("gbraid", "Google Ads app click id (iOS)"),
    _string("wbraid", "Google Ads web click id (iOS)"),
    _string("fbc", "Meta click id cookie (_fbc)"),
    _string("fbp", "Meta browser id cookie (_fbp)"),
    _string("ga_client_id", "GA4 client id"),
    _string("ga_session_id", "GA4 session id"),
    _string("spotify_device_id", "Spotify device id"),
)
CONSENT_COLUMNS: Final = (
    _string("ad_user_data", "granted, denied or unknown"),
    _string("ad_personalization", "granted, denied or unknown"),
    _string("analytics", "granted, denied or unknown"),
    _string("tcf_string", "IAB TCF consent string, when sent"),
)

#: Every column of the events table, in order; destinations/bigquery/README.md explains each.
COLUMNS: Final = (
    _string("event_id", "the event's id (Segment messageId); also the insertId", "REQUIRED"),
    _string("store", "the Tagless store", "REQUIRED"),
    _string("name", "canonical event name (purchase, page_view, ...)", "REQUIRED"),
    _string("source_name", "the event name the sender used (Order Completed, ...)"),
    _string("source_type", "Segment call type: track, page, screen, identify, ..."),
    Column("occurred_at", "TIMESTAMP", "REQUIRED", "when the event happened"),
    Column("received_at", "TIMESTAMP", "REQUIRED", "when Tagless received it"),
    _string("action_source", "web, app, offline, phone_call, ..."),
    _string("page_url", "page URL"),
    _string("referrer", "referring URL"),
    _string("client_ip", "the customer's IP address as Tagless resolved it"),
    _string("client_ip_origin", "where the IP came from: payload, header, peer or missing"),
    _string("client_ip_class", "public, private, loopback, cdn, own_server, missing, ..."),
    _string("user_agent", "the customer's user agent"),
    _string("locale", "the customer's locale"),
    _string("user_id", "the store's customer id"),
    _string("anonymous_id", "the anonymous (device or cookie) id"),
    Column(
        "email_sha256",
        "STRING",
        "REPEATED",
        "SHA-256 hex of each email, normalised as Google requires; never the email",
    ),
    Column(
        "phone_sha256",
        "STRING",
        "REPEATED",
        "SHA-256 hex of each phone in E.164 (+ and digits); never the number",
    ),
    Column("click_ids", "RECORD", "NULLABLE", "click and device ids", CLICK_ID_COLUMNS),
    _string("order_id", "order or transaction id"),
    _string("currency", "ISO 4217 code of value, tax, shipping, discount and prices"),
    _numeric("value", "the event's value (order revenue)"),
    _numeric("tax", "tax"),
    _numeric("shipping", "shipping"),
    _numeric("discount", "discount"),
    _string("coupon", "coupon code"),
    Column("items", "RECORD", "REPEATED", "the order's or cart's lines", ITEM_COLUMNS),
    Column("consent", "RECORD", "NULLABLE", "consent as the sender stated it", CONSENT_COLUMNS),
    Column("properties", "JSON", "NULLABLE", "every other property the sender sent, untouched"),
)

#: One row per delivery attempt of the store's other destinations (``audit_table``).
AUDIT_COLUMNS: Final = (
    _string("store", "the Tagless store", "REQUIRED"),
    _string("destination", "the destination's id in the store's config", "REQUIRED"),
    _string("destination_type", "its type: meta_capi, spotify_capi, webhook, ..."),
    _string("event_id", "the event's id (Segment messageId)", "REQUIRED"),
    Column(
        "attempt",
        "INTEGER",
        "REQUIRED",
        "attempts the event has spent at the destination after this one (a try that paused"
        " the destination spends none)",
    ),
    _string("outcome", "delivered, retry (tried again later) or dead (dead-lettered)", "REQUIRED"),
    Column("status", "INTEGER", "NULLABLE", "the platform's HTTP status; NULL if none"),
    _string("reason", "short reason code: ok, http_503, timeout, mapping_error, ..."),
    Column("latency_ms", "FLOAT", "NULLABLE", "how long the request took; NULL if none was sent"),
    Column("attempted_at", "TIMESTAMP", "REQUIRED", "when the request went out"),
)


@attrs.frozen
class TableSpec:
    """A table Tagless writes: its columns and how it is laid out."""

    columns: tuple[Column, ...]
    description: str
    #: Rows are partitioned by day of a time column and clustered, so a query over a date
    #: range and a few stores or destinations reads only those rows.
    partition_by: str
    cluster_by: tuple[str, ...]

    @property
    def layout(self) -> str:
        """How ``create-table`` describes the table it made."""
        return (
            f"{len(self.columns)} columns, partitioned by day of {self.partition_by},"
            f" clustered by {' and '.join(self.cluster_by)}"
        )


EVENTS: Final = TableSpec(
    COLUMNS,
    "Events delivered by Tagless, one row per event (insertId = event_id)",
    "occurred_at",
    ("store", "name"),
)
AUDIT: Final = TableSpec(
    AUDIT_COLUMNS,
    "Tagless delivery attempts, one row per try of an event at a destination",
    "attempted_at",
    ("store", "destination"),
)


def table_resource(
    project: str, dataset: str, table: str, spec: TableSpec = EVENTS
) -> dict[str, Any]:
    """The body of ``tables.insert`` for a table of ``spec`` (the events table by default)."""
    return {
        "tableReference": {"projectId": project, "datasetId": dataset, "tableId": table},
        "description": spec.description,
        "schema": {"fields": [column.resource() for column in spec.columns]},
        "timePartitioning": {"type": "DAY", "field": spec.partition_by},
        "clustering": {"fields": list(spec.cluster_by)},
    }


# BigQuery answers legacy type names; the GoogleSQL names mean the same.
_SAME_TYPE: Final = {"INT64": "INTEGER", "FLOAT64": "FLOAT", "BOOL": "BOOLEAN", "STRUCT": "RECORD"}


def schema_differences(
    actual: Sequence[Mapping[str, Any]], columns: Sequence[Column] = COLUMNS
) -> list[str]:
    """What differs between a table's ``schema.fields`` and ``columns`` (the events table's by
    default), column by column (nested columns as ``items.price``); empty when they match.
    Order and descriptions do not count: rows are matched to columns by name."""
    return _differences(columns, actual, "")


def _differences(
    expected: Iterable[Column], actual: Sequence[Mapping[str, Any]], prefix: str
) -> list[str]:
    found = {str(field.get("name", "")).lower(): field for field in actual}
    problems: list[str] = []
    names = set()
    for column in expected:
        path = prefix + column.name
        names.add(column.name)
        field = found.get(column.name)
        if field is None:
            problems.append(f"{path}: missing (expected {_kind(column)})")
            continue
        shape = _field_kind(field)
        if shape != _kind(column):
            problems.append(f"{path}: is {shape}, expected {_kind(column)}")
        elif column.fields:
            problems += _differences(column.fields, field.get("fields") or [], path + ".")
    for name, field in found.items():
        if name not in names:
            problems.append(
                f"{prefix}{field.get('name')}: not a Tagless column ({_field_kind(field)})"
            )
    return problems


def _kind(column: Column) -> str:
    return f"{column.type} {column.mode}"


def _field_kind(field: Mapping[str, Any]) -> str:
    kind = str(field.get("type", "?")).upper()
    return f"{_SAME_TYPE.get(kind, kind)} {str(field.get('mode') or 'NULLABLE').upper()}"
