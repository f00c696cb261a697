"""docs/contract.md keeps up with the code it promises: every word of the
shared vocabulary (protocol.py), every command topic the bridge takes,
every `hobguard` command and option, and every page it links to."""

from __future__ import annotations

import argparse
import re

import pytest
from conftest import REPO
from hobguard import cli
from hobguard.bridge.commands import BURNER_COMMANDS, DEVICE_COMMANDS
from hobguard_fw import protocol

CONTRACT = REPO / "docs" / "contract.md"
TEXT = CONTRACT.read_text()
VOCABULARY = ("EVENT_TYPES", "BRIDGE_EVENT_TYPES", "CUT_REASONS", "WARNING_REASONS", "FAULT_CODES")


def not_quoted(words, text: str = TEXT) -> list[str]:
    """The words that do not stand in `code` in the text."""
    quoted = set(re.findall(r"`([^`]+)`", text))
    return [word for word in words if word not in quoted]


def options_missing(options, text: str = TEXT) -> list[str]:
    return sorted(option for option in options if not re.search(re.escape(option) + r"(?![\w-])", text))


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ("hobguard",)):
    """(command words, its parser) for every leaf command of the CLI."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
    for action in subs:
        for name, child in action.choices.items():
            yield from _commands(child, path + (name,))


COMMANDS = list(_commands(cli.build_parser()))


@pytest.mark.parametrize("name", [n for n in VOCABULARY if hasattr(protocol, n)])
def test_every_word_of_the_vocabulary_is_in_the_contract(name: str) -> None:
    missing = not_quoted(getattr(protocol, name))
    assert not missing, f"docs/contract.md does not name these protocol.{name}: {missing}"


def test_every_command_topic_is_in_the_contract() -> None:
    topics = [f"<base>/<device>/{suffix}" for suffix in DEVICE_COMMANDS]
    topics += [f"<base>/<device>/<burner>/{suffix}" for suffix in BURNER_COMMANDS]
    missing = not_quoted(topics)
    assert not missing, f"docs/contract.md does not name these command topics: {missing}"


@pytest.mark.parametrize("words, parser", COMMANDS, ids=[" ".join(w[1:]) for w, _ in COMMANDS])
def test_every_command_and_option_is_in_the_contract(words: tuple[str, ...], parser: argparse.ArgumentParser) -> None:
    command = " ".join(words)
    assert command in TEXT, f"docs/contract.md does not name `{command}`"
    options = {max(a.option_strings, key=len) for a in parser._actions if a.option_strings} - {"--help"}
    missing = options_missing(options)
    assert not missing, f"docs/contract.md does not name these options of `{command}`: {missing}"


def test_every_page_the_contract_links_to_exists() -> None:
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", TEXT):
        assert (CONTRACT.parent / target).exists(), target


def test_the_checks_catch_what_is_missing() -> None:
    """The checks themselves, on the contract with a word, a topic and an
    option taken out."""
    text = TEXT.replace("`quarantined`", "quarantined").replace("`<base>/<device>/lock/set`", "")
    assert not_quoted(["quarantined", "<base>/<device>/lock/set", "cut"], text) == [
        "quarantined",
        "<base>/<device>/lock/set",
    ]
    assert options_missing(["--no-discovery", "--no"], TEXT.replace("--no-discovery", "")) == ["--no", "--no-discovery"]
