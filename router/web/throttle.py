"""Failed admin sign-ins, counted per client address: past a few a minute, that address waits.

A wrong bearer token or a wrong token in the login form is a guess at the admin token; an
address that made :data:`MAX_FAILURES` of them within :data:`WINDOW_SECS` gets 429 with
``Retry-After`` for every admin request (the right token too, or guessing would go on at full
speed) until its oldest failure leaves the window. A request without credentials (a browser
opening a page before signing in) is no guess. The address is the TCP peer's: behind a proxy
every client shares the proxy's, so a guesser there locks the listener out for a minute, not
longer (the admin listener is bound to 127.0.0.1 by default).
"""

from __future__ import annotations

import collections
import math
from typing import Final

#: Failed sign-ins an address may make within the window.
MAX_FAILURES: Final = 10
WINDOW_SECS: Final = 60.0
#: Addresses remembered at most: the oldest is forgotten first (a flood from many addresses
#: cannot grow memory without bound).
MAX_ADDRESSES: Final = 10_000


class FailedSignIns:
    """Each address's recent failures (clock times), oldest first."""

    def __init__(self) -> None:
        self._failures: collections.OrderedDict[str, collections.deque[float]] = (
            collections.OrderedDict()
        )

    def wait_secs(self, address: str, now: float) -> float:
        """How long ``address`` must wait before its next sign-in (0: it may try now)."""
        failures = self._recent(address, now)
        if failures is None or len(failures) < MAX_FAILURES:
            return 0.0
        return failures[0] + WINDOW_SECS - now

    def failed(self, address: str, now: float) -> None:
        """Count a wrong token from ``address``."""
        failures = self._recent(address, now)
        if failures is None:
            failures = self._failures[address] = collections.deque(maxlen=MAX_FAILURES)
            while len(self._failures) > MAX_ADDRESSES:
                self._failures.popitem(last=False)
        else:
            self._failures.move_to_end(address)
        failures.append(now)

    def succeeded(self, address: str) -> None:
        """The address signed in: its failures are forgiven."""
        self._failures.pop(address, None)

    def _recent(self, address: str, now: float) -> collections.deque[float] | None:
        failures = self._failures.get(address)
        if failures is None:
            return None
        while failures and failures[0] <= now - WINDOW_SECS:
            failures.popleft()
        return failures


def retry_after(seconds: float) -> str:
    """A ``Retry-After`` value: whole seconds, at least one."""
    return str(max(1, math.ceil(seconds)))
