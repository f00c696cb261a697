"""The `hobguard` command line: one program, one sub-command per job.

Each sub-command lives in its own module exposing `register(subparsers)`,
which adds its parser and sets `func` to the function that runs it: the
service's in hobguard.bridge, the user tools' in hobguard.tools, the demo's
and the simulator's beside the simulator (package hobguard_sim; without it,
as in an install without the sim extra, `demo` and `sim` are left out).
Heavy imports happen inside the functions that run a command, so
`hobguard --help` stays fast and a missing optional dependency only affects
the sub-command that needs it.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from . import __version__

# sub-command modules, in --help order
SUBCOMMANDS = [
    "hobguard_sim.demo",
    "hobguard_sim.cli",
    "hobguard.bridge.main",
    "hobguard.tools.deploy",
    "hobguard.tools.update",
    "hobguard.tools.settings",
    "hobguard.tools.keygen",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hobguard",
        description=(
            "hobguard cuts the gas of a hob with a thermocouple flame-failure device: "
            "on a timer, on a command from Home Assistant over MQTT, or when a burner "
            "was left on. It can never open the gas."
        ),
        epilog="Run 'hobguard COMMAND --help' for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"hobguard {__version__}")
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="how much to log (default: info)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
                continue  # the module (or its package) is not installed
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
