"""The ``quota-planner`` command line.

Each command lives in its own module ``planner.cli.cmd_<name>`` exposing ``register(subparsers)``,
which adds its parser and ``set_defaults(func=handler)``; ``handler(args) -> int`` is the exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from planner import __version__

COMMAND_MODULES: tuple[str, ...] = (
    "plan",
    "demo",
    "validate",
    "schema",
    "profile",
    "simulate",
    "report",
    "forecast",
)

DESCRIPTION = """\
Keep a parent account and its sub-accounts supplied with resources before they run short:
forecast each sub-account's needs, arbitrate their bids (greedy or one optimisation program),
and write a verified plan of quotas, loans, shadow quotas and new accounts.

Start with:  quota-planner demo
"""


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (one subcommand per module of COMMAND_MODULES)."""
    parser = argparse.ArgumentParser(
        prog="quota-planner",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"quota-planner {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"planner.cli.cmd_{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (2 for bad input, never a traceback)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    from planner.cli.common import run_guarded

    return run_guarded(args.func, args)


if __name__ == "__main__":
    sys.exit(main())
