"""Reads a table back with the google-cloud-bigquery client; run by the emulator venv's python.

    readback.py ENDPOINT PROJECT DATASET TABLE   ->  a JSON list of rows on stdout

Values are tagged where JSON alone would lose their type: NUMERIC as {"numeric": "..."},
TIMESTAMP as {"timestamp": "<RFC 3339>"}; JSON columns come back as the client decodes them.
"""

from __future__ import annotations

import datetime
import decimal
import json
import sys
from typing import Any

from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery


def tagged(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return {"numeric": str(value)}
    if isinstance(value, datetime.datetime):
        return {"timestamp": value.astimezone(datetime.UTC).isoformat()}
    if isinstance(value, dict):
        return {key: tagged(item) for key, item in value.items()}
    if isinstance(value, list):
        return [tagged(item) for item in value]
    return value


def main() -> None:
    endpoint, project, dataset, table = sys.argv[1:5]
    client = bigquery.Client(
        project=project,
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options=ClientOptions(api_endpoint=endpoint),
    )
    query = f"SELECT * FROM `{project}.{dataset}.{table}` ORDER BY event_id"  # noqa: S608  # names from the test
    rows = [tagged(dict(row.items())) for row in client.query(query).result()]
    json.dump(rows, sys.stdout)


if __name__ == "__main__":
    main()
