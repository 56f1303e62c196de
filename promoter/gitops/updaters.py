"""File updaters: apply one pipeline update to a file's text, changing only the values it names."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from promoter.core.pipeline import Update
from promoter.core.templates import PlaceholderError, render
from promoter.errors import UpdateError
from promoter.gitops.yamledit import (
    AliasNode,
    Edit,
    EditError,
    Source,
    Value,
    apply,
    block_lines,
    dash_column,
    detect_indents,
    find_value,
    format_scalar,
    insert_after,
    is_empty,
    newline_of,
    parse,
    position,
    replace_value,
    value_nodes,
)

__all__ = ["UPDATERS", "UpdateContext", "Updater", "apply_update", "update_kind"]

_INDEX = re.compile(r"[0-9]+")
_MARKER = re.compile(r'#[ \t]*(\{[ \t]*"\$promoter"[ \t]*:[ \t]*"(?:[^"\\\r\n]|\\.)*"[ \t]*\})')
_MARKER_PARTS = (2, 3)  # pipeline:artifact or pipeline:artifact:attribute
_KUSTOMIZE_KEYS = (("newName", "new_name"), ("newTag", "new_tag"), ("digest", "digest"))


@dataclass(frozen=True)
class UpdateContext:
    """What an updater needs besides the file text and the update.

    Attributes:
        pipeline: The pipeline's name; setter markers name it.
        file: The repository-relative path of the file, used in error messages.
        values: Artifact name -> attribute -> value. Images have tag, digest, version, uri,
            name and ref; models have version, uri, name and ref.
    """

    pipeline: str
    file: str
    values: Mapping[str, Mapping[str, str]]


# (file text, update, context) -> new file text; the text is "" when the file does not exist yet.
Updater = Callable[[str, Update, UpdateContext], str]


def _error(ctx: UpdateContext, text: str, index: int, message: str) -> UpdateError:
    line, column = position(text, index)
    return UpdateError(f"{ctx.file}:{line}:{column}: {message}")


def _edit(ctx: UpdateContext, text: str, edit: Callable[[str], str]) -> str:
    try:
        return edit(text)
    except EditError as exc:
        raise _error(ctx, text, exc.index, str(exc)) from None


def _render(value: str, ctx: UpdateContext) -> str:
    try:
        return render(value, ctx.values)
    except PlaceholderError as exc:
        raise UpdateError(f"{ctx.file}:1:1: {exc}; fix the update in the pipeline") from None
    except KeyError as exc:
        known = ", ".join(f"{a}.{k}" for a in sorted(ctx.values) for k in sorted(ctx.values[a]))
        raise UpdateError(
            f"{ctx.file}:1:1: {value!r} needs {exc.args[0]!r}, which this bundle has no value "
            f"for (known: {known or 'none'}); fix the placeholder in the pipeline"
        ) from None


# --- set ------------------------------------------------------------------------------------


def _where(path: Sequence[str], depth: int) -> str:
    return ".".join(path[:depth]) or "the document"


def _alias_error(src: Source, node: AliasNode, where: str) -> EditError:
    name = src.text[node.start_mark.index + 1 : node.end_mark.index]
    line = position(src.text, node.target.start_mark.index)[0]
    return EditError(
        f"{where} is the alias *{name} of a value anchored at line {line}; set the anchored "
        "value instead (every alias follows it)",
        node.start_mark.index,
    )


def _step(src: Source, node: Node, path: Sequence[str], depth: int) -> Node | None:
    """The child of `node` that `path[depth]` names; None when a mapping lacks that key."""
    segment, where = path[depth], _where(path, depth)
    if isinstance(node, AliasNode):
        raise _alias_error(src, node, where)
    if isinstance(node, MappingNode):
        return find_value(node, segment)
    if isinstance(node, SequenceNode):
        if not _INDEX.fullmatch(segment):
            raise EditError(
                f"{where} is a list, so {segment!r} must be an index; write e.g. {where}.0",
                node.start_mark.index,
            )
        if int(segment) >= len(node.value):
            raise EditError(
                f"{where} has no item {segment} (it has {len(node.value)}); set an existing "
                "index, list items are not created",
                node.start_mark.index,
            )
        return node.value[int(segment)]  # type: ignore[no-any-return]  # (PyYAML nodes are untyped)
    raise EditError(
        f"{where} is a scalar, so {'.'.join(path)} cannot be set inside it; fix the path or "
        f"make {where} a mapping",
        node.start_mark.index,
    )


def _no_new_indexes(keys: Sequence[str], index: int) -> None:
    for key in keys:
        if _INDEX.fullmatch(key):
            raise EditError(
                f"cannot create list item {key} of a missing list; add the list to the file first",
                index,
            )


def _insert(
    src: Source, mapping: MappingNode, path: Sequence[str], depth: int, value: Value
) -> Edit:
    """Add `path[depth:]` (nested block mappings as needed) to block `mapping`."""
    rest, start = path[depth:], mapping.start_mark.index
    if mapping.flow_style:
        raise EditError(
            f"{_where(path, depth)} is a flow-style mapping without key {rest[0]!r}; write it "
            "in block style or add the key by hand",
            start,
        )
    _no_new_indexes(rest[1:], start)
    indent = mapping.value[0][0].start_mark.column
    return insert_after(src, mapping, block_lines(rest, value, indent, detect_indents(src).mapping))


def _append_document(text: str, lines: Sequence[str]) -> str:
    newline = newline_of(text)
    prefix = text if not text or text.endswith("\n") else text + newline
    return prefix + newline.join(lines) + newline


def _final(src: Source, node: Node, path: Sequence[str], value: Value, flow: bool) -> list[Edit]:
    where = ".".join(path)
    if isinstance(node, AliasNode):
        raise _alias_error(src, node, where)
    if not isinstance(node, ScalarNode):
        kind = "mapping" if isinstance(node, MappingNode) else "list"
        raise EditError(
            f"{where} holds a {kind}, not a single value; set a path to one of its values",
            node.start_mark.index,
        )
    edit = replace_value(src, node, value, flow=flow)
    return [] if edit is None else [edit]


def set_path(text: str, path: Sequence[str], value: Value) -> str:
    """`text` with the value at `path` (keys and list indexes) in the first document set.

    Only the value's characters change; a missing last key is added to its block mapping and
    missing intermediate mappings are created. An empty text becomes a new block document.

    Raises:
        EditError: the path leads through a scalar, alias, missing list item or flow mapping.
    """
    src = parse(text)
    node = src.root
    if node is None or is_empty(src):
        _no_new_indexes(path, 0)
        return _append_document(text, block_lines(path, value, 0, 2))
    flow = False
    for depth in range(len(path)):
        child = _step(src, node, path, depth)
        if child is None:
            assert isinstance(node, MappingNode)  # noqa: S101 (only a mapping lacks a child)
            return apply(text, [_insert(src, node, path, depth, value)])
        flow = flow or getattr(node, "flow_style", None) is True
        node = child
    return apply(text, _final(src, node, path, value, flow))


def _set(text: str, update: Update, ctx: UpdateContext) -> str:
    """The `set` updater: each dotted path in order, in the first YAML document of the file."""
    for dotted, raw in (update.set_ or {}).items():
        path = dotted.split(".")
        if not all(path):
            raise UpdateError(f"{ctx.file}:1:1: path {dotted!r} has an empty key; fix the update")
        value = _render(raw, ctx) if isinstance(raw, str) else raw
        text = _edit(ctx, text, partial(set_path, path=path, value=value))
    return text


# --- kustomizeImage -------------------------------------------------------------------------


def _entry_lines(name: str, fields: Sequence[tuple[str, str]], dash: int, entry: int) -> list[str]:
    pad, gap = " " * dash, " " * max(entry, 2)
    lines = [
        f"{pad}{gap}{key}: {format_scalar(value, None)}" for key, value in (("name", name), *fields)
    ]
    lines[0] = f"{pad}-{lines[0][dash + 1 :]}"
    return lines


def _matching_entry(images: SequenceNode, name: str) -> int | None:
    for i, item in enumerate(images.value):
        found = find_value(item, "name") if isinstance(item, MappingNode) else None
        if isinstance(found, AliasNode):
            found = found.target
        if isinstance(found, ScalarNode) and found.value == name:
            return i
    return None


def _set_in_images(
    src: Source, images: SequenceNode, name: str, fields: Sequence[tuple[str, str]]
) -> str:
    text = src.text
    index = _matching_entry(images, name)
    if index is not None:
        for key, value in fields:
            text = set_path(text, ["images", str(index), key], value)
        return text
    if images.flow_style:
        raise EditError(
            f"images is a flow-style list without an entry named {name!r}; write it in block "
            "style or add the entry by hand",
            images.start_mark.index,
        )
    lines = _entry_lines(name, fields, dash_column(src, images), detect_indents(src).entry)
    return apply(text, [insert_after(src, images, lines)])


def set_image(text: str, name: str, fields: Sequence[tuple[str, str]]) -> str:
    """`text` (a kustomization) with `fields` (key, value) set on the `images:` entry `name`.

    A missing entry is appended to `images:`, and a missing `images:` to the document.

    Raises:
        EditError: the kustomization or its `images:` has a shape this cannot edit.
    """
    src = parse(text)
    root, indents = src.root, detect_indents(src)
    if root is None or is_empty(src):
        return _append_document(text, ["images:", *_entry_lines(name, fields, 0, indents.entry)])
    if not isinstance(root, MappingNode) or root.flow_style:
        raise EditError(
            "a kustomization must be a block mapping; fix the file", root.start_mark.index
        )
    images = find_value(root, "images")
    if isinstance(images, SequenceNode):
        return _set_in_images(src, images, name, fields)
    column = root.value[0][0].start_mark.column
    entry = _entry_lines(name, fields, column + indents.sequence, indents.entry)
    if images is None:
        return apply(text, [insert_after(src, root, [f"{' ' * column}images:", *entry])])
    if isinstance(images, ScalarNode) and src.scalar_start(images) is None and not images.value:
        return apply(text, [insert_after(src, images, entry)])
    raise EditError("images must be a list of entries; fix the file", images.start_mark.index)


def _kustomize_image(text: str, update: Update, ctx: UpdateContext) -> str:
    """The `kustomizeImage` updater."""
    image = update.kustomize_image
    if image is None:
        raise UpdateError(f"{ctx.file}:1:1: the update has no kustomizeImage; fix the pipeline")
    fields = [
        (key, _render(value, ctx))
        for key, attribute in _KUSTOMIZE_KEYS
        if (value := getattr(image, attribute)) is not None
    ]
    return _edit(ctx, text, partial(set_image, name=_render(image.name, ctx), fields=fields))


# --- setters --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Marker:
    index: int
    artifact: str
    attribute: str | None


def _markers(src: Source, pipeline: str) -> list[_Marker]:
    """Setter markers in comments (not in quoted strings) that name `pipeline`."""
    found: list[_Marker] = []
    for match in _MARKER.finditer(src.text):
        if any(start <= match.start() < end for end, start in src.token_starts.items()):
            continue  # inside a scalar, such as a quoted string
        try:
            ref = str(json.loads(match.group(1))["$promoter"])
        except ValueError:
            raise EditError(
                "setter marker is not valid JSON; fix the comment", match.start()
            ) from None
        parts = ref.split(":")
        if parts[0] != pipeline:
            continue
        if len(parts) not in _MARKER_PARTS or not all(parts):
            raise EditError(
                f'setter marker {ref!r} is malformed; write "{pipeline}:<artifact>" or '
                f'"{pipeline}:<artifact>:<attribute>"',
                match.start(),
            )
        found.append(
            _Marker(match.start(), parts[1], parts[2] if len(parts) > _MARKER_PARTS[0] else None)
        )
    return found


def _marker_value(marker: _Marker, values: Mapping[str, Mapping[str, str]]) -> str:
    attributes = values.get(marker.artifact)
    if attributes is None:
        known = ", ".join(sorted(values)) or "none"
        raise EditError(
            f"setter marker names unknown artifact {marker.artifact!r} (known: {known}); "
            "fix the marker",
            marker.index,
        )
    wanted = [marker.attribute] if marker.attribute else ["uri"]
    if not marker.attribute and "tag" in attributes:
        wanted = ["name", "tag"]  # an image without an attribute: name:tag, as Flux writes it
    missing = [a for a in wanted if a not in attributes]
    if missing:
        raise EditError(
            f"artifact {marker.artifact!r} has no {missing[0]}; use one of "
            f"{', '.join(sorted(attributes))} in the marker",
            marker.index,
        )
    return ":".join(attributes[a] for a in wanted)


def _marked_node(
    src: Source, candidates: Sequence[tuple[Node, bool]], marker: _Marker
) -> tuple[ScalarNode, bool]:
    line_start = src.text.rfind("\n", 0, marker.index) + 1
    on_line = [(n, f) for n, f in candidates if line_start <= n.end_mark.index <= marker.index]
    if not on_line:
        raise EditError(
            "setter marker follows no value on its line; put it after the value it sets",
            marker.index,
        )
    node, flow = max(on_line, key=lambda pair: int(pair[0].end_mark.index))
    if isinstance(node, AliasNode):
        raise _alias_error(src, node, "the marked value")
    if not isinstance(node, ScalarNode):
        raise EditError("setter marker marks a flow collection; mark a single value", marker.index)
    return node, flow


def _candidate(node: Node) -> bool:
    if isinstance(node, ScalarNode):
        return node.style not in {"|", ">"}
    return isinstance(node, AliasNode) or getattr(node, "flow_style", None) is True


def set_markers(text: str, pipeline: str, values: Mapping[str, Mapping[str, str]]) -> str:
    """`text` with every value marked `# {"$promoter": "<pipeline>:<artifact>[:<attribute>]"}` set.

    Raises:
        EditError: a marker is malformed, names an unknown artifact or marks no single value, or
            no marker names `pipeline`.
    """
    src = parse(text, every=True)
    markers = _markers(src, pipeline)
    if not markers:
        raise EditError(
            f'no setter marker for pipeline {pipeline!r}; mark values with # {{"$promoter": '
            f'"{pipeline}:<artifact>"}} or use set or kustomizeImage for this file',
            0,
        )
    candidates = [(n, f) for root in src.roots for n, f in value_nodes(root) if _candidate(n)]
    edits: dict[int, Edit] = {}
    for marker in markers:
        value = _marker_value(marker, values)
        node, flow = _marked_node(src, candidates, marker)
        edit = replace_value(src, node, value, flow=flow)
        if edit is not None:
            edits.setdefault(id(node), edit)
    return apply(text, list(edits.values()))


def _setters(text: str, update: Update, ctx: UpdateContext) -> str:
    """The `setters` updater: every document of the file."""
    if not update.setters:
        raise UpdateError(f"{ctx.file}:1:1: the update has no setters: true; fix the pipeline")
    return _edit(ctx, text, partial(set_markers, pipeline=ctx.pipeline, values=ctx.values))


# --- registry -------------------------------------------------------------------------------

# Every updater by kind; `apply_update` dispatches through it.
UPDATERS: dict[str, Updater] = {
    "set": _set,
    "kustomizeImage": _kustomize_image,
    "setters": _setters,
}


def update_kind(update: Update) -> str:
    """Which kind `update` is: `set`, `kustomizeImage` or `setters`.

    Raises:
        UpdateError: the update sets none of them (only possible when validation was bypassed).
    """
    if update.set_ is not None:
        return "set"
    if update.kustomize_image is not None:
        return "kustomizeImage"
    if update.setters:
        return "setters"
    raise UpdateError(f"{update.file}:1:1: the update sets none of set, kustomizeImage, setters")


def apply_update(text: str, update: Update, ctx: UpdateContext) -> str:
    """Apply `update` to `text` (the file's content; "" if it does not exist yet).

    Returns:
        The new text; the very same string when nothing changes.

    Raises:
        UpdateError: `FILE:LINE:COL: what is wrong; what to do`.
    """
    return UPDATERS[update_kind(update)](text, update, ctx)
