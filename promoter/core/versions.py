"""Version selection: which observed versions are candidates, and which candidate is best."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import semantic_version

from promoter.core.compiled import CompiledPipeline, normalize_image
from promoter.core.events import ImageBuilt, ModelRegistered
from promoter.core.pipeline import Artifact
from promoter.core.state import ArtifactVersion

__all__ = ["artifact_variables", "better", "candidate_for", "matching_artifacts"]


def _semver(tag: str | None) -> semantic_version.Version | None:
    if not tag:
        return None
    try:
        return semantic_version.Version(tag.removeprefix("v"))
    except ValueError:
        return None


def _numbers(text: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", text))


def sort_key(artifact: Artifact, version: ArtifactVersion) -> tuple[Any, ...]:
    """Higher is better; ties break on build time, then arrival."""
    select = artifact.select
    tail = (version.built_at, version.seen)
    if select.semver is not None:
        return (_semver(version.tag), *tail)
    if select.tag_pattern is not None:
        match = re.fullmatch(select.tag_pattern, version.tag or "")
        group = match.group("version") if match else ""
        return ((group if select.sort == "lexical" else _numbers(group)), *tail)
    return tail


def better(artifact: Artifact, new: ArtifactVersion, old: ArtifactVersion) -> bool:
    """True when `new` should replace `old` as the artifact's best version."""
    return sort_key(artifact, new) > sort_key(artifact, old)


def _image_version(artifact: Artifact, data: ImageBuilt) -> str | None:
    """The version string an image event stands for, or None if it is not a candidate."""
    select = artifact.select
    if select.semver is not None:
        parsed = _semver(data.tag)
        in_range = parsed is not None and parsed in semantic_version.NpmSpec(select.semver)
        return data.tag if in_range else None
    if select.tag_pattern is not None:
        ok = data.tag is not None and re.fullmatch(select.tag_pattern, data.tag) is not None
        return data.tag if ok else None
    if select.digest is not None:
        return data.digest if data.tag == select.digest else None
    return data.tag or data.digest  # newestBuild


def _model_version(artifact: Artifact, data: ModelRegistered) -> str | None:
    select = artifact.select
    if select.semver is not None:
        parsed = _semver(data.version)
        return (
            data.version
            if parsed is not None and parsed in semantic_version.NpmSpec(select.semver)
            else None
        )
    if select.tag_pattern is not None:
        return data.version if re.fullmatch(select.tag_pattern, data.version) else None
    return data.version


def artifact_variables(version: ArtifactVersion) -> dict[str, Any]:
    """The CEL view of a version: name, version, tag, digest, uri, ref, labels, metrics."""
    return {
        "name": version.name,
        "version": version.version,
        "tag": version.tag or "",
        "digest": version.digest or "",
        "uri": version.uri or (version.ref if version.kind == "image" else ""),
        "ref": version.ref,
        "labels": dict(version.labels),
        "metrics": dict(version.metrics),
    }


def matching_artifacts(
    compiled: CompiledPipeline, data: ImageBuilt | ModelRegistered
) -> list[Artifact]:
    """The pipeline's artifacts an image or model event is about."""
    if isinstance(data, ImageBuilt):
        repo = normalize_image(data.repository)
        return [
            a for a in compiled.artifacts.values() if a.image and normalize_image(a.image) == repo
        ]
    return [a for a in compiled.artifacts.values() if a.model == data.name]


def candidate_for(
    compiled: CompiledPipeline,
    artifact: Artifact,
    data: ImageBuilt | ModelRegistered,
    built_at: datetime,
    seen: int,
    *,
    event: str | None = None,
) -> ArtifactVersion | None:
    """The candidate version an event offers `artifact`, or None when selection or `when` say no."""
    if isinstance(data, ImageBuilt):
        version = _image_version(artifact, data)
        fields: dict[str, Any] = {"name": data.repository, "tag": data.tag, "digest": data.digest}
    else:
        version = _model_version(artifact, data)
        fields = {"name": data.name, "uri": data.uri, "metrics": dict(data.metrics)}
    if version is None:
        return None
    candidate = ArtifactVersion(
        artifact=artifact.name,
        kind=artifact.kind,
        version=version,
        labels=dict(data.labels),
        built_at=built_at,
        seen=seen,
        event=event,
        **fields,
    )
    condition = compiled.artifact_when.get(artifact.name)
    if condition is not None:
        view = artifact_variables(candidate)
        if not condition.evaluate({artifact.kind: view, "artifact": view}).passed:
            return None
    return candidate
