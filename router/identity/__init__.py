"""Identity: whose IP an event carries and what kind of address it is, and the customer's consent.

Config, ingest and the dispatcher use it; it imports none of them.
"""
