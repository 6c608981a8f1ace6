"""A fake BigQuery ``insertAll`` that enforces the documented rules the emulator does not:
``insertId`` deduplication, per-row ``insertErrors``, and bearer tokens it can revoke. It holds
the events table and the audit table (``AUDIT_TABLE``)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import attrs
import orjson

from destinations.bigquery import BigQueryConfig
from destinations.bigquery.schema import AUDIT_COLUMNS, COLUMNS, Column
from router.google_auth import GoogleCredentials
from router.testing.fake_platform import Answer, FakePlatform, Recorded

PROJECT, DATASET, TABLE = "tagless-test", "tagless", "events"
INSERT_PATH = f"/bigquery/v2/projects/{PROJECT}/datasets/{DATASET}/tables/{TABLE}/insertAll"
TABLE_PATH = f"/bigquery/v2/projects/{PROJECT}/datasets/{DATASET}/tables/{TABLE}"
AUDIT_TABLE = "deliveries"
AUDIT_INSERT_PATH = INSERT_PATH.replace(f"/tables/{TABLE}/", f"/tables/{AUDIT_TABLE}/")
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)")


def bigquery_config(endpoint: str, token_endpoint: str, key_file: Path, **more: Any) -> Any:
    """A bigquery destination's config for the fake's table, with a service-account key."""
    return BigQueryConfig(
        project=PROJECT,
        dataset=DATASET,
        table=TABLE,
        credentials=GoogleCredentials(service_account_file=key_file),
        endpoint=endpoint,
        token_endpoint=token_endpoint,
        **more,
    )


def google_error(code: int, reason: str, message: str) -> dict[str, Any]:
    """Google's JSON error shape, as BigQuery's REST API answers request errors."""
    status = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED"}
    return {
        "error": {
            "code": code,
            "message": message,
            "errors": [{"message": message, "domain": "global", "reason": reason}],
            "status": status.get(code, "UNKNOWN"),
        }
    }


@attrs.define
class FakeBigQuery:
    """Keeps the rows it inserted (``rows``; the audit table's in ``audit_rows``); ``row_errors``
    scripts insertErrors by event_id (one use); a token in ``revoked`` gets a 401."""

    platform: FakePlatform = attrs.field(init=False)
    rows: list[dict[str, Any]] = attrs.Factory(list)
    audit_rows: list[dict[str, Any]] = attrs.Factory(list)
    insert_ids: set[str] = attrs.Factory(set)
    row_errors: dict[str, list[dict[str, str]]] = attrs.Factory(dict)
    revoked: set[str] = attrs.Factory(set)

    def __attrs_post_init__(self) -> None:
        self.platform = FakePlatform(responder=self)

    @property
    def inserts(self) -> list[Recorded]:
        return [seen for seen in self.platform.requests if seen.path == INSERT_PATH]

    @property
    def audit_inserts(self) -> list[Recorded]:
        return [seen for seen in self.platform.requests if seen.path == AUDIT_INSERT_PATH]

    def __call__(self, seen: Recorded) -> Answer:
        token = seen.headers.get("Authorization", "").removeprefix("Bearer ")
        if not token.startswith("token-") or token in self.revoked:
            return Answer(401, google_error(401, "authError", "Invalid Credentials"))
        if seen.method == "GET" and seen.path == TABLE_PATH:
            return Answer(200, {"kind": "bigquery#table", "id": f"{PROJECT}:{DATASET}.{TABLE}"})
        tables = {
            INSERT_PATH: (COLUMNS, self.rows),
            AUDIT_INSERT_PATH: (AUDIT_COLUMNS, self.audit_rows),
        }
        if seen.method != "POST" or seen.path not in tables:
            return Answer(404, google_error(404, "notFound", f"Not found: {seen.path}"))
        request = seen.json()
        if request.get("skipInvalidRows") is not True:
            return Answer(400, google_error(400, "invalid", "expected skipInvalidRows: true"))
        return Answer(200, self._insert(request["rows"], *tables[seen.path]))

    def _insert(
        self, rows: Sequence[Mapping[str, Any]], columns: Sequence[Column], kept: list[Any]
    ) -> dict[str, Any]:
        errors: list[dict[str, Any]] = []
        for index, row in enumerate(rows):
            values = row["json"]
            found = self.row_errors.pop(str(values.get("event_id")), None)
            found = found or list(_problems(columns, values, ""))
            if found:
                errors.append({"index": index, "errors": found})
                continue
            insert_id = row.get("insertId")
            if not insert_id:
                raise AssertionError("every row carries an insertId")
            if insert_id not in self.insert_ids:  # BigQuery's best-effort dedup
                self.insert_ids.add(insert_id)
                kept.append(values)
        return {"kind": "bigquery#tableDataInsertAllResponse", "insertErrors": errors}


def _problems(columns: Sequence[Column], values: Mapping[str, Any], prefix: str) -> Any:
    """insertErrors entries for values that do not fit the columns (reason ``invalid``)."""
    known = {column.name: column for column in columns}
    for key in values:
        if key not in known:
            yield _invalid(prefix + key, f"no such field: {key}.")
    for column in columns:
        value = values.get(column.name)
        where = prefix + column.name
        if value is None:
            if column.mode == "REQUIRED":
                yield _invalid(where, "Missing required field.")
            continue
        items = value if column.mode == "REPEATED" else [value]
        if column.mode == "REPEATED" and not isinstance(value, list):
            yield _invalid(where, "Array specified for non-repeated field.")
            continue
        for item in items:
            if column.type == "RECORD":
                if not isinstance(item, dict):
                    yield _invalid(where, "This field is not a record.")
                else:
                    yield from _problems(column.fields, item, where + ".")
            elif not _fits(column.type, item):
                yield _invalid(where, f"Cannot convert value to {column.type.lower()}: {item!r}")


def _fits(kind: str, value: Any) -> bool:
    if kind == "STRING":
        return isinstance(value, str)
    if kind == "INTEGER":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "FLOAT":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "TIMESTAMP":
        return isinstance(value, str) and _timestamp(value)
    if kind == "NUMERIC":
        return isinstance(value, str) and _numeric(value)
    if kind == "JSON":  # a JSON-encoded string; an object is refused
        return isinstance(value, str) and _json(value)
    raise AssertionError(f"the fake does not know {kind}")


def _timestamp(text: str) -> bool:
    if not _RFC3339.fullmatch(text):
        return False
    datetime.fromisoformat(text.replace("Z", "+00:00"))
    return True


def _numeric(text: str) -> bool:
    try:
        number = Decimal(text)
    except InvalidOperation:
        return False
    exponent = number.as_tuple().exponent
    return number.is_finite() and isinstance(exponent, int) and exponent >= -9


def _json(text: str) -> bool:
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    return True


def _invalid(location: str, message: str) -> dict[str, str]:
    return {"reason": "invalid", "location": location, "debugInfo": "", "message": message}
