"""A string that never shows itself: config secrets, write keys and tokens."""

from __future__ import annotations

import hmac

import attrs


class MissingSecret(RuntimeError):
    """A secret was needed whose environment variable was not set."""

    def __init__(self, variable: str) -> None:
        super().__init__(f"environment variable {variable} is not set, and this needs it")
        self.variable = variable


@attrs.frozen(repr=False, slots=True)
class Secret:
    """A secret value whose ``repr`` and ``str`` are redacted; read it with :meth:`reveal`."""

    _value: str = attrs.field(alias="value")
    #: The environment variable that was not set when the config was read (a command that
    #: needs no secret reads it lazily); revealing such a secret raises :class:`MissingSecret`.
    missing: str | None = None

    @classmethod
    def unset(cls, variable: str) -> Secret:
        """A secret whose variable was not set; it fails only when it is used."""
        return cls("", missing=variable)

    def reveal(self) -> str:
        """Return the secret itself, for the one place that must send it."""
        if self.missing is not None:
            raise MissingSecret(self.missing)
        return self._value

    def matches(self, candidate: str) -> bool:
        """Compare with ``candidate`` in constant time (an unset secret matches nothing)."""
        same = hmac.compare_digest(self._value.encode(), candidate.encode())
        return same and self.missing is None

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__
