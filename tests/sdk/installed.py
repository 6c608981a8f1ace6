"""Packages 'installed' for one test: a dist-info folder and a module on a temporary sys.path."""

from __future__ import annotations

from pathlib import Path

import pytest

#: A minimal third-party destination written against router.sdk only.
GOOD_PLUGIN = '''
import attrs
from router.sdk import DELIVERED, Destination

@attrs.frozen
class PingConfig:
    """Settings of the ping destination."""
    endpoint: str = attrs.field(metadata={"description": "where to post"})
    timeout_secs: float = 5.0

class PingDestination(Destination[PingConfig]):
    name = "ping"
    config_class = PingConfig

    def map(self, event):
        return {"id": event.event_id}

    async def send(self, batch):
        return [DELIVERED for _ in batch]
'''


def install(
    site: Path,
    monkeypatch: pytest.MonkeyPatch,
    distribution: str,
    version: str,
    entry_points: dict[str, str],
    modules: dict[str, str],
) -> None:
    """Make ``distribution`` look installed: its metadata, its entry points in the
    ``tagless.destinations`` group and its modules, importable from ``site``."""
    site.mkdir(parents=True, exist_ok=True)
    info = site / f"{distribution.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n"
    )
    lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[tagless.destinations]\n{lines}")
    for module, source in modules.items():
        (site / f"{module}.py").write_text(source)
    monkeypatch.syspath_prepend(str(site))
    for module in modules:
        monkeypatch.delitem(__import__("sys").modules, module, raising=False)


def install_broken(site: Path, monkeypatch: pytest.MonkeyPatch, raises: str) -> None:
    """``tagless-destination-broken`` 0.3.0, type ``broken``, whose import runs ``raises``."""
    install(
        site,
        monkeypatch,
        "tagless-destination-broken",
        "0.3.0",
        {"broken": "broken_plugin:BrokenDestination"},
        {"broken_plugin": f"raise {raises}\n"},
    )


def install_ping(site: Path, monkeypatch: pytest.MonkeyPatch, source: str = GOOD_PLUGIN) -> None:
    """``tagless-destination-ping`` 1.2.0, type ``ping``, its module being ``source``."""
    install(
        site,
        monkeypatch,
        "tagless-destination-ping",
        "1.2.0",
        {"ping": "ping_plugin:PingDestination"},
        {"ping_plugin": source},
    )
