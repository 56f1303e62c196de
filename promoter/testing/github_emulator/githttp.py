"""Git smart HTTP for the bare repositories, by running `git http-backend` as a CGI."""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from aiohttp import web

from promoter.testing.github_emulator.auth import authenticate
from promoter.testing.github_emulator.gitrepo import GIT, git_env
from promoter.testing.github_emulator.router import ApiError
from promoter.testing.github_emulator.users import Role
from promoter.testing.github_emulator.world import World

__all__ = ["serve_git"]

log = structlog.get_logger("promoter.testing.github_emulator")

CHUNK = 64 * 1024
_UNAUTHORIZED = {"WWW-Authenticate": 'Basic realm="GitHub"'}


def _text(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, text=message + "\n", headers=headers)


def _is_push(request: web.Request, tail: str) -> bool:
    return tail == "/git-receive-pack" or request.query.get("service") == "git-receive-pack"


async def serve_git(
    request: web.Request, world: World, owner: str, repo: str, tail: str
) -> web.StreamResponse:
    """Answer one smart-HTTP request for `owner/repo.git` + `tail` (fetch or push).

    Both fetch and push need HTTP Basic credentials whose password is a token; without them
    the answer is 401 with `WWW-Authenticate`, so git asks its credential helper.
    """
    if not world.store.exists(owner, repo):
        return _text(404, "Repository not found.")
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("basic "):
        return _text(401, "Authentication required.", _UNAUTHORIZED)
    try:
        caller = authenticate(world.users, world.tokens, header, world.clock())
    except ApiError:
        return _text(401, "Invalid username or token.", _UNAUTHORIZED)
    needed: Role = "write" if _is_push(request, tail) else "read"
    if not world.users.can(owner, repo, caller.login, needed):
        verb = "Write" if needed == "write" else "Read"
        return _text(403, f"{verb} access to repository not granted.")
    return await _backend(request, world, caller.login, f"/{owner}/{repo}.git{tail}")


def _cgi_env(request: web.Request, world: World, login: str, path_info: str) -> dict[str, str]:
    extra = {
        "GIT_PROJECT_ROOT": str(world.root),
        "GIT_HTTP_EXPORT_ALL": "1",
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "http.receivepack",
        "GIT_CONFIG_VALUE_0": "true",
        "REMOTE_USER": login,
        "REMOTE_ADDR": request.remote or "127.0.0.1",
        "REQUEST_METHOD": request.method,
        "PATH_INFO": path_info,
        "QUERY_STRING": request.query_string,
        "CONTENT_TYPE": request.headers.get("Content-Type", ""),
        "GATEWAY_INTERFACE": "CGI/1.1",
        "SERVER_PROTOCOL": "HTTP/1.1",
    }
    if request.content_length is not None:
        extra["CONTENT_LENGTH"] = str(request.content_length)
    for header, name in (
        ("Content-Encoding", "HTTP_CONTENT_ENCODING"),
        ("Git-Protocol", "HTTP_GIT_PROTOCOL"),
    ):
        if header in request.headers:
            extra[name] = request.headers[header]
    return git_env(extra)


async def _feed(request: web.Request, stdin: asyncio.StreamWriter) -> None:
    try:
        while chunk := await request.content.read(CHUNK):
            stdin.write(chunk)
            await stdin.drain()
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        stdin.close()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            await stdin.wait_closed()


async def _headers(stdout: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    status, headers = 200, {}
    while line := (await stdout.readline()).decode("latin-1").rstrip("\r\n"):
        name, _, value = line.partition(":")
        if name.lower() == "status":
            status = int(value.strip().split()[0])
        else:
            headers[name.strip()] = value.strip()
    return status, headers


async def _backend(
    request: web.Request, world: World, login: str, path_info: str
) -> web.StreamResponse:
    proc = await asyncio.create_subprocess_exec(
        GIT,
        "http-backend",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_cgi_env(request, world, login, path_info),
    )
    if proc.stdin is None or proc.stdout is None or proc.stderr is None:
        raise RuntimeError("git http-backend started without pipes")
    feeding = asyncio.create_task(_feed(request, proc.stdin))
    errors = asyncio.create_task(proc.stderr.read())
    try:
        status, headers = await _headers(proc.stdout)
        response = web.StreamResponse(status=status, headers=headers)
        await response.prepare(request)
        while chunk := await proc.stdout.read(CHUNK):
            await response.write(chunk)
        await response.write_eof()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        raise
    finally:
        await feeding
        code = await proc.wait()
        stderr = (await errors).decode(errors="replace").strip()
        if code != 0 or stderr:
            log.info("git http-backend", path=path_info, exit=code, stderr=stderr[-2000:])
    return response
