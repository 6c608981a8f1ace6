"""The plugin API is one module: built-in destinations import nothing else of ``router``."""

from __future__ import annotations

import ast
from pathlib import Path

import router.sdk
from router import destination, http, privacy

DESTINATIONS = Path(__file__).resolve().parents[2] / "destinations"


def router_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import of a ``router`` module in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules = [node.module]
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        else:
            continue
        found += [(node.lineno, m) for m in modules if m == "router" or m.startswith("router.")]
    return found


def test_built_in_destinations_import_only_the_public_module() -> None:
    """Every built-in destination imports router.sdk and no other router module, so the
    public API is proven enough to write them."""
    offenders = [
        f"{path.relative_to(DESTINATIONS.parent)}:{line}: imports {module}"
        for path in sorted(DESTINATIONS.rglob("*.py"))
        for line, module in router_imports(path)
        if module != "router.sdk"
    ]
    assert offenders == [], "destinations must import only router.sdk:\n" + "\n".join(offenders)


def test_the_lint_sees_a_private_import(tmp_path: Path) -> None:
    """The import lint catches both import forms (it would pass vacuously otherwise)."""
    sample = tmp_path / "client.py"
    sample.write_text("import router.http\nfrom router.privacy import hash_email\n")
    assert router_imports(sample) == [(1, "router.http"), (2, "router.privacy")]


def test_every_public_name_exists_and_is_listed() -> None:
    """``__all__`` names exactly the module's public names, each of which resolves."""
    public = {name for name in vars(router.sdk) if not name.startswith("_")}
    public -= {"annotations", "Final"}
    assert sorted(router.sdk.__all__) == sorted(public)


def test_the_contract_names_the_issue_lists_are_public() -> None:
    """What every destination needs is exported as the engine's own objects (not copies)."""
    assert router.sdk.Destination is destination.Destination
    assert router.sdk.Outcome is destination.Outcome
    assert router.sdk.classify is http.classify
    assert router.sdk.hash_email is privacy.hash_email
    for name in ("MappingError", "Health", "TestAnswer", "HttpClient", "Secret", "Event"):
        assert name in router.sdk.__all__


def test_api_version_is_major_dot_minor() -> None:
    """API_VERSION is MAJOR.MINOR, which ``requires_api`` is checked against."""
    major, minor = router.sdk.API_VERSION.split(".")
    assert major.isdigit() and minor.isdigit()
