"""Google access tokens: both grants against a local token endpoint, caching, single flight,
refusals, the 401 retry, and the credentials config checks."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from router.clock import FakeClock
from router.config import ConfigError, load_config
from router.destination import Outcome
from router.google_auth import (
    JWT_BEARER_GRANT,
    REFRESH_MARGIN_SECS,
    GoogleAuth,
    GoogleAuthError,
    GoogleCredentials,
    authorized_post,
)
from router.http import HttpClient, Response
from router.secret import Secret
from router.testing.fake_platform import Answer, FakePlatform
from router.testing.google_token import LocalTokenServer, Refusal, make_service_account

SCOPE = "https://www.googleapis.com/auth/bigquery"


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    return tmp_path / "sa.json"


@pytest.fixture
def service_account(key_file: Path) -> dict[str, Any]:
    return make_service_account(key_file)


@pytest.fixture
async def tokens(service_account: dict[str, Any]) -> AsyncIterator[LocalTokenServer]:
    server = LocalTokenServer(
        service_accounts=[service_account],
        refresh_tokens={"1//refresh-abc": ("client-1.apps.googleusercontent.com", "shh")},
        expires_in=3600,
    )
    async with server:
        yield server


def sa_auth(
    key_file: Path, http: HttpClient, tokens: LocalTokenServer, clock: FakeClock | None = None
) -> GoogleAuth:
    credentials = GoogleCredentials(service_account_file=key_file)
    return GoogleAuth(credentials, http, token_endpoint=tokens.url, scopes=[SCOPE], clock=clock)


def user_credentials(secret: str = "shh") -> GoogleCredentials:  # noqa: S107  # a test value
    return GoogleCredentials(
        client_id="client-1.apps.googleusercontent.com",
        client_secret=Secret(secret),
        refresh_token=Secret("1//refresh-abc"),
    )


async def test_a_service_account_gets_a_token_with_a_signed_assertion(
    key_file: Path, service_account: dict[str, Any], http: HttpClient, tokens: LocalTokenServer
) -> None:
    """The JWT-bearer grant carries an RS256 assertion the endpoint verifies with the public key,
    naming the account, the scopes, the endpoint as audience and a lifetime of one hour."""
    clock = FakeClock()
    assert await sa_auth(key_file, http, tokens, clock).token() == "token-1"
    [seen] = tokens.requests
    assert seen.status == 200
    assert seen.form["grant_type"] == JWT_BEARER_GRANT
    assert seen.claims == {
        "iss": service_account["client_email"],
        "scope": SCOPE,
        "aud": tokens.url,
        "iat": int(clock.now()),
        "exp": int(clock.now()) + 3600,
    }


async def test_an_assertion_signed_with_another_key_is_refused(
    tmp_path: Path, key_file: Path, service_account: dict[str, Any], http: HttpClient
) -> None:
    """The local endpoint really checks signatures: a key it does not know gets invalid_grant."""
    other = make_service_account(
        tmp_path / "other.json", client_email=service_account["client_email"]
    )
    assert other["private_key"] != service_account["private_key"]
    async with LocalTokenServer(service_accounts=[service_account]) as tokens:
        auth = sa_auth(tmp_path / "other.json", http, tokens)
        with pytest.raises(GoogleAuthError) as refused:
            await auth.token()
    assert refused.value.reason == "token_refused"
    assert "Invalid JWT Signature" in str(refused.value)


async def test_an_oauth_user_gets_a_token_with_its_refresh_token(
    http: HttpClient, tokens: LocalTokenServer
) -> None:
    """The refresh-token grant sends client id, secret and refresh token as a form."""
    auth = GoogleAuth(user_credentials(), http, token_endpoint=tokens.url, scopes=[SCOPE])
    assert await auth.token() == "token-1"
    assert tokens.requests[0].form == {
        "grant_type": "refresh_token",
        "client_id": "client-1.apps.googleusercontent.com",
        "client_secret": "shh",
        "refresh_token": "1//refresh-abc",
    }


async def test_a_token_is_reused_until_shortly_before_it_expires(
    key_file: Path, service_account: dict[str, Any], http: HttpClient, tokens: LocalTokenServer
) -> None:
    """Within its lifetime less the margin the cached token is answered; after it, a new one."""
    clock = FakeClock()
    auth = sa_auth(key_file, http, tokens, clock)
    assert await auth.token() == "token-1"
    clock.advance(3600 - REFRESH_MARGIN_SECS - 1)
    assert await auth.token() == "token-1"
    assert tokens.token_requests == 1
    clock.advance(1)
    assert await auth.token() == "token-2"
    assert tokens.token_requests == 2


async def test_twenty_concurrent_senders_share_one_token_request(
    key_file: Path, service_account: dict[str, Any], http: HttpClient, tokens: LocalTokenServer
) -> None:
    """Many senders asking at once (cold cache, then after expiry) cause one request each time."""
    clock = FakeClock()
    auth = sa_auth(key_file, http, tokens, clock)
    first = await asyncio.gather(*(auth.token() for _ in range(20)))
    assert set(first) == {"token-1"}
    assert tokens.token_requests == 1
    clock.advance(3600)
    second = await asyncio.gather(*(auth.token() for _ in range(20)))
    assert set(second) == {"token-2"}
    assert tokens.token_requests == 2


async def test_a_cancelled_sender_does_not_cancel_the_shared_request(
    key_file: Path, service_account: dict[str, Any], http: HttpClient, tokens: LocalTokenServer
) -> None:
    """The first caller giving up (its send cancelled) leaves the others their token."""
    auth = sa_auth(key_file, http, tokens)
    first = asyncio.ensure_future(auth.token())
    others = asyncio.gather(*(auth.token() for _ in range(3)))
    await asyncio.sleep(0)
    first.cancel()
    assert set(await others) == {"token-1"}
    assert tokens.token_requests == 1


async def test_a_refused_grant_says_why_and_never_shows_the_secret(
    http: HttpClient, tokens: LocalTokenServer
) -> None:
    """400 invalid_grant raises token_refused with Google's error, without the secrets sent."""
    tokens.refuse(Refusal(400, "invalid_grant", "Token has been expired or revoked."))
    auth = GoogleAuth(
        user_credentials("very-secret-value"), http, token_endpoint=tokens.url, scopes=[SCOPE]
    )
    with pytest.raises(GoogleAuthError) as refused:
        await auth.token()
    assert refused.value.reason == "token_refused"
    assert refused.value.status == 400
    message = str(refused.value)
    assert "invalid_grant: Token has been expired or revoked." in message
    assert "very-secret-value" not in message and "refresh-abc" not in message


async def test_a_refusal_is_not_cached(
    key_file: Path, service_account: dict[str, Any], http: HttpClient, tokens: LocalTokenServer
) -> None:
    """After a refused grant, the next call asks again (and succeeds once the grant is fixed)."""
    tokens.refuse(Refusal(401, "invalid_client", "The OAuth client was not found."))
    auth = sa_auth(key_file, http, tokens)
    with pytest.raises(GoogleAuthError):
        await auth.token()
    assert await auth.token() == "token-1"


@pytest.mark.parametrize(
    ("status", "reason"), [(500, "token_server_error"), (503, "token_server_error")]
)
async def test_a_failing_token_endpoint_is_a_server_error(
    key_file: Path,
    service_account: dict[str, Any],
    http: HttpClient,
    tokens: LocalTokenServer,
    status: int,
    reason: str,
) -> None:
    """5xx from the token endpoint is not a refusal of the credentials."""
    tokens.refuse(Refusal(status, "internal_failure", "try again"))
    with pytest.raises(GoogleAuthError) as failed:
        await sa_auth(key_file, http, tokens).token()
    assert failed.value.reason == reason


async def test_an_unreachable_token_endpoint_is_token_unreachable(
    key_file: Path, service_account: dict[str, Any], http: HttpClient
) -> None:
    """Nothing listening: the transport failure becomes token_unreachable."""
    async with LocalTokenServer(service_accounts=[service_account]) as tokens:
        url = tokens.url
    auth = GoogleAuth(
        GoogleCredentials(service_account_file=key_file),
        http,
        token_endpoint=url,
        scopes=[SCOPE],
    )
    with pytest.raises(GoogleAuthError) as failed:
        await auth.token()
    assert failed.value.reason == "token_unreachable"


async def test_a_token_answer_without_a_token_is_unreadable(
    key_file: Path, service_account: dict[str, Any], http: HttpClient
) -> None:
    """A 200 that is not a token answer raises token_unreadable, not a KeyError."""
    async with FakePlatform(default=Answer(200, {"hello": "world"})) as fake:
        auth = GoogleAuth(
            GoogleCredentials(service_account_file=key_file),
            http,
            token_endpoint=fake.url + "/token",
            scopes=[SCOPE],
        )
        with pytest.raises(GoogleAuthError) as failed:
            await auth.token()
    assert failed.value.reason == "token_unreadable"


async def test_a_401_refreshes_the_token_once_and_repeats_the_request(
    key_file: Path, service_account: dict[str, Any], http: HttpClient, tokens: LocalTokenServer
) -> None:
    """A platform that refuses token-1 (revoked early) gets the request again with token-2."""
    auth = sa_auth(key_file, http, tokens)
    async with FakePlatform() as platform:
        platform.script(Answer(401, {"error": {"code": 401}}), Answer(200, {"ok": True}))
        answer = await authorized_post(auth, platform.url + "/x", b"{}", {}, timeout_secs=5)
    assert isinstance(answer, Response) and answer.status == 200
    assert [r.headers["Authorization"] for r in platform.requests] == [
        "Bearer token-1",
        "Bearer token-2",
    ]
    assert tokens.token_requests == 2


async def test_a_second_401_pauses_with_auth_refused(
    key_file: Path, service_account: dict[str, Any], http: HttpClient, tokens: LocalTokenServer
) -> None:
    """A fresh token refused too: a retry outcome that pauses the destination, tried twice only."""
    auth = sa_auth(key_file, http, tokens)
    async with FakePlatform(default=Answer(401, {"error": {"code": 401}})) as platform:
        answer = await authorized_post(auth, platform.url + "/x", b"{}", {}, timeout_secs=5)
    assert isinstance(answer, Outcome)
    assert (answer.kind, answer.reason, answer.status, answer.pause) == (
        "retry",
        "auth_refused",
        401,
        True,
    )
    assert len(platform.requests) == 2


async def test_no_token_pauses_with_the_auth_reason(
    key_file: Path, service_account: dict[str, Any], http: HttpClient, tokens: LocalTokenServer
) -> None:
    """A refused grant while sending: retry, pause, reason auth_token_refused; nothing is sent."""
    tokens.refuse(Refusal(400, "invalid_grant", "account disabled"))
    auth = sa_auth(key_file, http, tokens)
    async with FakePlatform() as platform:
        answer = await authorized_post(auth, platform.url + "/x", b"{}", {}, timeout_secs=5)
    assert isinstance(answer, Outcome)
    assert (answer.kind, answer.reason, answer.pause) == ("retry", "auth_token_refused", True)
    assert platform.requests == []


async def test_invalidating_an_old_token_keeps_the_newer_one(
    key_file: Path, service_account: dict[str, Any], http: HttpClient, tokens: LocalTokenServer
) -> None:
    """A sender whose 401 raced a refresh must not throw away the token that replaced its own."""
    clock = FakeClock()
    auth = sa_auth(key_file, http, tokens, clock)
    old = await auth.token()
    clock.advance(3600)
    new = await auth.token()
    auth.invalidate(old)
    assert await auth.token() == new
    assert tokens.token_requests == 2


# -- config ---------------------------------------------------------------------------------------


@attrs.frozen
class _GoogleDestinationConfig:
    """A stand-in destination config with a ``credentials:`` section, like the Google ones."""

    credentials: GoogleCredentials


def _load_store(tmp_path: Path, credentials: str) -> None:
    (tmp_path / "stores").mkdir(exist_ok=True)
    (tmp_path / "tagless.yaml").write_text("admin: {token: t}\n")
    (tmp_path / "stores" / "shop.yaml").write_text(
        "store: shop\n"
        "write_keys: [k]\n"
        "destinations:\n"
        "  - id: warehouse\n"
        "    type: google_thing\n"
        f"    credentials: {credentials}\n"
    )
    load_config(tmp_path, {"google_thing": _GoogleDestinationConfig})


def _config_error(tmp_path: Path, credentials: str) -> str:
    with pytest.raises(ConfigError) as failed:
        _load_store(tmp_path, credentials)
    [issue] = failed.value.errors
    return str(issue)


def test_a_valid_service_account_file_loads(tmp_path: Path, key_file: Path) -> None:
    """A generated key file passes the checks."""
    make_service_account(key_file)
    _load_store(tmp_path, f"{{service_account_file: {key_file}}}")


def test_an_oauth_user_loads_and_its_secrets_are_redacted(tmp_path: Path) -> None:
    """The three OAuth keys form a valid credentials section; secrets print as ***."""
    credentials = user_credentials()
    assert "shh" not in repr(credentials) and "refresh-abc" not in repr(credentials)
    _load_store(tmp_path, "{client_id: c, client_secret: s, refresh_token: r}")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "no such file: "),
        (b"{not json", "is not JSON; expected the service account key file"),
        (
            json.dumps({"type": "authorized_user", "refresh_token": "x"}).encode(),
            "is not a service account key: \"type\" is 'authorized_user'",
        ),
        (
            json.dumps({"installed": {"client_id": "x"}}).encode(),
            "(an OAuth client file: put client_id, client_secret and refresh_token",
        ),
        (
            json.dumps({"type": "service_account", "private_key": "k"}).encode(),
            "has no client_email; download a new key",
        ),
        (
            json.dumps(
                {"type": "service_account", "client_email": "a@b", "private_key": "nope"}
            ).encode(),
            "private_key is not a PEM-encoded RSA private key",
        ),
    ],
    ids=["missing", "not-json", "authorized-user", "oauth-client", "no-email", "bad-key"],
)
def test_a_bad_service_account_file_is_a_config_error_at_its_line(
    tmp_path: Path, key_file: Path, content: bytes | None, expected: str
) -> None:
    """Each way a key file can be wrong is reported at file:line with the key path."""
    if content is not None:
        key_file.write_bytes(content)
    error = _config_error(tmp_path, f"{{service_account_file: {key_file}}}")
    prefix = f"{tmp_path / 'stores' / 'shop.yaml'}:6: destinations[0].credentials"
    assert error.startswith(f"{prefix}.service_account_file: ")
    assert expected in error


def test_an_unreadable_service_account_file_is_a_config_error(tmp_path: Path) -> None:
    """A path Tagless cannot read as a file (here a directory) is reported, not crashed on."""
    error = _config_error(tmp_path, f"{{service_account_file: {tmp_path}}}")
    assert "credentials.service_account_file: " in error
    assert "is a directory; expected a service account key file" in error


def test_a_key_file_without_read_permission_is_a_config_error(
    tmp_path: Path, key_file: Path
) -> None:
    """A key file Tagless's user may not read says so (skipped as root, who reads anything)."""
    make_service_account(key_file)
    key_file.chmod(0)
    try:
        key_file.read_bytes()
    except PermissionError:
        error = _config_error(tmp_path, f"{{service_account_file: {key_file}}}")
        assert "permission denied" in error
    else:
        pytest.skip("running as a user who can read a mode-000 file (root)")


@pytest.mark.parametrize(
    ("credentials", "expected"),
    [
        ("{}", "missing: client_id, client_secret, refresh_token"),
        ("{client_id: c, client_secret: s}", "missing: refresh_token"),
        (
            "{service_account_file: /x.json, client_id: c}",
            "not both (got service_account_file and client_id)",
        ),
    ],
)
def test_credentials_need_exactly_one_form(
    tmp_path: Path, key_file: Path, credentials: str, expected: str
) -> None:
    """A service account file, or all three OAuth keys: anything else says what to set."""
    make_service_account(key_file)
    error = _config_error(tmp_path, credentials.replace("/x.json", str(key_file)))
    assert ": destinations[0].credentials: " in error
    assert expected in error
