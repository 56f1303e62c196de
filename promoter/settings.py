"""The one settings object: every `PROMOTER_*` environment variable, read in one place."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from promoter.errors import ConfigurationError

__all__ = ["Settings", "load_settings"]


class Settings(BaseSettings):
    """promoter's configuration; command-line flags override these."""

    model_config = SettingsConfigDict(
        env_prefix="PROMOTER_", env_nested_delimiter="__", extra="ignore"
    )

    state_dir: Path = Field(
        Path(".promoter"), description="Where local state and embedded NATS data live."
    )
    nats_url: str | None = Field(None, description="NATS server URL; unset: embedded nats-server.")
    ack_wait: float = Field(
        30.0, gt=0, description="Seconds before an unacked event is redelivered."
    )
    max_deliver: int = Field(10, ge=1, description="Deliveries before an event is dead-lettered.")
    lease_ttl: float = Field(
        30.0, gt=0, description="Seconds a dead worker's pipeline lease lasts."
    )
    dedup_window: float = Field(120.0, gt=0, description="Seconds same source+id events dedupe.")
    failpoints: str = Field("", description="Chaos testing only: NAME:COUNT crash points.")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Log level."
    )
    log_format: Literal["auto", "json", "console"] = Field(
        "auto", description="auto: console on a terminal, JSON otherwise."
    )


def load_settings() -> Settings:
    """Read settings from the environment (the only place that does); ConfigurationError if bad."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"PROMOTER_{'__'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in exc.errors()
        )
        raise ConfigurationError(f"invalid settings: {problems}") from None
