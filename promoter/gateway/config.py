"""Source configurations from settings: secrets read from their files, names checked."""

from __future__ import annotations

from datetime import timedelta

from promoter.errors import ConfigurationError
from promoter.settings import Settings, SourceSettings, read_secret
from promoter.sources.base import SourceConfig
from promoter.sources.registry import SOURCES

__all__ = ["source_config", "source_configs"]


def source_config(
    name: str, settings: SourceSettings | None, *, secret: str | None = None
) -> SourceConfig:
    """The adapter configuration of source `name`; `secret` overrides the configured one."""
    settings = settings or SourceSettings()
    what = f"PROMOTER_SOURCES__{name.upper().replace('-', '_')}"
    if settings.secret is not None and settings.secret_file is not None:
        raise ConfigurationError(f"{what}: set SECRET or SECRET_FILE, not both")
    if secret is None and settings.secret is not None:
        secret = settings.secret.get_secret_value()
    elif secret is None and settings.secret_file is not None:
        secret = read_secret(settings.secret_file, f"{what}__SECRET_FILE")
    return SourceConfig(
        secret=secret or None,
        registry=settings.registry,
        pipeline_label=settings.pipeline_label,
        environment_label=settings.environment_label,
        max_age=timedelta(seconds=settings.max_age),
    )


def source_configs(settings: Settings) -> dict[str, SourceConfig]:
    """Every source's configuration; ConfigurationError names a setting for an unknown source."""
    unknown = sorted(set(settings.sources) - set(SOURCES))
    if unknown:
        raise ConfigurationError(
            f"PROMOTER_SOURCES: unknown source(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(SOURCES))} (underscores stand for dashes)"
        )
    configs = {name: source_config(name, settings.sources.get(name)) for name in SOURCES}
    _check_replay_window(configs["mlflow"], settings.gateway_replay_window)
    return configs


def _check_replay_window(mlflow: SourceConfig, window: float) -> None:
    """A signed MLflow delivery must be refused as too old before the gateway forgets it."""
    max_age = mlflow.max_age.total_seconds()
    if max_age > window:
        raise ConfigurationError(
            f"PROMOTER_SOURCES__MLFLOW__MAX_AGE ({max_age:g}s) is longer than "
            f"PROMOTER_GATEWAY_REPLAY_WINDOW ({window:g}s): a delivery replayed in between "
            "would be published again; lower MAX_AGE or raise the window"
        )
