"""Commit messages promoter writes: subject, body and a final `Key: value` trailer block."""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["commit_text", "format_message", "parse_trailers"]

_TRAILER = re.compile(r"(?P<key>[A-Za-z0-9][A-Za-z0-9-]*):[ \t]*(?P<value>.*?)[ \t]*")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")


def format_message(subject: str, body: str, trailers: Mapping[str, str]) -> str:
    """Build a commit message: `subject`, blank line, `body` (if any), blank line, trailers.

    Args:
        subject: One non-empty line.
        body: Free text; omitted when blank. When `trailers` is empty, its last paragraph
            must not look like a trailer block, or `parse_trailers` would read it as one.
        trailers: `Key: value` lines; keys are letters, digits and dashes, values one line.

    Returns:
        The message, ending in a newline.

    Raises:
        ValueError: The subject or a trailer is malformed.
    """
    subject = subject.strip()
    if not subject or "\n" in subject:
        raise ValueError(f"a commit subject is one non-empty line, not {subject!r}")
    parts = [subject]
    if body.strip():
        parts.append(body.strip("\n").rstrip())
    if trailers:
        parts.append("\n".join(_trailer_line(key, value) for key, value in trailers.items()))
    return "\n\n".join(parts) + "\n"


def commit_text(message: str) -> str:
    """The text committed for `message` (git adds one final newline): trimmed at both ends.

    Leading newlines and trailing whitespace are removed, as `git commit-tree -m` was given.

    Raises:
        ValueError: The message is empty.
    """
    text = message.strip("\n").rstrip()
    if not text:
        raise ValueError("a commit message must not be empty")
    return text


def _trailer_line(key: str, value: str) -> str:
    line = f"{key}: {value}"
    match = _TRAILER.fullmatch(line)
    if match is None or match["key"] != key or match["value"] != value or "\n" in value:
        raise ValueError(
            f"trailer {key!r}: {value!r} is malformed; keys are letters, digits and dashes, "
            "values are one line without surrounding whitespace"
        )
    return line


def parse_trailers(message: str) -> dict[str, str]:
    """Read the final trailer block of a commit message.

    The block is the last paragraph (never the subject) when every line in it is `Key: value`.

    Args:
        message: A full commit message.

    Returns:
        The trailers in order (a repeated key keeps its last value); empty when there is none.
    """
    paragraphs = _PARAGRAPH_BREAK.split(message.strip())
    if len(paragraphs) < 2:  # noqa: PLR2004 (a subject and at least one more paragraph)
        return {}
    found: dict[str, str] = {}
    for line in paragraphs[-1].splitlines():
        match = _TRAILER.fullmatch(line)
        if match is None:
            return {}
        found[match["key"]] = match["value"]
    return found
