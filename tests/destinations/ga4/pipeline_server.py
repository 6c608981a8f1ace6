"""A raw HTTP/1.1 server for the pipelining tests: reads pipelined requests, answers by script."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from collections.abc import Callable
from pathlib import Path

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@attrs.frozen
class Act:
    """What the server does with one request: answer these bytes, hang, or reset."""

    answer: bytes = b"HTTP/1.1 204 No Content\r\n\r\n"
    #: close the connection (gracefully) right after the answer
    close: bool = False
    #: drop the connection with a reset instead of answering
    reset: bool = False
    #: never answer (the connection stays open)
    hang: bool = False


#: (the request's number across the server, its body) -> what to do
Script = Callable[[int, bytes], Act]


def answer(status: int, body: bytes = b"", *headers: str) -> bytes:
    """An HTTP/1.1 answer with Content-Length."""
    lines = "".join(f"{h}\r\n" for h in headers)
    return f"HTTP/1.1 {status} X\r\n{lines}Content-Length: {len(body)}\r\n\r\n".encode() + body


class PipelineServer:
    """Serves 127.0.0.1; records every request body per connection, in order of arrival.

    ``gather`` holds answers back until that many requests arrived on the connection (or it
    ended), which only a pipelining client can satisfy.
    """

    def __init__(self, script: Script, *, gather: int = 1, tls: ssl.SSLContext | None = None):
        self.script = script
        self.gather = gather
        self.tls = tls
        self.connections: list[list[bytes]] = []
        self.count = 0
        self.url = ""
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._stop = asyncio.Event()
        self._handlers: list[asyncio.Task[object]] = []

    async def __aenter__(self) -> PipelineServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"{'https' if self.tls else 'http'}://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._stop.set()
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    @property
    def bodies(self) -> list[bytes]:
        """Every request body received, connection after connection."""
        return [body for seen in self.connections for body in seen]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        task = asyncio.current_task()
        assert task is not None
        self._handlers.append(task)
        seen: list[bytes] = []
        self.connections.append(seen)
        held: list[tuple[int, bytes]] = []
        try:
            while True:
                request = await self._read(reader)
                if request is not None:
                    held.append((self.count, request))
                    seen.append(request)
                    self.count += 1
                if len(held) < self.gather and request is not None:
                    continue
                for number, body in held:
                    act = self.script(number, body)
                    if act.hang:
                        await self._stop.wait()
                        return
                    if act.reset:
                        writer.transport.abort()
                        return
                    writer.write(act.answer)
                    if act.close:
                        await writer.drain()
                        writer.close()
                        return
                held.clear()
                await writer.drain()
                if request is None:
                    writer.close()
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            writer.transport.abort()

    async def _read(self, reader: asyncio.StreamReader) -> bytes | None:
        """One request's body, or None at the end of the connection."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        return await reader.readexactly(length)


def self_signed(directory: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(a server context for 127.0.0.1, a client context that trusts only its certificate)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cafile=str(cert_file))
    return server, client
