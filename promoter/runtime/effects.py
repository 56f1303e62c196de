"""Carry out one decision: edit files on the environment's branch, open, merge or close its PR."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from promoter.core.compiled import CompiledPipeline
from promoter.core.pipeline import Environment
from promoter.core.state import Bundle
from promoter.errors import ConfigurationError, TransientError
from promoter.gitops.repo import Edit, MergeConflict, Workspace, format_message
from promoter.gitops.updaters import UpdateContext, apply_update
from promoter.runtime.store import Effect, PullRef
from promoter.scm.base import PullRequest, PullRequests, PullRequestSpec
from promoter.scm.local import is_local_url

__all__ = ["EffectRunner", "Outcome", "Target", "Workspaces", "branch_name", "resolve_repository"]


def resolve_repository(url: str, pipeline_file: str) -> str:
    """An absolute location for a repository URL; relative paths are relative to the pipeline."""
    if not is_local_url(url) or url.startswith(("file://", "/")):
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

    def environment(self, name: str) -> Environment:
        """The environment definition called `name`."""
        for env in self.compiled.pipeline.spec.environments:
            if env.name == name:
                return env
        raise ConfigurationError(f"pipeline {self.name} has no environment {name!r}")


def branch_name(pipeline: str, environment: str) -> str:
    """The one branch promoter uses for an environment's PRs."""
    return f"promoter/{pipeline}/{environment}"


_REBUILDS = 2


class Workspaces:
    """One cached working clone per repository URL, under `<state dir>/repos`."""

    def __init__(self, cache_root: Path) -> None:
        self.cache_root = cache_root
        self._open: dict[str, Workspace] = {}

    def __call__(self, url: str) -> Workspace:
        """The workspace of `url`, created on first use."""
        if url not in self._open:
            self._open[url] = Workspace(url, self.cache_root)
        return self._open[url]


@dataclass(frozen=True)
class Outcome:
    """What carrying out an effect did."""

    pr: PullRef | None = None
    merged: bool = False
    sha: str | None = None
    detail: str = ""


def _summary(bundle: Bundle) -> str:
    return ", ".join(f"{k} {v}" for k, v in bundle.summary().items())


def _trailers(target: Target, environment: str, bundle: Bundle) -> dict[str, str]:
    return {
        "Promoter-Pipeline": target.name,
        "Promoter-Environment": environment,
        "Promoter-Bundle": bundle.id,
    }


def _body(target: Target, effect: Effect, bundle: Bundle) -> str:
    """The PR description; it ends in the commit trailers, so webhooks can name the bundle."""
    rows = "\n".join(
        f"| {name} | {v.version} | `{v.ref}` |" for name, v in sorted(bundle.versions.items())
    )
    table = f"| artifact | version | reference |\n|---|---|---|\n{rows}"
    trailers = "\n".join(
        f"{k}: {v}" for k, v in _trailers(target, effect.environment, bundle).items()
    )
    return f"{effect.reason}\n\n{table}\n\n{trailers}\n"


def _read(path: Path) -> str:
    """A file's text with its line endings as they are ('' if it does not exist)."""
    if not path.exists():
        return ""
    with path.open(encoding="utf-8", newline="") as handle:
        return handle.read()


def bundle_edit(target: Target, environment: str, bundle: Bundle) -> Edit:
    """The file edits that put `bundle` into `environment`."""
    updates = target.environment(environment).update
    values = {name: v.placeholder_values() for name, v in bundle.versions.items()}

    def edit(root: Path) -> None:
        for update in updates:
            path = root / update.file
            text = _read(path)
            context = UpdateContext(pipeline=target.name, file=update.file, values=values)
            new = apply_update(text, update, context)
            if new != text:
                path.parent.mkdir(parents=True, exist_ok=True)
                with path.open("w", encoding="utf-8", newline="") as handle:
                    handle.write(new)

    return edit


class EffectRunner:
    """Turns outbox effects into git commits and PR operations; every step is idempotent."""

    def __init__(
        self,
        workspaces: Callable[[str], Workspace],
        providers: Callable[[str], PullRequests],
    ) -> None:
        self.workspaces = workspaces
        self.providers = providers

    async def carry_out(self, target: Target, effect: Effect) -> Outcome:
        """Do what `effect` says; raise TransientError to retry later, PromoterError to give up."""
        bundle = effect.bundle
        if bundle is None or effect.action in ("block", "hold", "resume"):
            return Outcome()
        if effect.action in ("open-pr", "update-pr"):
            pr = await self._open(target, effect, bundle)
            return Outcome(pr=_ref(pr), sha=pr.head, detail=f"PR #{pr.number}")
        if effect.action == "merge":
            return await self._merge(target, effect, bundle)
        if effect.action == "close-pr":
            return await self._close(target, effect, bundle)
        return await self._rollback(target, effect, bundle)

    async def _open(self, target: Target, effect: Effect, bundle: Bundle) -> PullRequest:
        env = effect.environment
        title = f"promote {target.name} to {env}: {_summary(bundle)}"
        body = _body(target, effect, bundle)
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
        )
        return await self.providers(target.repository).ensure(spec)

    async def _merge(self, target: Target, effect: Effect, bundle: Bundle) -> Outcome:
        provider = self.providers(target.repository)
        pr = await provider.current(target.name, effect.environment)
        if pr is None or pr.bundle != bundle.id or pr.state == "closed":
            pr = await self._open(target, effect, bundle)  # the open step was lost: redo it
        if pr.state != "merged":
            trailers = _trailers(target, effect.environment, bundle)
            message = format_message(f"Merge #{pr.number}: {pr.title}", effect.reason, trailers)
            pr = await self._merge_rebuilding(target, effect, bundle, pr, message)
        return Outcome(pr=_ref(pr), merged=True, sha=pr.merged_sha, detail=f"PR #{pr.number}")

    async def _merge_rebuilding(
        self, target: Target, effect: Effect, bundle: Bundle, pr: PullRequest, message: str
    ) -> PullRequest:
        """Merge; on a conflict rebuild the branch on the new base (it is promoter's) and retry.

        A conflict right after a rebuild means someone changed the same lines meanwhile: that
        race is retried later (TransientError), never given up on.
        """
        provider = self.providers(target.repository)
        for _ in range(_REBUILDS):
            try:
                return await provider.merge(pr, message)
            except MergeConflict:
                pr = await self._open(target, effect, bundle)
        try:
            return await provider.merge(pr, message)
        except MergeConflict as exc:
            raise TransientError(f"{exc}; the base keeps changing, will retry") from exc

    async def _close(self, target: Target, effect: Effect, bundle: Bundle) -> Outcome:
        provider = self.providers(target.repository)
        pr = await provider.current(target.name, effect.environment)
        if pr is None or pr.state != "open" or pr.bundle != bundle.id:
            return Outcome(detail="no open PR for this bundle")
        pr = await provider.close(pr, f"Closed by promoter: {effect.reason}")
        return Outcome(detail=f"PR #{pr.number} closed")

    async def _rollback(self, target: Target, effect: Effect, bundle: Bundle) -> Outcome:
        """Rollbacks are committed straight to the base: restoring known-good needs no review."""
        env = effect.environment
        trailers = {**_trailers(target, env, bundle), "Promoter-Action": "rollback"}
        title = f"roll back {target.name} in {env} to {_summary(bundle)}"
        message = format_message(title, effect.reason, trailers)
        workspace = self.workspaces(target.repository)
        sha = await asyncio.to_thread(
            workspace.commit_to_base, target.base, bundle_edit(target, env, bundle), message
        )
        return Outcome(sha=sha, detail="already at that bundle" if sha is None else "committed")


def _ref(pr: PullRequest) -> PullRef:
    return PullRef(number=pr.number, url=pr.url, head=pr.head, bundle=pr.bundle)
