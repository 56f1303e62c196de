"""The `promoter/v1` Pipeline: pydantic models that are the YAML contract and its JSON Schema."""

from __future__ import annotations

import re
from datetime import time, timedelta
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import semantic_version
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from promoter.core.durations import format_duration, parse_duration
from promoter.core.windows import parse_clock

__all__ = [
    "Approvals",
    "Artifact",
    "Environment",
    "Gates",
    "KustomizeImage",
    "Metadata",
    "Pipeline",
    "Repository",
    "Rollback",
    "Select",
    "Spec",
    "Update",
    "Window",
    "repo_path_problem",
]

NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
ARTIFACT_PATTERN = r"^[a-z][a-z0-9_-]{0,62}$"
DURATION_PATTERN = r"^(\d+d)?(\d+h)?(\d+m)?(\d+s)?$"


def _fail(message: str, offset: int | None = None) -> PydanticCustomError:
    ctx: dict[str, Any] = {"message": message}
    if offset is not None:
        ctx["offset"] = offset
    return PydanticCustomError("promoter", "{message}", ctx)


def _matches(pattern: str, what: str) -> Any:
    def check(value: str) -> str:
        if not re.fullmatch(pattern, value):
            raise _fail(f"invalid {what} {value!r}: must match {pattern}")
        return value

    return check


def _check_semver_range(value: str) -> str:
    try:
        semantic_version.NpmSpec(value)
    except ValueError as exc:
        raise _fail(f"invalid semver range {value!r}: {exc}") from None
    return value


def _check_regex(value: str) -> str:
    try:
        compiled = re.compile(value)
    except re.error as exc:
        raise _fail(f"invalid regular expression {value!r}: {exc.msg}", exc.pos or 0) from None
    if "version" not in compiled.groupindex:
        raise _fail(f"tagPattern {value!r} needs a named group 'version', e.g. ^v(?P<version>.+)$")
    return value


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise _fail(
            f"unknown time zone {value!r}: use an IANA name such as Europe/Amsterdam"
        ) from None
    return value


def repo_path_problem(value: str) -> str | None:
    """Why `value` cannot name a file promoter edits in a repository, or None if it can.

    Refused: empty paths, backslashes and NUL, absolute paths, `..` components, anything inside
    `.git` (any case: git's own files, e.g. its config, could make git run commands) and paths
    that name a directory.
    """
    parts = value.split("/")
    checks = (
        (not value.strip(), "empty file path"),
        ("\\" in value or "\0" in value, "may not contain backslashes or NUL; use '/'"),
        (
            value.startswith(("/", "~")) or re.match(r"^[A-Za-z]:", value) is not None,
            "is absolute; give a path relative to the repository root",
        ),
        (".." in parts, "leaves the repository with '..'"),
        (
            any(part.lower() == ".git" for part in parts),
            "is inside .git; promoter edits only files git tracks",
        ),
        (parts[-1] in ("", "."), "names a directory; name the file to edit"),
    )
    for failed, why in checks:
        if failed:
            return why if why == "empty file path" else f"file path {value!r} {why}"
    return None


def _check_repo_path(value: str) -> str:
    problem = repo_path_problem(value)
    if problem is not None:
        raise _fail(problem)
    return value


def _parse_duration(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise _fail(str(exc)) from None
    if isinstance(value, timedelta):
        return value
    raise _fail(f"invalid duration {value!r}: write a string such as 10m or 1h30m")


def _parse_clock(allow_24: bool) -> Any:
    def parse(value: Any) -> Any:
        if isinstance(value, time):
            return value
        if not isinstance(value, str):
            raise _fail(f'invalid time {value!r}: quote it as "HH:MM"')
        try:
            return parse_clock(value, allow_24=allow_24)
        except ValueError as exc:
            raise _fail(str(exc)) from None

    return parse


def _format_clock(value: time | None) -> str:
    return "24:00" if value is None else value.strftime("%H:%M")


Name = Annotated[
    str,
    AfterValidator(_matches(NAME_PATTERN, "name")),
    Field(json_schema_extra={"pattern": NAME_PATTERN}),
]
ArtifactName = Annotated[
    str,
    AfterValidator(_matches(ARTIFACT_PATTERN, "artifact name")),
    Field(json_schema_extra={"pattern": ARTIFACT_PATTERN}),
]
Duration = Annotated[
    timedelta,
    BeforeValidator(_parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(
        {"type": "string", "pattern": DURATION_PATTERN, "examples": ["90s", "10m", "1h30m"]}
    ),
]
Clock = Annotated[
    time,
    BeforeValidator(_parse_clock(allow_24=False)),
    PlainSerializer(_format_clock, return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^([01]\d|2[0-3]):[0-5]\d$"}),
]
EndClock = Annotated[
    time | None,
    BeforeValidator(_parse_clock(allow_24=True)),
    PlainSerializer(_format_clock, return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^(([01]\d|2[0-3]):[0-5]\d|24:00)$"}),
]
RepoPath = Annotated[str, AfterValidator(_check_repo_path)]
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_ALL_DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, use_attribute_docstrings=False
    )


class Metadata(_Model):
    """Identity of the pipeline."""

    name: Name = Field(
        description="Pipeline name, unique across all pipelines; used in branch names."
    )
    description: str | None = Field(None, description="Free text shown in status and PR bodies.")
    labels: dict[str, str] = Field(default_factory=dict, description="Free-form labels.")


def is_local_location(url: str) -> bool:
    """True for a filesystem path or a file:// URL (the local provider's repositories)."""
    return url.startswith(("file://", "/", "./", "../")) or ("://" not in url and ":" not in url)


_GITHUB_URL = re.compile(
    r"^https?://(?P<host>[^/@\s]+)/(?P<owner>[^/\s]+)/(?P<repo>[^/\s]+?)(\.git)?/?$"
)
GITHUB_API = "https://api.github.com"


def github_slug(url: str) -> tuple[str, str, str] | None:
    """(host, owner, repo) of an `https://HOST/OWNER/REPO[.git]` URL, or None."""
    match = _GITHUB_URL.match(url)
    if match is None:
        return None
    return match["host"].lower(), match["owner"], match["repo"]


class Repository(_Model):
    """The GitOps repository whose files the pipeline edits, and who hosts its PRs."""

    url: str = Field(
        min_length=1,
        description="GitHub repository URL (https://github.com/OWNER/REPO), or a local path / "
        "file:// URL (local PR provider).",
    )
    branch: str = Field("main", min_length=1, description="Base branch that PRs target.")
    provider: Literal["github", "local"] | None = Field(
        None,
        description="Who hosts the PRs. Default: github for github.com URLs, local for paths "
        "and file:// URLs; set it for GitHub Enterprise or the emulator.",
    )
    api_url: str | None = Field(
        None,
        min_length=1,
        pattern=r"^https?://",
        description="GitHub REST base URL. Default https://api.github.com; GitHub Enterprise: "
        "https://HOST/api/v3.",
    )
    merge_method: Literal["merge", "squash", "rebase"] = Field(
        "merge", description="How PRs are merged (GitHub); the local provider always merges."
    )

    @model_validator(mode="before")
    @classmethod
    def _infer_provider(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("provider") is not None:
            return data
        url = data.get("url")
        if not isinstance(url, str) or not url:
            return data
        if is_local_location(url):
            return {**data, "provider": "local"}
        if urlsplit(url).hostname in ("github.com", "www.github.com"):
            return {**data, "provider": "github"}
        raise _fail(
            f"cannot tell who hosts {url!r}: set provider: github (GitHub or GitHub "
            "Enterprise, with apiUrl) or use a local path / file:// URL"
        )

    @model_validator(mode="after")
    def _check_provider(self) -> Self:
        if self.provider == "github" and github_slug(self.url) is None:
            raise _fail(
                f"GitHub repository URL {self.url!r} must look like https://HOST/OWNER/REPO "
                "(or .../REPO.git)"
            )
        if self.provider == "local" and (self.api_url is not None or self.merge_method != "merge"):
            raise _fail("apiUrl and mergeMethod apply to provider github only")
        return self

    @property
    def github_api(self) -> str:
        """The REST base URL: apiUrl, else api.github.com for github.com, else HOST/api/v3."""
        if self.api_url is not None:
            return self.api_url.rstrip("/")
        host = (github_slug(self.url) or ("github.com",))[0]
        return GITHUB_API if host == "github.com" else f"https://{host}/api/v3"


class Select(_Model):
    """How versions of an artifact are ordered and filtered; set exactly one strategy."""

    semver: Annotated[str, AfterValidator(_check_semver_range)] | None = Field(
        None,
        description="npm-style semver range over tags (a leading 'v' is allowed), "
        "e.g. '>=1.2.0 <2.0.0', '^1.4', '1.x || >=3.0.0'. Highest matching version wins; "
        "prereleases match only when the range names one for the same major.minor.patch.",
    )
    tag_pattern: Annotated[str, AfterValidator(_check_regex)] | None = Field(
        None,
        description="Regular expression a tag must fully match, with a named group 'version' "
        "that is compared by `sort`.",
    )
    sort: Literal["numerical", "lexical"] | None = Field(
        None,
        description="With tagPattern: compare the 'version' group numerically (every run of "
        "digits, in order; default) or lexically.",
    )
    newest_build: Literal[True] | None = Field(
        None, description="Images: the most recently built (event time), whatever the tag."
    )
    digest: str | None = Field(
        None,
        min_length=1,
        description="Images: track this mutable tag (e.g. 'stable'); each new digest pushed "
        "under it is a new version, identified by its digest.",
    )
    newest: Literal[True] | None = Field(
        None, description="Models: the most recently registered version."
    )

    @property
    def strategy(self) -> str:
        """The one strategy set: semver, tagPattern, newestBuild, digest or newest."""
        for name in ("semver", "tag_pattern", "newest_build", "digest", "newest"):
            if getattr(self, name) is not None:
                return to_camel(name)
        return ""

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        chosen = [
            to_camel(n)
            for n in ("semver", "tag_pattern", "newest_build", "digest", "newest")
            if getattr(self, n) is not None
        ]
        if len(chosen) != 1:
            raise _fail(
                "select needs exactly one of semver, tagPattern, newestBuild, digest, newest"
                + (f" (got {', '.join(chosen)})" if chosen else "")
            )
        if self.sort is not None and self.tag_pattern is None:
            raise _fail("sort applies only with tagPattern")
        return self


class Artifact(_Model):
    """One versioned thing that moves through environments: a container image or an ML model."""

    name: ArtifactName = Field(description="Artifact name used in placeholders and CEL.")
    image: str | None = Field(
        None, min_length=1, description="Container image repository, e.g. ghcr.io/acme/api."
    )
    model: str | None = Field(None, min_length=1, description="Registered model name.")
    select: Select = Field(description="Version selection strategy.")
    when: str | None = Field(
        None,
        description="CEL condition over the candidate (`image` or `model`, also `artifact`); "
        "a version for which it is not true is never a candidate.",
    )

    @property
    def kind(self) -> Literal["image", "model"]:
        """`image` or `model`."""
        return "image" if self.image is not None else "model"

    @property
    def source(self) -> str:
        """The image repository or model name events are matched on."""
        return self.image if self.image is not None else (self.model or "")

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.image is None) == (self.model is None):
            raise _fail("an artifact needs exactly one of image or model")
        return self


class Approvals(_Model):
    """Reviews required before the PR may merge."""

    count: int = Field(1, ge=1, description="Distinct approving reviewers required.")
    reviewers: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list,
        description="Who may approve: user names or '@org/team'. Empty: anyone but the author.",
    )


class Window(_Model):
    """A time span in which merges may happen."""

    days: list[Day] = Field(
        default_factory=lambda: list(_ALL_DAYS),
        min_length=1,
        description="Days the window opens on.",
    )
    start: Clock = Field(description="Local opening time, HH:MM.")
    end: EndClock = Field(
        description="Local closing time, HH:MM (24:00 allowed); earlier than start spans midnight."
    )
    timezone: Annotated[str, AfterValidator(_check_timezone)] = Field(
        "UTC", description="IANA time zone of start and end, e.g. Europe/Amsterdam."
    )

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if self.start == self.end:
            raise _fail("window start and end are equal; the window would never open")
        if len(set(self.days)) != len(self.days):
            raise _fail("window days repeat a day")
        return self


class Gates(_Model):
    """Conditions a bundle must meet before it is promoted into this environment."""

    soak: Duration | None = Field(
        None,
        description="How long the bundle must have been live and healthy in every upstream; a "
        "non-healthy signal restarts the clock.",
    )
    approvals: Approvals | None = Field(None, description="Reviews required before merge.")
    windows: list[Window] = Field(
        default_factory=list, description="Merge only inside one of these windows (none: always)."
    )
    when: str | None = Field(
        None, description="CEL condition over `bundle`, `pipeline` and `environment`."
    )


class Rollback(_Model):
    """Automatic rollback policy."""

    on_degraded_within: Duration = Field(
        description="A degraded signal this soon after going live reverts to the previous bundle "
        "and holds the environment."
    )


class KustomizeImage(_Model):
    """Set an `images:` entry of a kustomization.yaml."""

    name: str = Field(min_length=1, description="The image name the entry matches.")
    new_name: str | None = Field(None, description="Replacement image name.")
    new_tag: str | None = Field(None, description="Tag to set, usually ${artifact.tag}.")
    digest: str | None = Field(None, description="Digest to set, usually ${artifact.digest}.")

    @model_validator(mode="after")
    def _something(self) -> Self:
        if self.new_name is None and self.new_tag is None and self.digest is None:
            raise _fail("kustomizeImage needs at least one of newName, newTag, digest")
        return self


class Update(_Model):
    """One file edit made when a bundle is promoted."""

    file: RepoPath = Field(description="Path relative to the repository root.")
    set_: dict[Annotated[str, Field(min_length=1)], str | int | float | bool] | None = Field(
        None,
        alias="set",
        description="YAML dotted paths (list indexes allowed, e.g. a.b.0.c) to values, which may "
        "hold ${artifact.tag|digest|version|uri|name|ref} placeholders.",
    )
    kustomize_image: KustomizeImage | None = Field(None, description="A kustomize image override.")
    setters: bool | None = Field(
        None,
        description='Update every value marked with a `# {"$promoter": '
        '"<pipeline>:<artifact>[:<attribute>]"}` comment for this pipeline; without an '
        "attribute an image becomes name:tag and a model its uri.",
    )

    @field_validator("setters")
    @classmethod
    def _setters_true(cls, value: bool | None) -> bool | None:
        if value is False:
            raise _fail("false does nothing; write `setters: true` or remove the update")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        chosen = [self.set_, self.kustomize_image, self.setters]
        if sum(kind is not None for kind in chosen) != 1:
            raise _fail("an update needs exactly one of set, kustomizeImage, setters")
        return self


class Environment(_Model):
    """A deployment target; bundles enter it by pull request."""

    name: Name = Field(description="Environment name, unique in the pipeline.")
    from_: list[Name] = Field(
        default_factory=list,
        alias="from",
        description="Upstream environments; a bundle must be live and verified in all of them.",
    )
    auto: bool = Field(
        default=False,
        description="Merge without review once gates pass (unless approvals are required).",
    )
    jurisdiction: str | None = Field(
        None,
        min_length=1,
        description="Every artifact's `residency` label (comma list) must include this.",
    )
    gates: Gates = Field(default_factory=Gates, description="Promotion gates.")
    rollback: Rollback | None = Field(None, description="Automatic rollback policy.")
    update: list[Update] = Field(min_length=1, description="Files to edit for this environment.")


class Spec(_Model):
    """What to promote, where, and how."""

    repository: Repository = Field(description="The GitOps repository the pipeline edits.")
    artifacts: list[Artifact] = Field(min_length=1, description="Artifacts that form a bundle.")
    environments: list[Environment] = Field(min_length=1, description="Environments, any order.")


class Pipeline(_Model):
    """A promotion pipeline (apiVersion promoter/v1, kind Pipeline)."""

    api_version: Literal["promoter/v1"] = Field(description="Always promoter/v1.")
    kind: Literal["Pipeline"] = Field(description="Always Pipeline.")
    metadata: Metadata = Field(description="Name, description and labels.")
    spec: Spec = Field(description="Artifacts, environments and the repository.")

    def environment(self, name: str) -> Environment:
        """The environment called `name` (KeyError if none)."""
        for env in self.spec.environments:
            if env.name == name:
                return env
        raise KeyError(name)
