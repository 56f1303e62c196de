"""Prometheus Alertmanager webhook (payload version 4): firing alerts degrade, resolved heal."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from promoter.core.events import HEALTH_SIGNAL
from promoter.sources.base import (
    Delivery,
    MalformedError,
    Normalized,
    SourceConfig,
    cloud_event,
    field_of,
    ignored,
    json_kind,
    prefixed,
    rfc3339,
    stable_id,
    text_of,
)
from promoter.sources.verify import verify_shared_secret

__all__ = ["SOURCE", "normalize"]

SOURCE = "/hooks/alertmanager"
VERSION = "4"
STATUSES = {"firing": "degraded", "resolved": "healthy"}
HINT = (
    "send Alertmanager's own webhook body (a webhook_config without a custom payload template) "
    f"to {SOURCE}"
)
_SHOWN = 40  # characters of an unexpected value quoted back in a rejection


def normalize(delivery: Delivery, config: SourceConfig, now: datetime) -> Normalized:
    """Turn one Alertmanager webhook message into a health signal per promoter alert.

    Args:
        delivery: The request as received.
        config: The source's secret and the label names that carry pipeline and environment.
        now: The current time; a resolved alert without an end time is dated `now`.

    Returns:
        One `promoter.health.signal` per alert labelled for promoter, and why the rest of the
        message was ignored.

    Raises:
        SignatureError: The shared secret is missing or wrong.
        MediaTypeError: The Content-Type is not application/json.
        MalformedError: The body is not an Alertmanager version 4 message.
    """
    verify_shared_secret(delivery, config.secret)
    delivery.require_media_type("application/json", missing_ok=True)
    try:
        return _message(delivery.json("Alertmanager webhook body"), config, now)
    except MalformedError as exc:
        raise MalformedError(f"{exc}; {HINT}") from None


def _message(body: object, config: SourceConfig, now: datetime) -> Normalized:
    if not isinstance(body, Mapping):
        raise MalformedError(
            f"Alertmanager webhook body must be a JSON object, got {json_kind(body)}"
        )
    _check_version(body.get("version"))
    alerts = field_of(body, "alerts", list)
    group = body.get("groupKey") if isinstance(body.get("groupKey"), str) else None
    result = Normalized()
    if not alerts:
        result += ignored(f"the message for alert group {group or '(no groupKey)'} has no alerts")
    for index, alert in enumerate(alerts):
        result += _alert(alert, index, config, now)
    return result + _truncated(body, group)


def _check_version(version: object) -> None:
    if version == VERSION:
        return
    if version is None:
        what = "version is missing"
    elif isinstance(version, str):
        what = f"version {_show(version)} is not supported"
    else:
        what = f'version must be the string "4", got {json_kind(version)} {_show(version)}'
    raise MalformedError(f"{what}: promoter reads Alertmanager webhook payload version 4")


def _truncated(body: Mapping[str, Any], group: str | None) -> Normalized:
    count = field_of(body, "truncatedAlerts", int, optional=True)
    if count is None or count <= 0:
        return Normalized()
    return ignored(
        f"{count} alerts of group {group or '(no groupKey)'} were truncated by Alertmanager's "
        "max_alerts and are not in this message; raise max_alerts on the webhook receiver "
        "so promoter sees every alert"
    )


def _alert(alert: object, index: int, config: SourceConfig, now: datetime) -> Normalized:
    with prefixed(f"alerts[{index}]: "):
        return _signal(alert, config, now)


def _signal(alert: object, config: SourceConfig, now: datetime) -> Normalized:
    if not isinstance(alert, Mapping):
        raise MalformedError(f"an alert must be a JSON object, got {json_kind(alert)}")
    labels: dict[str, Any] = field_of(alert, "labels", dict)
    status: str = field_of(alert, "status", str)
    starts: str = field_of(alert, "startsAt", str)
    started = rfc3339(starts, "startsAt")
    fingerprint = text_of(alert, "fingerprint", optional=True)
    alertname = _label(labels, "alertname")
    name = alertname or "alert"
    who = f"alert {alertname or '(no alertname)'} (fingerprint {fingerprint or 'none'})"
    pipeline = _label(labels, config.pipeline_label)
    environment = _label(labels, config.environment_label)
    if not pipeline or not environment:
        return ignored(_unlabelled(who, config, pipeline, environment))
    health = STATUSES.get(status)
    if health is None:
        return ignored(f"{who} has status {status!r}; only firing and resolved alerts count")
    identity = fingerprint or json.dumps(labels, sort_keys=True, separators=(",", ":"))
    data = {
        "pipeline": pipeline,
        "environment": environment,
        "status": health,
        "reason": _reason(name, status, alert.get("annotations")),
    }
    event = cloud_event(
        HEALTH_SIGNAL,
        data,
        source=SOURCE,
        event_id=stable_id("alertmanager", identity, starts, status, pipeline, environment),
        time=started if status == "firing" else _ended(alert, now),
    )
    return Normalized(events=(event,))


def _unlabelled(
    who: str, config: SourceConfig, pipeline: str | None, environment: str | None
) -> str:
    names = (config.pipeline_label, config.environment_label)
    missing = [n for n, v in zip(names, (pipeline, environment), strict=True) if not v]
    return (
        f"{who} has no {' and no '.join(missing)} label, so it is not a promoter health "
        f"signal; to make it one, add labels {names[0]} and {names[1]} to its alerting rule"
    )


def _label(labels: Mapping[str, Any], name: str) -> str | None:
    value = labels.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise MalformedError(f"labels.{name} must be a string, got {json_kind(value)}")
    return value


def _reason(name: str, status: str, annotations: object) -> str:
    summary = annotations.get("summary") if isinstance(annotations, Mapping) else None
    if isinstance(summary, str) and summary.strip():
        return f"{name} {status}: {summary.strip()}"
    return f"{name} {status}"


def _ended(alert: Mapping[str, Any], now: datetime) -> datetime:
    """When a resolved alert ended; `now` if Alertmanager sent no end (or the Go zero time)."""
    ends = text_of(alert, "endsAt", optional=True)
    if ends is None:
        return now
    ended = rfc3339(ends, "endsAt")
    return now if ended.year <= 1 else ended


def _show(value: object) -> str:
    text = json.dumps(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."
