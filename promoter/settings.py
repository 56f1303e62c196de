"""The one settings object: every `PROMOTER_*` environment variable, read in one place."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from promoter.errors import ConfigurationError

__all__ = ["Settings", "SourceSettings", "load_settings", "read_secret"]


class SourceSettings(BaseModel):
    """One webhook source's settings: `PROMOTER_SOURCES__<NAME>__<FIELD>`."""

    model_config = ConfigDict(extra="forbid")

    secret: SecretStr | None = Field(
        None, description="Shared secret: HMAC key (github, mlflow) or Authorization token."
    )
    secret_file: Path | None = Field(None, description="File holding the secret (preferred).")
    registry: str | None = Field(
        None, description="Registry host for image names (docker-distribution, harbor, github)."
    )
    pipeline_label: str = Field("promoter_pipeline", description="alertmanager: pipeline label.")
    environment_label: str = Field("promoter_env", description="alertmanager: environment label.")
    max_age: float = Field(
        3600.0, gt=0, description="mlflow: seconds a signed delivery stays acceptable."
    )


class Settings(BaseSettings):
    """promoter's configuration; command-line flags override these."""

    model_config = SettingsConfigDict(
        env_prefix="PROMOTER_", env_nested_delimiter="__", extra="ignore"
    )

    state_dir: Path = Field(
        Path(".promoter"), description="Where local state and embedded NATS data live."
    )
    nats_url: str | None = Field(
        None,
        description="NATS server URL, or several separated by commas (a cluster); "
        "unset: embedded nats-server.",
    )
    ack_wait: float = Field(
        30.0, gt=0, description="Seconds before an unacked event is redelivered."
    )
    max_deliver: int = Field(10, ge=1, description="Deliveries before an event is dead-lettered.")
    lease_ttl: float = Field(
        30.0, gt=0, description="Seconds a dead worker's pipeline lease lasts."
    )
    dedup_window: float = Field(120.0, gt=0, description="Seconds same source+id events dedupe.")
    nats_replicas: int = Field(
        1, ge=1, le=5, description="Replicas of promoter's streams and KV buckets (3 on a cluster)."
    )
    http_host: str = Field(
        "127.0.0.1",
        description="Address `promoter run` serves probes, metrics and the dashboard on "
        "(0.0.0.0 in a container).",
    )
    http_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="Port of `promoter run`'s HTTP server (/healthz, /readyz, /metrics, the "
        "dashboard); unset: none.",
    )
    repo_check_interval: float = Field(
        60.0, gt=0, description="Seconds between checks that every pipeline's repository answers."
    )
    gateway_host: str = Field("127.0.0.1", description="Address `promoter gateway` listens on.")
    gateway_port: int = Field(8080, ge=0, le=65535, description="Port of `promoter gateway`.")
    gateway_max_body: int = Field(
        1024 * 1024, gt=0, description="Largest webhook body accepted, in bytes (else 413)."
    )
    gateway_replay_window: float = Field(
        3600.0,
        gt=0,
        description="Seconds the gateway remembers each delivery it published, so the same "
        "delivery sent again publishes nothing; at least mlflow's max_age.",
    )
    sources: dict[str, SourceSettings] = Field(
        default_factory=dict, description="Webhook sources by name (underscores for dashes)."
    )
    github_token: SecretStr | None = Field(
        None, description="GitHub token for API calls and git pushes (never logged)."
    )
    github_token_file: Path | None = Field(None, description="File holding the GitHub token.")
    github_app_id: int | None = Field(None, description="GitHub App id (instead of a token).")
    github_app_private_key_file: Path | None = Field(
        None, description="PEM private key of the GitHub App."
    )
    github_app_installation_id: int | None = Field(
        None, description="The App's installation; unset: looked up per repository."
    )
    github_writes_per_minute: float = Field(
        60.0,
        gt=0,
        description="Shared GitHub write budget per minute; with its burst of a sixth, up to "
        "68 stays under github.com's 80 (GitHub Enterprise Server has no such limit).",
    )
    github_writes_per_hour: float = Field(
        450.0,
        gt=0,
        description="Shared GitHub write budget per hour; up to 454 stays under github.com's 500.",
    )
    scm_poll_interval: float = Field(
        60.0, gt=0, description="Seconds between polls of open PRs (webhooks wake sooner)."
    )
    failpoints: str = Field("", description="Chaos testing only: NAME:COUNT crash points.")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Log level."
    )
    log_format: Literal["auto", "json", "console"] = Field(
        "auto", description="auto: console on a terminal, JSON otherwise."
    )

    @field_validator("sources", mode="before")
    @classmethod
    def _source_names(cls, value: object) -> object:
        """`DOCKER_DISTRIBUTION` in a variable name means the source `docker-distribution`."""
        if isinstance(value, dict):
            return {str(k).lower().replace("_", "-"): v for k, v in value.items()}
        return value


def read_secret(path: Path, what: str) -> str:
    """The secret in `path` (one trailing newline dropped); ConfigurationError if unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{what}: cannot read secret file {path}: {exc}") from None
    secret = text.removesuffix("\n").removesuffix("\r")
    if not secret:
        raise ConfigurationError(f"{what}: secret file {path} is empty")
    return secret


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
