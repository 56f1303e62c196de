"""Prometheus metrics of a promoter process, in one registry that `/metrics` serves."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from promoter.core.gates import GATE_CODES

__all__ = [
    "CONTENT_TYPE",
    "REGISTRY",
    "block_reason",
    "cas_conflict",
    "exposition",
]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

disable_created_metrics()  # type: ignore[no-untyped-call]  # unannotated in prometheus-client
# (no `_created` twin of every series: Prometheus does not use them)

REGISTRY = CollectorRegistry(auto_describe=True)
"""promoter's own registry (not the library's global one), plus the process collectors."""
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

EVENTS = Counter(
    "promoter_events",
    "Events consumed from PROMOTER_EVENTS, by CloudEvent type and outcome: applied (recorded "
    "in a pipeline's state), ignored (no pipeline wants it), retried (redelivered later), "
    "dead_lettered.",
    ["type", "outcome"],
    registry=REGISTRY,
)
DEAD_LETTERS = Counter(
    "promoter_dead_letters",
    "Events moved to PROMOTER_DLQ, by cause: invalid (not a promoter event), scm (the SCM "
    "refused to read the PR it names), gave_up (still failing after max deliveries), "
    "max_deliveries (the server stopped redelivering).",
    ["cause"],
    registry=REGISTRY,
)
PROMOTIONS = Counter(
    "promoter_promotions",
    "Decisions carried out, by environment and action (open-pr, update-pr, merge, close-pr, "
    "rollback, hold, resume, block).",
    ["environment", "action"],
    registry=REGISTRY,
)
GATE_BLOCKS = Counter(
    "promoter_gate_blocks",
    "Times a gate (or a refusal) newly blocked a bundle in an environment, by reason.",
    ["reason"],
    registry=REGISTRY,
)
EVENT_TO_PR = Histogram(
    "promoter_event_to_pr_seconds",
    "From an event's arrival in NATS to the PR it caused being opened or updated.",
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
    registry=REGISTRY,
)
GITHUB_REQUESTS = Counter(
    "promoter_github_requests",
    "GitHub API requests (every attempt, retries included), by kind (read, write).",
    ["kind"],
    registry=REGISTRY,
)
GITHUB_RATE_REMAINING = Gauge(
    "promoter_github_rate_limit_remaining",
    "Requests left in GitHub's primary rate limit, as its last response said.",
    registry=REGISTRY,
)
GITHUB_WRITE_BUDGET = Gauge(
    "promoter_github_write_budget_remaining",
    "Writes left in the shared write budget (GitHub's secondary limit) after the last write.",
    registry=REGISTRY,
)
GATEWAY_DELIVERIES = Counter(
    "promoter_gateway_deliveries",
    "Webhook deliveries `promoter gateway` answered, by source and HTTP status.",
    ["source", "status"],
    registry=REGISTRY,
)
CAS_CONFLICTS = Counter(
    "promoter_kv_cas_conflicts",
    "Compare-and-set writes to NATS KV refused because another writer came first, by bucket "
    "(state, leases, prs, budget, replays).",
    ["bucket"],
    registry=REGISTRY,
)

for _kind in ("read", "write"):
    GITHUB_REQUESTS.labels(kind=_kind)
for _bucket in ("state", "leases", "prs", "budget", "replays"):
    CAS_CONFLICTS.labels(bucket=_bucket)


def cas_conflict(bucket: str) -> None:
    """Count one refused compare-and-set on `bucket`."""
    CAS_CONFLICTS.labels(bucket=bucket).inc()


def block_reason(reason: str) -> str:
    """The metric label of a block decision's reason: its gate code, else the refusal kind."""
    code = reason.split(":", 1)[0]
    if code in GATE_CODES:
        return code
    for prefix, label in (
        ("merge refused", "merge-refused"),
        ("promote by", "promote-refused"),
        ("rollback by", "rollback-refused"),
    ):
        if reason.startswith(prefix):
            return label
    return "other"


def exposition() -> bytes:
    """The registry in Prometheus text format."""
    return generate_latest(REGISTRY)
