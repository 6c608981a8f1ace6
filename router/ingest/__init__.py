"""Ingest: the Segment-spec HTTP API, authentication, limits, client IP, parsing into events."""
