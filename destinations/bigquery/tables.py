"""``tagless bigquery create-table``: creates a bigquery destination's dataset, events table and
audit table (if configured) through the REST API (``datasets.insert``, ``tables.insert``), or
says how an existing table's schema differs from the one Tagless writes."""

from __future__ import annotations

from typing import Any, Final

import attrs
import orjson

from destinations.bigquery.answers import error_reason, google_error
from destinations.bigquery.config import SCOPES, BigQueryConfig
from destinations.bigquery.schema import (
    AUDIT,
    EVENTS,
    TableSpec,
    schema_differences,
    table_resource,
)
from router.sdk import GoogleAuth, HttpClient, Outcome, Response, authorized_request

#: Exit codes: done (or already as wanted), the table exists with another schema, failure.
OK: Final = 0
DIFFERS: Final = 1
FAILED: Final = 2
_JSON: Final = {"Content-Type": "application/json"}

#: What an access error on each call most likely means, for the operator.
_HINTS: Final = {
    "datasets.get": "the account needs bigquery.datasets.get on the dataset"
    " (BigQuery Data Editor on the dataset grants it)",
    "datasets.insert": "creating a dataset needs bigquery.datasets.create on the project"
    " (BigQuery User or Data Editor on the project); or create the dataset in the console"
    " and grant the account BigQuery Data Editor on it",
    "tables.get": "the account needs bigquery.tables.get on the dataset"
    " (BigQuery Data Editor on the dataset grants it)",
    "tables.insert": "creating the table needs bigquery.tables.create on the dataset"
    " (BigQuery Data Editor on the dataset grants it)",
}


@attrs.frozen
class Report:
    """What the command did, line by line, and its exit code."""

    code: int
    lines: tuple[str, ...]


class SetupError(Exception):
    """A call failed in a way only the operator can fix; the message says what to do."""


async def create_table(config: BigQueryConfig, http: HttpClient) -> Report:
    """Make sure ``config``'s dataset and tables exist, each table with Tagless's schema; the
    exit code is the worst of the tables' (one differing, the other made: 1)."""
    auth = GoogleAuth(
        config.credentials,
        http,
        token_endpoint=config.token_endpoint,
        scopes=SCOPES,
        timeout_secs=config.timeout_secs,
    )
    lines: list[str] = []
    try:
        lines.append(await _ensure_dataset(auth, config))
        tables = [(config.table, EVENTS)]
        if config.audit_table is not None:
            tables.append((config.audit_table, AUDIT))
        code = OK
        for table, spec in tables:
            table_code, table_lines = await _ensure_table(auth, config, table, spec)
            code = max(code, table_code)
            lines += table_lines
    except SetupError as error:
        return Report(FAILED, (*lines, f"error: {error}"))
    return Report(code, tuple(lines))


async def _ensure_dataset(auth: GoogleAuth, config: BigQueryConfig) -> str:
    name = f"{config.project}.{config.dataset}"
    found = await _call(auth, config, "GET", config.dataset_url, None, "datasets.get")
    if found.status == 200:
        return f"dataset {name}: exists"
    _expect(found, (404,), "datasets.get")
    body: dict[str, Any] = {
        "datasetReference": {"projectId": config.project, "datasetId": config.dataset}
    }
    if config.location:
        body["location"] = config.location
    made = await _call(auth, config, "POST", config.datasets_url, body, "datasets.insert")
    if made.status == 409:  # created meanwhile by someone else: as good
        return f"dataset {name}: exists"
    _expect(made, (200,), "datasets.insert")
    where = f" in {config.location}" if config.location else ""
    return f"dataset {name}: created{where}"


async def _ensure_table(
    auth: GoogleAuth, config: BigQueryConfig, table: str, spec: TableSpec
) -> tuple[int, list[str]]:
    name, url = config.name_of(table), config.url_of(table)
    found = await _call(auth, config, "GET", url, None, "tables.get")
    if found.status == 404:
        resource = table_resource(config.project, config.dataset, table, spec)
        made = await _call(auth, config, "POST", config.tables_url, resource, "tables.insert")
        if made.status == 200:
            return OK, [f"table {name}: created with {spec.layout}"]
        if made.status != 409:  # 409: created meanwhile; compare what is there
            _expect(made, (200,), "tables.insert")
        found = await _call(auth, config, "GET", url, None, "tables.get")
    _expect(found, (200,), "tables.get")
    fields = _json(found).get("schema", {}).get("fields", [])
    differences = schema_differences(fields, spec.columns)
    if not differences:
        return OK, [f"table {name}: exists with Tagless's schema ({len(spec.columns)} columns)"]
    return DIFFERS, [
        f"table {name}: exists with another schema ({len(differences)} difference"
        f"{'' if len(differences) == 1 else 's'}); Tagless's rows would not fit it:",
        *(f"  {difference}" for difference in differences),
        "Use another table name, or change the table (destinations/bigquery/README.md"
        " lists every column).",
    ]


async def _call(
    auth: GoogleAuth,
    config: BigQueryConfig,
    method: str,
    url: str,
    body: dict[str, Any] | None,
    what: str,
) -> Response:
    encoded = None if body is None else orjson.dumps(body)
    answer = await authorized_request(
        auth, method, url, encoded, _JSON, timeout_secs=config.timeout_secs
    )
    if isinstance(answer, Outcome):
        raise SetupError(f"{what}: {answer.reason}: {answer.detail}")
    return answer


def _expect(response: Response, statuses: tuple[int, ...], what: str) -> None:
    if response.status in statuses:
        return
    error = google_error(response.body)
    if error is None:
        raise SetupError(f"{what}: HTTP {response.status}: {response.excerpt[:300]}")
    message = f"{what}: HTTP {response.status} {error_reason(error)}: {error.get('message', '')}"
    if response.status == 403 and what in _HINTS:
        message += f" ({_HINTS[what]})"
    raise SetupError(message)


def _json(response: Response) -> dict[str, Any]:
    try:
        data = orjson.loads(response.body)
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        raise SetupError(f"unreadable answer (HTTP {response.status}): {response.excerpt[:300]}")
    return data
