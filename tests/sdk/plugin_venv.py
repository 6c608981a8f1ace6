"""Throwaway virtualenvs beside this Tagless: plugin wheels installed into them, commands run.

A throwaway venv sees this checkout's Tagless and its dependencies through a ``.pth`` line
(``site.addsitedir`` of the running environment's site-packages), so only the plugin is
installed into it, from a wheel built here by pip (its build backend comes from the package
index, as for any plugin author).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "tagless-destination-pinterest"
PIP_TIMEOUT_SECS = 600

#: A plugin package whose import raises: the broken neighbour of a good plugin.
BROKEN_PYPROJECT = """\
[build-system]
requires = ["setuptools>=77"]
build-backend = "setuptools.build_meta"

[project]
name = "tagless-destination-broken"
version = "0.3.0"

[project.entry-points."tagless.destinations"]
broken = "tagless_destination_broken:BrokenDestination"
"""
BROKEN_MODULE = "raise ImportError('cannot import name Client from vendor_sdk')\n"


def pip(*args: str) -> None:
    """Run this environment's pip (it installs into another venv with ``--python``)."""
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=PIP_TIMEOUT_SECS,
        check=False,
    )
    assert done.returncode == 0, f"pip {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"


def build_wheel(source: Path, out: Path) -> Path:
    """Build a copy of ``source`` (pip builds in the tree it is given) into a wheel in
    ``out`` and return it."""
    copy = out / f"src-{source.name}"
    shutil.copytree(
        source, copy, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    )
    pip("wheel", "--no-deps", "--quiet", "--wheel-dir", str(out), str(copy))
    [wheel] = [p for p in out.glob("*.whl") if p.name.startswith(_dist_prefix(source))]
    return wheel


def _dist_prefix(source: Path) -> str:
    for line in (source / "pyproject.toml").read_text().splitlines():
        if line.startswith("name = "):
            return line.split('"')[1].replace("-", "_")
    raise AssertionError(f"no project name in {source}/pyproject.toml")


def broken_source(folder: Path) -> Path:
    """The source tree of ``tagless-destination-broken``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pyproject.toml").write_text(BROKEN_PYPROJECT)
    (folder / "tagless_destination_broken.py").write_text(BROKEN_MODULE)
    return folder


class PluginVenv:
    """A venv beside this Tagless; :meth:`install` plugin wheels, :meth:`tagless` runs the CLI."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        venv.EnvBuilder(with_pip=False).create(folder)
        self.python = folder / "bin" / "python"
        purelib = subprocess.run(
            [str(self.python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.strip()
        ours = sysconfig.get_paths()["purelib"]
        Path(purelib, "tagless_beside.pth").write_text(f"import site; site.addsitedir({ours!r})\n")

    def install(self, wheel: Path) -> None:
        pip("--python", str(self.python), "install", "--no-deps", "--quiet", str(wheel))

    def uninstall(self, distribution: str) -> None:
        pip("--python", str(self.python), "uninstall", "--yes", "--quiet", distribution)

    def command(self) -> list[str]:
        """``tagless`` run by this venv's interpreter."""
        return [str(self.python), "-c", "from router.cli import main; main()"]

    def tagless(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.command(), *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=cwd,
        )
