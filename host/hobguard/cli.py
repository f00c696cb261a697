"""The `hobguard` command line: one program, one sub-command per job.

Each sub-command lives in its own module exposing `register(subparsers)`,
which adds its parser and sets `func` to the function that runs it: the
service's in hobguard.bridge, the user tools' in hobguard.tools, the demo's
and the simulator's beside the simulator (package hobguard_sim).
Heavy imports happen inside the functions that run a command, so
`hobguard --help` stays fast and a missing optional dependency only affects
the sub-command that needs it.

Commands that need an extra (hobguard.extras: `device` for deploy and
flash, `sim` for demo and sim) are always listed; while the extra is
missing, --help marks them and running one says what to install (exit
status 2) instead of failing half-way.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from . import __version__, extras

# sub-command modules, in --help order, with the commands each registers
SUBCOMMANDS = [
    ("hobguard_sim.demo", ("demo",)),
    ("hobguard_sim.cli", ("sim",)),
    ("hobguard.bridge.main", ("bridge",)),
    ("hobguard.tools.deploy", ("flash", "deploy", "repl")),
    ("hobguard.tools.update", ("update",)),
    ("hobguard.tools.settings", ("settings",)),
    ("hobguard.tools.keygen", ("keygen",)),
]


def _not_installed(sub: argparse._SubParsersAction, command: str, extra: str, module: str) -> None:
    """A stand-in for a command whose module is not installed: listed, and
    saying what to install when run."""
    message = extras.missing_message(command, extra, [module])
    parser = sub.add_parser(command, help=extras.help_note(extra), description=message)
    parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    parser.set_defaults(func=lambda args: _refuse(message))


def _refuse(message: str) -> int:
    print(message, file=sys.stderr)
    return 2


def missing_extra(command: str | None) -> str | None:
    """The message for a command whose extra is not installed, else None."""
    extra = extras.extra_of(command or "")
    if extra is None:
        return None
    missing = extras.missing_modules(extra)
    return extras.missing_message(str(command), extra, missing) if missing else None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hobguard",
        description=(
            "hobguard cuts the gas of a hob with a thermocouple flame-failure device: "
            "on a timer, on a command from Home Assistant over MQTT, when a burner "
            "was left on or left unattended, or when its flame went out. It can never open the gas."
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
    for name, commands in SUBCOMMANDS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
                # the module (or its package) is not installed
                for command in commands:
                    extra = extras.extra_of(command)
                    if extra is not None:
                        _not_installed(sub, command, extra, exc.name)
                continue
            raise
        module.register(sub)
    for action in sub._choices_actions:
        extra = extras.extra_of(action.dest)
        if extra is not None and extras.missing_modules(extra) and extras.help_note(extra) not in (action.help or ""):
            action.help = f"{action.help or ''} {extras.help_note(extra)}".strip()
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
    refusal = missing_extra(args.command)
    if refusal:
        return _refuse(refusal)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
