"""The optional parts of an install, and what to say when one is missing.

`pip install hobguard` / `pipx install hobguard` brings the bridge, keygen,
settings and update. Two extras add the rest (pyproject.toml's
[project.optional-dependencies]; tests/test_packaging.py keeps this table
and that one in step):

- device: deploy, flash and repl, the board on USB (mpremote, esptool);
- sim:    demo and sim, the simulator's embedded broker and plots (amqtt,
          matplotlib).

The commands that need an extra stay in `hobguard --help`, with a note when
it is missing, and say how to install it when run.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass


@dataclass(frozen=True)
class Extra:
    name: str
    what: str  # "COMMAND needs WHAT"
    modules: tuple[str, ...]  # import names of the extra's packages
    commands: tuple[str, ...]


EXTRAS = {
    "device": Extra(
        "device", "the USB tools (mpremote, esptool)", ("mpremote", "esptool"), ("deploy", "flash", "repl")
    ),
    "sim": Extra("sim", "the simulator (amqtt, matplotlib)", ("amqtt", "matplotlib"), ("demo", "sim")),
}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def missing_modules(extra: str) -> list[str]:
    """The extra's modules that cannot be imported here."""
    return [module for module in EXTRAS[extra].modules if not _installed(module)]


def extra_of(command: str) -> str | None:
    for extra in EXTRAS.values():
        if command in extra.commands:
            return extra.name
    return None


def install_hint(extra: str) -> str:
    spec = f"'hobguard[{extra}]'"
    return (
        f"Install hobguard with the {extra} extra: pipx install --force {spec} "
        f"(or, in a virtual environment: pip install {spec})."
    )


def missing_message(command: str, extra: str, modules: list[str] | None = None) -> str:
    """What `hobguard COMMAND` says when its extra is not installed."""
    missing = missing_modules(extra) if modules is None else modules
    return (
        f"hobguard {command} needs {EXTRAS[extra].what}, which this install of hobguard does not have "
        f"(missing: {', '.join(missing)}). {install_hint(extra)}"
    )


def help_note(extra: str) -> str:
    """Added to a command's line in `hobguard --help` while its extra is missing."""
    return f"[not installed: needs hobguard[{extra}]]"
