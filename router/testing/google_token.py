"""A local Google OAuth token endpoint for tests, and service-account key files to use with it.

:func:`make_service_account` writes a key file with a freshly generated RSA key;
:class:`LocalTokenServer` serves the token endpoint on 127.0.0.1, checks each JWT-bearer
assertion's signature with that key's public half (and its claims), takes refresh-token grants,
records every request and can be scripted to refuse.
"""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import attrs
import orjson
from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from router.google_auth import ASSERTION_LIFETIME_SECS, JWT_BEARER_GRANT


def make_service_account(
    path: Path, *, client_email: str = "tagless-test@example-project.iam.gserviceaccount.com"
) -> dict[str, Any]:
    """Write a service-account key file with a new 2048-bit RSA key to ``path``; return its JSON."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "example-project",
        "private_key_id": "test-key-1",
        "private_key": pem,
        "client_email": client_email,
        "client_id": "100000000000000000001",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    path.write_text(json.dumps(info, indent=2))
    return info


def public_pem(info: Mapping[str, Any]) -> bytes:
    """The public key of a service account's private key, PEM-encoded."""
    key = serialization.load_pem_private_key(info["private_key"].encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@attrs.frozen
class TokenRequest:
    """One request the token endpoint got: its form fields, the verified JWT claims (for the
    JWT-bearer grant) and what it answered."""

    form: Mapping[str, str]
    claims: Mapping[str, Any] | None
    status: int
    answer: Mapping[str, Any]


@attrs.frozen
class Refusal:
    """A scripted answer other than a token: an OAuth error, or any status."""

    status: int = 400
    error: str = "invalid_grant"
    description: str = "Invalid JWT Signature."


class LocalTokenServer:
    """Google's token endpoint, locally: ``url`` is what a destination's ``token_endpoint`` takes.

    Accepts assertions signed by any of ``service_accounts`` (their key files' JSON) and refresh
    tokens in ``refresh_tokens`` (refresh token -> (client_id, client_secret)). Tokens are
    ``token-<n>`` and live ``expires_in`` seconds; :meth:`refuse` queues refusals for the next
    requests.
    """

    def __init__(
        self,
        *,
        service_accounts: Sequence[Mapping[str, Any]] = (),
        refresh_tokens: Mapping[str, tuple[str, str]] | None = None,
        expires_in: int = 3599,
    ) -> None:
        self.verifiers = {info["client_email"]: _verifier(info) for info in service_accounts}
        self.refresh_tokens = dict(refresh_tokens or {})
        self.expires_in = expires_in
        self.requests: list[TokenRequest] = []
        self.issued: list[str] = []
        self._refusals: list[Refusal] = []
        self._numbers = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.url = ""

    @property
    def token_requests(self) -> int:
        """How many token requests arrived (granted or not)."""
        return len(self.requests)

    def refuse(self, *refusals: Refusal) -> None:
        """Answer the next requests with these refusals, in order."""
        self._refusals.extend(refusals)

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/token", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/token"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> LocalTokenServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _handle(self, request: web.Request) -> web.Response:
        form = dict(parse_qsl((await request.read()).decode(), keep_blank_values=True))
        claims: dict[str, Any] | None = None
        if self._refusals:
            status, answer = self._refusal(self._refusals.pop(0))
        elif form.get("grant_type") == JWT_BEARER_GRANT:
            claims, problem = self._verify(form.get("assertion", ""))
            status, answer = self._grant() if problem is None else self._refusal(problem)
        elif form.get("grant_type") == "refresh_token":
            client = self.refresh_tokens.get(form.get("refresh_token", ""))
            if client != (form.get("client_id"), form.get("client_secret")):
                status, answer = self._refusal(Refusal(400, "invalid_grant", "Bad Request"))
            else:
                status, answer = self._grant()
        else:
            status, answer = self._refusal(Refusal(400, "unsupported_grant_type", "Invalid grant"))
        self.requests.append(TokenRequest(form, claims, status, answer))
        return web.Response(
            status=status, body=orjson.dumps(answer), content_type="application/json"
        )

    def _grant(self) -> tuple[int, dict[str, Any]]:
        token = f"token-{next(self._numbers)}"
        self.issued.append(token)
        return 200, {"access_token": token, "expires_in": self.expires_in, "token_type": "Bearer"}

    @staticmethod
    def _refusal(refusal: Refusal) -> tuple[int, dict[str, Any]]:
        return refusal.status, {"error": refusal.error, "error_description": refusal.description}

    def _verify(self, assertion: str) -> tuple[dict[str, Any] | None, Refusal | None]:
        """The assertion's claims, and a refusal when its signature or claims are wrong."""
        try:
            header_part, claims_part, signature_part = assertion.split(".")
            header = json.loads(_unb64(header_part))
            claims = json.loads(_unb64(claims_part))
            signature = _unb64(signature_part)
        except ValueError:
            return None, Refusal(400, "invalid_grant", "Invalid JWT: not a compact JWS")
        if not isinstance(header, dict) or not isinstance(claims, dict):
            return None, Refusal(400, "invalid_grant", "Invalid JWT: not JSON objects")
        verifier = self.verifiers.get(claims.get("iss"))
        if header.get("alg") != "RS256" or verifier is None:
            return claims, Refusal(400, "invalid_grant", "Invalid JWT: unknown issuer or alg")
        if not _signed_by(verifier, f"{header_part}.{claims_part}".encode(), signature):
            return claims, Refusal(400, "invalid_grant", "Invalid JWT Signature.")
        if claims.get("aud") != self.url or not claims.get("scope"):
            return claims, Refusal(400, "invalid_grant", "Invalid JWT: aud or scope")
        lifetime = claims.get("exp", 0) - claims.get("iat", 0)
        if not 0 < lifetime <= ASSERTION_LIFETIME_SECS:
            return claims, Refusal(400, "invalid_grant", "Invalid JWT: exp must be iat + <= 1 h")
        return claims, None


def _verifier(info: Mapping[str, Any]) -> rsa.RSAPublicKey:
    key = serialization.load_pem_public_key(public_pem(info))
    assert isinstance(key, rsa.RSAPublicKey)
    return key


def _signed_by(key: rsa.RSAPublicKey, message: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is ``message``'s RS256 (PKCS#1 v1.5, SHA-256) signature by ``key``."""
    try:
        key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def _unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
