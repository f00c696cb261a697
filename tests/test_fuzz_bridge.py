"""Fuzzing the bridge's MQTT command handling.

At least 10,000 payloads per command topic — random bytes, random text,
near misses of every valid payload (case, white space, prefixes, suffixes,
doubled), numbers in every notation (exponents, signs, hex, underscores,
NaN/inf spellings, huge, tiny, negative, non-ASCII digits), JSON, over-long
and non-UTF-8 payloads, some of them retained — go through the bridge's real
on_message handler (Bridge._on_message) with fake MQTT messages, a fake
MQTT connection and a fake device link. For each one:

- nothing raises;
- an invalid payload (judged by an independent oracle written from the
  contract in docs/contract.md, not by the bridge's code), and every retained
  message, sends no device command and publishes exactly one `rejected`
  event on the device's event topic;
- a valid one sends exactly one device command, the one the topic means
  (`gas/set CLOSE` -> cut, never anything that could open gas), with the
  number the payload says, and publishes nothing by itself.

Messages for unknown devices, other base topics and non-command topics are
ignored without a command or a crash.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import re
from typing import Any

import pytest
from hobguard.bridge.commands import BRIDGE_ACTIONS, BURNER_COMMANDS, DEVICE_COMMANDS, MAX_PAYLOAD
from hobguard.testing import FakeLink, FakeMessage, bridge_on_fake_mqtt, serve_fake_device

PER_TOPIC = 10_000
BASE = "fuzz/hobguard"
DEVICE = "hob-fuzz"
BURNERS = ["left", "right"]
TIMER_MAX = 720

# Every command topic that becomes a device command (suffix after
# <base>/<device>/), with what it means. The bridge's own jobs (the update
# entity's install) are fuzzed by test_the_install_topic_takes_only_install.
TOPICS = [s for s, (_, cmd) in DEVICE_COMMANDS.items() if cmd not in BRIDGE_ACTIONS]
TOPICS += [f"{b}/{suffix}" for b in BURNERS for suffix in BURNER_COMMANDS]


@pytest.fixture(scope="module", autouse=True)
def quiet_but_formatted_logs():
    """The bridge logs every rejection: format each line (a payload that
    breaks the log line must show up here) but write it nowhere, rather
    than keep 100,000 records in pytest's log capture."""
    logger = logging.getLogger("hobguard")
    handler = logging.StreamHandler(open(os.devnull, "w"))
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    saved = logger.propagate, logger.level
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    yield
    logger.removeHandler(handler)
    handler.stream.close()
    logger.propagate, logger.level = saved


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz-bridge")
    bridge = bridge_on_fake_mqtt(serial=["/dev/null-not-opened"], bridge_id="fuzz", base_topic=BASE,
                                 discovery_prefix="fuzz/homeassistant", state_file=tmp / "state.json",
                                 request_timeout_s=1.0)  # fmt: skip
    hello = {"device": DEVICE, "burners": BURNERS, "timer_max_min": TIMER_MAX, "proto": 1, "heartbeat_s": 10}
    link = serve_fake_device(bridge, hello).link
    return bridge, link


# -- the oracle: what the contract says is valid -------------------------------------------------

_ASCII_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?\Z")


def expected(suffix: str, payload: bytes, retain: bool) -> tuple[str, dict[str, Any]] | None:
    """The device command a payload must become, or None if it must be rejected."""
    parts = suffix.split("/")
    burner = parts[0] if len(parts) == 3 else None
    action = "/".join(parts[-2:])
    if retain or len(payload) > MAX_PAYLOAD:
        return None
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return None
    args: dict[str, Any] = {"burner": burner} if burner else {}
    if action in ("timer/cancel", "fault/clear"):
        return ("timer_cancel" if action == "timer/cancel" else "clear_fault", args)
    if action == "gas/set":
        return ("cut", args) if text == "CLOSE" else None
    if action == "lock/set":
        return ("lock", {"on": text == "ON"}) if text in ("ON", "OFF") else None
    if action == "presence/set":
        return ("presence", {}) if text == "ON" else None
    if action in ("timer/set", "timer/extend"):
        if not _ASCII_NUMBER.match(text):
            return None  # digits of other scripts ("٥", "５") are refused too
        value = float(text)
        low_ok = value >= 0 if action == "timer/set" else value > 0
        if not (math.isfinite(value) and low_ok and value <= TIMER_MAX):
            return None
        if value != 0 and value * 60 < 0.9995:
            return None  # under one second (review F11): only an exact 0 cancels
        return ("timer_set" if action == "timer/set" else "timer_extend", {**args, "minutes": value})
    raise AssertionError(suffix)


# -- payloads --------------------------------------------------------------------------------

VALID = {
    "gas/set": [b"CLOSE"],
    "lock/set": [b"ON", b"OFF"],
    "presence/set": [b"ON"],
    "timer/set": [b"0", b"1", b"20", b"720", b"0.5", b"1e2", b".5", b"+3"],
    "timer/extend": [b"1", b"10", b"2.5", b"720"],
    "timer/cancel": [b"", b"PRESS", b"1"],
    "fault/clear": [b"", b"PRESS"],
}
NUMBERS = [
    "nan", "NaN", "-nan", "inf", "-inf", "Infinity", "infinity", "1e309", "-1e309", "1e-400", "0x10", "0b1", "0o7",
    "1_0", "٥", "５", "²", "1e", "e5", ".", "-", "+", "--1", "1..2", "1.2.3", "1,5", "10 ", " 10", "10\n", "\t10",
    "721", "720.0001", "-1", "-0", "-0.0", "0.0", "1e3", "7.2e2", "99999999999999999999999", "1" * 70, "0" * 64 + "1",
    "true", "false", "null", "[]", "{}", '"10"', '{"minutes": 10}', "10min", "10m", "¼", "½",
]  # fmt: skip
WORDS = ["close", "Close", "CLOSE ", " CLOSE", "CLOSE\n", "CLOSED", "OPEN", "open", "ON ", "on", "Off", "TRUE", "1",
         "0", "", "CLOSECLOSE", "CL OSE", "ＣＬＯＳＥ", "CLOSE\x00", "\ufeffCLOSE", "null", "{}"]  # fmt: skip


def payloads(suffix: str, rng: random.Random, count: int):
    action = "/".join(suffix.split("/")[-2:])
    valid = VALID[action]
    for _ in range(count):
        r = rng.random()
        if r < 0.15:
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 90)))
        elif r < 0.30:
            data = "".join(chr(rng.choice([rng.randrange(32, 127), rng.randrange(0x80, 0x3000)]))
                           for _ in range(rng.randrange(0, 30))).encode("utf-8", "surrogatepass")  # fmt: skip
        elif r < 0.45:
            data = rng.choice(NUMBERS).encode()
        elif r < 0.55:
            data = rng.choice(WORDS).encode()
        elif r < 0.75:  # near misses of a valid payload
            base = bytearray(rng.choice(valid) or b"X")
            op = rng.randrange(6)
            if op == 0:
                base[rng.randrange(len(base))] ^= 1 << rng.randrange(8)
            elif op == 1:
                base = bytearray(bytes(base).lower() if rng.random() < 0.5 else bytes(base).swapcase())
            elif op == 2:
                base[rng.choice([0, len(base)]) : 0] = rng.choice([b" ", b"\t", b"\n", b"\r\n", b"\x00", b"+", b"-"])
            elif op == 3:
                base = base * 2
            elif op == 4:
                del base[rng.randrange(len(base))]
            else:
                base += rng.choice([b"0", b"e", b".", b"e9", b"e-9", b"%", b"\xff"])
            data = bytes(base)
        elif r < 0.85:  # numbers of every size and form
            value = rng.choice([rng.uniform(-1000, 1000), rng.randrange(-10, 2000), 10 ** rng.randrange(-30, 30)])
            form = rng.choice(["{}", "{:e}", "{:.3f}", "{:g}", "{:+}"])
            data = form.format(value).encode()
        elif r < 0.90:
            data = json.dumps(rng.choice([{"cmd": "open"}, [1], "CLOSE", 5, None, {"minutes": 5}])).encode()
        elif r < 0.95:
            data = rng.choice([b"9" * rng.randrange(60, 70), b"CLOSE" * 20, bytes(rng.randrange(65, 5000))])
        else:
            data = rng.choice(valid)
        yield data, rng.random() < 0.05


@pytest.mark.parametrize("suffix", TOPICS)
def test_ten_thousand_payloads_per_command_topic(rig, suffix):
    bridge, link = rig
    topic = f"{BASE}/{DEVICE}/{suffix}"
    event_topic = f"{BASE}/{DEVICE}/event"
    rng = random.Random(f"{suffix}:20261124")
    accepted = rejected = 0
    for payload, retain in payloads(suffix, rng, PER_TOPIC):
        link.requests.clear()
        bridge.mqtt.clear()
        bridge._on_message(FakeMessage(topic, payload, retain))
        want = expected(suffix, payload, retain)
        published = bridge.mqtt.published
        if retain and not payload:
            # An empty retained message deletes a retained one: nothing to answer.
            assert link.requests == [] and published == []
            rejected += 1
        elif want is None:
            rejected += 1
            assert link.requests == [], f"{suffix} {payload!r} retain={retain} sent {link.requests}"
            # One rejected event; a retained command is also removed from the broker.
            assert [t for t, _, _ in published] == [event_topic] + ([topic] if retain else []), (
                f"{suffix} {payload!r}: published {published}"
            )
            if retain:
                assert published[1][1:] == (b"", True)
            event = json.loads(published[0][1])
            assert event["event_type"] == "rejected" and event["topic"] == topic
        else:
            accepted += 1
            assert len(link.requests) == 1, f"{suffix} {payload!r}: expected {want}, sent {link.requests}"
            cmd, args = link.requests[0]
            assert cmd == want[0] and args.keys() == want[1].keys(), f"{suffix} {payload!r}: {link.requests}"
            for key, value in want[1].items():
                assert args[key] == value, f"{suffix} {payload!r}: {key}={args[key]!r}, expected {value!r}"
            assert published == []
    assert accepted + rejected == PER_TOPIC
    assert accepted > 0 and rejected > PER_TOPIC // 20


def test_no_command_topic_can_open_gas(rig):
    """Every device command the bridge can send, for any payload: none opens."""
    bridge, link = rig
    link.requests.clear()
    rng = random.Random(3)
    for suffix in TOPICS:
        for payload, _ in payloads(suffix, rng, 500):
            bridge._on_message(FakeMessage(f"{BASE}/{DEVICE}/{suffix}", payload))
    assert {cmd for cmd, _ in link.requests} <= {"cut", "lock", "timer_set", "timer_extend", "timer_cancel",
                                                  "clear_fault", "presence"}  # fmt: skip


@pytest.mark.parametrize(
    "topic",
    [
        f"{BASE}/other-hob/gas/set",
        f"{BASE}/{DEVICE}/state",
        f"{BASE}/{DEVICE}/left/state",
        f"{BASE}/{DEVICE}/event",
        f"{BASE}/{DEVICE}/availability",
        f"{BASE}/{DEVICE}/nope/gas/set",
        f"{BASE}/{DEVICE}/left/gas/set/extra",
        f"{BASE}/{DEVICE}/left/timer",
        f"{BASE}/{DEVICE}",
        f"{BASE}/",
        "other/hobguard/hob-fuzz/gas/set",
        "fuzz/homeassistant/status",
        f"{BASE}/bridge/fuzz/availability",
    ],
)
def test_other_topics_never_become_commands(rig, topic):
    bridge, link = rig
    link.requests.clear()
    rng = random.Random(topic)
    for _ in range(300):
        payload = rng.choice([b"CLOSE", b"ON", b"10", b"online", bytes(rng.randrange(256) for _ in range(20))])
        bridge._on_message(FakeMessage(topic, payload, rng.random() < 0.1))
    assert link.requests == []


@pytest.mark.parametrize("payload", ["٥".encode(), "５".encode(), "1٠".encode()])
def test_minutes_in_other_scripts_are_rejected(rig, payload):
    bridge, link = rig
    link.requests.clear()
    bridge._on_message(FakeMessage(f"{BASE}/{DEVICE}/left/timer/set", payload))
    assert link.requests == []


def test_a_retained_command_for_a_device_not_served_yet_is_removed_once_it_is(tmp_path):
    """The broker replays retained commands as soon as the bridge subscribes,
    often before the device has said hello: refused on the bridge's topic
    then, and once the device is served, refused on its own topic too and
    removed from the broker."""
    bridge = bridge_on_fake_mqtt(bridge_id="fuzz", base_topic=BASE, discovery_prefix="fuzz/homeassistant",
                                 state_file=tmp_path / "state.json")  # fmt: skip
    topic = f"{BASE}/hob-later/left/gas/set"
    bridge._on_message(FakeMessage(topic, b"CLOSE", retain=True))
    [(event_topic, payload, retained)] = bridge.mqtt.published
    assert event_topic == f"{BASE}/bridge/fuzz/event" and not retained
    assert json.loads(payload)["reason"] == "retained" and json.loads(payload)["device"] == "hob-later"
    bridge.mqtt.clear()
    link = FakeLink()
    hello = {"device": "hob-later", "burners": BURNERS, "timer_max_min": TIMER_MAX, "proto": 1, "heartbeat_s": 10,
             "warn_before_s": 60, "fw": "1"}  # fmt: skip
    assert bridge.on_hello(link, hello) is True  # type: ignore[arg-type]
    published = bridge.mqtt.published
    rejected = [json.loads(p) for t, p, _ in published if t == f"{BASE}/hob-later/event"]
    assert [(e["reason"], e["burner"], e["topic"]) for e in rejected] == [("retained", "left", topic)]
    assert (topic, b"", True) in published
    assert link.requests == []
    bridge.announcer.stop()


def test_the_install_topic_takes_only_install(rig):
    """The update entity's install topic: every payload but a live `install`
    is rejected; `install` on this rig (a serial link) is refused too, with
    the reason, and nothing ever reaches the device."""
    bridge, link = rig
    topic = f"{BASE}/{DEVICE}/firmware/install"
    rng = random.Random("install")
    link.requests.clear()
    reasons = set()
    for payload, retain in list(payloads("lock/set", rng, 2000)) + [(b"install", False), (b"install", True)]:
        if retain and not payload:
            continue
        bridge.mqtt.clear()
        bridge._on_message(FakeMessage(topic, payload, retain))
        events = [json.loads(p) for t, p, _ in bridge.mqtt.published if t == f"{BASE}/{DEVICE}/event"]
        assert len(events) == 1 and events[0]["event_type"] == "rejected", (payload, bridge.mqtt.published)
        reasons.add(events[0]["reason"])
    assert link.requests == []
    assert {"not_network", "bad_payload", "retained"} <= reasons
