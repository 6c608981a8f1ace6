"""The identity report's findings: what in the identity sent would keep a platform from
matching, said in plain language with its evidence and what to change."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from router.identity.ranges import CLOUDFLARE

if TYPE_CHECKING:
    from router.ops.identity_report import Tally

#: A share at or above this is worth a finding; at or above ``SERIOUS`` it is critical.
NOTABLE: Final = 0.05
SERIOUS: Final = 0.5
_SEVERITY: Final = {"critical": 0, "warning": 1, "info": 2}

#: Destination types that match conversions on the customer's IP and user agent.
_MATCH_ON_IP: Final = frozenset({"spotify_capi", "meta_capi"})
#: Identifiers a destination type matches better with: (fields, what they are called).
_CLICK_IDS: Final = {
    "meta_capi": (("fbp", "fbc"), "Meta browser or click id (fbp/fbc)"),
    "google_ads": (("gclid", "gbraid", "wbraid"), "Google click id (gclid/gbraid/wbraid)"),
    "ga4": (("ga_client_id",), "GA client id"),
    "spotify_capi": (("spotify_device_id",), "Spotify device id"),
}
_TO_CUSTOMER_IP: Final = "send the customer's IP as `context.ip`"


def findings(
    store: str,
    rows: list[dict[str, Any]],
    tallies: Mapping[tuple[str, str], Tally],
    types: Mapping[str, str],
) -> list[dict[str, str]]:
    """Every finding of the report's rows, most severe and most widespread first."""
    found: list[tuple[float, dict[str, str]]] = []
    for row in rows:
        tally = tallies[(row["destination"], row["event_name"])]
        kind = types.get(row["destination"], "")
        for share, finding in _of_row(store, row, tally, kind):
            found.append((share, finding))
    found.sort(key=lambda item: (_SEVERITY[item[1]["severity"]], -item[0]))
    return [finding for _, finding in found]


def _of_row(
    store: str, row: dict[str, Any], tally: Tally, kind: str
) -> list[tuple[float, dict[str, str]]]:
    ip, fields, events = row["ip"], row["fields"], row["events"]
    what = f"{_title(row['event_name'])} events to {row['destination']}"
    out: list[tuple[float, dict[str, str]]] = []

    def add(share: float, severity: str, text: str, evidence: str, fix: str) -> None:
        finding = {"severity": severity, "destination": row["destination"]}
        finding |= {"event_name": row["event_name"], "text": text}
        out.append((share, finding | {"evidence": evidence, "fix": fix}))

    def level(share: float) -> str:
        return "critical" if share >= SERIOUS else "warning"

    def evidence(bucket: str) -> str:
        count = tally.ip[bucket]
        origins = _origins(tally, bucket)
        return f"{count} of {events} events in the window; the IP came from {origins}"

    if (share := ip["cdn"]) >= NOTABLE:
        providers = ", ".join(_title(p) for p in row["cdn_providers"]) or "a CDN"
        text = (
            f"{share:.0%} of {what} carry a CDN IP ({providers}): the store backend forwards"
            " the CDN's address, not the customer's."
        )
        add(share, level(share), text, evidence("cdn"), _cdn_fix(store, tally, row))
    if (share := ip["own_server"]) >= NOTABLE:
        text = (
            f"{share:.0%} of {what} carry the store's own server IP: the backend sends its own"
            " address, not the customer's."
        )
        fix = f"In the store backend, {_TO_CUSTOMER_IP} (the address of the customer's request)."
        add(share, level(share), text, evidence("own_server"), fix)
    for bucket, label, cause in (
        ("private", "a private IP", "a proxy or load balancer in front of the sender"),
        ("loopback", "a loopback IP", "a proxy on the same machine as the sender"),
        ("cloud", "a cloud provider's IP", "a server, not the customer's device"),
        ("cgnat", "a carrier-grade NAT address", "a network inside the customer's carrier"),
    ):
        if (share := ip[bucket]) >= NOTABLE:
            text = f"{share:.0%} of {what} carry {label}: the address of {cause}."
            fix = (
                f"Add that proxy's network to `client_ip.trusted_proxies` of store {store},"
                f" or {_TO_CUSTOMER_IP}."
            )
            add(share, level(share), text, evidence(bucket), fix)
    if (share := ip["missing"] - row["stripped_consent"]) >= NOTABLE:
        text = f"{share:.0%} of {what} carry no IP address at all."
        add(
            share,
            level(share),
            text,
            evidence("missing"),
            f"In the store backend, {_TO_CUSTOMER_IP}.",
        )
    if (share := row["unmatchable"]) >= NOTABLE:
        text = (
            f"{_title(row['event_name'])} events reach {row['destination']} without any usable"
            f" IP or email: {row['destination']} cannot match them"
            if share >= 1.0
            else f"{share:.0%} of {what} have neither a usable customer IP nor an email:"
            f" {row['destination']} can hardly match them."
        )
        fix = f"{_TO_CUSTOMER_IP[0].upper()}{_TO_CUSTOMER_IP[1:]} and the customer's email."
        add(share, "critical", text, f"{tally.unmatchable} of {events} events", fix)
    if kind in _MATCH_ON_IP and (share := 1.0 - fields["user_agent"]) >= NOTABLE:
        text = f"{share:.0%} of {what} carry no user agent, which {kind} matches on."
        fix = "Send the customer's browser user agent as `context.userAgent`."
        add(
            share, "warning", text, f"{events - tally.fields['user_agent']} of {events} events", fix
        )
    if kind in _CLICK_IDS:
        names, label = _CLICK_IDS[kind]
        share = 1.0 - max(fields[name] for name in names)
        if share >= SERIOUS:
            text = f"{share:.0%} of {what} carry no {label}."
            fix = "Pass the id the platform's tag or cookie sets on to Tagless with the event."
            add(share, "info", text, f"shares: {_shares(fields, names)}", fix)
    if (share := row["stripped_consent"]) >= NOTABLE:
        text = f"{share:.0%} of {what} went without user data, as the consent policy says."
        fix = "Nothing to change if that is the consent the customers gave."
        add(share, "info", text, f"{tally.stripped} of {events} events", fix)
    return out


def _cdn_fix(store: str, tally: Tally, row: dict[str, Any]) -> str:
    """Trust the CDN (when its address came in a header or as the peer) or send the
    customer's IP; when the backend itself put the CDN's address in ``context.ip``, that first."""
    named = CLOUDFLARE in row["cdn_providers"]
    trust = (
        f"add `{CLOUDFLARE}` to `client_ip.trusted_proxies` of store {store}"
        if named
        else f"add the CDN's published ranges to `client_ip.trusted_proxies` of store {store}"
    )
    if tally.origins[("cdn", "payload")] * 2 >= tally.ip["cdn"]:
        header = " (Cloudflare passes it to the backend as `CF-Connecting-IP`)" if named else ""
        return (
            f"Send the customer's IP as `context.ip`{header}, not the CDN's address; events that"
            f" reach Tagless through the CDN need no `context.ip` once you {trust}."
        )
    return f"{trust[0].upper()}{trust[1:]}, or {_TO_CUSTOMER_IP}."


def _origins(tally: Tally, bucket: str) -> str:
    counts = {origin: n for (b, origin), n in tally.origins.items() if b == bucket}
    return ", ".join(f"{_ORIGIN.get(o, o)} ({n})" for o, n in sorted(counts.items())) or "nowhere"


_ORIGIN: Final = {
    "payload": "context.ip",
    "header": "a forwarding header",
    "peer": "the connection",
    "stitched": "an earlier event (stitching)",
}


def _shares(fields: Mapping[str, float], names: tuple[str, ...]) -> str:
    return ", ".join(f"{name} {fields[name]:.0%}" for name in names)


def _title(name: str) -> str:
    return name.replace("_", " ").title()
