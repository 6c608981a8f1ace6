"""Click and device ids of a Segment message: where Tagless finds fbc, gclid, _ga, _spdt, ..."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final
from urllib.parse import unquote_plus

from router.ingest import _fields as f
from router.ingest._fields import EMPTY

# Where Tagless finds click and device ids. For each field the first value found wins, in the
# order of the columns: context.<key>, context.click_ids.<key>, properties.<key>, then the cookie
# in context.cookies, then the last column.
#
#   field              keys                       cookie  then
#   fbc                fbc                        _fbc    page URL ?fbclid= → fb.1.<ms>.<fbclid>
#   fbp                fbp                        _fbp
#   gclid              gclid                              page URL ?gclid=
#   gbraid             gbraid                             page URL ?gbraid=
#   wbraid             wbraid                             page URL ?wbraid=
#   ga_client_id       ga_client_id, client_id    _ga     integrations.<GA4>.clientId
#   ga_session_id      ga_session_id, session_id          integrations.<GA4>.sessionId
#   spotify_device_id  spotify_device_id          __spdt, __pdst, _spdt (first one sent)
#
# <GA4> is the key "Google Analytics 4"; <ms> is occurred_at in epoch milliseconds. A ``_ga``
# cookie is "GA1.1.<random>.<seconds>" and holds the client id "<random>.<seconds>". Every other
# entry of context.click_ids and context.cookies whose value looks like an id (1-256 of
# [A-Za-z0-9._~:+/=%-]) lands in ``other_ids`` under its own name; click_ids win.

#: Key (in context, click_ids or properties) → Event field, in precedence order.
_ID_KEYS: Final[Mapping[str, str]] = {
    "fbc": "fbc",
    "fbp": "fbp",
    "gclid": "gclid",
    "gbraid": "gbraid",
    "wbraid": "wbraid",
    "ga_client_id": "ga_client_id",
    "client_id": "ga_client_id",
    "ga_session_id": "ga_session_id",
    "session_id": "ga_session_id",
    "spotify_device_id": "spotify_device_id",
}
_ID_KEY_SET: Final = frozenset(_ID_KEYS)
_COOKIES: Final[Mapping[str, str]] = {
    "_fbc": "fbc",
    "_fbp": "fbp",
    "_ga": "ga_client_id",
    # the Spotify Pixel's first-party cookie is __spdt; older installs set __pdst or _spdt
    "__spdt": "spotify_device_id",
    "__pdst": "spotify_device_id",
    "_spdt": "spotify_device_id",
}
_URL_IDS: Final = frozenset({"fbclid", "gclid", "gbraid", "wbraid"})
_URL_FIELDS: Final = frozenset({"fbc", "gclid", "gbraid", "wbraid"})
_LOOKS_LIKE_ID: Final = re.compile(r"[A-Za-z0-9._~:+/=%-]{1,256}")
_GA4: Final = "Google Analytics 4"


def ids_into(
    kw: dict[str, Any], msg: Mapping[str, Any], ctx: Mapping[str, Any], props: Mapping[str, Any]
) -> None:
    """Click and device ids, searched in the order of the table above."""
    found: dict[str, str] = {}
    _keyed_ids(found, ctx, "context")
    clicks = EMPTY if (v := ctx.get("click_ids")) is None else f.as_obj(v, "context", "click_ids")
    _keyed_ids(found, clicks, "context.click_ids")
    _keyed_ids(found, props, "properties")
    cookies = EMPTY if (v := ctx.get("cookies")) is None else f.as_obj(v, "context", "cookies")
    if cookies:
        _cookie_ids(found, cookies)
    if clicks or cookies:
        other = _other_ids(clicks, cookies)
        if other:
            kw["other_ids"] = other
    url = kw.get("page_url")
    if url is not None and "?" in url and not found.keys() >= _URL_FIELDS:
        _url_ids(found, url, kw["occurred_at"])
    if "integrations" in msg and ("ga_client_id" not in found or "ga_session_id" not in found):
        _ga4_ids(found, msg["integrations"])
    if found:
        kw.update(found)


def _keyed_ids(found: dict[str, str], d: Mapping[str, Any], base: str) -> None:
    """Ids under their own keys in one object; fields already found are kept."""
    if not d or d.keys().isdisjoint(_ID_KEY_SET):  # the usual case, decided in C
        return
    for key, field in _ID_KEYS.items():
        if field in found or (v := d.get(key)) is None:
            continue
        if (v := f.as_id(v, base, key)) is not None:
            found[field] = v


def _cookie_ids(found: dict[str, str], cookies: Mapping[str, Any]) -> None:
    """``_fbc``, ``_fbp``, ``_ga`` and the Spotify cookies from ``context.cookies``."""
    for cookie, field in _COOKIES.items():
        if field not in found and (v := cookies.get(cookie)) is not None:
            v = f.as_str(v, "context.cookies", cookie)
            if v is not None and cookie == "_ga":
                v = _ga_client_id(v)
            if v is not None:
                found[field] = v


def _ga_client_id(cookie: str) -> str | None:
    """The client id in a ``_ga`` cookie: "GA1.1.123.456" → "123.456"."""
    parts = cookie.split(".")
    return f"{parts[-2]}.{parts[-1]}" if len(parts) >= 4 else None


def _other_ids(clicks: Mapping[str, Any], cookies: Mapping[str, Any]) -> dict[str, str]:
    """Id-like values of click_ids and cookies that no Event field holds; click_ids win."""
    other: dict[str, str] = {}
    for d, known in ((clicks, _ID_KEYS), (cookies, _COOKIES)):
        for k, v in d.items():
            if k in known or k in other:
                continue
            if type(v) is int:
                v = str(v)
            if type(v) is str and _LOOKS_LIKE_ID.fullmatch(v):
                other[k] = v
    return other


def _url_ids(found: dict[str, str], url: str, occurred_at: datetime) -> None:
    """fbclid (as an fbc), gclid, gbraid and wbraid from the page URL's query string."""
    query = url.partition("?")[2].partition("#")[0]
    for pair in query.split("&"):
        key, _, value = pair.partition("=")
        if key in _URL_IDS and value:
            if "%" in value or "+" in value:
                value = unquote_plus(value)
            if key == "fbclid":
                key, value = "fbc", f"fb.1.{int(occurred_at.timestamp() * 1000)}.{value}"
            found.setdefault(key, value)


def _ga4_ids(found: dict[str, str], integrations: object) -> None:
    """``integrations["Google Analytics 4"]`` clientId and sessionId (any other value is a flag)."""
    ga4 = integrations.get(_GA4) if type(integrations) is dict else None
    if type(ga4) is dict:
        base = f'integrations["{_GA4}"]'
        for key, field in (("clientId", "ga_client_id"), ("sessionId", "ga_session_id")):
            if field in found or (v := ga4.get(key)) is None:
                continue
            if (v := f.as_id(v, base, key)) is not None:
                found[field] = v
