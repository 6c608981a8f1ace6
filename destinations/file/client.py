"""Appends canonical events, one JSON object per line, to a local file (fsynced per batch)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import attrs

from router.sdk import CanonicalJson, Destination, Health, Outcome, dumps


@attrs.frozen
class FileConfig:
    """``path`` (relative to the working directory) receives one event per line."""

    #: the file; relative paths are relative to the working directory
    path: Path
    #: events written per batch
    max_batch_size: int = 1000


class FileDestination(CanonicalJson, Destination[FileConfig]):
    """A local archive of delivered events: the example config works with no platform account."""

    name: ClassVar[str] = "file"
    config_class: ClassVar[type[Any]] = FileConfig

    @property
    def max_batch_size(self) -> int:
        return self.config.max_batch_size

    async def send(self, batch: Sequence[Any]) -> Sequence[Outcome]:
        data = b"".join(dumps(payload) + b"\n" for payload in batch)
        try:
            await asyncio.to_thread(self._append, data)
        except OSError as error:
            failed = Outcome("retry", "file_write_failed", detail=error.strerror or str(error))
            return [failed] * len(batch)
        return [Outcome("delivered", "ok")] * len(batch)

    def _append(self, data: bytes) -> None:
        path = Path(self.config.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("ab") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())

    async def health(self) -> Health:
        """Whether the file's folder can be written."""
        folder = Path(self.config.path).parent
        writable = os.access(folder if folder.exists() else Path("."), os.W_OK)
        return Health(ok=writable, detail=str(self.config.path))
