"""GitHub provider timings on the emulator (real PyGithub, git, NATS): `python bench_github.py`.

Prints JSON: event -> GitHub PR open, and review webhook -> merged, in seconds (p50/p99), plus
the API requests promoter made per promotion. The shared write budget runs on a virtual clock
here, so the numbers are the engine's and the emulator's own; with the default budget (60 writes
a minute) a burst beyond ~10 writes is paced to one write a second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from github_world import BOT, VirtualTime, environment, github_world
from harness import Harness, digest
from pydantic import SecretStr

from promoter.gateway.server import Gateway, serve
from promoter.log import configure_logging
from promoter.runtime.emit import image_event
from promoter.runtime.providers import GitHubSetup
from promoter.scm.github.auth import Credentials
from promoter.sources.base import SourceConfig
from promoter.testing.github_emulator import Users
from promoter.testing.github_emulator.client import github_client


def percentile(samples: list[float], q: float) -> float:
    """The q-quantile (nearest rank) of `samples`."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _until(check: Any, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not await asyncio.to_thread(check):
        if time.monotonic() > deadline:
            raise TimeoutError("bench step did not finish")
        await asyncio.sleep(0.005)


async def run(rounds: int) -> dict[str, Any]:
    """`rounds` promotions: build event -> PR, then alice's review -> merged."""
    configure_logging("warning", "console")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        harness = await Harness(root).start()
        clock = VirtualTime()
        with github_world(root, Users(), clock=clock.clock) as github:
            emu = github.emu
            gateway = Gateway(harness.bus, {"github": SourceConfig(secret="s")}, harness.clock)
            async with serve(gateway, "127.0.0.1", 0) as port:
                emu.add_hook(f"http://127.0.0.1:{port}/hooks/github", "s")
                gates = "{approvals: {count: 1, reviewers: [alice]}}"
                (harness.pipelines / "shop.yaml").write_text(
                    github.pipeline(environment("prod", gates=gates))
                )
                harness.github = GitHubSetup(
                    Credentials(token=SecretStr(BOT)), clock=clock.clock, sleep=clock.sleep
                )
                await harness.start_worker()
                repo = github_client(emu.api_url, "alice").get_repo("acme/deploy")
                opened, merged, calls = [], [], []
                for n in range(rounds):
                    emu.reset_calls()
                    started = time.perf_counter()
                    await harness.bus.publish_event(
                        image_event(
                            "ghcr.io/acme/api", digest(n), f"1.0.{n}", {}, now=harness.clock()
                        )
                    )

                    def open_pr() -> bool:
                        return bool(repo.get_pulls(state="open").get_page(0))

                    await _until(open_pr)
                    opened.append(time.perf_counter() - started)
                    [pull] = repo.get_pulls(state="open").get_page(0)
                    started = time.perf_counter()
                    pull.create_review(event="APPROVE")

                    def merged_pr(number: int = pull.number) -> bool:
                        return bool(repo.get_pull(number).merged)

                    await _until(merged_pr)
                    merged.append(time.perf_counter() - started)
                    await harness.quiet()
                    calls.append(sum(1 for c in emu.calls if c.login == BOT))
                await harness.stop_workers()
        await harness.close()
    return {
        "rounds": rounds,
        "event_to_pr_open_s": {"p50": statistics.median(opened), "p99": percentile(opened, 0.99)},
        "review_to_merged_s": {"p50": statistics.median(merged), "p99": percentile(merged, 0.99)},
        "api_requests_per_promotion": {"min": min(calls), "max": max(calls)},
    }


def main() -> None:
    """Run the benchmark and print its JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.rounds)), indent=2))


if __name__ == "__main__":
    main()
