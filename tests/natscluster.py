"""A 3-node nats-server JetStream cluster on 127.0.0.1 for chaos tests: start, kill, restart."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Self

import nats
import nats.errors
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig

from promoter.runtime.natsserver import free_port, launch

__all__ = ["ClusterNode", "NatsCluster", "new_leader", "stream_leader"]

CLUSTER_NAME = "promoter-test"
_PROBE_STREAM = "CLUSTER_READY"


@dataclass
class ClusterNode:
    """One server of the cluster: its name, ports and store; restarts keep all of them."""

    name: str
    root: Path
    port: int = field(default_factory=free_port)
    route_port: int = field(default_factory=free_port)
    monitor_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        """The client URL."""
        return f"nats://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self.process is not None and self.process.poll() is None

    def config(self, peers: list[ClusterNode]) -> str:
        """The node's configuration file: client, monitoring and route ports, and the routes."""
        routes = ", ".join(f"nats://127.0.0.1:{p.route_port}" for p in peers if p is not self)
        store = json.dumps(str(self.root / "jetstream"))
        return (
            f'server_name: "{self.name}"\n'
            f'listen: "127.0.0.1:{self.port}"\n'
            f'http: "127.0.0.1:{self.monitor_port}"\n'
            f"jetstream {{\n  store_dir: {store}\n  sync_interval: always\n}}\n"
            f'cluster {{\n  name: "{CLUSTER_NAME}"\n'
            f'  listen: "127.0.0.1:{self.route_port}"\n  routes: [{routes}]\n}}\n'
        )

    def start(self, peers: list[ClusterNode]) -> None:
        """Start (or restart) the server with the same ports and store."""
        self.root.mkdir(parents=True, exist_ok=True)
        conf = self.root / "nats-server.conf"
        conf.write_text(self.config(peers))
        self._log = (self.root / "nats-server.log").open("ab")
        self.process = launch(conf, self._log, self.port)

    def kill(self) -> None:
        """SIGKILL the server and reap it."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def healthy(self) -> bool:
        """Whether /healthz says the server and its JetStream assets are current."""
        url = f"http://127.0.0.1:{self.monitor_port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=1) as reply:
                return bool(reply.status == 200)
        except (urllib.error.URLError, OSError):
            return False


async def _created(js: JetStreamContext, config: StreamConfig) -> bool:
    """Whether adding the stream worked (JetStream refuses while it has no meta leader)."""
    try:
        await js.add_stream(config)
    except (nats.errors.Error, TimeoutError):
        return False
    return True


async def stream_leader(js: JetStreamContext, stream: str) -> str:
    """The server name leading `stream` ($JS.API.STREAM.INFO), or "" while none is known."""
    try:
        info = await js.stream_info(stream)
    except (nats.errors.Error, TimeoutError):
        return ""
    return str(info.cluster.leader or "") if info.cluster else ""


async def new_leader(js: JetStreamContext, stream: str, old: str, within: float = 60.0) -> str:
    """Wait until a server other than `old` leads `stream`; its name."""
    deadline = time.monotonic() + within
    while (leader := await stream_leader(js, stream)) in ("", old):
        if time.monotonic() > deadline:
            raise AssertionError(f"{stream}: no leader replaced {old} in {within:.0f}s")
        await asyncio.sleep(0.1)
    return leader


async def _exists(js: JetStreamContext, stream: str) -> bool:
    try:
        await js.stream_info(stream)
    except (nats.errors.Error, TimeoutError):
        return False
    return True


@dataclass
class NatsCluster:
    """`size` JetStream servers on loopback routed to each other, data under `root`."""

    root: Path
    size: int = 3
    nodes: list[ClusterNode] = field(default_factory=list)

    def start(self) -> Self:
        """Start every node (they elect a meta leader among themselves)."""
        self.nodes = [ClusterNode(f"n{i}", self.root / f"n{i}") for i in range(self.size)]
        for node in self.nodes:
            node.start(self.nodes)
        return self

    @property
    def urls(self) -> list[str]:
        """Client URLs of every node."""
        return [n.url for n in self.nodes]

    def node(self, name: str) -> ClusterNode:
        """The node named `name`."""
        return next(n for n in self.nodes if n.name == name)

    def live_url(self, preferred: int = 0) -> str:
        """The client URL of a running node, starting the search at index `preferred`."""
        ring = self.nodes[preferred % self.size :] + self.nodes[: preferred % self.size]
        return next(n.url for n in ring if n.running)

    def kill(self, name: str) -> None:
        """SIGKILL node `name`."""
        self.node(name).kill()

    def restart(self, name: str) -> None:
        """Start node `name` again with its ports and store."""
        self.node(name).start(self.nodes)

    def stop(self) -> None:
        """Kill every node."""
        for node in self.nodes:
            node.kill()

    async def wait_ready(self, within: float = 30.0) -> None:
        """Wait until the cluster can create an R3 stream (a meta leader is elected)."""
        nc = await nats.connect(servers=self.urls, connect_timeout=1, reconnect_time_wait=0.2)
        js = nc.jetstream(timeout=2)
        deadline = time.monotonic() + within
        config = StreamConfig(
            name=_PROBE_STREAM, subjects=["cluster.ready"], storage=StorageType.FILE, num_replicas=3
        )
        try:
            while not await _created(js, config):
                if time.monotonic() > deadline:
                    raise AssertionError(f"the cluster elected no leader in {within:.0f}s")
                await asyncio.sleep(0.2)
            await js.delete_stream(_PROBE_STREAM)
        finally:
            await nc.close()

    async def wait_for_stream(self, stream: str, within: float = 60.0) -> None:
        """Wait until someone (a worker starting) has created `stream`."""
        nc = await nats.connect(servers=self.urls, connect_timeout=1, reconnect_time_wait=0.2)
        js = nc.jetstream(timeout=2)
        deadline = time.monotonic() + within
        try:
            while not await _exists(js, stream):
                if time.monotonic() > deadline:
                    raise AssertionError(f"nobody created stream {stream} in {within:.0f}s")
                await asyncio.sleep(0.2)
        finally:
            await nc.close()

    async def wait_healthy(self, name: str, within: float = 60.0) -> None:
        """Wait until node `name` reports healthy (caught up with its streams)."""
        node = self.node(name)
        deadline = time.monotonic() + within
        while not await asyncio.to_thread(node.healthy):
            if time.monotonic() > deadline:
                raise AssertionError(f"node {name} not healthy after {within:.0f}s")
            await asyncio.sleep(0.2)
