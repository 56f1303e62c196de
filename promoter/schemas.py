"""JSON Schemas for pipelines and events, generated from the models and checked for drift."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from promoter.core.events import (
    HealthEvent,
    ImageEvent,
    ModelEvent,
    OperatorEvent,
    PullClosedEvent,
    ReviewEvent,
)
from promoter.core.pipeline import Pipeline

__all__ = ["SCHEMAS", "check_schemas", "render_schemas", "write_schemas"]

_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMAS: dict[str, type[BaseModel]] = {
    "pipeline.schema.json": Pipeline,
    "event-image-built.schema.json": ImageEvent,
    "event-model-registered.schema.json": ModelEvent,
    "event-health-signal.schema.json": HealthEvent,
    "event-pr-reviewed.schema.json": ReviewEvent,
    "event-pr-closed.schema.json": PullClosedEvent,
    "event-operator-command.schema.json": OperatorEvent,
}


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    return {"$schema": _DIALECT, **model.model_json_schema(by_alias=True, mode="validation")}


def render_schemas() -> dict[str, str]:
    """File name -> schema text (stable: sorted keys, trailing newline)."""
    return {
        name: json.dumps(_schema(model), indent=2, sort_keys=True) + "\n"
        for name, model in SCHEMAS.items()
    }


def write_schemas(out: Path) -> list[Path]:
    """Write every schema into `out`; return the files written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_schemas().items():
        path = out / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def check_schemas(out: Path) -> list[str]:
    """Names of schema files in `out` that are missing or differ from the models."""
    drift = []
    for name, text in render_schemas().items():
        path = out / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            drift.append(name)
    return drift
