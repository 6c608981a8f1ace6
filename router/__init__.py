"""Tagless: a self-hosted conversion event router (ingest, durable outbox, delivery).

Plugin authors: ``router.sdk`` is the public API and ``router.testing`` its test kit; every
other module here is the engine's own and may change in any release.
"""

__version__ = "0.1.0"
