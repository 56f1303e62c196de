"""Byte-preserving YAML edits: parse with exact spans, format scalars, splice values and lines."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import yaml
from yaml.error import Mark
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.reader import ReaderError
from yaml.resolver import Resolver
from yaml.tokens import ScalarToken

# The same YAML 1.2 core schema the pipeline loader uses, so both agree on what a plain scalar is.
from promoter.core.yamlsource import CoreLoader

__all__ = [
    "AliasNode",
    "Edit",
    "EditError",
    "Indents",
    "Source",
    "Value",
    "apply",
    "block_lines",
    "dash_column",
    "detect_indents",
    "double_quoted",
    "find_value",
    "format_scalar",
    "insert_after",
    "is_empty",
    "newline_of",
    "parse",
    "plain_ok",
    "position",
    "replace_value",
    "scalar_equals",
    "value_nodes",
]

Value = str | int | float | bool

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_BREAKS = frozenset("\n\r\x85\u2028\u2029")
_PRINTABLE = re.compile("[\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ESCAPES = dict(zip('\\"\0\a\b\t\n\v\f\r\x1b\x85\u2028\u2029', '\\"0abtnvfreNLP', strict=True))
_LATIN1_END, _BMP_END = 0x100, 0x10000  # where the \x and \u escapes stop
_HEADER_COMMENT = re.compile(r"[ \t]+#.*$")
_LINE = re.compile(r"[^\n]*\n|[^\n]+$")


class EditError(ValueError):
    """An edit cannot be made; `index` is the character offset of the offending node."""

    def __init__(self, message: str, index: int) -> None:
        super().__init__(message)
        self.index = index


class AliasNode(Node):
    """Where an alias (`*name`) occurs; `target` is the anchored node it stands for."""

    id = "alias"

    def __init__(self, target: Node, start_mark: Mark, end_mark: Mark) -> None:
        super().__init__(target.tag, target, start_mark, end_mark)
        self.target = target


@dataclass(frozen=True)
class Edit:
    """Replace `text[start:end]` with `new`."""

    start: int
    end: int
    new: str


@dataclass(frozen=True)
class Source:
    """Parsed text: document roots and where each scalar token (not its properties) starts."""

    text: str
    roots: list[Node]
    token_starts: dict[int, int]

    @property
    def root(self) -> Node | None:
        """The first document's root node, or None when the text holds no document."""
        return self.roots[0] if self.roots else None

    def scalar_start(self, node: Node) -> int | None:
        """Where the scalar token of `node` starts (after any anchor or tag); None if empty."""
        start = self.token_starts.get(node.end_mark.index)
        return start if start is not None and start >= node.start_mark.index else None


@dataclass(frozen=True)
class Indents:
    """Indentation habits of a file: nested mapping step, `key:` to `-`, `-` to entry keys."""

    mapping: int = 2
    sequence: int = 0
    entry: int = 2


class _Loader(CoreLoader):
    """The pipeline loader's YAML 1.2 loader, also recording scalar starts and alias occurrences."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.token_starts: dict[int, int] = {}

    def _note(self, token: ScalarToken) -> ScalarToken:
        self.token_starts[token.end_mark.index] = token.start_mark.index
        return token

    def scan_plain(self) -> ScalarToken:
        return self._note(super().scan_plain())

    def scan_flow_scalar(self, style: str) -> ScalarToken:
        return self._note(super().scan_flow_scalar(style))

    def scan_block_scalar(self, style: str) -> ScalarToken:
        return self._note(super().scan_block_scalar(style))

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        if self.check_event(AliasEvent):
            event = self.current_event  # the alias event check_event just peeked at
            target = super().compose_node(parent, index)
            if target is not None:
                return AliasNode(target, event.start_mark, event.end_mark)
        return super().compose_node(parent, index)


def parse(text: str, *, every: bool = False) -> Source:
    """Compose the first document of `text` (every document with `every`).

    Raises:
        EditError: the text is not valid YAML.
    """
    try:
        loader = _Loader(text)
    except yaml.YAMLError as exc:  # a character YAML does not allow
        raise _invalid(exc) from None
    roots: list[Node] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                roots.append(node)
            if not every:
                break
    except yaml.YAMLError as exc:
        raise _invalid(exc) from None
    finally:
        loader.dispose()
    return Source(text, roots, loader.token_starts)


def _invalid(exc: yaml.YAMLError) -> EditError:
    """The EditError for a YAML error, at its position, on one line."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        what = exc.problem or exc.context or "invalid YAML"
        return EditError(f"invalid YAML: {what}; fix the file", mark.index if mark else 0)
    if isinstance(exc, ReaderError):
        what = f"unacceptable character #x{int(exc.character):04x}"
        return EditError(f"invalid YAML: {what}; fix the file", int(exc.position))
    return EditError(f"invalid YAML: {' '.join(str(exc).split())}; fix the file", 0)


def position(text: str, index: int) -> tuple[int, int]:
    """The 1-based line and column of `index` in `text` (a leading BOM takes no column)."""
    line_start = text.rfind("\n", 0, index) + 1
    column = index - line_start + 1
    if line_start == 0 and text.startswith("\ufeff") and index > 0:
        column -= 1
    return text.count("\n", 0, index) + 1, column


def newline_of(text: str) -> str:
    """The line break style of `text`: CRLF if it uses any, else LF."""
    return "\r\n" if "\r\n" in text else "\n"


def apply(text: str, edits: Sequence[Edit]) -> str:
    """`text` with non-overlapping `edits` spliced in; the same object when there are none."""
    for edit in sorted(edits, key=lambda e: e.start, reverse=True):
        text = text[: edit.start] + edit.new + text[edit.end :]
    return text


def find_value(mapping: MappingNode, key: str) -> Node | None:
    """The value node under scalar `key` in `mapping`, or None."""
    for key_node, value_node in mapping.value:
        if isinstance(key_node, ScalarNode) and key_node.value == key:
            return value_node  # type: ignore[no-any-return]  # (PyYAML nodes are untyped)
    return None


def value_nodes(node: Node, flow: bool = False) -> Iterator[tuple[Node, bool]]:
    """`node` and every value below it (not keys, not alias targets), each with its flow flag."""
    yield node, flow
    if isinstance(node, MappingNode | SequenceNode):
        inner = flow or node.flow_style is True
        items = [v for _, v in node.value] if isinstance(node, MappingNode) else node.value
        for item in items:
            yield from value_nodes(item, inner)


def is_empty(src: Source) -> bool:
    """Whether the first document is absent or empty (nothing but comments and markers)."""
    root = src.root
    if root is None:
        return True
    if not isinstance(root, ScalarNode) or root.value or root.style is not None:
        return False
    rest = src.text[root.end_mark.index :]
    return all(
        not line.strip() or line.lstrip().startswith(("#", "---", "..."))
        for line in rest.split("\n")
    )


def dash_column(src: Source, sequence: SequenceNode) -> int:
    """The 0-based column of the `-` of block `sequence`'s items (after any anchor or tag)."""
    if not sequence.value:
        return int(sequence.start_mark.column)
    dash = src.text.rfind("-", 0, sequence.value[0].start_mark.index)
    return position(src.text, dash)[1] - 1


def detect_indents(src: Source) -> Indents:
    """How the file indents nested mappings, sequences under keys, and sequence entries."""
    found: dict[str, int] = {}
    for node, flow in value_nodes(src.root) if src.root is not None else ():
        if flow or not isinstance(node, MappingNode | SequenceNode) or node.flow_style:
            continue
        if isinstance(node, SequenceNode):
            for item in node.value:
                if isinstance(item, MappingNode) and not item.flow_style and item.value:
                    offset = item.value[0][0].start_mark.column - dash_column(src, node)
                    found.setdefault("entry", offset)
            continue
        for key, value in node.value:
            if isinstance(value, MappingNode) and not value.flow_style and value.value:
                offset = value.value[0][0].start_mark.column - key.start_mark.column
                if offset > 0:
                    found.setdefault("mapping", offset)
            elif isinstance(value, SequenceNode) and not value.flow_style and value.value:
                found.setdefault("sequence", dash_column(src, value) - key.start_mark.column)
    return Indents(**found)


def _printable(char: str) -> bool:
    return char != "\ufeff" and _PRINTABLE.fullmatch(char) is not None


def _only_scalar(node: Node | None) -> Node | None:
    if isinstance(node, MappingNode | SequenceNode) and len(node.value) == 1:
        item: Node = node.value[0][1] if isinstance(node, MappingNode) else node.value[0]
        return item
    return None


def _round_trips(document: str, value: str) -> bool:
    try:
        node = _only_scalar(parse(document).root)
    except EditError:
        return False
    return (
        isinstance(node, ScalarNode)
        and node.style is None
        and node.tag == _STR
        and node.value == value
    )


def plain_ok(value: str, *, flow: bool) -> bool:
    """Whether `value` written plain reads back as this string (YAML 1.2 core and YAML 1.1)."""
    if not value or not all(_printable(c) and c not in _BREAKS for c in value):
        return False
    resolvers = Resolver.yaml_implicit_resolvers
    if any(r.match(value) for _, r in [*resolvers.get(value[0], []), *resolvers.get(None, [])]):
        return False  # e.g. `on`, `1_000`, `2024-01-01`: YAML 1.1 readers would not see a string
    if not _round_trips(f"k: {value}\n", value):
        return False
    return not flow or (
        _round_trips(f"[{value}]\n", value) and _round_trips(f"{{k: {value}}}", value)
    )


def _escaped(char: str) -> str:
    code = ord(char)
    if char in _ESCAPES:
        return "\\" + _ESCAPES[char]
    if _printable(char):
        return char
    if code < _LATIN1_END:
        return f"\\x{code:02X}"
    return f"\\u{code:04X}" if code < _BMP_END else f"\\U{code:08X}"


def double_quoted(value: str) -> str:
    """`value` as a double-quoted YAML scalar, escaping what must be escaped."""
    return '"' + "".join(map(_escaped, value)) + '"'


def _format_float(value: float) -> str:
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return "-.inf" if value < 0 else ".inf"
    mantissa, e, exponent = repr(value).partition("e")
    return f"{mantissa}{'' if '.' in mantissa else '.0'}{e}{exponent}"  # YAML 1.1 needs the dot


def format_scalar(value: Value, style: str | None, *, flow: bool = False) -> str:
    """`value` as YAML, keeping the quoting `style` of the scalar it replaces where possible.

    Numbers and booleans are plain. A string stays plain (style None) only if it reads back as
    the same string, stays single-quoted if it can, and is double-quoted otherwise.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _format_float(value)
    if style == "'" and all(_printable(c) and c not in _BREAKS for c in value):
        return "'" + value.replace("'", "''") + "'"
    if style is None and plain_ok(value, flow=flow):
        return value
    return double_quoted(value)


def _number(raw: str, *, integer: bool) -> float:
    lowered = raw.lower()
    if integer:
        return int(raw, 0) if lowered.startswith(("0o", "0x")) else int(raw)
    if lowered.endswith(".inf"):
        return -math.inf if lowered.startswith("-") else math.inf
    return math.nan if lowered == ".nan" else float(raw)


def scalar_equals(node: ScalarNode, value: Value) -> bool:
    """Whether `node` already holds `value`, with the same type (YAML 1.2 core schema)."""
    tag, raw = node.tag, str(node.value)
    if isinstance(value, bool):
        return tag == _BOOL and raw.lower() == str(value).lower()
    if isinstance(value, int | float):
        wanted = _INT if isinstance(value, int) else _FLOAT
        return tag == wanted and _number(raw, integer=tag == _INT) == value
    return tag not in {_INT, _FLOAT, _BOOL, "tag:yaml.org,2002:null"} and raw == value


def _block_body(text: str, start: int, end: int) -> tuple[int, int, str]:
    """For a block scalar token `text[start:end]`: header end, content end, last line break."""
    header_end = text.find("\n", start)
    if header_end < 0:
        return len(text), len(text), ""
    body_start = header_end + 1
    if text[header_end - 1] == "\r":
        header_end -= 1
    lines = _LINE.findall(text[body_start:end])
    keep = "+" in text[start:header_end].split("#", maxsplit=1)[0]  # trailing blanks are content
    while not keep and lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        return header_end, header_end, ""
    last = lines[-1]
    return header_end, body_start + sum(map(len, lines)), last[len(last.rstrip("\r\n")) :]


def _content_end(src: Source, node: Node) -> int:
    """Where the last character of `node`'s own content is (block collections: their last item)."""
    if isinstance(node, MappingNode | SequenceNode) and not node.flow_style and node.value:
        last = node.value[-1]
        return _content_end(src, last[1] if isinstance(node, MappingNode) else last)
    start = src.scalar_start(node)
    if isinstance(node, ScalarNode) and node.style in {"|", ">"} and start is not None:
        return _block_body(src.text, start, node.end_mark.index)[1]
    return int(node.end_mark.index)


def replace_value(src: Source, node: ScalarNode, value: Value, *, flow: bool) -> Edit | None:
    """The edit that makes scalar `node` hold `value`, or None if it already does.

    Anchors, tags, comments and the quoting style are kept; a block scalar becomes a
    double-quoted scalar on its header's line, keeping a header comment.
    """
    if scalar_equals(node, value):
        return None
    end = node.end_mark.index
    start = src.scalar_start(node)
    if start is None:  # an empty value, perhaps after an anchor or tag
        if end == node.start_mark.index and not src.text[:end].endswith((":", "-")):
            raise EditError("the key has no ': ' for a value to follow; write `key: value`", end)
        return Edit(end, end, " " + format_scalar(value, None, flow=flow))
    if node.style not in {"|", ">"}:
        return Edit(start, end, format_scalar(value, node.style, flow=flow))
    header_end, content_end, last_break = _block_body(src.text, start, end)
    comment = _HEADER_COMMENT.search(src.text[start:header_end])
    new = format_scalar(value, '"', flow=flow) + (comment.group(0) if comment else "")
    return Edit(start, content_end, new + last_break)


def insert_after(src: Source, node: Node, lines: Sequence[str]) -> Edit:
    """Insert `lines` (already indented) as new lines after the line where `node` ends."""
    text, end = src.text, _content_end(src, node)
    newline = newline_of(text)
    block = newline.join(lines)
    if end > 0 and text[end - 1] == "\n":
        return Edit(end, end, block + newline)
    line_end = text.find("\n", end)
    if line_end < 0:
        return Edit(len(text), len(text), newline + block)
    return Edit(line_end + 1, line_end + 1, block + newline)


def block_lines(keys: Sequence[str], value: Value, indent: int, step: int) -> list[str]:
    """Nested block mappings for `keys` ending in `value`, the first key at `indent`."""
    lines = [
        f"{' ' * (indent + i * step)}{format_scalar(key, None)}:" for i, key in enumerate(keys)
    ]
    lines[-1] += " " + format_scalar(value, None)
    return lines
