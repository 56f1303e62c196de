"""What the planner remembers per pipeline: versions, bundles, and each environment's state."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ArtifactVersion", "Bundle", "EnvState", "PendingPR", "PipelineState", "bundle_id"]

_HISTORY = 10


class _State(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ArtifactVersion(_State):
    """One version of one artifact, as seen in its event."""

    artifact: str
    kind: str
    name: str
    version: str
    tag: str | None = None
    digest: str | None = None
    uri: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)
    built_at: datetime
    seen: int = Field(description="Arrival order within the pipeline, breaks ordering ties.")
    event: str | None = Field(
        default=None, description="The CloudEvent that brought it: `source id`."
    )

    @property
    def ref(self) -> str:
        """`repo@digest` (or `repo:tag`) for images, `models:/name/version` for models."""
        if self.kind == "model":
            return f"models:/{self.name}/{self.version}"
        return f"{self.name}@{self.digest}" if self.digest else f"{self.name}:{self.tag}"

    def placeholder_values(self) -> dict[str, str]:
        """Values for `${artifact.attribute}` placeholders."""
        values = {"version": self.version, "name": self.name, "ref": self.ref}
        if self.kind == "image":
            values |= {"tag": self.tag or "", "digest": self.digest or "", "uri": self.ref}
        else:
            values["uri"] = self.uri or ""
        return values

    def residency(self) -> set[str]:
        """Jurisdictions from the `residency` label (comma list), lower-cased."""
        raw = self.labels.get("residency", "")
        return {part.strip().lower() for part in raw.split(",") if part.strip()}

    def identity(self) -> tuple[str, str | None, str | None]:
        """What makes two observations the same version (a re-pushed tag is a new one)."""
        return (self.version, self.digest, self.uri)


def bundle_id(versions: dict[str, ArtifactVersion]) -> str:
    """A short stable id for a set of artifact versions."""
    body = json.dumps({k: v.identity() for k, v in sorted(versions.items())})
    return hashlib.sha256(body.encode()).hexdigest()[:12]


class Bundle(_State):
    """One version of every artifact; bundles move between environments whole."""

    id: str
    seq: int = Field(description="Formation order; a higher seq is newer.")
    versions: dict[str, ArtifactVersion]
    formed_at: datetime

    def summary(self) -> dict[str, str]:
        """{artifact: version} for output."""
        return {name: v.version for name, v in sorted(self.versions.items())}


class PendingPR(_State):
    """The one open PR of an environment."""

    bundle: Bundle
    opened_at: datetime
    updated_at: datetime
    approvals: dict[str, list[str]] = Field(default_factory=dict, description="user -> teams")
    rejections: list[str] = Field(default_factory=list)
    head: str | None = Field(
        default=None, description="The PR head the approvals were counted on (SCM sync)."
    )
    merging: bool = Field(default=False, description="A merge was decided and awaits confirmation.")


class EnvState(_State):
    """An environment's live bundle, health, PR and hold."""

    live: Bundle | None = None
    live_since: datetime | None = None
    history: list[Bundle] = Field(
        default_factory=list, description="Earlier live bundles, newest last."
    )
    health: str = "unknown"
    health_reason: str | None = None
    healthy_since: datetime | None = None
    pending: PendingPR | None = None
    held: bool = False
    hold_reason: str | None = None
    refused: list[str] = Field(
        default_factory=list, description="Bundle ids rolled back or declined."
    )
    blocked: dict[str, str] = Field(
        default_factory=dict, description="Current blocks: code -> reason."
    )
    reported: list[str] = Field(
        default_factory=list, description="'bundle:code' blocks already reported."
    )

    def go_live(self, bundle: Bundle, now: datetime) -> None:
        """Record `bundle` as live from `now`, keeping a short history for rollback."""
        if self.live is not None:
            self.history = [*self.history, self.live][-_HISTORY:]
        self.live = bundle
        self.live_since = now
        self.health = "unknown"
        self.health_reason = None
        self.healthy_since = None


class PipelineState(_State):
    """Everything the planner knows about one pipeline."""

    best: dict[str, ArtifactVersion] = Field(
        default_factory=dict, description="Best version per artifact."
    )
    latest: Bundle | None = None
    seq: int = 0
    seen: int = 0
    envs: dict[str, EnvState] = Field(default_factory=dict)

    def env(self, name: str) -> EnvState:
        """The state of environment `name`, created on first use."""
        if name not in self.envs:
            self.envs[name] = EnvState()
        return self.envs[name]
