"""Carry out one decision: edit files on the environment's branch, open, merge or close its PR."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import structlog

from promoter.core.compiled import CompiledPipeline
from promoter.core.pipeline import Environment, is_local_location
from promoter.core.state import ArtifactVersion, Bundle
from promoter.errors import ConfigurationError, HeadMovedError, PromoterError, TransientError
from promoter.gitops.repo import Files, MergeConflict, TreeEdit, Workspace, format_message
from promoter.gitops.updaters import UpdateContext, apply_update
from promoter.runtime.bus import redact_url
from promoter.runtime.store import Effect, PullRef
from promoter.scm.base import PullRequest, PullRequests, PullRequestSpec, branch_name
from promoter.scm.github.calls import counting

__all__ = ["EffectRunner", "Outcome", "Target", "Workspaces", "resolve_repository"]

log = structlog.get_logger(__name__)


def resolve_repository(url: str, pipeline_file: str) -> str:
    """An absolute location for a repository URL; relative paths are relative to the pipeline."""
    if not is_local_location(url) or url.startswith(("file://", "/")):
        return url
    return str((Path(pipeline_file).parent / url).resolve())


@dataclass(frozen=True)
class Target:
    """A pipeline as the runtime needs it: compiled rules plus where its repository is."""

    compiled: CompiledPipeline
    file: str
    repository: str
    base: str

    @property
    def name(self) -> str:
        """The pipeline name."""
        return self.compiled.name

    @property
    def hosted_on(self) -> Literal["github", "local"]:
        """Who hosts the pipeline's PRs."""
        return self.compiled.pipeline.spec.repository.provider or "local"

    def environment(self, name: str) -> Environment:
        """The environment definition called `name`."""
        for env in self.compiled.pipeline.spec.environments:
            if env.name == name:
                return env
        raise ConfigurationError(f"pipeline {self.name} has no environment {name!r}")


_REBUILDS = 2
_SOURCE_LABEL = "org.opencontainers.image.source"


class Workspaces:
    """One cached working clone per repository URL, under `<state dir>/repos`.

    `token_for(url)` gives what hands git the token of a remote repository (never put in the
    URL); None for repositories that need none.
    """

    def __init__(
        self,
        cache_root: Path,
        token_for: Callable[[str], Callable[[], str] | None] | None = None,
    ) -> None:
        self.cache_root = cache_root
        self.token_for = token_for
        self._open: dict[str, Workspace] = {}

    def __call__(self, url: str) -> Workspace:
        """The workspace of `url`, created on first use."""
        if url not in self._open:
            token = self.token_for(url) if self.token_for is not None else None
            self._open[url] = Workspace(url, self.cache_root, token=token)
        return self._open[url]

    def close(self) -> None:
        """Stop what the open workspaces keep running (their object readers)."""
        for workspace in self._open.values():
            workspace.close()


@dataclass(frozen=True)
class Outcome:
    """What carrying out an effect did; `refused` says why the SCM would not merge an approval."""

    pr: PullRef | None = None
    merged: bool = False
    sha: str | None = None
    detail: str = ""
    refused: str | None = None
    api_calls: int | None = None


def _summary(bundle: Bundle) -> str:
    return ", ".join(f"{k} {v}" for k, v in bundle.summary().items())


def _trailers(target: Target, environment: str, bundle: Bundle) -> dict[str, str]:
    return {
        "Promoter-Pipeline": target.name,
        "Promoter-Environment": environment,
        "Promoter-Bundle": bundle.id,
    }


def _origin(version: ArtifactVersion) -> str:
    """Where a version came from: the event (source and id), when, and its source link."""
    parts = [version.built_at.isoformat().replace("+00:00", "Z")]
    if version.event:
        parts.append(f"`{version.event}`")
    link = version.labels.get(_SOURCE_LABEL) or version.uri or ""
    if link.startswith(("http://", "https://")):
        parts.append(f"[source]({link})")
    return " · ".join(parts)


def _gates(blocked: Mapping[str, str]) -> str:
    if not blocked:
        return "- [x] all gates passed"
    return "\n".join(f"- [ ] **{code}**: {reason}" for code, reason in sorted(blocked.items()))


def _body(target: Target, effect: Effect, bundle: Bundle, blocked: Mapping[str, str]) -> str:
    """The PR description; it ends in the commit trailers, so webhooks can name the bundle."""
    rows = "\n".join(
        f"| {name} | {v.version} | `{v.ref}` | {_origin(v)} |"
        for name, v in sorted(bundle.versions.items())
    )
    table = f"| artifact | version | reference | event |\n|---|---|---|---|\n{rows}"
    trailers = "\n".join(
        f"{k}: {v}" for k, v in _trailers(target, effect.environment, bundle).items()
    )
    gates = f"**Gates** when this PR was last updated:\n{_gates(blocked)}"
    return f"{effect.reason}\n\n{table}\n\n{gates}\n\n{trailers}\n"


def bundle_edit(target: Target, environment: str, bundle: Bundle) -> TreeEdit:
    """The file edits that put `bundle` into `environment`, made in memory on the base."""
    updates = target.environment(environment).update
    values = {name: v.placeholder_values() for name, v in bundle.versions.items()}

    def edit(files: Files) -> None:
        for update in updates:
            text = files.read_text(update.file)  # line endings as they are; '' if absent
            context = UpdateContext(pipeline=target.name, file=update.file, values=values)
            new = apply_update(text, update, context)
            if new != text:
                files.write_text(update.file, new)

    return TreeEdit(edit)


class EffectRunner:
    """Turns outbox effects into git commits and PR operations; every step is idempotent."""

    def __init__(
        self,
        workspaces: Callable[[str], Workspace],
        providers: Callable[[Target], Awaitable[PullRequests]],
    ) -> None:
        self.workspaces = workspaces
        self.providers = providers
        self._refreshing: set[asyncio.Task[None]] = set()

    async def carry_out(
        self,
        target: Target,
        effect: Effect,
        blocked: Mapping[str, str] | None = None,
        known: PullRef | None = None,
    ) -> Outcome:
        """Do what `effect` says; raise TransientError to retry later, PromoterError to give up.

        `blocked` is what still holds the environment back, shown on the PR; `known` is the
        environment's PR as last recorded (a GitHub merge then needs no lookup). The outcome
        counts the SCM API requests made.
        """
        with counting() as calls:
            outcome = await self._carry_out(target, effect, dict(blocked or {}), known)
        return replace(outcome, api_calls=calls.total) if calls.total else outcome

    async def _carry_out(
        self, target: Target, effect: Effect, blocked: dict[str, str], known: PullRef | None
    ) -> Outcome:
        bundle = effect.bundle
        if bundle is None or effect.action in ("block", "hold", "resume"):
            return Outcome()
        if effect.action in ("open-pr", "update-pr"):
            pr = await self._open(target, effect, bundle, blocked, likely_new=known is None)
            return Outcome(pr=_ref(pr), sha=pr.head, detail=f"PR #{pr.number}")
        if effect.action == "merge":
            return await self._merge(target, effect, bundle, known)
        if effect.action == "close-pr":
            return await self._close(target, effect, bundle)
        return await self._rollback(target, effect, bundle)

    async def _open(
        self,
        target: Target,
        effect: Effect,
        bundle: Bundle,
        blocked: dict[str, str],
        *,
        likely_new: bool = False,
    ) -> PullRequest:
        provider = await self.providers(target)  # first: it connects; git may need its token
        env = effect.environment
        title = _title(target, env, bundle)
        body = _body(target, effect, bundle, blocked)
        message = format_message(title, effect.reason, _trailers(target, env, bundle))
        workspace = self.workspaces(target.repository)
        branch = branch_name(target.name, env)
        result = await asyncio.to_thread(
            workspace.prepare_branch, branch, target.base, bundle_edit(target, env, bundle), message
        )
        spec = PullRequestSpec(
            repository=target.repository,
            pipeline=target.name,
            environment=env,
            base=target.base,
            branch=branch,
            head=result.head,
            title=title,
            body=body,
            bundle=bundle.id,
            versions=bundle.summary(),
            gates=blocked,
        )
        return await provider.ensure(spec, likely_new=likely_new)

    async def _merge(
        self, target: Target, effect: Effect, bundle: Bundle, known: PullRef | None
    ) -> Outcome:
        provider = await self.providers(target)
        if (
            target.hosted_on == "github"
            and known is not None
            and known.bundle == bundle.id
            and known.head  # "" after a refused merge: GitHub's head is not known
        ):
            pr: PullRequest | None = _recorded(target, effect.environment, bundle, known)
        else:
            pr = await provider.current(target.name, effect.environment)
        if pr is None or pr.bundle != bundle.id or pr.state == "closed":
            if effect.head is not None:
                return Outcome(refused="the approved PR is gone; a new one needs approval")
            pr = await self._open(target, effect, bundle, {})  # the open step was lost: redo it
        if pr.state != "merged":
            if effect.head is not None and pr.head != effect.head:
                return Outcome(
                    pr=_ref(pr),
                    refused=f"PR #{pr.number} head is {pr.head[:12]}, approvals were given on "
                    f"{effect.head[:12]}; waiting for approval of the new head",
                )
            trailers = _trailers(target, effect.environment, bundle)
            message = format_message(f"Merge #{pr.number}: {pr.title}", effect.reason, trailers)
            try:
                pr = await self._merge_rebuilding(target, effect, bundle, pr, message)
            except HeadMovedError as exc:
                return Outcome(pr=_ref(pr), refused=str(exc))
            if target.hosted_on != "local":
                self._refresh_later(target.repository)
        return Outcome(pr=_ref(pr), merged=True, sha=pr.merged_sha, detail=f"PR #{pr.number}")

    def _refresh_later(self, repository: str) -> None:
        """Fetch in the background: the SCM merged, so the base moved without the clone.

        The next environment's PR (often opened right after this merge) then pushes once,
        instead of pushing on a stale view, being refused, fetching and pushing again.
        """

        async def refresh() -> None:
            try:
                await asyncio.to_thread(self.workspaces(repository).refresh)
            except PromoterError as exc:  # the next call fetches anyway
                log.debug("background fetch failed", repo=redact_url(repository), error=str(exc))

        task = asyncio.create_task(refresh())
        self._refreshing.add(task)
        task.add_done_callback(self._refreshing.discard)

    async def _merge_rebuilding(
        self, target: Target, effect: Effect, bundle: Bundle, pr: PullRequest, message: str
    ) -> PullRequest:
        """Merge; on a conflict rebuild the branch on the new base (it is promoter's) and retry.

        A conflict right after a rebuild means someone changed the same lines meanwhile: that
        race is retried later (TransientError), never given up on.
        """
        provider = await self.providers(target)
        for _ in range(_REBUILDS):
            try:
                return await provider.merge(pr, message)
            except MergeConflict:
                if effect.head is None:
                    pr = await self._open(target, effect, bundle, {})
                    continue
                waiting = {"approvals": "the branch was rebuilt on a new base; approve it again"}
                pr = await self._open(target, effect, bundle, waiting)
                raise HeadMovedError(
                    f"PR #{pr.number} conflicted with {target.base}; rebuilt as "
                    f"{pr.head[:12]}, which needs approval"
                ) from None
        try:
            return await provider.merge(pr, message)
        except MergeConflict as exc:
            raise TransientError(f"{exc}; the base keeps changing, will retry") from exc

    async def _close(self, target: Target, effect: Effect, bundle: Bundle) -> Outcome:
        provider = await self.providers(target)
        pr = await provider.current(target.name, effect.environment)
        if pr is None or pr.state != "open" or pr.bundle != bundle.id:
            return Outcome(detail="no open PR for this bundle")
        pr = await provider.close(pr, f"Closed by promoter: {effect.reason}")
        return Outcome(detail=f"PR #{pr.number} closed")

    async def _rollback(self, target: Target, effect: Effect, bundle: Bundle) -> Outcome:
        """Rollbacks are committed straight to the base: restoring known-good needs no review."""
        await self.providers(target)  # connects first: git may need its token
        env = effect.environment
        trailers = {**_trailers(target, env, bundle), "Promoter-Action": "rollback"}
        title = f"roll back {target.name} in {env} to {_summary(bundle)}"
        message = format_message(title, effect.reason, trailers)
        workspace = self.workspaces(target.repository)
        sha = await asyncio.to_thread(
            workspace.commit_to_base, target.base, bundle_edit(target, env, bundle), message
        )
        return Outcome(sha=sha, detail="already at that bundle" if sha is None else "committed")


def _title(target: Target, env: str, bundle: Bundle) -> str:
    return f"promote {target.name} to {env}: {_summary(bundle)}"


def _recorded(target: Target, env: str, bundle: Bundle, known: PullRef) -> PullRequest:
    """The PR as promoter recorded it: everything else about it is deterministic.

    Merging it needs no lookup; if GitHub's PR differs (merged, closed, moved), the merge is
    refused and the provider looks then.
    """
    return PullRequest(
        repository=target.repository,
        pipeline=target.name,
        environment=env,
        base=target.base,
        branch=branch_name(target.name, env),
        head=known.head,
        title=_title(target, env, bundle),
        body="",
        bundle=bundle.id,
        versions=bundle.summary(),
        number=known.number,
        url=known.url,
        created_at=bundle.formed_at,
        updated_at=bundle.formed_at,
    )


def _ref(pr: PullRequest) -> PullRef:
    return PullRef(number=pr.number, url=pr.url, head=pr.head, bundle=pr.bundle, gates=pr.gates)
