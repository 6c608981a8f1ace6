"""Follow the README on a fresh clone, as a newcomer would; exit 1 if a command of it fails.

It clones the repository's HEAD into a temporary folder, then, there and exactly as the README
writes them: runs ``make run`` (in the background, until Tagless answers), every other line of
the "Two commands" section's shell blocks (``make test`` excepted: CI has just run the suite),
and every command of the "Command line" table (``serve`` excepted: ``make run`` is that
command). A command that fails is retried for a few seconds (delivery is asynchronous), then
reported with its output. Standard library only, so it runs before any install.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
READY_URL = "http://127.0.0.1:8080/readyz"
#: make test is the suite CI has just run; serve is what make run runs.
SKIPPED = ("make test", "make run", ".venv/bin/tagless serve")


def section(readme: str, title: str) -> str:
    """The text of a ``## title`` section, up to the next section of the same level."""
    start = readme.index(f"## {title}\n")
    end = readme.find("\n## ", start + 1)
    return readme[start : end if end != -1 else len(readme)]


def shell_commands(text: str) -> list[str]:
    """Each command of the ```sh blocks: comment-only lines dropped, continued lines joined."""
    commands: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.DOTALL):
        current = ""
        for line in block.splitlines():
            if not current and (not line.strip() or line.lstrip().startswith("#")):
                continue
            current = f"{current}\n{line}" if current else line
            try:  # a quoted argument may span lines: complete once the quotes close
                shlex.split(current, comments=True)
            except ValueError:
                continue
            commands.append(current)
            current = ""
    return commands


def table_commands(text: str) -> list[str]:
    """The first column of each table row that holds a command in backticks."""
    return re.findall(r"^\| `([^`]+)` \|", text, re.MULTILINE)


def run(command: str, cwd: Path, attempts: int = 5) -> None:
    """Run one README command in a shell; raise SystemExit with its output if it keeps failing."""
    for attempt in range(1, attempts + 1):
        done = subprocess.run(  # noqa: S602 - the README's own shell commands, as written
            command, shell=True, cwd=cwd, capture_output=True, text=True, timeout=600
        )
        if done.returncode == 0:
            print(f"ok   {command.splitlines()[0]}")
            return
        if attempt < attempts:
            time.sleep(1)
    print(f"FAIL {command}\n--- exit {done.returncode}\n{done.stdout}{done.stderr}")
    raise SystemExit(1)


def wait_ready(server: subprocess.Popen[bytes], seconds: float) -> None:
    """Wait for make run's Tagless to answer /readyz; fail if it exits or never answers."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"FAIL make run exited with {server.returncode} before serving")
        try:
            with urllib.request.urlopen(READY_URL, timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"FAIL make run did not answer {READY_URL} within {seconds:.0f}s")


def main() -> int:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first = shell_commands(section(readme, "Two commands"))
    table = table_commands(section(readme, "Command line"))
    if not any(c.startswith("make run") for c in first) or len(table) < 5:
        print("FAIL the README no longer has the sections this walkthrough follows")
        return 1
    with tempfile.TemporaryDirectory(prefix="tagless-readme-") as tmp:
        clone = Path(tmp) / "tagless"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TAGLESS_")}
        server = subprocess.Popen(
            ["make", "run"], cwd=clone, env=env, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_ready(server, 600)
            print("ok   make run")
            for command in [*first, *table]:
                if command.startswith(SKIPPED):
                    print(f"skip {command.splitlines()[0]}")
                    continue
                run(command, clone)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            code = server.wait(timeout=60)
        if code not in (0, 2, -signal.SIGTERM):  # make reports its child's SIGTERM exit as 2
            print(f"FAIL make run ended with {code} after SIGTERM")
            return 1
    print(f"README walkthrough: {len(first) + len(table)} commands followed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
