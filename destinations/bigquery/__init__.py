"""The ``bigquery`` destination: one row per event, streamed with ``tabledata.insertAll``."""

from destinations.bigquery.client import BigQueryDestination
from destinations.bigquery.config import BigQueryConfig

plugin = BigQueryDestination

__all__ = ["BigQueryConfig", "BigQueryDestination", "plugin"]
