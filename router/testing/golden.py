"""Golden mapping tests: canonical input fixtures in, one readable expected payload per file.

``TAGLESS_REGEN_GOLDEN=1`` (``make golden``) rewrites the expected files; review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from router import codec
from router.destination import Destination, MappingError
from router.event import Event

#: The shared canonical fixtures: one per event type, in the wire form of router.codec.
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "events"


def load_fixture(name: str, folder: Path = FIXTURES) -> Event:
    """One canonical input event by name (``purchase``, ``page_view``...)."""
    return codec.from_dict(json.loads((folder / f"{name}.json").read_text()))


def fixture_names(folder: Path = FIXTURES) -> list[str]:
    return sorted(path.stem for path in folder.glob("*.json"))


def mapped(destination: Destination[Any], event: Event) -> Any:
    """What the destination makes of ``event``, as JSON data; a mapping error is a result too."""
    try:
        payload = destination.map(event)
    except MappingError as error:
        return {"mapping_error": error.reason, "message": str(error)}
    return json.loads(codec.dumps(payload))


def check_golden(
    destination: Destination[Any], name: str, golden_dir: Path, event: Event | None = None
) -> None:
    """Compare the mapping of fixture ``name`` (or of ``event``, a variant of one, named
    ``name``) with ``golden_dir/name.json``, or rewrite that file."""
    actual = mapped(destination, load_fixture(name) if event is None else event)
    path = golden_dir / f"{name}.json"
    text = json.dumps(actual, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if os.environ.get("TAGLESS_REGEN_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return
    assert path.exists(), f"no golden file {path}; run `make golden` and review it"
    expected = json.loads(path.read_text())
    assert actual == expected, f"{path.name}: mapping differs from the golden file"
