"""Tagless: a self-hosted conversion event router (ingest, durable outbox, delivery)."""

__version__ = "0.1.0"
