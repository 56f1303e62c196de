"""`promoter simulate`, `promoter schema` and the shipped examples, through the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from promoter.cli import main
from promoter.core.events import parse_event
from promoter.core.yamlsource import load_documents
from promoter.errors import TimelineError
from promoter.schemas import check_schemas, render_schemas, write_schemas
from promoter.simulate import read_timeline

ROOT = Path(__file__).resolve().parent.parent
PIPELINES = ROOT / "pipelines"
DATA = Path(__file__).resolve().parent / "data"
TIMELINES = sorted((PIPELINES / "timelines").glob("*.jsonl"))


def simulate(
    capsys: pytest.CaptureFixture[str], timeline: Path, *extra: str
) -> list[dict[str, Any]]:
    assert (
        main(["simulate", "--pipelines", str(PIPELINES), "--timeline", str(timeline), *extra]) == 0
    )
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


@pytest.mark.parametrize("timeline", TIMELINES, ids=lambda p: p.stem)
def test_shipped_timelines_match_their_reviewed_output(
    capsys: pytest.CaptureFixture[str], timeline: Path
) -> None:
    expected = [
        json.loads(line)
        for line in (DATA / f"{timeline.stem}.expected.jsonl").read_text().splitlines()
    ]
    assert simulate(capsys, timeline) == expected


def test_checkout_story_behaves_as_the_pipeline_comments_say(
    capsys: pytest.CaptureFixture[str],
) -> None:
    lines = simulate(capsys, PIPELINES / "timelines" / "checkout.jsonl")
    keys = {"at", "pipeline", "environment", "action", "versions", "reason"}
    assert all(set(line) == keys for line in lines)
    prod = [(line["at"], line["action"]) for line in lines if line["environment"] == "prod-eu"]
    assert ("2026-03-02T08:40:00Z", "merge") in prod  # carol via @acme/sre; mallory ignored
    assert ("2026-03-03T08:00:00Z", "merge") in prod  # approved 16:30 local, merged at 09:00 local
    assert ("2026-03-03T08:10:00Z", "rollback") in prod
    assert ("2026-03-03T08:10:00Z", "hold") in prod
    staging = [(line["at"], line["action"]) for line in lines if line["environment"] == "staging"]
    assert ("2026-03-02T07:20:00Z", "merge") in staging  # soak restarted by the degraded signal
    assert not any(line["versions"].get("ranker") == "2" for line in lines)
    assert not any(line["versions"].get("api") == "2.0.0" for line in lines)
    blocks = [
        (line["environment"], line["versions"], line["reason"])
        for line in lines
        if line["action"] == "block"
    ]
    assert len(blocks) == len(set(map(str, blocks)))  # each block printed once


def test_until_stops_virtual_time(capsys: pytest.CaptureFixture[str]) -> None:
    lines = simulate(
        capsys, PIPELINES / "timelines" / "checkout.jsonl", "--until", "2026-03-02T07:30:00Z"
    )
    assert lines[-1]["at"] <= "2026-03-02T07:30:00Z"
    assert any(line["environment"] == "staging" and line["action"] == "merge" for line in lines)
    assert not any(
        line["environment"] == "prod-eu" and line["action"] == "open-pr" for line in lines
    )


def test_bad_timeline_line_is_reported_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    timeline = tmp_path / "t.jsonl"
    timeline.write_text(
        '{"at": "2026-01-01T00:00:00Z", "hold": {"pipeline": "checkout", "environment": "dev"}}\n'
        '{"at": "yesterday"}\n'
    )
    assert main(["simulate", "--pipelines", str(PIPELINES), "--timeline", str(timeline)]) == 1
    assert f"{timeline}:2: at:" in capsys.readouterr().err
    timeline.write_text(
        '{"at": "2026-01-01T00:00:00Z", "event": '
        '{"specversion": "1.0", "id": "1", "source": "s", "type": "x"}}\n'
    )
    with pytest.raises(TimelineError, match=r"t.jsonl:1: unsupported event type 'x'"):
        read_timeline(timeline)


def test_unrouted_lines_are_reported_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    timeline = tmp_path / "t.jsonl"
    timeline.write_text(
        '{"at": "2026-01-01T00:00:00Z", "hold": {"pipeline": "nope", "environment": "dev"}}\n'
    )
    assert main(["simulate", "--pipelines", str(PIPELINES), "--timeline", str(timeline)]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "t.jsonl:1: no pipeline or environment matches" in captured.err


def test_duplicate_event_ids_are_dropped_like_on_the_bus(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = (PIPELINES / "timelines" / "web.jsonl").read_text().splitlines()[0]
    timeline = tmp_path / "t.jsonl"
    timeline.write_text(first + "\n" + first + "\n")
    assert [line["action"] for line in simulate(capsys, timeline)] == ["open-pr", "merge", "block"]


def test_timeline_events_conform_to_the_event_schemas() -> None:
    schemas = {name: json.loads(text) for name, text in render_schemas().items()}
    by_type = {
        "promoter.image.built": schemas["event-image-built.schema.json"],
        "promoter.model.registered": schemas["event-model-registered.schema.json"],
        "promoter.health.signal": schemas["event-health-signal.schema.json"],
    }
    for timeline in TIMELINES:
        for raw in timeline.read_text().splitlines():
            line = json.loads(raw)
            if "event" in line:
                jsonschema.validate(line["event"], by_type[line["event"]["type"]])
                parse_event(line["event"])


def test_committed_schemas_have_no_drift(tmp_path: Path) -> None:
    assert check_schemas(ROOT / "schemas") == []
    assert sorted(check_schemas(tmp_path)) == sorted(render_schemas())
    write_schemas(tmp_path)
    (tmp_path / "pipeline.schema.json").write_text("{}")
    assert check_schemas(tmp_path) == ["pipeline.schema.json"]
    assert main(["schema", "--out", str(tmp_path), "--check"]) == 1
    assert main(["schema", "--out", str(tmp_path)]) == 0
    assert main(["schema", "--out", str(tmp_path), "--check"]) == 0


def test_pipeline_schema_accepts_every_example_and_rejects_a_typo() -> None:
    schema = json.loads(render_schemas()["pipeline.schema.json"])
    jsonschema.Draft202012Validator.check_schema(schema)
    for path in sorted(PIPELINES.glob("*.yaml")):
        assert path.read_text().startswith(
            "# yaml-language-server: $schema=../schemas/pipeline.schema.json"
        )
        documents, problems = load_documents(path.read_text())
        assert not problems
        for doc in documents:
            jsonschema.validate(doc.data, schema)
            doc.data["spec"]["environments"][0]["atuo"] = True
            with pytest.raises(jsonschema.ValidationError):
                jsonschema.validate(doc.data, schema)


def test_examples_validate_and_python_dash_m_works() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "promoter", "validate", str(PIPELINES)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok: 3 pipeline(s) valid" in result.stderr
    assert (
        subprocess.run(
            [sys.executable, "-m", "promoter", "--help"], capture_output=True, check=False
        ).returncode
        == 0
    )


def test_invalid_setting_is_a_clear_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PROMOTER_LOG_LEVEL", "loud")
    assert main(["validate", str(PIPELINES)]) == 2
    assert "PROMOTER_LOG_LEVEL" in capsys.readouterr().err
