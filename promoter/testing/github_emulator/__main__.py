"""`python -m promoter.testing.github_emulator`: serve the GitHub emulator until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from promoter.testing.github_emulator import Users, serve

_EPILOG = """\
git:    clone/push http://HOST:PORT/<owner>/<repo>.git with HTTP Basic auth whose password is a
        token (use a credential helper); repositories are the bare repos under --root.
tokens: without --users (or with no "tokens" in it) every token authenticates as the login it
        spells: "Authorization: token alice" acts as alice.
users file example:
  {"tokens": {"t-alice": "alice", "t-bob": "bob"},
   "teams": {"acme/approvers": ["bob"]},
   "permissions": {"acme/deploy": {"bob": "maintain", "eve": "read"}},
   "apps": {"42": {"public_key": "-----BEGIN PUBLIC KEY-----...", "installation_id": 7,
                   "slug": "promoter"}},
   "token_ttl": 3600}
control: POST /_emulator/faults, GET /_emulator/calls, POST /_emulator/reset
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m promoter.testing.github_emulator",
        description=(
            "Serve a local GitHub REST API emulator (for PyGithub) and git smart HTTP over the\n"
            "bare repositories DIR/<owner>/<repo>.git. Prints the API base URL\n"
            "(http://HOST:PORT/api/v3) on one line once listening; runs until SIGTERM or SIGINT."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--port", type=int, required=True, metavar="PORT", help="TCP port; 0 picks a free one"
    )
    parser.add_argument(
        "--root",
        type=Path,
        required=True,
        metavar="DIR",
        help="directory of bare repositories <owner>/<repo>.git (their API state is kept there)",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", metavar="HOST", help="address to bind (default: 127.0.0.1)"
    )
    parser.add_argument(
        "--users",
        type=Path,
        metavar="FILE",
        help="JSON file with tokens, teams, permissions, apps and token_ttl (example below)",
    )
    return parser


async def _serve(root: Path, users: Users | None, host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with serve(root, users, host=host, port=port) as emulator:
        print(emulator.api_url, flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and serve until stopped."""
    args = _parser().parse_args(argv)
    try:
        users = Users.load(args.users) if args.users else None
    except (OSError, ValueError) as exc:
        print(f"cannot load --users {args.users}: {exc}", file=sys.stderr)
        return 2
    asyncio.run(_serve(args.root, users, args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
