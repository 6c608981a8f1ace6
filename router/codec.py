"""Canonical events to JSON and back: the outbox's stored form and the wire form."""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final, TypeVar, cast

import attrs
import orjson

from router.event import EVENT_FIELDS, Consent, Event, Item

T = TypeVar("T", bound=attrs.AttrsInstance)
_ABSENT: Final = object()  # a field trusted_init's caller did not give
_FACTORY: Final[type[Any]] = type(attrs.Factory(dict))  # attrs.Factory is typed as a function

_MONEY_FIELDS: Final = frozenset({"value", "tax", "shipping", "discount"})
_TIME_FIELDS: Final = frozenset({"occurred_at", "received_at"})
_ITEM_FIELDS: Final = tuple(f.name for f in attrs.fields(Item))
_CONSENT_FIELDS: Final = tuple(f.name for f in attrs.fields(Consent))


def _item_dict(item: Item) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in zip(_ITEM_FIELDS, _item_values(item), strict=True):
        if value is not None and value != {}:  # an item's own properties only when it has some
            out[name] = value
    return out


_event_values: Final = operator.attrgetter(*EVENT_FIELDS)
_item_values: Final = operator.attrgetter(*_ITEM_FIELDS)
_consent_values: Final = operator.attrgetter(*_CONSENT_FIELDS)
_UNKNOWN_CONSENT: Final = Consent()


def to_dict(event: Event, *, compact: bool = True) -> dict[str, Any]:
    """The event as a JSON-ready dict with canonical snake_case keys.

    ``compact`` leaves out empty fields (the stored form); otherwise every key is present, with
    ``null`` or an empty value, so a consumer sees one stable schema. Times and money stay
    ``datetime`` and ``Decimal``: :func:`dumps` writes them as RFC 3339 UTC and decimal strings.
    """
    out: dict[str, Any] = {}
    for name, value in zip(EVENT_FIELDS, _event_values(event), strict=True):
        if value is None or (compact and not value and not isinstance(value, int)):
            if not compact:
                out[name] = value
            continue
        kind = _KINDS.get(name)
        if kind is None:
            out[name] = value
        elif kind == "items":
            out[name] = [_item_dict(item) for item in value]
        elif not compact or value != _UNKNOWN_CONSENT:  # consent
            out[name] = dict(zip(_CONSENT_FIELDS, _consent_values(value), strict=True))
    return out


_KINDS: Final = {
    "items": "items",
    "consent": "consent",
}


def _default(value: object) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Item):
        return _item_dict(value)
    if isinstance(value, Consent):
        return dict(zip(_CONSENT_FIELDS, _consent_values(value), strict=True))
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def dumps(data: object) -> bytes:
    """JSON bytes, with datetimes as RFC 3339 UTC (``Z``) and ``Decimal`` as a decimal string.

    Integers beyond 64 bits (ingest keeps them exact) are written with every digit.
    """
    try:
        return orjson.dumps(data, default=_default, option=orjson.OPT_UTC_Z)
    except orjson.JSONEncodeError:
        # orjson writes only 64-bit integers; looking for bigger ones costs a walk, so only
        # after it refused (anything else it refuses, it refuses again below)
        return orjson.dumps(_big_ints_as_text(data), default=_default, option=orjson.OPT_UTC_Z)


_INT_RANGE: Final = range(-(2**63), 2**64)


def _big_ints_as_text(value: Any) -> Any:
    """``value`` with every integer orjson cannot write replaced by its exact JSON literal."""
    if type(value) is int:
        return value if value in _INT_RANGE else orjson.Fragment(str(value))
    if isinstance(value, dict):
        return {k: _big_ints_as_text(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_big_ints_as_text(v) for v in value]
    return value


def encode(event: Event) -> bytes:
    """The stored form of an event: compact canonical JSON."""
    return dumps(to_dict(event))


def encode_fields(fields: dict[str, Any]) -> bytes:
    """The stored form straight from ``Event`` keyword arguments, without building the Event.

    The ingest hot path uses this: ``decode(encode_fields(kw)) == Event(**kw)``. A ``None``
    is stored as ``null``, which reads back exactly like an absent key for the scalar fields
    it can occur in (collections are set only when present).
    """
    return dumps(fields)


def _money(value: Any) -> Decimal | None:
    return None if value is None else Decimal(value)


def trusted_init(cls: type[T]) -> Callable[[dict[str, Any]], T]:
    """A constructor of the dict-backed attrs class ``cls`` from keyword arguments that skips
    its generated ``__init__`` (for ``Event``, ~60 frozen setattr calls: most of a decode).

    For stored events, which this module wrote: it checks the names as ``__init__`` would
    (an unknown or a missing one goes to ``__init__``, which says which), and refuses at
    import a class whose ``__init__`` does more than assign (validators, converters, a
    post-init hook, slots), so such a change cannot be bypassed unnoticed.
    """
    fields = attrs.fields(cls)
    extra = [f.name for f in fields if f.validator is not None or f.converter is not None]
    if extra or hasattr(cls, "__attrs_post_init__") or "__slots__" in vars(cls):
        raise TypeError(f"{cls.__name__}'s __init__ does more than assign fields: {extra}")
    required = tuple(f.name for f in fields if f.default is attrs.NOTHING)
    factories = tuple(
        (f.name, cast(Any, f.default).factory) for f in fields if isinstance(f.default, _FACTORY)
    )
    # every field in field order, so ``vars()`` reads as after ``__init__``
    defaults = {
        f.name: _ABSENT
        if f.default is attrs.NOTHING or isinstance(f.default, _FACTORY)
        else f.default
        for f in fields
    }
    new, assign = object.__new__, object.__setattr__

    def build(values: dict[str, Any]) -> T:
        state = {**defaults, **values}
        if len(state) != len(defaults) or any(state[name] is _ABSENT for name in required):
            return cls(**values)  # raises TypeError naming the argument
        for name, factory in factories:
            if state[name] is _ABSENT:
                state[name] = factory()
        instance = new(cls)
        assign(instance, "__dict__", state)
        return instance

    return build


_new_item: Final = trusted_init(Item)
_new_event: Final = trusted_init(Event)


def _item(data: Mapping[str, Any]) -> Item:
    fields = dict(data)
    if "price" in fields:
        fields["price"] = _money(fields["price"])
    return _new_item(fields)


def from_dict(data: Mapping[str, Any]) -> Event:
    """Rebuild an event from :func:`to_dict` output (either form)."""
    fields: dict[str, Any] = dict(data)
    for name in _TIME_FIELDS:
        fields[name] = datetime.fromisoformat(fields[name])
    if fields.get("occurred_at_original") is not None:
        fields["occurred_at_original"] = datetime.fromisoformat(fields["occurred_at_original"])
    for name in _MONEY_FIELDS:
        if name in fields:
            fields[name] = _money(fields[name])
    for name in ("emails", "phones"):
        if name in fields:
            fields[name] = tuple(fields[name])
    if "items" in fields:
        fields["items"] = tuple(_item(item) for item in fields["items"])
    if "consent" in fields:
        fields["consent"] = Consent(**fields["consent"])
    return _new_event(fields)


def decode(raw: bytes | str) -> Event:
    """Rebuild an event from its stored form."""
    return from_dict(orjson.loads(raw))


#: Every canonical key with its empty value, in canonical order: the wire form's skeleton.
_WIRE_TEMPLATE: Final = to_dict(
    Event(
        event_id="",
        store="",
        name="",
        source_name="",
        source_type="",
        occurred_at=datetime(2000, 1, 1, tzinfo=UTC),
        received_at=datetime(2000, 1, 1, tzinfo=UTC),
    ),
    compact=False,
)


#: Each canonical key's ``,"key":<empty value>`` JSON, appended for keys an event lacks.
_WIRE_FILL: Final = {
    key: b',"' + key.encode() + b'":' + dumps(value) for key, value in _WIRE_TEMPLATE.items()
}
#: Key set of a stored event -> the closing bytes that complete it to the wire form.
_wire_tails: dict[frozenset[str], bytes] = {}
_MAX_TAILS: Final = 4096


def stored_to_wire(stored: bytes) -> orjson.Fragment:
    """The full wire form's JSON straight from the stored bytes, without building the Event.

    The stored keys come first, as stored, then every canonical key the event lacks with its
    empty value: the same JSON as ``to_dict(e, compact=False)`` (``orjson.loads`` of both is
    equal), in another key order. No dict is built or re-encoded: ``dumps`` embeds it as is.
    """
    keys = frozenset(orjson.loads(stored))
    tail = _wire_tails.get(keys)
    if tail is None:
        if len(_wire_tails) >= _MAX_TAILS:
            _wire_tails.clear()
        fill = b"".join(v for k, v in _WIRE_FILL.items() if k not in keys)
        tail = _wire_tails[keys] = fill + b"}"
    return orjson.Fragment(stored[:-1] + tail)
