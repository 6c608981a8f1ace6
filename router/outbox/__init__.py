"""The durable outbox: events, per-destination delivery state, retries and dead letters."""
