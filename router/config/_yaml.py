"""Safe YAML parsing into a small tree of plain values that keeps each node's line."""

from __future__ import annotations

import re
from collections.abc import Callable

import attrs
import yaml
from yaml.constructor import SafeConstructor

from router.config.model import ConfigIssue

ScalarValue = None | bool | int | float | str

_STD = "tag:yaml.org,2002:"
_SEQ, _MAP, _STR, _MERGE = _STD + "seq", _STD + "map", _STD + "str", _STD + "merge"
_CONSTRUCTOR = SafeConstructor()
_SCALARS: dict[str, Callable[[yaml.ScalarNode], ScalarValue]] = {
    _STD + "null": _CONSTRUCTOR.construct_yaml_null,
    _STD + "bool": _CONSTRUCTOR.construct_yaml_bool,
    _STD + "int": _CONSTRUCTOR.construct_yaml_int,
    _STD + "float": _CONSTRUCTOR.construct_yaml_float,
    _STR: lambda node: str(node.value),
    # no field is a date: a date-looking value is the text the operator wrote
    _STD + "timestamp": lambda node: str(node.value),
}
_ALLOWED = "config values are plain strings, numbers, booleans, null, lists and mappings"
# the stubs leave `resolve` untyped; this is its real shape
_RESOLVE: Callable[[type[yaml.Node], str, tuple[bool, bool]], str] = (
    yaml.resolver.Resolver().resolve
)
_MAX_NODES = 100_000  # aliases can multiply a small file into a huge tree ("billion laughs")
_MAX_DEPTH = 64
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")
# `${VAR}` inside a flow mapping (`{token: ${VAR}}`) is not valid YAML, because `{` is syntax
# there; references are swapped for placeholders before parsing and restored in the values.
_REFERENCE = re.compile(r"(?<!\$)\$\{[^}\n]*\}")
_PLACEHOLDER = re.compile(r"__tagless_ref_(\d+)__")


@attrs.frozen
class Scalar:
    """A string, number, boolean or null; ``plain`` when it was written without quotes."""

    value: ScalarValue
    line: int
    plain: bool = False
    #: The text after ``${VAR}`` references were replaced (``value`` is then that text read
    #: as YAML when unquoted); ``None`` when the value had no reference.
    text: str | None = None
    #: Already reported (bad tag, missing variable): structuring skips it silently.
    broken: bool = False
    #: Read with secrets left unresolved: the variable this value names is not set. Only a
    #: secret may stay so (it fails when revealed); anything else is reported then.
    unset: str | None = None


@attrs.frozen
class Seq:
    """A YAML sequence."""

    items: tuple[Node, ...]
    line: int


@attrs.frozen
class Entry:
    """One ``key: value`` of a mapping; ``line`` is the key's line."""

    key: str
    line: int
    value: Node


@attrs.frozen
class Map:
    """A YAML mapping with unique string keys, in file order."""

    entries: tuple[Entry, ...]
    line: int

    def get(self, key: str) -> Node | None:
        """The value under ``key``, or ``None`` when the key is absent."""
        return next((entry.value for entry in self.entries if entry.key == key), None)

    def keys(self) -> list[str]:
        """The keys in file order."""
        return [entry.key for entry in self.entries]


Node = Scalar | Seq | Map


@attrs.define
class Report:
    """Collects the issues of one file."""

    file: str
    issues: list[ConfigIssue] = attrs.Factory(list)
    #: Variables named by issues of a lazily read config where only a secret may stay unset.
    unset: list[str] = attrs.Factory(list)

    def add(self, line: int | None, path: str, message: str) -> None:
        """Record one issue at ``line`` and key ``path``."""
        self.issues.append(ConfigIssue(self.file, line, path, message))


def child_path(parent: str, key: str | int) -> str:
    """The key path of ``key`` (a mapping key or a list index) under ``parent``."""
    if isinstance(key, int):
        return f"{parent}[{key}]"
    part = key if _PLAIN_KEY.fullmatch(key) else f"[{key!r}]"
    if not parent:
        return part
    return f"{parent}{part}" if part.startswith("[") else f"{parent}.{part}"


def parse(text: str, report: Report) -> Node | None:
    """Parse one YAML document safely; ``None`` for an empty document or a syntax error."""
    references: list[str] = []

    def shield(match: re.Match[str]) -> str:
        references.append(match.group(0))
        return f"__tagless_ref_{len(references) - 1}__"

    try:
        root = yaml.compose(_REFERENCE.sub(shield, text), Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "syntax error"
        report.add(mark.line + 1 if mark else None, "", f"invalid YAML: {problem}")
        return None
    except yaml.YAMLError as exc:
        report.add(None, "", f"invalid YAML: {exc}")
        return None
    return None if root is None else _Converter(report, references).convert(root, "", 0)


def read_plain(text: str, line: int) -> Scalar:
    """Read ``text`` as an unquoted YAML scalar would be read (``8080`` is an integer)."""
    tag = _RESOLVE(yaml.ScalarNode, text, (True, False))
    node = yaml.ScalarNode(tag, text)
    return Scalar(_SCALARS.get(tag, _SCALARS[_STR])(node), line, plain=True, text=text)


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _short(tag: str) -> str:
    return "!!" + tag.removeprefix(_STD) if tag.startswith(_STD) else tag


@attrs.define
class _Converter:
    """Turns composed YAML nodes into the tree, checking tags, keys and size on the way."""

    report: Report
    references: list[str] = attrs.Factory(list)
    count: int = 0
    overflowed: bool = False

    def restore(self, text: str) -> str:
        """Put back the ``${...}`` references that were shielded from the YAML parser."""
        if not self.references:
            return text
        return _PLACEHOLDER.sub(lambda m: self.references[int(m.group(1))], text)

    def convert(self, node: yaml.Node, path: str, depth: int) -> Node:
        self.count += 1
        if self.count > _MAX_NODES or depth > _MAX_DEPTH:
            return self._overflow(node, path)
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path)
        if isinstance(node, yaml.SequenceNode) and node.tag == _SEQ:
            items = (
                self.convert(item, child_path(path, i), depth + 1)
                for i, item in enumerate(node.value)
            )
            return Seq(tuple(items), _line(node))
        if isinstance(node, yaml.MappingNode) and node.tag == _MAP:
            return self._mapping(node, path, depth)
        return self._bad_tag(node, path)

    def _overflow(self, node: yaml.Node, path: str) -> Scalar:
        if not self.overflowed:  # once: a recursive alias would otherwise report forever
            self.report.add(_line(node), path, "document too large or nested too deep")
            self.overflowed = True
        return Scalar(None, _line(node), broken=True)

    def _scalar(self, node: yaml.ScalarNode, path: str) -> Scalar:
        construct = _SCALARS.get(node.tag)
        if construct is None:
            return self._bad_tag(node, path)
        try:
            value = construct(node)
        except (ValueError, yaml.YAMLError):
            self.report.add(_line(node), path, f"{node.value!r} is not a valid {_short(node.tag)}")
            return Scalar(None, _line(node), broken=True)
        if isinstance(value, str):
            value = self.restore(value)
        return Scalar(value, _line(node), plain=node.style is None)

    def _bad_tag(self, node: yaml.Node, path: str) -> Scalar:
        message = f"YAML tag {_short(node.tag)!r} is not allowed; {_ALLOWED}"
        self.report.add(_line(node), path, message)
        return Scalar(None, _line(node), broken=True)

    def _mapping(self, node: yaml.MappingNode, path: str, depth: int) -> Map:
        entries: dict[str, Entry] = {}
        for key_node, value_node in node.value:
            key = self._key(key_node, path)
            if key is None:
                continue
            key_path = child_path(path, key)
            if key in entries:
                first = entries[key].line
                self.report.add(_line(key_node), key_path, f"duplicate key (first on line {first})")
                continue
            value = self.convert(value_node, key_path, depth + 1)
            entries[key] = Entry(key, _line(key_node), value)
        return Map(tuple(entries.values()), _line(node))

    def _key(self, node: yaml.Node, path: str) -> str | None:
        if node.tag == _MERGE:
            self.report.add(_line(node), path, "merge keys (<<) are not supported; repeat the keys")
            return None
        if not isinstance(node, yaml.ScalarNode) or node.tag not in _SCALARS:
            self.report.add(_line(node), path, "mapping keys must be plain strings")
            return None
        # the key as written: `yes:` is the key "yes", not True
        return self.restore(str(node.value))
