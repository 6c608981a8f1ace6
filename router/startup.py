"""Start-up failures as one sentence each: what failed, which address or file, what to do."""

from __future__ import annotations

import errno
import os
from pathlib import Path


class StartupError(Exception):
    """Tagless could not start; the message is the whole story, no traceback needed."""


_LISTEN_ADVICE = {
    errno.EADDRINUSE: "stop the process that holds it or choose another port",
    errno.EACCES: "choose a port above 1023 or grant the process CAP_NET_BIND_SERVICE",
    errno.EADDRNOTAVAIL: "use an address of this machine (127.0.0.1, 0.0.0.0 or ::)",
}


def listen_failure(section: str, host: str, port: int, error: OSError) -> StartupError:
    """A listener that could not bind, e.g. ``server`` on a port another process holds."""
    reason = os.strerror(error.errno) if error.errno else str(error)
    advice = _LISTEN_ADVICE.get(error.errno or 0, "check the address")
    return StartupError(
        f"cannot listen on {host}:{port} ({section}.host, {section}.port): {reason.lower()};"
        f" {advice}, then start again"
    )


def outbox_failure(path: Path, error: Exception) -> StartupError:
    """An outbox file that could not be created or opened."""
    if isinstance(error, OSError):
        reason = (error.strerror or str(error)).lower()
        if error.filename is not None:
            reason = f"{reason}: {error.filename}"
    else:
        reason = str(error)
    name = getattr(error, "sqlite_errorname", "")
    if isinstance(error, OSError) or name in ("SQLITE_CANTOPEN", "SQLITE_READONLY", "SQLITE_PERM"):
        advice = (
            "outbox.path must name a file this user can create and write, in a directory it"
            " can write; fix the path or its permissions"
        )
    elif name in ("SQLITE_NOTADB", "SQLITE_CORRUPT"):
        advice = "outbox.path must name a Tagless outbox or a file that does not exist yet"
    elif name in ("SQLITE_BUSY", "SQLITE_LOCKED"):
        advice = "another process holds it: stop that process (one Tagless per outbox file)"
    else:
        advice = "fix the outbox or set outbox.path to another file"
    return StartupError(f"cannot open the outbox {path} (outbox.path): {reason}; {advice}")
