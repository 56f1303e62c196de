"""Hypothesis garbage on the events subjects: each bad message is dead-lettered, nothing is lost.

Hypothesis generates the messages (checking each against `parse_event`, so a wrong expectation
shrinks); they are then published in one go to a real nats-server and one in-process worker.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import structlog
from fuzzing import json_values
from harness import Harness
from hypothesis import given, settings
from hypothesis import strategies as st
from nats.js.api import AckPolicy, ConsumerConfig

from promoter.core.events import DIGEST_PATTERN, EVENT_TYPES, parse_event
from promoter.errors import EventError
from promoter.runtime.bus import CONSUMER, DLQ_STREAM, EVENTS_STREAM, Bus

pytestmark = pytest.mark.fuzz

FUZZED_IMAGE = "ghcr.io/acme/api"
FUZZED_MODEL = "fuzz-model"
CANARY_IMAGE = "ghcr.io/acme/canary"
SUFFIXES = [t.removeprefix("promoter.") for t in EVENT_TYPES]
MAX_PAYLOAD = 1_000_000  # below the server's 1 MiB, with room for headers
PUBLISH_CONCURRENCY = 64
PUBLISH_TIMEOUT = 60.0  # a loaded machine storing megabytes of garbage is slow, not wrong
CRASHES = {"batch failed; its messages will be redelivered", "effect crashed; will retry"}


@dataclass(frozen=True)
class Message:
    """One message to publish; `hint` (a regex) must match its dead-letter reason, None: valid."""

    subject: str
    payload: bytes
    headers: dict[str, str] | None
    hint: str | None


# --- valid events ------------------------------------------------------------------------------

texts = st.text(max_size=30)
names = st.text(min_size=1, max_size=30)
pipelines = st.sampled_from(["fuzzed", "nope"]) | names.filter(lambda n: n != "canary")
environments = st.sampled_from(["dev", "staging", "prod"]) | names
digests = st.binary(min_size=32, max_size=40).map(lambda b: "sha256:" + b.hex())
tags = st.none() | names | st.from_regex(r"\Av?[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}(-rc\.[0-9])?\Z")
labels = st.dictionaries(texts, texts, max_size=3)
finite = st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**53), 2**53)
pr_numbers = st.none() | st.integers(1, 2**31)

DATA: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "promoter.image.built": st.fixed_dictionaries(
        {"repository": st.sampled_from([FUZZED_IMAGE, "docker.io/x/y"]) | names, "digest": digests},
        optional={"tag": tags, "labels": labels},
    ),
    "promoter.model.registered": st.fixed_dictionaries(
        {"name": st.sampled_from([FUZZED_MODEL]) | names, "version": names, "uri": names},
        optional={"metrics": st.dictionaries(texts, finite, max_size=3), "labels": labels},
    ),
    "promoter.health.signal": st.fixed_dictionaries(
        {
            "pipeline": pipelines,
            "environment": environments,
            "status": st.sampled_from(["healthy", "progressing", "degraded", "unknown"]),
        },
        optional={"versions": st.none() | labels, "reason": st.none() | texts},
    ),
    "promoter.pr.reviewed": st.fixed_dictionaries(
        {
            "pipeline": pipelines,
            "environment": environments,
            "reviewer": names,
            "state": st.sampled_from(["approved", "changes_requested", "dismissed"]),
        },
        optional={
            "teams": st.lists(texts, max_size=3),
            "bundle": st.none() | texts,
            "pr": pr_numbers,
        },
    ),
    "promoter.pr.closed": st.fixed_dictionaries(
        {
            "pipeline": pipelines,
            "environment": environments,
            "bundle": names,
            "merged": st.booleans(),
        },
        optional={"pr": pr_numbers, "sha": st.none() | texts, "by": st.none() | texts},
    ),
    "promoter.operator.command": st.fixed_dictionaries(
        {
            "pipeline": pipelines,
            "environment": environments,
            "action": st.sampled_from(["hold", "resume", "promote", "rollback"]),
            "by": names,
        },
        optional={"reason": st.none() | texts, "bundle": st.none() | texts},
    ),
}
REQUIRED = {
    "promoter.image.built": ["repository", "digest"],
    "promoter.model.registered": ["name", "version", "uri"],
    "promoter.health.signal": ["pipeline", "environment", "status"],
    "promoter.pr.reviewed": ["pipeline", "environment", "reviewer", "state"],
    "promoter.pr.closed": ["pipeline", "environment", "bundle", "merged"],
    "promoter.operator.command": ["pipeline", "environment", "action", "by"],
}


@st.composite
def valid_events(draw: st.DrawFn) -> dict[str, Any]:
    """A valid CloudEvent of any promoter type, for the fuzzed pipeline or for nobody."""
    kind = draw(st.sampled_from(sorted(EVENT_TYPES)))
    event: dict[str, Any] = {"specversion": "1.0", "id": draw(names), "source": draw(names)}
    event["type"] = kind
    event["data"] = draw(DATA[kind])
    if draw(st.booleans()):
        event["time"] = draw(st.sampled_from(["2026-03-02T07:00:00Z", "2026-03-02T09:00:00+02:00"]))
    if draw(st.booleans()):
        event["datacontenttype"] = draw(st.sampled_from(["application/json", "text/json; x=1"]))
    if draw(st.booleans()):
        event[draw(st.from_regex(r"\A[a-z0-9]{1,20}\Z").filter(lambda k: k not in event))] = draw(
            json_values
        )
    return event


def encode(event: Any) -> bytes:
    return json.dumps(event).encode()


# --- bad messages: each says which part of its reason names what is wrong ---------------------

Bad = tuple[bytes, str]


def _not_json(raw: bytes) -> bool:
    try:
        json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        return True
    return False


GARBAGE = [b"", b"{", b"[" * 100_000, b"\xff" * 200_000, b"\xef\xbb\xbf{}", b"{}}", b"NaN]"]


@st.composite
def garbage(draw: st.DrawFn) -> Bad:
    """Bytes that are not JSON (UTF-8 or not): noise, truncated events, known troublemakers."""
    kind = draw(st.sampled_from(["noise", "truncated", "known"]))
    if kind == "noise":
        raw = draw(st.binary(max_size=200).filter(_not_json))
    elif kind == "truncated":
        raw = encode(draw(valid_events()))[: -draw(st.integers(1, 10))]
    else:
        raw = draw(st.sampled_from(GARBAGE))
    return raw, "not valid JSON|nested too deeply"


@st.composite
def not_utf8(draw: st.DrawFn) -> Bad:
    """A valid event in UTF-16/32, or with a byte UTF-8 forbids in a string."""
    raw = encode(draw(valid_events()))
    if draw(st.booleans()):
        wide = raw.decode().encode(draw(st.sampled_from(["utf-16", "utf-16-be", "utf-32"])))
        return wide, "not valid JSON"  # NUL bytes are UTF-8, but the text is no JSON
    bad = draw(st.sampled_from([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82"]))
    at = raw.index(b'"id": "') + len(b'"id": "')
    return raw[:at] + bad + raw[at:], "(?i)utf-8"


@st.composite
def lone_surrogates(draw: st.DrawFn) -> Bad:
    """A valid event with a lone surrogate escape (`\\ud800`) in a string or a key."""
    event = draw(valid_events())
    surrogate = draw(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF))
    where = draw(st.sampled_from(["id", "source", "key", "data"]))
    if where in ("id", "source"):
        event[where] += surrogate
    elif where == "key":
        event["x" + surrogate] = 1
    else:
        event["data"]["labels"] = {surrogate: "x"}
    return encode(event), "surrogate"


@st.composite
def non_objects(draw: st.DrawFn) -> Bad:
    value = draw(json_values.filter(lambda v: not isinstance(v, dict)))
    return encode(value), "must be a JSON object"


@st.composite
def unknown_types(draw: st.DrawFn) -> Bad:
    event = draw(valid_events())
    kind = draw(st.one_of(texts.filter(lambda t: t not in EVENT_TYPES), json_values, st.just(None)))
    if kind is None:
        del event["type"]
    else:
        event["type"] = kind
    return encode(event), "unsupported event type"


def _field(name: str) -> str:
    """A reason fragment: `name` as the location of a schema error."""
    return rf"(: |; ){re.escape(name)}: "


wrong_types = st.one_of(
    st.lists(json_values, max_size=2), st.dictionaries(texts, json_values, max_size=2)
)
"""Values no string, boolean or number field accepts."""


@st.composite
def bad_envelopes(draw: st.DrawFn) -> Bad:
    """A required attribute missing, or any attribute of the wrong type or value."""
    event = draw(valid_events())
    name = draw(
        st.sampled_from(["specversion", "id", "source", "time", "subject", "datacontenttype"])
    )
    how = draw(st.sampled_from(["missing", "wrong-type", "wrong-value"]))
    if how == "missing" and name in ("specversion", "id", "source"):
        del event[name]
    elif how == "wrong-value" and name == "specversion":
        event[name] = draw(st.sampled_from(["1", "1.0 ", "0.3", "v1.0", ""]) | st.just(1.0))
    elif how == "wrong-value" and name in ("id", "source"):
        event[name] = ""
    elif how == "wrong-value" and name == "time":
        event[name] = draw(
            st.sampled_from(["2026-03-02T07:00:00", "yesterday", "2026-13-01T00:00:00Z"])
        )
    elif how == "wrong-value" and name == "datacontenttype":
        event[name] = draw(st.sampled_from(["text/plain", "application/xml", ""]))
        return encode(event), "datacontenttype"
    else:
        event[name] = draw(wrong_types)
    return encode(event), _field(name)


@st.composite
def bad_data(draw: st.DrawFn) -> Bad:
    """A valid envelope whose data is not an object, lacks a field or has one wrong."""
    event = draw(valid_events())
    kind = event["type"]
    how = draw(st.sampled_from(["not-object", "missing", "wrong-type", "empty", "wrong-value"]))
    if how == "not-object":
        event["data"] = draw(json_values.filter(lambda v: not isinstance(v, dict)))
        return encode(event), _field("data")
    name = draw(st.sampled_from(REQUIRED[kind]))
    if how == "missing":
        del event["data"][name]
    elif how == "empty" and name != "merged":
        event["data"][name] = ""
    elif how == "wrong-value" and name in ("status", "state", "action", "digest"):
        event["data"][name] = draw(texts.filter(lambda t: not re.match(DIGEST_PATTERN, t)))
    else:
        event["data"][name] = draw(wrong_types | st.none())
    return encode(event), _field(f"data.{name}")


HUGE = ["\x01", "é", "\U0001f600", "x", "\\", '"']


@st.composite
def huge(draw: st.DrawFn) -> Bad:
    """A bad message carrying up to ~1 MB in an extension attribute."""
    raw, hint = draw(bad_envelopes() | bad_data() | unknown_types())
    event = json.loads(raw)
    char = draw(st.sampled_from(HUGE))
    most = (MAX_PAYLOAD - len(raw) - 100) // (len(json.dumps(char)) - 2)
    event["junk"] = char * draw(st.sampled_from([most, most // 2, most // 10, 1000]))
    return encode(event), hint


BAD: list[Callable[[], st.SearchStrategy[Bad]]] = [
    garbage, not_utf8, lone_surrogates, non_objects, unknown_types, bad_envelopes, bad_data,
]  # fmt: skip


# --- messages ----------------------------------------------------------------------------------

tokens = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=".*>"),
    min_size=1,
    max_size=12,
)
subjects = st.one_of(
    st.sampled_from(SUFFIXES), st.lists(tokens, min_size=1, max_size=3).map(".".join)
).map(lambda suffix: "promoter.events." + suffix)
header_names = st.from_regex(r"\A(X-[A-Za-z0-9-]{1,16}|Content-Type|ce-type|ce-id)\Z")
header_values = st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=40
)
headers = st.none() | st.dictionaries(header_names, header_values, max_size=4)


@st.composite
def messages(draw: st.DrawFn) -> Message:
    """A bad message (most of the time), a huge bad one (rarely) or a valid event."""
    dice = draw(st.integers(0, 99))
    if dice < 10:
        payload, hint = encode(draw(valid_events())), None
    elif dice < 12:
        payload, hint = draw(huge())
    else:
        payload, hint = draw(draw(st.sampled_from(BAD))())
    return Message(draw(subjects), payload, draw(headers), hint)


@st.composite
def valid_messages(draw: st.DrawFn) -> Message:
    """A valid event on an events subject."""
    return Message(draw(subjects), encode(draw(valid_events())), draw(headers), None)


def refusal(payload: bytes) -> str | None:
    """Why `parse_event` refuses `payload`, or None."""
    try:
        parse_event(payload)
    except EventError as exc:
        return str(exc)
    return None


def check_expectation(message: Message) -> None:
    """`parse_event` agrees: a valid event parses, a bad one fails with a reason like its hint."""
    reason = refusal(message.payload)
    if message.hint is None:
        assert reason is None, f"a valid event was refused: {reason}"
    else:
        assert reason is not None, f"a bad message parsed (expected {message.hint!r})"
        assert re.search(message.hint, reason), f"{message.hint!r} not in {reason}"


def collected(strategy: st.SearchStrategy[Message], examples: int | None = None) -> list[Message]:
    """Hypothesis's examples of `strategy` (as many as the profile says, or `examples`)."""
    found: list[Message] = []

    @given(message=strategy)
    def collect(message: Message) -> None:
        check_expectation(message)
        found.append(message)

    if examples is not None:
        collect = settings(max_examples=examples)(collect)
    collect()
    return found


def generate() -> list[Message]:
    """The profile's messages (150; 10,000 with --long) and a tenth more valid events, shuffled."""
    mixed = collected(messages())
    mixed += collected(valid_messages(), examples=max(len(mixed) // 10, 10))
    random.Random(len(mixed)).shuffle(mixed)
    return mixed


# --- the run -----------------------------------------------------------------------------------


async def publish_all(bus: Bus, batch: list[Message]) -> dict[int, Message]:
    """Publish every message; the stored ones by stream sequence."""
    stored: dict[int, Message] = {}
    limit = asyncio.Semaphore(PUBLISH_CONCURRENCY)

    async def one(message: Message) -> None:
        async with limit:
            ack = await bus.js.publish(
                message.subject,
                message.payload,
                headers=message.headers,
                stream=EVENTS_STREAM,
                timeout=PUBLISH_TIMEOUT,
            )
        assert not ack.duplicate
        stored[ack.seq] = message

    await asyncio.gather(*(one(m) for m in batch))
    return stored


async def settled(bus: Bus, last: int, dead: int) -> bool:
    """Every message up to `last` is acked or terminated, and `dead` records are in the DLQ."""
    info = await bus.js.consumer_info(EVENTS_STREAM, CONSUMER)
    letters = (await bus.js.stream_info(DLQ_STREAM)).state.messages
    acked = info.ack_floor is not None and info.ack_floor.stream_seq == last
    return acked and not info.num_pending and not info.num_ack_pending and letters >= dead


async def dead_letters(bus: Bus) -> dict[int, dict[str, Any]]:
    """Every DLQ record by the stream sequence of its event (each event at most once)."""
    total = (await bus.js.stream_info(DLQ_STREAM)).state.messages
    reader = ConsumerConfig(ack_policy=AckPolicy.NONE)  # read once, however slowly
    sub = await bus.js.pull_subscribe("promoter.dlq.>", stream=DLQ_STREAM, config=reader)
    found: dict[int, dict[str, Any]] = {}
    while len(found) < total:
        for msg in await sub.fetch(100, timeout=30):  # records of ~1 MB come slowly
            record = json.loads(msg.data)
            assert record["stream_seq"] not in found, f"dead-lettered twice: {record}"
            found[record["stream_seq"]] = record
    await sub.unsubscribe()
    return found


def check_letter(seq: int, message: Message, letter: dict[str, Any] | None) -> None:
    """A bad message: dead-lettered at its first delivery, with a reason naming the fault."""
    assert letter is not None, f"bad message {seq} was not dead-lettered: {message}"
    assert message.hint is not None
    assert re.search(message.hint, letter["reason"]), f"reason for {seq}: {letter['reason']!r}"
    assert (letter["subject"], letter["deliveries"]) == (message.subject, 1)
    assert message.payload.decode("utf-8", "replace").startswith(letter["data"])
    assert ("truncated" in letter) == (
        len(letter["data"]) < len(message.payload.decode("utf-8", "replace"))
    )


async def run_worker_over(world: Harness, batch: list[Message]) -> tuple[int, int]:
    """Publish `batch` to a running worker; check every message's fate; (dead, processed)."""
    world.write_pipeline("fuzzed", image=FUZZED_IMAGE, model=FUZZED_MODEL)
    world.write_pipeline("canary", image=CANARY_IMAGE, prod_approval=False)
    await world.start_worker()
    stored = await publish_all(world.bus, batch)
    bad = {seq for seq, m in stored.items() if m.hint is not None}

    async def done() -> bool:
        return await settled(world.bus, max(stored), len(bad))

    await world.until(done, f"{len(stored)} messages are settled", within=60 + len(stored) / 50)
    letters = await dead_letters(world.bus)
    valid_but_dead = sorted(set(letters) - bad)
    assert not valid_but_dead, [letters[seq] for seq in valid_but_dead[:3]]
    for seq in sorted(bad):
        check_letter(seq, stored[seq], letters.get(seq))
    return len(letters), len(stored) - len(letters)


async def test_garbage_is_dead_lettered_with_reasons_and_the_worker_still_promotes(
    tmp_path: Path,
) -> None:
    batch = generate()
    world = await Harness(tmp_path).start(sync_always=False)
    try:
        with structlog.testing.capture_logs() as logs:
            dead, processed = await run_worker_over(world, batch)
            assert dead + processed == len(batch)
            [(_, task)] = world.workers
            assert not task.done(), "the worker task died"
            await world.image("1.0.0", 1, CANARY_IMAGE)
            await world.live("canary", "dev", "1.0.0")
        crashes = [e for e in logs if e["event"] in CRASHES]
        assert crashes == []
        assert ("canary", "dev") in [(p.pipeline, p.environment) for p in await world.prs()]
        print(f"{len(batch)} messages: {dead} dead-lettered, {processed} processed")
    finally:
        await world.close()
