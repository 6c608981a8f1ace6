"""docs/plugins.md cannot drift from the code: its reference is generated and its examples
import only names that exist."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import router.sdk
from router import sdk_reference

DOC = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"


def test_the_reference_section_is_what_the_code_generates() -> None:
    """The API reference equals what router.sdk_reference renders from the code now."""
    text = DOC.read_text()
    assert sdk_reference.rewrite(text) == text, (
        "docs/plugins.md is out of date: run python -m router.sdk_reference --write"
    )


def test_the_reference_names_every_public_name() -> None:
    """Every name of router.sdk.__all__ has its line in the reference."""
    section = sdk_reference.render()
    for name in router.sdk.__all__:
        assert f"`{name}" in section, name


def test_a_changed_docstring_makes_the_reference_stale() -> None:
    """The check is real: a docstring edit changes the rendered reference."""
    before = sdk_reference.render()
    original = router.sdk.consent_denied.__doc__
    try:
        router.sdk.consent_denied.__doc__ = "Something else."
        assert sdk_reference.render() != before
    finally:
        router.sdk.consent_denied.__doc__ = original


def test_names_the_tutorial_imports_exist() -> None:
    """Every ``from router.<module> import ...`` in the tutorial's code names real things."""
    text = DOC.read_text()
    imports = re.findall(r"^from (router[\w.]*) import ([\w, ]+)$", text, re.M)
    assert imports
    for module_name, names in imports:
        module = importlib.import_module(module_name)
        for name in (n.strip() for n in names.split(",")):
            assert hasattr(module, name), f"{module_name}.{name} (docs/plugins.md)"
    for mentioned in set(re.findall(r"`(router\.(?:sdk|testing)[\w.]*)`", text)):
        head = mentioned.rsplit(".", 1)
        try:
            importlib.import_module(mentioned)
        except ModuleNotFoundError:
            assert hasattr(importlib.import_module(head[0]), head[1]), mentioned
