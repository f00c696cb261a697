"""One vocabulary: every event type, cut reason, warning reason and fault code
defined in firmware/hobguard_fw/protocol.py has its words in the one
renderer (hobguard.words), is offered by Home Assistant's event entity
(discovery) and is written down in the docs. Adding an event type is a
change in protocol.py plus its words; this test says what else is missing."""

from __future__ import annotations

import pytest
from conftest import REPO
from hobguard import words
from hobguard.bridge import discovery
from hobguard_fw import protocol
from test_discovery import HELLO


def warning_reasons() -> tuple[str, ...]:
    return tuple(protocol.WARNING_REASONS)


def event_entity_types() -> list[str]:
    topics = discovery.Topics("hobguard", HELLO["device"], "kitchen")
    configs = discovery.configs(topics, HELLO, "homeassistant")
    return configs[f"homeassistant/event/{HELLO['device']}/events/config"]["event_types"]


def _in_docs(text: str, word: str) -> bool:
    return f"`{word}`" in text


def missing() -> list[str]:
    """Every word of the vocabulary that one of its users does not know."""
    problems = []
    device_events = list(protocol.EVENT_TYPES)
    bridge_events = list(protocol.BRIDGE_EVENT_TYPES)
    kinds = {
        "event type": (device_events + bridge_events, words.EVENT_WORDS),
        "cut reason": (list(protocol.CUT_REASONS), words.CUT_REASON_WORDS),
        "warning reason": (list(warning_reasons()), words.WARNING_WORDS),
        "fault code": (list(protocol.FAULT_CODES), words.FAULT_WORDS),
    }
    for kind, (vocabulary, rendered) in kinds.items():
        problems += [f"{kind} {w!r}: no words in hobguard/words.py" for w in vocabulary if w not in rendered]
    entity = event_entity_types()
    problems += [
        f"event type {t!r}: not in Home Assistant's event entity (discovery)"
        for t in device_events + bridge_events
        if t not in entity
    ]
    docs = {name: (REPO / "docs" / name).read_text() for name in ("protocol.md", "contract.md", "bridge.md")}
    for kind, vocabulary, where in (
        ("event type", device_events, ("protocol.md", "contract.md")),
        ("bridge event type", bridge_events, ("bridge.md", "contract.md")),
        ("cut reason", protocol.CUT_REASONS, ("protocol.md", "contract.md")),
        ("warning reason", warning_reasons(), ("protocol.md", "contract.md")),
        ("fault code", protocol.FAULT_CODES, ("protocol.md", "contract.md")),
    ):
        for name in where:
            problems += [f"{kind} {w!r}: not in docs/{name}" for w in vocabulary if not _in_docs(docs[name], w)]
    return problems


def test_every_word_of_the_vocabulary_is_rendered_offered_and_documented():
    assert missing() == []


def test_a_new_event_type_or_reason_is_caught_everywhere(monkeypatch):
    """The check can fail: a word added to protocol.py alone is reported
    missing from the renderer, the event entity and the docs."""
    monkeypatch.setattr(protocol, "EVENT_TYPES", protocol.EVENT_TYPES + ("teleported",))
    monkeypatch.setattr(protocol, "CUT_REASONS", protocol.CUT_REASONS + ("whim",))
    monkeypatch.setattr(protocol, "FAULT_CODES", protocol.FAULT_CODES + ("gremlin",))
    problems = missing()
    assert "event type 'teleported': no words in hobguard/words.py" in problems
    assert "event type 'teleported': not in Home Assistant's event entity (discovery)" in problems
    assert "event type 'teleported': not in docs/protocol.md" in problems
    assert "event type 'teleported': not in docs/contract.md" in problems
    assert "cut reason 'whim': no words in hobguard/words.py" in problems
    assert "cut reason 'whim': not in docs/protocol.md" in problems
    assert "fault code 'gremlin': no words in hobguard/words.py" in problems


@pytest.mark.parametrize("event_type", list(protocol.EVENT_TYPES) + list(protocol.BRIDGE_EVENT_TYPES))
def test_every_event_type_has_its_own_words(event_type):
    frame = {"t": "evt", "event_type": event_type, "burner": "left", "reason": "timer", "seq": 4}
    said = words.event(frame)
    assert said and not said.startswith(f"{event_type}: "), said  # not the fallback for unknown types
    assert words.label(frame)


@pytest.mark.parametrize("reason", protocol.CUT_REASONS)
def test_every_cut_reason_is_said(reason):
    said = words.event({"event_type": "cut", "burner": "left", "reason": reason, "flame": True})
    assert said == f"CUT left: {words.CUT_REASON_WORDS[reason]} (flame on)"


@pytest.mark.parametrize("code", protocol.FAULT_CODES)
def test_every_fault_code_is_said(code):
    said = words.event({"event_type": "fault", "burner": "left", "reason": code, "detail": "seen"})
    assert said == f"FAULT left: {words.FAULT_WORDS[code]} ({code}): seen"


@pytest.mark.parametrize("reason", warning_reasons())
def test_every_warning_reason_is_said(reason):
    with_burner = words.event({"event_type": "warning", "burner": "left", "reason": reason, "cut_in_s": 60})
    hob = words.event({"event_type": "warning", "burner": None, "reason": reason, "errors": ["x: bad"]})
    assert words.WARNING_WORDS[reason] in with_burner and words.WARNING_WORDS[reason] in hob


def test_what_the_renderer_does_not_know_is_shown_as_it_came():
    """A newer device's event, reason or code: its own words, never a crash."""
    assert words.event({"event_type": "teleported", "burner": "left", "seq": 3}) == "teleported: burner=left"
    assert words.event({"event_type": "cut", "burner": "left", "reason": "whim"}) == "CUT left: whim"
    assert words.cut_reason(None) == "None" and words.fault(7) == "7"
