"""A `tagless serve` that cannot start says why in one line, exits 1, and leaves nothing running."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from harness import TaglessServer

#: Start-up is quick; a process still there after this long has hung.
EXIT_SECS = 10.0


@pytest.fixture
def held_port() -> Iterator[tuple[socket.socket, int]]:
    """A port on 127.0.0.1 held by a listening socket of this test."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    try:
        yield holder, holder.getsockname()[1]
    finally:
        holder.close()


async def failed_start(server: TaglessServer) -> dict[str, str]:
    """Run the server to its exit; check the code and that stderr is one JSON line; return it."""
    server.spawn()
    code = await server.wait_exit(EXIT_SECS)
    output = server.logs[-1].read_text(errors="replace")
    assert code == 1, f"exit code {code} (None: still running)\n{output}"
    assert "Traceback" not in output and "Unclosed" not in output, output
    lines = output.splitlines()
    assert len(lines) == 1, output
    record: dict[str, str] = json.loads(lines[0])
    assert record["event"] == "startup_failed"
    return record


@pytest.mark.slow
async def test_a_taken_ingest_port_exits_1_naming_the_address(
    tagless: Callable[..., TaglessServer], held_port: tuple[socket.socket, int]
) -> None:
    """The ingest port is taken: one line names it and its config keys, exit 1 at once."""
    _holder, port = held_port
    record = await failed_start(tagless("http://127.0.0.1:9/unused", ingest_port=port))
    assert f"127.0.0.1:{port}" in record["error"]
    assert "server.port" in record["error"] and "address already in use" in record["error"]


@pytest.mark.slow
async def test_a_taken_admin_port_exits_1_naming_the_address(
    tagless: Callable[..., TaglessServer], held_port: tuple[socket.socket, int]
) -> None:
    """The admin port is taken (ingest already listening): one line, exit 1, no loop errors."""
    _holder, port = held_port
    record = await failed_start(tagless("http://127.0.0.1:9/unused", admin_port=port))
    assert f"127.0.0.1:{port}" in record["error"] and "admin.port" in record["error"]


@pytest.mark.slow
async def test_an_outbox_path_that_cannot_be_created_exits_1_naming_the_file(
    tagless: Callable[..., TaglessServer], tmp_path: Path
) -> None:
    """The outbox's directory cannot be created (a file is in the way): one line, exit 1."""
    (tmp_path / "a-file").write_text("not a directory")
    path = tmp_path / "a-file" / "tagless.db"
    record = await failed_start(tagless("http://127.0.0.1:9/unused", outbox_path=path))
    assert str(path) in record["error"] and "outbox.path" in record["error"]


@pytest.mark.slow
async def test_an_outbox_that_refuses_to_open_exits_1_naming_the_file(
    tagless: Callable[..., TaglessServer], tmp_path: Path
) -> None:
    """The outbox file is not a database: one line says so and what outbox.path must be."""
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not an SQLite database, not even its header" * 100)
    record = await failed_start(tagless("http://127.0.0.1:9/unused", outbox_path=path))
    assert str(path) in record["error"] and "not a database" in record["error"]
