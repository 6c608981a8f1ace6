#!/usr/bin/env python3
"""Refresh the CDN and cloud range files under router/identity/data/ from the providers' lists.

Run by hand (never by tests), then review the diff and commit it:

    python scripts/refresh_ip_ranges.py                 # every provider
    python scripts/refresh_ip_ranges.py --only fastly   # one provider

Each provider's published list is downloaded, reduced to its CIDRs, collapsed (adjacent and
nested networks merged) and written to ``<class>-<name>.txt`` with a header naming the source
and the date. ``--input NAME=PATH[,PATH]`` reads local copies instead of downloading (a
``.txt`` copy is read as one CIDR a line), ``--via NAME=TEXT`` says in the header where such a
copy came from and ``--date`` dates it. Standard library only.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import io
import ipaddress
import json
import re
import sys
import urllib.request
import zipfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

DATA = Path(__file__).resolve().parent.parent / "router" / "identity" / "data"
_AZURE_PAGE = "https://www.microsoft.com/en-us/download/details.aspx?id=56519"
_AZURE_JSON = re.compile(r"https://download\.microsoft\.com/[^\"'\s]+?ServiceTags_Public_\d+\.json")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Provider(NamedTuple):
    """One published list: the file it fills, its class and how to read it."""

    name: str
    ip_class: str  # cdn or cloud
    title: str
    urls: tuple[str, ...]
    parse: Callable[[Sequence[bytes]], Iterable[str]]


def _json(raw: bytes) -> Any:
    return json.loads(raw.decode("utf-8"))


def _aws(service: str | None) -> Callable[[Sequence[bytes]], list[str]]:
    """ip-ranges.json: CloudFront's prefixes (``service``), or every other one (None)."""

    def parse(raws: Sequence[bytes]) -> list[str]:
        doc = _json(raws[0])
        rows = [(p["ip_prefix"], p["service"]) for p in doc["prefixes"]]
        rows += [(p["ipv6_prefix"], p["service"]) for p in doc["ipv6_prefixes"]]
        edge = {cidr for cidr, svc in rows if svc == "CLOUDFRONT"}
        if service is not None:
            return sorted(edge)
        return _minus([cidr for cidr, _ in rows], edge)

    return parse


def _google_prefixes(raw: bytes) -> list[str]:
    doc = _json(raw)
    return [p.get("ipv4Prefix") or p["ipv6Prefix"] for p in doc["prefixes"]]


def _google_edge(raws: Sequence[bytes]) -> list[str]:
    """goog.json minus cloud.json: Google's own services and edges, not customers' VMs."""
    return _minus(_google_prefixes(raws[0]), _google_prefixes(raws[1]))


def _google_cloud(raws: Sequence[bytes]) -> list[str]:
    return _google_prefixes(raws[0])


def _fastly(raws: Sequence[bytes]) -> list[str]:
    doc = _json(raws[0])
    return [*doc["addresses"], *doc.get("ipv6_addresses", [])]


def _akamai(raws: Sequence[bytes]) -> list[str]:
    """A zip of text files, one CIDR a line."""
    found: list[str] = []
    with zipfile.ZipFile(io.BytesIO(raws[0])) as archive:
        for member in archive.namelist():
            if member.endswith(".txt"):
                found += _lines(archive.read(member))
    return found


def _azure(raws: Sequence[bytes]) -> list[str]:
    doc = _json(raws[0])
    return [cidr for tag in doc["values"] for cidr in tag["properties"]["addressPrefixes"]]


def _oracle(raws: Sequence[bytes]) -> list[str]:
    doc = _json(raws[0])
    return [entry["cidr"] for region in doc["regions"] for entry in region["cidrs"]]


def _first_column(raws: Sequence[bytes]) -> list[str]:
    """A geofeed (RFC 8805) CSV: the prefix is the first column; '#' lines are comments."""
    text = raws[0].decode("utf-8")
    rows = csv.reader(line for line in text.splitlines() if not line.startswith("#"))
    return [row[0].strip() for row in rows if row and row[0].strip()]


def _ripestat(raws: Sequence[bytes]) -> list[str]:
    """RIPEstat announced-prefixes: what the provider's AS announces (no published list)."""
    return [p["prefix"] for raw in raws for p in _json(raw)["data"]["prefixes"]]


def _ripe(asn: str) -> str:
    return f"https://stat.ripe.net/data/announced-prefixes/data.json?resource={asn}"


PROVIDERS: tuple[Provider, ...] = (
    Provider("fastly", "cdn", "Fastly edges", ("https://api.fastly.com/public-ip-list",), _fastly),
    Provider(
        "cloudfront",
        "cdn",
        "Amazon CloudFront edges (service CLOUDFRONT)",
        ("https://ip-ranges.amazonaws.com/ip-ranges.json",),
        _aws("CLOUDFRONT"),
    ),
    Provider(
        "google",
        "cdn",
        "Google services and edges (goog.json minus cloud.json)",
        (
            "https://www.gstatic.com/ipranges/goog.json",
            "https://www.gstatic.com/ipranges/cloud.json",
        ),
        _google_edge,
    ),
    Provider(
        "akamai",
        "cdn",
        "Akamai edges (origin ACL list)",
        ("https://techdocs.akamai.com/property-manager/pdfs/akamai_ipv4_ipv6_CIDRs-txt.zip",),
        _akamai,
    ),
    Provider(
        "aws",
        "cloud",
        "Amazon Web Services (every service but CloudFront)",
        ("https://ip-ranges.amazonaws.com/ip-ranges.json",),
        _aws(None),
    ),
    Provider(
        "google",
        "cloud",
        "Google Cloud customer ranges",
        ("https://www.gstatic.com/ipranges/cloud.json",),
        _google_cloud,
    ),
    Provider("azure", "cloud", "Microsoft Azure (all service tags)", (_AZURE_PAGE,), _azure),
    Provider(
        "oracle",
        "cloud",
        "Oracle Cloud Infrastructure",
        ("https://docs.oracle.com/en-us/iaas/tools/public_ip_ranges.json",),
        _oracle,
    ),
    Provider(
        "digitalocean",
        "cloud",
        "DigitalOcean (geofeed)",
        ("https://digitalocean.com/geo/google.csv",),
        _first_column,
    ),
    Provider(
        "linode",
        "cloud",
        "Linode / Akamai Cloud (geofeed)",
        ("https://geoip.linode.com/",),
        _first_column,
    ),
    Provider(
        "hetzner",
        "cloud",
        "Hetzner Online (prefixes announced by AS24940)",
        (_ripe("AS24940"),),
        _ripestat,
    ),
    Provider(
        "ovh", "cloud", "OVHcloud (prefixes announced by AS16276)", (_ripe("AS16276"),), _ripestat
    ),
)


def _lines(raw: bytes) -> list[str]:
    """One CIDR a line; '#' starts a comment."""
    text = raw.decode("utf-8")
    return [
        ln.partition("#")[0].strip() for ln in text.splitlines() if ln.partition("#")[0].strip()
    ]


def _minus(cidrs: Iterable[str], removed: Iterable[str]) -> list[str]:
    """``cidrs`` with every address of ``removed`` taken out."""
    out: list[Network] = []
    drop = _collapse(removed)
    for net in _collapse(cidrs):
        parts = [net]
        for gone in drop:
            parts = [rest for part in parts for rest in _exclude(part, gone)]
        out += parts
    return [str(n) for n in out]


def _exclude(net: Network, gone: Network) -> list[Network]:
    if net.version != gone.version or not net.overlaps(gone):
        return [net]
    if net.subnet_of(gone):  # type: ignore[arg-type]
        return []
    return list(net.address_exclude(gone))  # type: ignore[arg-type]


def _collapse(cidrs: Iterable[str]) -> list[Network]:
    nets = [ipaddress.ip_network(c.strip(), strict=False) for c in cidrs]
    v4 = ipaddress.collapse_addresses(n for n in nets if n.version == 4)
    v6 = ipaddress.collapse_addresses(n for n in nets if n.version == 6)
    return [*v4, *v6]


def _download(url: str) -> bytes:
    if not url.startswith("https://"):
        raise SystemExit(f"refusing to download {url}: only https URLs are read")
    request = urllib.request.Request(url, headers={"User-Agent": "tagless-refresh-ip-ranges"})  # noqa: S310 (https only, checked above)
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
        body: bytes = response.read()
    if url == _AZURE_PAGE:  # the page links this week's file
        found = _AZURE_JSON.search(body.decode("utf-8", "replace"))
        if found is None:
            raise SystemExit(f"no ServiceTags_Public_*.json link on {url}")
        return _download(found[0])
    return body


def refresh(provider: Provider, inputs: Sequence[str], via: str, date: str) -> Path:
    """Write one provider's file; return its path."""
    if inputs and all(p.endswith(".txt") for p in inputs):
        cidrs: Iterable[str] = [c for p in inputs for c in _lines(Path(p).read_bytes())]
    else:
        raws = [Path(p).read_bytes() for p in inputs] or [_download(u) for u in provider.urls]
        cidrs = provider.parse(raws)
    nets = _collapse(cidrs)
    if not nets:
        raise SystemExit(f"{provider.name}: the list is empty; not writing it")
    path = DATA / f"{provider.ip_class}-{provider.name}.txt"
    header = [
        f"# {provider.title}: class {provider.ip_class}.",
        *(f"# Source: {url}" for url in provider.urls),
        *([f"# Read from a copy: {via}"] if via else []),
        f"# Retrieved: {date}; {sum(n.version == 4 for n in nets)} IPv4 and "
        f"{sum(n.version == 6 for n in nets)} IPv6 prefixes, collapsed.",
        f"# Refresh: python scripts/refresh_ip_ranges.py --only {provider.name}",
        "",
    ]
    path.write_text("\n".join([*header, *(str(n) for n in nets)]) + "\n", encoding="utf-8")
    return path


def _pairs(values: Sequence[str], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep:
            raise SystemExit(f"{what} {value!r}: write NAME=VALUE")
        out[key] = rest
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", default=[], help="class-name or name")
    parser.add_argument("--input", action="append", default=[], help="NAME=PATH[,PATH]")
    parser.add_argument("--via", action="append", default=[], help="NAME=where the copy is from")
    parser.add_argument("--date", default=datetime.date.today().isoformat())
    args = parser.parse_args(argv)
    inputs, via = _pairs(args.input, "--input"), _pairs(args.via, "--via")
    for provider in PROVIDERS:
        key = f"{provider.ip_class}-{provider.name}"
        if args.only and provider.name not in args.only and key not in args.only:
            continue
        given = inputs.get(key) or inputs.get(provider.name) or ""
        note = via.get(key) or via.get(provider.name) or ""
        path = refresh(provider, [p for p in given.split(",") if p], note, args.date)
        print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
