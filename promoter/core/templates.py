"""`${artifact.attribute}` placeholders in update values: parsing, checking and rendering."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "IMAGE_ATTRIBUTES",
    "MODEL_ATTRIBUTES",
    "Placeholder",
    "PlaceholderError",
    "parse_placeholders",
    "render",
]

IMAGE_ATTRIBUTES = frozenset({"tag", "digest", "version", "uri", "name", "ref"})
MODEL_ATTRIBUTES = frozenset({"version", "uri", "name", "ref"})
_ALL_ATTRIBUTES = IMAGE_ATTRIBUTES | MODEL_ATTRIBUTES
_TOKEN = re.compile(r"\$\$|\$\{([^}]*)\}|\$\{")
_INNER = re.compile(r"^([a-z][a-z0-9_-]*)\.([a-z]+)$")


class PlaceholderError(ValueError):
    """A placeholder is malformed; `offset` is where it starts in the text."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


@dataclass(frozen=True)
class Placeholder:
    """One `${artifact.attribute}` reference and where it starts in its text."""

    artifact: str
    attribute: str
    offset: int


def _scan(text: str) -> list[tuple[re.Match[str], Placeholder | None]]:
    found: list[tuple[re.Match[str], Placeholder | None]] = []
    for match in _TOKEN.finditer(text):
        token = match.group(0)
        if token == "$$":  # noqa: S105 (a placeholder token, not a secret)
            found.append((match, None))
            continue
        if match.group(1) is None:
            raise PlaceholderError(
                "unterminated placeholder '${': close it with '}'", match.start()
            )
        inner = _INNER.fullmatch(match.group(1).strip())
        if inner is None:
            raise PlaceholderError(
                f"invalid placeholder {token!r}: write ${{artifact.attribute}} with attribute one "
                f"of {', '.join(sorted(_ALL_ATTRIBUTES))}",
                match.start(),
            )
        artifact, attribute = inner.groups()
        if attribute not in _ALL_ATTRIBUTES:
            raise PlaceholderError(
                f"unknown placeholder attribute {attribute!r} in {token!r}: use one of "
                f"{', '.join(sorted(_ALL_ATTRIBUTES))}",
                match.start(),
            )
        found.append((match, Placeholder(artifact, attribute, match.start())))
    return found


def parse_placeholders(text: str) -> list[Placeholder]:
    """Every placeholder in `text` (`$$` is a literal `$`); raise PlaceholderError if malformed."""
    return [p for _, p in _scan(text) if p is not None]


def render(text: str, values: Mapping[str, Mapping[str, str]]) -> str:
    """Replace placeholders with `values[artifact][attribute]`; a missing value raises KeyError."""
    out: list[str] = []
    last = 0
    for match, placeholder in _scan(text):
        out.append(text[last : match.start()])
        out.append(
            "$" if placeholder is None else values[placeholder.artifact][placeholder.attribute]
        )
        last = match.end()
    out.append(text[last:])
    return "".join(out)
