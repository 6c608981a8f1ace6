"""Client mistakes that used to answer 500: each is a JSON 4xx naming the field, nothing stored."""

from __future__ import annotations

import gzip
import zlib
from typing import Any

import orjson
import pytest


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
