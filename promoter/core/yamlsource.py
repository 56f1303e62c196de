"""YAML documents loaded with the position of every key and value (YAML 1.2 core schema)."""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import yaml
from yaml._yaml import CParser  # libyaml; PyYAML's wheels include it
from yaml.composer import Composer, ComposerError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader, ReaderError
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner

__all__ = [
    "MAX_DEPTH",
    "MAX_VALUES",
    "CoreLoader",
    "CoreResolver",
    "Document",
    "Mark",
    "Path",
    "load_documents",
]

Path = tuple[str | int, ...]

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"

MAX_DEPTH = 100
"""Deepest nesting of collections accepted, in the text and once aliases are followed."""
MAX_VALUES = 10_000
"""Most values in one document, counting an alias's values at every use (billion laughs)."""


@dataclass(frozen=True)
class Mark:
    """A 1-based line and column in a source file."""

    line: int
    column: int


class Lines:
    """1-based line and column of a character index, lines ending at LF only (as editors count).

    PyYAML also ends lines at NEL, U+2028 and U+2029 and counts them in its marks; positions are
    computed from the character index instead. A leading BOM takes no column.
    """

    def __init__(self, text: str) -> None:
        self.bom = text.startswith("\ufeff")
        self.breaks = [match.start() for match in re.finditer("\n", text)]
        self.known: dict[int, Mark] = {}  # an alias's nodes are marked at every use

    def mark(self, index: int) -> Mark:
        """The mark of the character at `index` (the end of the text is a valid index)."""
        found = self.known.get(index)
        if found is None:
            line = bisect.bisect_left(self.breaks, index)
            start = self.breaks[line - 1] + 1 if line else 0
            column = index - start + (0 if line == 0 and self.bom and index > 0 else 1)
            found = self.known[index] = Mark(line + 1, column)
        return found


@dataclass
class Document:
    """One YAML document: plain data plus where each path's key and value start."""

    data: Any
    start: Mark
    values: dict[Path, Mark] = field(default_factory=dict)
    keys: dict[Path, Mark] = field(default_factory=dict)
    styles: dict[Path, str | None] = field(default_factory=dict)
    starts: dict[Path, int] = field(default_factory=dict)
    text: str = ""
    problems: list[tuple[Mark, str]] = field(default_factory=list)

    @cached_property
    def lines(self) -> Lines:
        """Positions in `text`."""
        return Lines(self.text)

    def mark_at(self, index: int) -> Mark:
        """The mark of the character at `index` of `text`."""
        return self.lines.mark(index)

    def mark_of(self, path: Path, *, key: bool = False) -> Mark:
        """The mark of `path`, or of its nearest ancestor that exists in the document."""
        for end in range(len(path), -1, -1):
            prefix = path[:end]
            if key and prefix in self.keys:
                return self.keys[prefix]
            if prefix in self.values:
                return self.values[prefix]
        return self.start

    def mark_in_value(self, path: Path, offset: int) -> Mark:
        """The mark of the `offset`-th character of the scalar value at `path`.

        Quotes, escapes and folded line breaks in the source are accounted for; a block scalar
        gives its start.
        """
        style = self.styles.get(path, "|")
        if path not in self.starts or style in ("|", ">"):
            return self.mark_of(path)
        return self.mark_at(
            _advance(self.text, self.starts[path] + (1 if style else 0), offset, style)
        )


_ESCAPE_WIDTH = {"x": 4, "u": 6, "U": 10}


def _skip_blanks(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t":
        i += 1
    return i


def _advance(text: str, i: int, count: int, style: str | None) -> int:
    """The source index reached after `count` decoded characters of a flow scalar from `i`."""
    while count > 0 and i < len(text):
        char = text[i]
        if style == '"' and char == "\\":
            following = text[i + 1 : i + 2]
            if following == "\n":  # an escaped line break decodes to nothing
                i = _skip_blanks(text, i + 2)
                continue
            i += _ESCAPE_WIDTH.get(following, 2)
        elif style == "'" and text.startswith("''", i):
            i += 2
        elif char == "\n":  # a folded line break decodes to one space
            i = _skip_blanks(text, i + 1)
        else:
            i += 1
        count -= 1
    return i


class _CoreResolver(BaseResolver):
    """YAML 1.2 core schema: `no`, `on` and `9:30` stay strings (PyYAML defaults to YAML 1.1)."""


_CoreResolver.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_CoreResolver.add_implicit_resolver(
    _INT, re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789")
)
_CoreResolver.add_implicit_resolver(
    _FLOAT,
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+.0123456789"),
)
_CoreResolver.add_implicit_resolver(
    _NULL, re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)


CoreResolver = _CoreResolver


class _DepthLimited(Composer):
    """A composer that refuses collections nested deeper than MAX_DEPTH (not a RecursionError)."""

    depth = 0
    check_event: Callable[..., bool]  # from the parser this composer is mixed with
    peek_event: Callable[[], Any]

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        """Compose one node, counting how deep it is."""
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH and self.check_event():  # peeks at the node's first event
                mark = self.peek_event().start_mark
                raise ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels", mark)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


class CoreLoader(Reader, Scanner, Parser, _DepthLimited, _CoreResolver):
    """A composing loader (nodes with marks) that resolves scalars by the YAML 1.2 core schema.

    Collections nested deeper than MAX_DEPTH are a ComposerError, not a RecursionError.
    """

    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        _CoreResolver.__init__(self)


class _FastLoader(CParser, _CoreResolver):
    """libyaml parses and composes (resolving with CoreResolver): ~30x faster than CoreLoader.

    libyaml stops nesting at 1,000 levels; the builder refuses more than MAX_DEPTH. Used for
    documents that load cleanly: any problem is worded by the pure-Python CoreLoader.
    """

    def __init__(self, stream: str) -> None:
        CParser.__init__(self, stream)
        _CoreResolver.__init__(self)


class _LimitError(Exception):
    """A document exceeds MAX_DEPTH or MAX_VALUES once aliases are followed."""

    def __init__(self, mark: Mark, message: str) -> None:
        super().__init__(message)
        self.mark = mark
        self.message = message


def _integer(value: str) -> int | None:
    """The integer `value` spells; None past Python's digit limit for decimal conversion."""
    try:
        return int(value, 0) if value.startswith(("0o", "0x")) else int(value)
    except ValueError:
        return None


def _scalar(node: ScalarNode, doc: Document) -> Any:  # noqa: PLR0911 (one return per YAML type)
    value: str = node.value
    tag = node.tag
    if tag == _STR:
        return value
    if tag == _NULL:
        return None
    if tag == _BOOL:
        return value.lower() == "true"
    if tag == _INT:
        number = _integer(value)
        if number is None:
            mark = doc.mark_at(node.start_mark.index)
            doc.problems.append((mark, f"integer of {len(value)} digits is too large"))
        return number
    if tag == _FLOAT:
        lowered = value.lower()
        if lowered.endswith(".inf"):
            return -math.inf if lowered.startswith("-") else math.inf
        if lowered == ".nan":
            return math.nan
        return float(value)
    mark = doc.mark_at(node.start_mark.index)
    doc.problems.append((mark, f"unsupported YAML tag {tag!r}; write a plain value"))
    return value


class _Builder:
    """Turns composed nodes into plain data, recording marks and duplicate keys."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.active: set[int] = set()
        self.count = 0

    def mark(self, node: Node) -> Mark:
        return self.doc.mark_at(node.start_mark.index)

    def build(self, node: Node, path: Path) -> Any:
        self.count += 1
        if self.count > MAX_VALUES:
            raise _LimitError(self.doc.start, f"more than {MAX_VALUES} values once aliases expand")
        if len(path) > MAX_DEPTH:
            raise _LimitError(self.mark(node), f"nested deeper than {MAX_DEPTH} levels")
        self.doc.values[path] = self.mark(node)
        if isinstance(node, ScalarNode):
            self.doc.styles[path] = node.style or None  # libyaml says "" for plain
            self.doc.starts[path] = node.start_mark.index
            return _scalar(node, self.doc)
        if id(node) in self.active:
            self.doc.problems.append((self.mark(node), "recursive YAML alias"))
            return None
        self.active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
            if isinstance(node, MappingNode):
                return self._mapping(node, path)
        finally:
            self.active.discard(id(node))
        self.doc.problems.append((self.mark(node), f"unsupported YAML node {node.tag!r}"))
        return None

    def _mapping(self, node: MappingNode, path: Path) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                self.doc.problems.append(
                    (self.mark(key_node), "mapping keys must be plain strings")
                )
                continue
            key = str(key_node.value)
            if key in result:
                first = self.doc.keys[(*path, key)]
                self.doc.problems.append(
                    (self.mark(key_node), f"duplicate key {key!r} (first at line {first.line})")
                )
                continue
            self.doc.keys[(*path, key)] = self.mark(key_node)
            result[key] = self.build(value_node, (*path, key))
        return result


def _syntax(exc: yaml.YAMLError, lines: Lines) -> tuple[Mark, str]:
    """Where and what a YAML error is, on one line."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        what = exc.problem or exc.context or "invalid YAML"
        return (lines.mark(mark.index) if mark else Mark(1, 1)), f"YAML syntax: {what}"
    if isinstance(exc, ReaderError):
        where = lines.mark(int(exc.position))
        return where, f"YAML syntax: unacceptable character #x{int(exc.character):04x}; remove it"
    return Mark(1, 1), "YAML: " + " ".join(str(exc).split())


_PYTHON_ONLY = re.compile(r"^\ufeff|[\t!]")


def load_documents(text: str) -> tuple[list[Document], list[tuple[Mark, str]]]:
    """Parse every document in `text`; YAML syntax errors come back as (mark, message).

    A document past the nesting or size limits is left out with a problem saying so. libyaml
    parses first (~15x faster); on any syntax error the pure-Python parser parses again, so
    problems are worded and placed the same either way. Text where the two parsers differ
    (a BOM, tabs, tags: libyaml accepts more) goes to the pure-Python parser alone.
    """
    if not _PYTHON_ONLY.search(text):
        try:
            return _load(text, _FastLoader, strict=True)
        except (yaml.YAMLError, UnicodeError, _LimitError):
            pass
    return _load(text, CoreLoader, strict=False)


def _load(
    text: str, loader_class: type[CoreLoader | _FastLoader], *, strict: bool
) -> tuple[list[Document], list[tuple[Mark, str]]]:
    """`load_documents` with one loader; `strict`: raise a YAML error instead of reporting it."""
    lines = Lines(text)
    documents: list[Document] = []
    problems: list[tuple[Mark, str]] = []
    loader: CoreLoader | _FastLoader | None = None
    try:
        loader = loader_class(text)
        while loader.check_node():
            node = loader.get_node()
            if node is None or (isinstance(node, ScalarNode) and node.tag == _NULL):
                continue  # an empty document, e.g. a trailing `---`
            doc = Document(data=None, start=lines.mark(node.start_mark.index), text=text)
            doc.lines = lines
            try:
                doc.data = _Builder(doc).build(node, ())
            except _LimitError as exc:
                if strict:
                    raise
                problems.append((exc.mark, exc.message))
                continue
            documents.append(doc)
    except yaml.YAMLError as exc:
        if strict:
            raise
        problems.append(_syntax(exc, lines))
    finally:
        if loader is not None:
            loader.dispose()
    return documents, problems
