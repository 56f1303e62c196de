"""The `promoter` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from promoter import __version__
from promoter.bench import add_bench_command
from promoter.core.compiled import compile_pipeline
from promoter.core.loader import validate_paths
from promoter.demo import add_demo_command
from promoter.errors import PromoterError
from promoter.gateway.commands import add_gateway_commands
from promoter.log import configure_logging
from promoter.runtime.commands import add_runtime_commands
from promoter.schemas import check_schemas, write_schemas
from promoter.settings import load_settings
from promoter.simulate import Simulator, decision_lines, read_timeline

__all__ = ["main"]

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2


def _cmd_validate(args: argparse.Namespace) -> int:
    loaded, problems = validate_paths(args.paths)
    for problem in problems:
        print(problem)
    if not loaded and not problems:
        print(
            f"promoter validate: no pipeline files found in {' '.join(args.paths)}", file=sys.stderr
        )
        return EXIT_INVALID
    if problems:
        print(f"{len(problems)} problem(s) found", file=sys.stderr)
        return EXIT_INVALID
    print(f"ok: {len(loaded)} pipeline(s) valid", file=sys.stderr)
    return EXIT_OK


def _cmd_schema(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if args.check:
        drift = check_schemas(out)
        for name in drift:
            print(f"{out / name}: out of date; run `promoter schema --out {out}`", file=sys.stderr)
        return EXIT_INVALID if drift else EXIT_OK
    for path in write_schemas(out):
        print(path)
    return EXIT_OK


def _parse_time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid RFC 3339 time {text!r}") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"time {text!r} needs a zone, e.g. Z or +02:00")
    return value


def _cmd_simulate(args: argparse.Namespace) -> int:
    loaded, problems = validate_paths([args.pipelines])
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        return EXIT_INVALID
    entries = read_timeline(Path(args.timeline))
    simulator = Simulator(compile_pipeline(item.pipeline) for item in loaded)
    for line in decision_lines(simulator.run(entries, args.until)):
        print(line, flush=False)
    for entry in simulator.unrouted:
        print(
            f"{args.timeline}:{entry.line}: no pipeline or environment matches; ignored",
            file=sys.stderr,
        )
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    parser = argparse.ArgumentParser(
        prog="promoter",
        description="Event-driven GitOps promotion: images and ML models move through environments "
        "by pull request, gated on health, soak, approvals, windows and residency.",
    )
    parser.add_argument("--version", action="version", version=f"promoter {__version__}")
    parser.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        help="default: PROMOTER_LOG_LEVEL or info",
    )
    parser.add_argument(
        "--log-format",
        choices=["auto", "json", "console"],
        help="default: PROMOTER_LOG_FORMAT or auto",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    validate = commands.add_parser(
        "validate",
        help="check pipeline files; print every problem as FILE:LINE:COL: message",
        description="Validate pipeline YAML files (directories are searched for *.yaml and *.yml). "
        "Exit 0 when all are valid, 1 otherwise.",
    )
    validate.add_argument("paths", nargs="+", metavar="PATH", help="pipeline file or directory")
    validate.set_defaults(handler=_cmd_validate)

    schema = commands.add_parser(
        "schema",
        help="write the JSON Schemas of pipelines and events",
        description="Generate JSON Schemas from the models; --check exits 1 if files differ.",
    )
    schema.add_argument("--out", default="schemas", help="directory (default: schemas)")
    schema.add_argument("--check", action="store_true", help="compare instead of writing")
    schema.set_defaults(handler=_cmd_schema)

    simulate = commands.add_parser(
        "simulate",
        help="replay a JSON Lines timeline on virtual time; print one JSON object per decision",
        description="Replay a timeline of events, approvals, rejections, holds and resumes through "
        "the planner on virtual time. Timers (soak ends, windows opening) fire at their "
        "exact time. "
        "In simulation an auto PR merges as soon as it opens, an approval PR when approved, and "
        "merged means live.",
    )
    simulate.add_argument(
        "--pipelines", required=True, metavar="DIR", help="pipeline file or directory"
    )
    simulate.add_argument("--timeline", required=True, metavar="FILE", help="JSON Lines timeline")
    simulate.add_argument(
        "--until",
        type=_parse_time,
        metavar="TIME",
        help="stop virtual time here (RFC 3339); default: 30 days after the last line",
    )
    simulate.set_defaults(handler=_cmd_simulate)
    add_runtime_commands(commands)
    add_gateway_commands(commands)
    add_demo_command(commands)
    add_bench_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except PromoterError as exc:
        print(f"promoter: {exc}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(args.log_level or settings.log_level, args.log_format or settings.log_format)
    args.settings = settings
    try:
        code: int = args.handler(args)
    except PromoterError as exc:
        print(f"promoter {args.command}: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except BrokenPipeError:
        return EXIT_OK
    except KeyboardInterrupt:
        return 130
    return code
