"""Segment HTTP Tracking API messages (track, page, screen, identify, ...) → canonical events."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Final
from uuid import uuid4

from router.event import ACTION_SOURCES, Event, IpOrigin, Item
from router.identity.consent import DEFAULT_CATEGORIES, ConsentCategories, read_consent
from router.ingest import _fields as f
from router.ingest._fields import EMPTY, InvalidEvent
from router.ingest.click_ids import ids_into
from router.ingest.names import NameMap

__all__ = ["MESSAGE_TYPES", "InvalidEvent", "IpResolver", "parse_message"]

#: ``context.ip`` (a string, else ``None``) → (client ip, its origin, its class).
IpResolver = Callable[[str | None], tuple[str | None, IpOrigin, str]]

MESSAGE_TYPES: Final = frozenset({"track", "page", "screen", "identify", "group", "alias"})
_TYPES_TEXT: Final = ", ".join(sorted(MESSAGE_TYPES))
_ACTION_SOURCES_TEXT: Final = ", ".join(sorted(ACTION_SOURCES))
_APP_DEVICES: Final = frozenset({"ios", "android"})
_MAX_NAME: Final = 200
_MAX_MESSAGE_ID: Final = 200
#: How far ahead of its receipt an event's time may lie (after the sentAt correction) before
#: it is taken for a wrong clock: occurred_at becomes received_at, the sender's time is kept
#: in occurred_at_original. Older times are kept: a backfill is legitimate, and each
#: destination refuses what its platform's window does not take.
MAX_AHEAD: Final = timedelta(minutes=5)


def parse_message(
    msg: object,
    *,
    store: str,
    received_at: datetime,
    default_type: str | None,
    names: NameMap,
    resolve_ip: IpResolver,
    path: str = "",
    consent_categories: ConsentCategories = DEFAULT_CATEGORIES,
    value_from: tuple[str, ...] = f.VALUE_KEYS,
) -> Event:
    """One Segment message as a canonical ``Event``; see :func:`parse_fields`."""
    fields = parse_fields(
        msg,
        store=store,
        received_at=received_at,
        default_type=default_type,
        names=names,
        resolve_ip=resolve_ip,
        path=path,
        consent_categories=consent_categories,
        value_from=value_from,
    )
    for key in _MONEY:
        if fields.get(key) is not None:
            fields[key] = Decimal(fields[key])
    if "items" in fields:
        fields["items"] = tuple(_item(line) for line in fields["items"])
    return Event(**fields)


_MONEY: Final = ("value", "tax", "shipping", "discount")


def _item(line: dict[str, Any]) -> Item:
    if "price" in line:
        line = {**line, "price": Decimal(line["price"])}
    return Item(**line)


def parse_fields(
    msg: object,
    *,
    store: str,
    received_at: datetime,
    default_type: str | None,
    names: NameMap,
    resolve_ip: IpResolver,
    path: str = "",
    consent_categories: ConsentCategories = DEFAULT_CATEGORIES,
    value_from: tuple[str, ...] = f.VALUE_KEYS,
) -> dict[str, Any]:
    """One Segment message as canonical ``Event`` fields; raises ``InvalidEvent`` naming the field.

    The ingest path stores these fields as they are (``codec.encode_fields``) and never builds
    the ``Event`` itself. Money is decimal text and ``items`` holds ``Item`` keyword dicts:
    both are their stored form; :func:`parse_message` shows how the ``Event`` is built.

    ``default_type`` is the endpoint's type (``/v1/track`` → ``"track"``), ``None`` for batch
    items, which must carry their own ``type``. ``path`` prefixes error paths (``"batch[3]"``);
    a message that is not an object is reported at ``path``, or at ``body`` without one.
    A message without ``messageId`` gets a generated ``tl-<hex>`` id, so retries of such a
    message cannot be de-duplicated. Absent, null and empty-string fields count as not sent.
    ``received_at`` must be timezone-aware UTC; every time on the event is.
    ``consent_categories`` (the store's) says which consent categories mean which signal;
    ``value_from`` is the store's order of the properties the value is read from.
    """
    if type(msg) is not dict:
        raise InvalidEvent(path or "body", f"expected a JSON object, got {f.json_type(msg)}")
    try:
        return _parse(
            msg, store, received_at, default_type, names, resolve_ip, consent_categories, value_from
        )
    except InvalidEvent as e:
        if path:
            raise e.under(path) from None
        raise


def _parse(
    msg: Mapping[str, Any],
    store: str,
    received_at: datetime,
    default_type: str | None,
    names: NameMap,
    resolve_ip: IpResolver,
    consent_categories: ConsentCategories,
    value_from: tuple[str, ...],
) -> dict[str, Any]:
    """The body of ``parse_fields``, with error paths relative to the message."""
    get = msg.get
    mtype = _message_type(get("type"), default_type)
    user_id = None if (v := get("userId")) is None else f.as_id(v, "", "userId")
    anon_id = None if (v := get("anonymousId")) is None else f.as_id(v, "", "anonymousId")
    if user_id is None and anon_id is None:
        raise InvalidEvent("userId", "userId or anonymousId is required")
    ctx = EMPTY if (v := get("context")) is None else f.as_obj(v, "", "context")
    props = EMPTY if (v := get("properties")) is None else f.as_obj(v, "", "properties")
    source_name = _source_name(msg, mtype)
    name = names.canonical(mtype, source_name)
    occurred_at = _occurred_at(msg, received_at)
    kw: dict[str, Any] = {
        "event_id": _event_id(get("messageId")),
        "store": store,
        "name": name,
        "source_name": source_name,
        "source_type": mtype,
        "occurred_at": occurred_at,
        "received_at": received_at,
        "user_id": user_id,
        "anonymous_id": anon_id,
        "action_source": _action_source(mtype, ctx, props),
        "properties": props or {},
    }
    if ctx:
        _context_into(kw, ctx)
        if (v := ctx.get("traits")) is not None:
            _traits_into(kw, f.as_obj(v, "context", "traits"), "context.traits")
        if "consent" in ctx or "gdpr_consent" in ctx or "consentManagement" in ctx:
            kw["consent"] = read_consent(ctx, consent_categories)
    ip = ctx.get("ip")
    kw["client_ip"], kw["client_ip_origin"], kw["client_ip_class"] = resolve_ip(
        ip if type(ip) is str else None
    )
    if occurred_at > received_at + MAX_AHEAD:
        kw["occurred_at"], kw["occurred_at_original"] = received_at, occurred_at
    if mtype != "track":
        _call_fields(kw, msg, mtype)
    if props:
        if mtype == "page" and kw.get("page_url") is None:
            kw["page_url"] = f.opt_str(props, "url", "properties")
        if kw.get("referrer") is None:
            kw["referrer"] = f.opt_str(props, "referrer", "properties")
        f.commerce_into(kw, props, value_from)
    ids_into(kw, msg, ctx, props)
    return kw


def _call_fields(kw: dict[str, Any], msg: Mapping[str, Any], mtype: str) -> None:
    """What identify, group, alias and page calls carry besides a track's fields."""
    get = msg.get
    if mtype == "identify" and (v := get("traits")) is not None:
        traits = f.as_obj(v, "", "traits")
        _traits_into(kw, traits, "traits")
        if custom := {k: t for k, t in traits.items() if k not in _TYPED_TRAITS}:
            kw["traits"] = custom
    elif mtype == "group":
        if (v := get("groupId")) is not None:
            kw["group_id"] = f.as_id(v, "", "groupId")
        if (v := get("traits")) is not None and (traits := f.as_obj(v, "", "traits")):
            kw["traits"] = dict(traits)
    elif mtype == "alias":
        if (v := get("previousId")) is not None:
            kw["previous_id"] = f.as_id(v, "", "previousId")
    elif mtype == "page" and (v := get("category")) is not None:
        kw["page_category"] = f.as_str(v, "", "category")


def _message_type(mtype: object, default_type: str | None) -> str:
    """The message type: the batch item's own, or the endpoint's (a stated type must match)."""
    if mtype is None:
        if default_type is None:
            raise InvalidEvent("type", f"required; one of {_TYPES_TEXT}")
        return default_type
    if type(mtype) is not str or mtype not in MESSAGE_TYPES:
        raise InvalidEvent("type", f"expected one of {_TYPES_TEXT}, got {mtype!r:.40}")
    if default_type is not None and mtype != default_type:
        raise InvalidEvent("type", f"must be {default_type!r} on this endpoint, got {mtype!r}")
    return mtype


def _event_id(v: object) -> str:
    """``messageId``, or a generated ``tl-`` id when the sender gave none."""
    if v is None:
        return "tl-" + uuid4().hex
    if type(v) is not str:
        raise f.expected("", "messageId", "a string", v)
    if not 0 < len(v) <= _MAX_MESSAGE_ID:
        raise InvalidEvent("messageId", f"expected 1 to {_MAX_MESSAGE_ID} characters")
    return v


def _source_name(msg: Mapping[str, Any], mtype: str) -> str:
    """What the sender called it: ``event`` (track), ``name`` (page, screen), else the type."""
    if mtype == "track":
        v = msg.get("event")
        if type(v) is str and 0 < len(v) <= _MAX_NAME:
            return v
        if v is None:
            raise InvalidEvent("event", "required for a track call")
        if type(v) is not str:
            raise f.expected("", "event", "a string", v)
        raise InvalidEvent("event", f"expected 1 to {_MAX_NAME} characters")
    if mtype == "page" or mtype == "screen":
        return f.opt_str(msg, "name", "") or mtype
    return mtype


def _occurred_at(msg: Mapping[str, Any], received_at: datetime) -> datetime:
    """``timestamp``; else ``originalTimestamp`` corrected for clock skew by ``sentAt``."""
    if (v := msg.get("timestamp")) is not None:
        return f.as_time(v, "", "timestamp")
    if (v := msg.get("originalTimestamp")) is None:
        return received_at
    original = f.as_time(v, "", "originalTimestamp")
    if (v := msg.get("sentAt")) is None:
        return original
    sent_at = f.as_time(v, "", "sentAt")
    try:
        return received_at - (sent_at - original)
    except OverflowError:  # a skew of millennia: no clock is that wrong
        raise InvalidEvent(
            "sentAt", f"originalTimestamp corrected by this sentAt is {f.OUT_OF_RANGE}"
        ) from None


def _action_source(mtype: str, ctx: Mapping[str, Any], props: Mapping[str, Any]) -> str:
    """The stated ``action_source`` (context, then properties), else app or web."""
    for d, base in ((ctx, "context"), (props, "properties")):
        v = d.get("action_source")
        if v is not None:
            if type(v) is not str or v not in ACTION_SOURCES:
                raise InvalidEvent(
                    f"{base}.action_source",
                    f"expected one of {_ACTION_SOURCES_TEXT}, got {v!r:.40}",
                )
            return v
    if mtype == "screen" or ctx.get("app") is not None:
        return "app"
    device = ctx.get("device")
    if type(device) is dict:
        dtype = device.get("type")
        if type(dtype) is str and dtype.lower() in _APP_DEVICES:
            return "app"
    return "web"


def _context_into(kw: dict[str, Any], ctx: Mapping[str, Any]) -> None:
    """Page URL, referrer, user agent and locale from ``context``."""
    if (v := ctx.get("page")) is not None:
        page = f.as_obj(v, "context", "page")
        if (v := page.get("url")) is not None:
            kw["page_url"] = f.as_str(v, "context.page", "url")
        if (v := page.get("referrer")) is not None:
            kw["referrer"] = f.as_str(v, "context.page", "referrer")
    if (v := ctx.get("userAgent")) is not None:
        kw["user_agent"] = f.as_str(v, "context", "userAgent")
    if (v := ctx.get("locale")) is not None:
        kw["locale"] = f.as_str(v, "context", "locale")


#: Trait key → Event field for plain strings; a camelCase key wins over its snake_case twin.
_TRAIT_STRINGS: Final = (
    ("firstName", "first_name"),
    ("first_name", "first_name"),
    ("lastName", "last_name"),
    ("last_name", "last_name"),
    ("gender", "gender"),
)
_ADDRESS_STRINGS: Final = (
    ("street", "street"),
    ("city", "city"),
    ("state", "region"),
    ("postalCode", "postal_code"),
    ("postal_code", "postal_code"),
    ("country", "country"),
)


#: identify traits that land on typed fields; the rest stays in ``traits``.
_TYPED_TRAITS: Final = frozenset(
    {"email", "phone", "birthday", "address", *(key for key, _ in _TRAIT_STRINGS)}
)


def _traits_into(kw: dict[str, Any], traits: Mapping[str, Any], base: str) -> None:
    """The user's traits; sets only what ``traits`` holds, so a later call wins per field."""
    get = traits.get
    if (v := get("email")) is not None and (v := f.as_strs(v, base, "email")):
        kw["emails"] = v
    if (v := get("phone")) is not None and (v := f.as_strs(v, base, "phone")):
        kw["phones"] = v
    _strings_into(kw, traits, base, _TRAIT_STRINGS)
    if (v := get("birthday")) is not None and (v := f.as_str(v, base, "birthday")) is not None:
        kw["date_of_birth"] = f.birth_date(v)
    if (v := get("address")) is not None:
        address = f.as_obj(v, base, "address")
        _strings_into(kw, address, f"{base}.address", _ADDRESS_STRINGS)


def _strings_into(
    kw: dict[str, Any], d: Mapping[str, Any], base: str, keys: tuple[tuple[str, str], ...]
) -> None:
    """Strings of ``d`` onto fields; of adjacent keys for one field, the first one sent wins."""
    done = ""
    for key, field in keys:
        if field == done or (v := d.get(key)) is None:
            continue
        if (v := f.as_str(v, base, key)) is not None:
            kw[field] = v
            done = field
