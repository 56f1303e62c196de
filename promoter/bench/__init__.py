"""`promoter bench`: promoter's speed measured beside the floors of this machine, in one run."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json

from promoter.log import configure_logging

__all__ = ["SCENARIOS", "add_bench_command"]

SCENARIOS = ["floors", "latency", "github", "throughput", "burst", "scale"]


def _positive(text: str) -> int:
    """An integer of at least 1 (argparse type)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is too few; give at least 1")
    return value


def _cmd_bench(args: argparse.Namespace) -> int:
    from promoter.bench.report import Progress, render  # noqa: PLC0415 (keeps the CLI quick)
    from promoter.bench.runner import QUICK, Sizes, run_bench  # noqa: PLC0415

    chosen = args.scenario or SCENARIOS
    scenarios = [s for s in SCENARIOS if s in chosen]
    sizes = QUICK if args.quick else Sizes()
    if args.samples:
        sizes = dataclasses.replace(sizes, samples=args.samples)
    configure_logging("error", "console")  # the bench's own output is the report
    progress = Progress(sizes.steps(scenarios))
    try:
        results = asyncio.run(run_bench(scenarios, sizes, progress))
    finally:
        progress.close()
    print(json.dumps(results, indent=2) if args.json else render(results))
    return 0


def add_bench_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `promoter bench`."""
    bench = commands.add_parser(
        "bench",
        help="measure event → PR latency, events/s, a burst and 1,000 pipelines beside the floors",
        description="Measure promoter on this machine beside the floors (bare git commit+push, "
        "bare NATS round trip and consume rate), all on an embedded nats-server and local git "
        "in a temporary directory, in one run. Prints a report with each goal met or not; "
        "--json prints one object. The README's 'Performance' section says how to read it.",
    )
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.add_argument(
        "--scenario",
        action="append",
        choices=SCENARIOS,
        metavar="NAME",
        help=f"run only these (repeatable): {', '.join(SCENARIOS)}; default: all",
    )
    bench.add_argument(
        "--quick",
        action="store_true",
        help="small sizes (20 samples, 5 GitHub rounds, 2,000 events, 100 pipelines)",
    )
    bench.add_argument(
        "--samples", type=_positive, metavar="N", help="latency samples (default 100)"
    )
    bench.set_defaults(handler=_cmd_bench)
