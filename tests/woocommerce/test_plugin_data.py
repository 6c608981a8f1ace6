"""The plugin ships its own copy of Tagless's data where WordPress cannot read Tagless's files."""

from __future__ import annotations

from pathlib import Path

from wordpress_shop import PLUGIN

ROUTER_DATA = Path(__file__).resolve().parents[2] / "router" / "identity" / "data"


def _cidrs(path: Path) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def test_plugin_cloudflare_ranges_are_taglesss() -> None:
    """The plugin believes CF-Connecting-IP from exactly the Cloudflare ranges Tagless ships
    (refresh both together: scripts/refresh_ip_ranges.py, then copy the CIDRs)."""
    plugin = _cidrs(PLUGIN / "includes" / "data" / "cloudflare.txt")
    assert plugin == _cidrs(ROUTER_DATA / "cloudflare.txt")
    assert len(plugin) > 10
