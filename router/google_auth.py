"""Google OAuth 2.0 access tokens for destinations: a service account's JWT grant or a user's
refresh token, cached until shortly before expiry and fetched once for many concurrent senders.

Key loading and JWT signing are google-auth's (``google.auth.crypt``, ``google.auth.jwt``); the
token exchange goes through Tagless's own :class:`~router.http.HttpClient`, so it shares the
process's connection pool, timeouts and transport-error classification. A third-party Google
destination uses it the same way the built-in ones do: build a :class:`GoogleAuth` from its
config's ``credentials`` and send with :func:`authorized_post`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlencode

import attrs
import orjson
from google.auth import crypt, exceptions, jwt

from router.clock import Clock, SystemClock
from router.destination import Outcome
from router.http import HttpClient, Response, TransportError, transport_outcome
from router.secret import MissingSecret, Secret

#: Google's OAuth 2.0 token endpoint (both grants); ``token_endpoint`` overrides it.
DEFAULT_TOKEN_ENDPOINT: Final = "https://oauth2.googleapis.com/token"  # noqa: S105  # a URL, not a secret
#: A token is renewed this many seconds before it expires, so none expires in flight.
REFRESH_MARGIN_SECS: Final = 60.0
#: Lifetime asked for in the service account's assertion; Google allows at most one hour.
ASSERTION_LIFETIME_SECS: Final = 3600
JWT_BEARER_GRANT: Final = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_FORM: Final = {"Content-Type": "application/x-www-form-urlencoded"}
_MAX_DETAIL: Final = 300


def read_service_account(path: Path) -> dict[str, Any]:
    """The key file's JSON, checked to be a usable service-account key; ValueError says why not.

    Messages name the file and the problem, never any of its content.
    """
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise ValueError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise ValueError(f"{path} is a directory; expected a service account key file") from None
    except PermissionError:
        raise ValueError(f"cannot read {path}: permission denied for Tagless's user") from None
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror or error}") from None
    try:
        info = json.loads(text)
    except ValueError:
        raise ValueError(
            f"{path} is not JSON; expected the service account key file (.json) that the"
            " Google Cloud console downloads under IAM > Service accounts > Keys"
        ) from None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        kind = info.get("type") if isinstance(info, dict) else None
        hint = (
            " (an OAuth client file: put client_id, client_secret and refresh_token under"
            " credentials instead)"
            if isinstance(info, dict) and ("installed" in info or "web" in info)
            else ""
        )
        raise ValueError(
            f'{path} is not a service account key: "type" is {kind!r},'
            f' expected "service_account"{hint}'
        )
    missing = [key for key in ("client_email", "private_key") if not _text(info.get(key))]
    if missing:
        raise ValueError(f"{path} has no {' or '.join(missing)}; download a new key")
    try:
        _signer(info)
    except (ValueError, exceptions.GoogleAuthError):
        raise ValueError(f"{path}: private_key is not a PEM-encoded RSA private key") from None
    return info


def _signer(info: Mapping[str, Any]) -> crypt.Signer:
    """google-auth's RS256 signer for a key file's JSON (raises ValueError if the key is bad)."""
    signer: crypt.Signer = crypt.RSASigner.from_service_account_info(info)  # type: ignore[no-untyped-call]  # google-auth leaves it unannotated
    return signer


def _text(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _service_account_file(_: object, attribute: attrs.Attribute[Any], value: Path | None) -> None:
    if value is not None:
        read_service_account(value)


@attrs.frozen(kw_only=True)
class GoogleCredentials:
    """A destination's ``credentials:``: a service account key file, or an OAuth user's
    ``client_id``, ``client_secret`` and ``refresh_token`` (exactly one of the two forms)."""

    #: a service account's JSON key file (set this, or the three OAuth user keys)
    service_account_file: Path | None = attrs.field(default=None, validator=_service_account_file)
    #: an OAuth user's client id
    client_id: str | None = None
    #: that OAuth client's secret (use `${ENV}`)
    client_secret: Secret | None = None
    #: the OAuth user's refresh token (use `${ENV}`)
    refresh_token: Secret | None = None

    def __attrs_post_init__(self) -> None:
        oauth = {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "refresh_token": self.refresh_token,
        }
        given = [key for key, value in oauth.items() if value is not None]
        if self.service_account_file is not None and given:
            raise ValueError(
                "set either service_account_file or client_id, client_secret and"
                f" refresh_token, not both (got service_account_file and {', '.join(given)})"
            )
        if self.service_account_file is None and len(given) != len(oauth):
            missing = ", ".join(key for key in oauth if key not in given)
            raise ValueError(
                "set service_account_file (a service account key), or all of client_id,"
                f" client_secret and refresh_token (an OAuth user); missing: {missing}"
            )


class GoogleAuthError(Exception):
    """No access token: ``reason`` is a short code (``token_refused``, ``token_unreachable``,
    ``token_server_error``, ``token_unreadable``, ``credentials_unreadable``)."""

    def __init__(self, reason: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status


@attrs.frozen
class _Token:
    value: str
    expires_at: float


class GoogleAuth:
    """Access tokens for one set of credentials and scopes, shared by every send of a
    destination: :meth:`token` answers from the cache while the token has more than
    ``REFRESH_MARGIN_SECS`` to live; when it has not, concurrent callers share one request."""

    def __init__(
        self,
        credentials: GoogleCredentials,
        http: HttpClient,
        *,
        token_endpoint: str,
        scopes: Sequence[str],
        clock: Clock | None = None,
        timeout_secs: float = 10.0,
    ) -> None:
        self.credentials = credentials
        self.http = http
        self.token_endpoint = token_endpoint
        self.scopes = tuple(scopes)
        self.clock = clock or SystemClock()
        self.timeout_secs = timeout_secs
        self._cached: _Token | None = None
        self._inflight: asyncio.Future[_Token] | None = None

    async def token(self) -> str:
        """A valid access token; raises :class:`GoogleAuthError` when none can be had."""
        cached = self._cached
        if cached is not None and self.clock.now() < cached.expires_at - REFRESH_MARGIN_SECS:
            return cached.value
        if self._inflight is None:
            self._inflight = asyncio.ensure_future(self._refresh())
            self._inflight.add_done_callback(self._finished)
        # shielded: a cancelled sender must not cancel the request the others wait for
        return (await asyncio.shield(self._inflight)).value

    def invalidate(self, token: str) -> None:
        """The platform refused ``token`` (401): forget it, unless a newer one replaced it."""
        if self._cached is not None and self._cached.value == token:
            self._cached = None

    def _finished(self, future: asyncio.Future[_Token]) -> None:
        self._inflight = None
        if not future.cancelled() and future.exception() is None:
            self._cached = future.result()

    async def _refresh(self) -> _Token:
        started = self.clock.now()
        try:
            response = await self.http.post(
                self.token_endpoint,
                urlencode(self._grant(started)).encode(),
                _FORM,
                timeout_secs=self.timeout_secs,
            )
        except TransportError as error:
            raise GoogleAuthError(
                "token_unreachable", f"token endpoint: {error.reason}: {error}"
            ) from error
        return _read_token(response, started)

    def _grant(self, now: float) -> dict[str, str]:
        """The token request's form fields: a signed assertion, or the refresh token."""
        credentials = self.credentials
        if credentials.service_account_file is not None:
            return {"grant_type": JWT_BEARER_GRANT, "assertion": self._assertion(now)}
        assert credentials.client_secret is not None and credentials.refresh_token is not None
        try:
            secret = credentials.client_secret.reveal()
            refresh = credentials.refresh_token.reveal()
        except MissingSecret as error:
            raise GoogleAuthError("credentials_unreadable", str(error)) from error
        return {
            "grant_type": "refresh_token",
            "client_id": str(credentials.client_id),
            "client_secret": secret,
            "refresh_token": refresh,
        }

    def _assertion(self, now: float) -> str:
        """The RS256 JWT a service account trades for a token (re-read each time: keys rotate)."""
        assert self.credentials.service_account_file is not None
        try:
            info = read_service_account(self.credentials.service_account_file)
        except ValueError as error:
            raise GoogleAuthError("credentials_unreadable", str(error)) from error
        issued = int(now)
        claims = {
            "iss": info["client_email"],
            "scope": " ".join(self.scopes),
            "aud": self.token_endpoint,
            "iat": issued,
            "exp": issued + ASSERTION_LIFETIME_SECS,
        }
        encoded: bytes = jwt.encode(_signer(info), claims)  # type: ignore[no-untyped-call]  # google-auth leaves it unannotated
        return encoded.decode()


def _read_token(response: Response, started: float) -> _Token:
    """The access token of a token endpoint's answer, or the error it stands for."""
    if response.status in (400, 401, 403):
        raise GoogleAuthError(
            "token_refused",
            f"token endpoint refused the grant (HTTP {response.status}): {_google_error(response)}",
            response.status,
        )
    if not 200 <= response.status < 300:
        raise GoogleAuthError(
            "token_server_error",
            f"token endpoint answered HTTP {response.status}: {_google_error(response)}",
            response.status,
        )
    try:
        answer = orjson.loads(response.body)
        token, expires_in = answer["access_token"], float(answer["expires_in"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        raise GoogleAuthError(
            "token_unreadable", "token endpoint answered 2xx without access_token and expires_in"
        ) from None
    if not isinstance(token, str) or not token:
        raise GoogleAuthError("token_unreadable", "token endpoint answered an empty access_token")
    return _Token(token, started + expires_in)


def _google_error(response: Response) -> str:
    """``error: error_description`` of an OAuth error answer (they never echo the secret)."""
    try:
        answer = orjson.loads(response.body)
    except orjson.JSONDecodeError:
        return response.excerpt[:_MAX_DETAIL]
    if not isinstance(answer, dict):
        return response.excerpt[:_MAX_DETAIL]
    error = answer.get("error")
    if isinstance(error, dict):  # Google's API error shape, some endpoints use it
        error = error.get("status") or error.get("message")
    description = answer.get("error_description", "")
    return f"{error}: {description}"[:_MAX_DETAIL] if description else str(error)[:_MAX_DETAIL]


def auth_outcome(error: GoogleAuthError) -> Outcome:
    """No token: every event waits, and the destination pauses with the reason."""
    return Outcome("retry", f"auth_{error.reason}", error.status, detail=str(error), pause=True)


async def authorized_post(
    auth: GoogleAuth,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    timeout_secs: float,
) -> Response | Outcome:
    """POST with ``Authorization: Bearer``; on a 401, once more with a fresh token.

    Returns the platform's answer, or the outcome every event of the request gets when it
    could not be had: no token (``auth_*``), a second 401 (``auth_refused``, pausing the
    destination) or no answer at all (the transport's reason).
    """
    return await authorized_request(auth, "POST", url, body, headers, timeout_secs=timeout_secs)


async def authorized_request(
    auth: GoogleAuth,
    method: str,
    url: str,
    body: bytes | None,
    headers: Mapping[str, str],
    *,
    timeout_secs: float,
) -> Response | Outcome:
    """:func:`authorized_post` for any method (``GET`` for health checks and table lookups)."""
    for _ in range(2):  # a 401 may be a token revoked early: one fresh token, then pause
        answer = await _with_token(auth, method, url, body, headers, timeout_secs)
        if not isinstance(answer, tuple):
            return answer
        token, response = answer
        if response.status != 401:
            return response
        auth.invalidate(token)
    return Outcome(
        "retry",
        "auth_refused",
        401,
        response.retry_after,
        "the platform refused a freshly issued access token (HTTP 401): the credentials lack"
        f" access or the API is not enabled; {response.excerpt}",
        pause=True,
    )


async def _with_token(
    auth: GoogleAuth,
    method: str,
    url: str,
    body: bytes | None,
    headers: Mapping[str, str],
    timeout_secs: float,
) -> tuple[str, Response] | Outcome:
    try:
        token = await auth.token()
    except GoogleAuthError as error:
        return auth_outcome(error)
    sent = {**headers, "Authorization": f"Bearer {token}"}
    try:
        response = await auth.http.request(method, url, body, sent, timeout_secs=timeout_secs)
    except TransportError as error:
        return transport_outcome(error)
    return token, response
