"""Webhook authenticity checks: GitHub and MLflow HMAC signatures, and shared-secret headers."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timedelta

from promoter.sources.base import Delivery, SignatureError

__all__ = [
    "github_signature",
    "mlflow_signature",
    "verify_github",
    "verify_mlflow",
    "verify_shared_secret",
]

MLFLOW_SKEW = timedelta(minutes=5)


def github_signature(secret: str, body: bytes) -> str:
    """`X-Hub-Signature-256` for `body`: `sha256=` + hex HMAC-SHA256 of the raw bytes."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_github(delivery: Delivery, secret: str | None) -> None:
    """Check `X-Hub-Signature-256` when a secret is set; SignatureError if missing or wrong."""
    if secret is None:
        return
    given = delivery.header("x-hub-signature-256")
    if not given:
        raise SignatureError("X-Hub-Signature-256 is missing; set the webhook's secret in GitHub")
    expected = github_signature(secret, delivery.body)
    if not hmac.compare_digest(expected.encode(), given.strip().encode("utf-8", "replace")):
        raise SignatureError("X-Hub-Signature-256 does not match the body and the secret")


def mlflow_signature(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    """`X-MLflow-Signature`: `v1,` + base64 HMAC-SHA256 over `<id>.<timestamp>.<body>`."""
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify_mlflow(
    delivery: Delivery, secret: str | None, now: datetime, max_age: timedelta
) -> None:
    """Check `X-MLflow-Signature` and its timestamp's age when a secret is set."""
    if secret is None:
        return
    signature = delivery.header("x-mlflow-signature")
    delivery_id = delivery.header("x-mlflow-delivery-id")
    timestamp = delivery.header("x-mlflow-timestamp")
    if not signature:
        raise SignatureError("X-MLflow-Signature is missing; give the MLflow webhook a secret")
    if not delivery_id or not timestamp:
        raise SignatureError("X-MLflow-Delivery-Id and X-MLflow-Timestamp are needed to verify")
    try:
        age = timedelta(seconds=now.timestamp() - int(timestamp))
    except (ValueError, OverflowError):  # not a number, or no time a clock can show
        raise SignatureError(f"X-MLflow-Timestamp {timestamp!r} is not Unix seconds") from None
    if age > max_age or age < -MLFLOW_SKEW:
        raise SignatureError(
            f"X-MLflow-Timestamp is {age.total_seconds():.0f}s old; accepted: up to "
            f"{max_age.total_seconds():.0f}s (check the clocks, or raise max_age)"
        )
    expected = mlflow_signature(secret, delivery_id, timestamp, delivery.body)
    if not hmac.compare_digest(expected.encode(), signature.strip().encode("utf-8", "replace")):
        raise SignatureError("X-MLflow-Signature does not match the delivery and the secret")


def verify_shared_secret(delivery: Delivery, secret: str | None) -> None:
    """Check `Authorization: Bearer <secret>` (or the bare secret) when a secret is set."""
    if secret is None:
        return
    given = (delivery.header("authorization") or "").strip()
    if not given:
        raise SignatureError("Authorization header is missing; send 'Bearer <secret>'")
    scheme, _, token = given.partition(" ")
    candidates = [given]
    if scheme.lower() == "bearer":
        candidates.append(token.strip())
    wanted = secret.encode()
    if not any(hmac.compare_digest(c.encode("utf-8", "replace"), wanted) for c in candidates):
        raise SignatureError("Authorization does not carry this source's secret")
