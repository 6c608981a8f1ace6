"""Client mistakes that used to answer 500: each is a JSON 4xx naming the field, nothing stored."""

from __future__ import annotations

import asyncio
import gzip
import zlib
from typing import Any

import orjson
import pytest

from router.ingest.json_body import MAX_JSON_DEPTH


def track(message_id: str = "m-1", **extra: Any) -> dict[str, Any]:
    message = {"type": "track", "event": "Order Completed", "messageId": message_id}
    message["userId"] = "customer-1"
    message.update(extra)
    return message


BODY = orjson.dumps(track())


async def assert_refused(
    tagless: Any,
    data: bytes,
    status: int,
    code: str,
    path: str | None = None,
    headers: dict[str, str] | None = None,
    endpoint: str = "/v1/track",
) -> dict[str, Any]:
    """POST ``data``; the answer must be the JSON error given, and nothing may be stored."""
    answer = await tagless.answer(endpoint, data, headers)
    assert answer[:2] == (status, "application/json"), answer
    error: dict[str, Any] = answer[2]["error"]
    assert error["code"] == code
    assert error.get("path") == path
    assert tagless.stored_ids() == []
    return error


# -- Content-Encoding ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "data"),
    [
        ("gzip", b"this is not gzip"),
        ("gzip", gzip.compress(BODY)[:-6]),  # the stream ends before its checksum
        ("gzip", gzip.compress(BODY) + b"trailing junk"),
        ("deflate", b"this is not deflate"),
        ("deflate", zlib.compress(BODY)[:-3]),
        ("deflate", zlib.compress(BODY) + b"trailing junk"),
    ],
    ids=["gzip-garbage", "gzip-cut", "gzip-junk", "deflate-garbage", "deflate-cut", "deflate-junk"],
)
async def test_a_body_that_is_not_what_its_content_encoding_says_is_a_400(
    tagless: Any, encoding: str, data: bytes
) -> None:
    """Garbage, a cut stream or junk after it under gzip/deflate is 400 invalid_encoding."""
    error = await assert_refused(
        tagless, data, 400, "invalid_encoding", headers={"Content-Encoding": encoding}
    )
    assert encoding in error["message"]


@pytest.mark.parametrize("encoding", ["br", "zstd", "compress", "gzip, gzip", "x-unknown"])
async def test_an_encoding_tagless_does_not_decode_is_a_415_naming_those_it_does(
    tagless: Any, encoding: str
) -> None:
    """Brotli, zstd, unknown and stacked encodings get 415 listing identity, gzip, deflate."""
    error = await assert_refused(
        tagless, BODY, 415, "unsupported_encoding", headers={"Content-Encoding": encoding}
    )
    assert "identity, gzip or deflate" in error["message"]


@pytest.mark.parametrize(
    ("encoding", "data"),
    [
        ("identity", BODY),
        ("GZIP", gzip.compress(BODY)),
        ("x-gzip", gzip.compress(BODY)),
        ("deflate", zlib.compress(BODY)),
        ("deflate", zlib.compress(BODY)[2:-4]),  # raw deflate, without the zlib wrapper
    ],
    ids=["identity", "GZIP", "x-gzip", "deflate-zlib", "deflate-raw"],
)
async def test_the_encodings_taken_are_decoded(tagless: Any, encoding: str, data: bytes) -> None:
    """identity, gzip (any case, x-gzip) and deflate (zlib-wrapped or raw) are accepted."""
    answer = await tagless.answer("/v1/track", data, {"Content-Encoding": encoding})
    assert answer[0] == 200, answer
    assert tagless.stored_ids() == ["m-1"]


async def test_concatenated_gzip_members_are_one_body(tagless: Any) -> None:
    """A gzip body of several members (RFC 1952) is decoded whole."""
    data = gzip.compress(BODY[:20]) + gzip.compress(BODY[20:])
    answer = await tagless.answer("/v1/track", data, {"Content-Encoding": "gzip"})
    assert answer[0] == 200, answer
    assert tagless.stored_ids() == ["m-1"]


# -- times -----------------------------------------------------------------------------------


OLDEST, LATEST = "0001-01-01T00:00:00", "9999-12-31T23:59:59"


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"timestamp": OLDEST + "+01:00"}, "timestamp"),
        ({"timestamp": LATEST + "-01:00"}, "timestamp"),
        ({"originalTimestamp": OLDEST + "+00:30"}, "originalTimestamp"),
        ({"originalTimestamp": "2024-01-01T00:00:00Z", "sentAt": OLDEST + "+05:00"}, "sentAt"),
        ({"originalTimestamp": OLDEST + "Z", "sentAt": LATEST + "Z"}, "sentAt"),
        ({"originalTimestamp": LATEST + "Z", "sentAt": OLDEST + "Z"}, "sentAt"),
    ],
)
async def test_a_time_outside_the_datetime_range_in_utc_is_a_400_naming_it(
    tagless: Any, fields: dict[str, str], path: str
) -> None:
    """A time whose UTC form (or skew correction) leaves years 1-9999 is 400 at its path."""
    error = await assert_refused(tagless, orjson.dumps(track(**fields)), 400, "invalid_event", path)
    assert "years 1 to 9999" in error["message"]


# -- nesting ---------------------------------------------------------------------------------


def nested(depth: int, message_id: str = "m-1") -> bytes:
    """A track call whose body nests ``depth`` levels (the body is 1, properties 2)."""
    inner = b"[" * (depth - 2) + b"]" * (depth - 2)
    return orjson.dumps(track(message_id)).replace(
        b'"type"', b'"properties":{"a":' + inner + b'},"type"'
    )


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 254, 256, 600, 1024])
async def test_nesting_deeper_than_the_limit_is_a_400_naming_the_field(
    tagless: Any, depth: int
) -> None:
    """Past MAX_JSON_DEPTH levels (orjson reads 1,024, writes 255) the answer is 400 too_deep."""
    error = await assert_refused(tagless, nested(depth), 400, "too_deep", "properties")
    assert str(MAX_JSON_DEPTH) in error["message"]


async def test_nesting_deep_inside_a_batch_names_the_event(tagless: Any) -> None:
    """In a batch, the path names the event and its field."""
    body = orjson.dumps({"batch": [track("ok"), orjson.Fragment(nested(300))]})
    await assert_refused(
        tagless, body, 400, "too_deep", "batch[1].properties", endpoint="/v1/batch"
    )


async def test_nesting_up_to_the_limit_is_stored_as_sent(tagless: Any) -> None:
    """A body exactly MAX_JSON_DEPTH deep is accepted and its properties stored unchanged."""
    answer = await tagless.answer("/v1/track", nested(MAX_JSON_DEPTH))
    assert answer[0] == 200, answer
    stored = orjson.loads(tagless.stored_body("m-1"))
    assert orjson.dumps(stored["properties"]) == orjson.dumps(
        orjson.loads(nested(64))["properties"]
    )


# -- numbers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("product", "path"),
    [
        ({"price": 1, "quantity": 1e20}, "properties.products[0].quantity"),
        ({"price": 1, "quantity": "99999999999999999999"}, "properties.products[0].quantity"),
        ({"price": 1, "quantity": "9" * 5000}, "properties.products[0].quantity"),
        (
            {"price": 1, "quantity": orjson.Fragment(b"%d" % 2**70)},
            "properties.products[0].quantity",
        ),
        ({"price": "9e999999", "quantity": 2}, "properties.products[0].price"),
        ({"price": 1e300, "quantity": 1}, "properties.products[0].price"),
        ({"price": "-1e15"}, "properties.products[0].price"),
    ],
)
async def test_out_of_range_quantities_and_prices_are_a_400_with_the_path(
    tagless: Any, product: dict[str, Any], path: str
) -> None:
    """Quantities above 10^9 and amounts of 10^15 or more are refused at their path."""
    body = orjson.dumps(track(properties={"products": [{"id": "p", **product}]}))
    await assert_refused(tagless, body, 400, "invalid_event", path)


async def test_an_amount_out_of_range_is_a_400_with_its_batch_path(tagless: Any) -> None:
    """revenue is bounded like a price; in a batch the path starts at the event."""
    body = orjson.dumps({"batch": [track("a"), track("b", properties={"revenue": "1e16"})]})
    await assert_refused(
        tagless, body, 400, "invalid_event", "batch[1].properties.revenue", endpoint="/v1/batch"
    )


BIG = "18446744073709551621"  # 2**64 + 5: orjson alone reads it as the float 2**64
BIG_LITERAL = orjson.Fragment(BIG.encode())


async def test_integers_beyond_64_bits_are_stored_and_delivered_exactly(tagless: Any) -> None:
    """Ids sent as huge integers stay their exact digits; properties keep every digit."""
    message = track(
        userId=BIG_LITERAL,
        anonymousId=BIG_LITERAL,
        properties={
            "order_id": BIG_LITERAL,
            "n": BIG_LITERAL,
            "neg": orjson.Fragment(b"-" + BIG.encode()),
            "products": [{"product_id": BIG_LITERAL}],
        },
        context={"click_ids": {"ttclid": BIG_LITERAL}},
    )
    answer = await tagless.answer("/v1/track", orjson.dumps(message))
    assert answer[0] == 200, answer
    raw = tagless.stored_body("m-1")
    stored = orjson.loads(raw)
    assert (stored["user_id"], stored["anonymous_id"], stored["order_id"]) == (BIG, BIG, BIG)
    assert stored["items"] == [{"id": BIG}]
    assert stored["other_ids"] == {"ttclid": BIG}
    assert f'"n":{BIG}'.encode() in raw and f'"neg":-{BIG}'.encode() in raw
    for _ in range(500):  # and the webhook receives the same digits
        if tagless.sink.requests:
            break
        await asyncio.sleep(0.02)
    assert f'"n":{BIG}'.encode() in tagless.sink.requests[0].body


async def test_an_integer_of_more_than_100_digits_is_a_400(tagless: Any) -> None:
    """Integer literals are kept exact up to 100 digits; longer ones are refused."""
    body = orjson.dumps(track(properties={"n": orjson.Fragment(b"7" * 101)}))
    error = await assert_refused(tagless, body, 400, "malformed_json")
    assert "100 digits" in error["message"]
