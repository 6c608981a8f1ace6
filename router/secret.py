"""A string that never shows itself: config secrets, write keys and tokens."""

from __future__ import annotations

import hmac

import attrs


@attrs.frozen(repr=False, slots=True)
class Secret:
    """A secret value whose ``repr`` and ``str`` are redacted; read it with :meth:`reveal`."""

    _value: str = attrs.field(alias="value")

    def reveal(self) -> str:
        """Return the secret itself, for the one place that must send it."""
        return self._value

    def matches(self, candidate: str) -> bool:
        """Compare with ``candidate`` in constant time."""
        return hmac.compare_digest(self._value.encode(), candidate.encode())

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__
