"""What a device says, checked at the bridge's edge (issue 9, item 4).

Two sides of one rule set (protocol.hello_problem, hobguard.bridge.edge):

- nothing the real firmware says is refused: every frame of every scenario
  in the library (state, events, replies, with faults, resets, link loss
  and the tick wrap) passes the checks, so a healthy hob is never
  quarantined;
- nothing a device says can make the bridge publish to a topic a broker
  would refuse, publish something Home Assistant cannot read, raise in a
  callback, or publish under an id the device did not say. Thousands of
  hostile frames (mutations of good ones, ids with control characters,
  wildcards, slashes, huge and non-finite numbers, wrong types, long text)
  go through a real DeviceLink — over a socket pair, which also shows the
  link works over any transport — into a real Bridge whose MQTT side is a
  recorder that checks every publish the way a broker would.
"""

from __future__ import annotations

import json
import logging
import random
import socket
import threading
from typing import Any

import pytest
from hobguard.bridge import edge
from hobguard.bridge.device_link import DeviceLink
from hobguard.bridge.service import Bridge
from hobguard.testing import FakeMqtt, bridge_on_fake_mqtt, wait_for
from hobguard_fw import protocol
from hobguard_sim import scenario

# -- the real firmware is never refused ---------------------------------------------------------

LIBRARY = scenario.library()


@pytest.mark.parametrize("path", LIBRARY, ids=[p.stem for p in LIBRARY])
def test_every_frame_the_real_firmware_sends_passes_the_bridge_checks(path) -> None:
    spec = scenario.load(path)
    result = scenario.run(spec)
    settings = dict(spec.settings or {})
    hello = None
    checked = 0
    for message in result.messages:
        frame = {k: v for k, v in message.frame.items() if k != "_t_ms"}
        kind = frame.get("t")
        if kind == "ok" and "proto" in frame:
            hello = {k: v for k, v in frame.items() if k not in ("t", "id")}
            assert protocol.hello_problem(hello) is None, (path.stem, hello)
    states = [state for _, state in result.states]
    assert states, "the scenario heard no state"
    hello = hello or {
        "proto": protocol.PROTOCOL_VERSION,
        "fw": "0.1.0",
        "device": states[0]["device"],
        "burners": spec.burners,
        "timer_max_min": settings.get("timer_max_min", 720),
        "warn_before_s": settings.get("warn_before_s", 60),
        "heartbeat_s": settings.get("heartbeat_s", 10),
    }
    assert protocol.hello_problem(hello) is None
    for state in states:
        assert edge.state_problem(state, hello) is None, (path.stem, state)
        checked += 1
    for message in result.messages:
        frame = {k: v for k, v in message.frame.items() if k != "_t_ms"}
        if frame.get("t") == "evt":
            assert edge.event_problem(frame, hello) is None, (path.stem, frame)
            checked += 1
        elif frame.get("t") == "err":
            assert edge.error_reply_problem(frame) is None, (path.stem, frame)
    assert checked


# -- hostile devices --------------------------------------------------------------------------


class SocketTransport:
    """A DeviceLink transport over one end of a socket pair."""

    def __init__(self, sock: socket.socket) -> None:
        self.name = "socketpair"
        self.sock = sock

    def open(self) -> None:
        self.sock.setblocking(False)

    def fileno(self) -> int:
        return self.sock.fileno()

    def read(self) -> bytes:
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return b""
        if not data:
            raise OSError("socket closed")
        return data

    def write(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        pass


class FakeDeviceEnd:
    """The device's end of the socket pair: answers hello with `hello`."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.hello: dict[str, Any] = dict(GOOD_HELLO)
        self.reader = protocol.LineReader(protocol.MAX_REQUEST)
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def send(self, frame: dict[str, Any] | bytes) -> None:
        data = frame if isinstance(frame, bytes) else protocol.encode(frame).encode()
        self.sock.sendall(data)

    def _run(self) -> None:
        self.sock.settimeout(0.05)
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except (TimeoutError, OSError):
                continue
            for line in self.reader.feed(data):
                try:
                    request_id, cmd, _ = protocol.parse_request(line or b"")
                except protocol.ProtocolError:
                    continue
                if cmd == "hello":
                    self.send(protocol.reply_ok(request_id, **self.hello))
                else:
                    self.send(protocol.reply_ok(request_id, state=good_state(self.hello.get("device"))))

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(2)


GOOD_HELLO = {
    "proto": 1,
    "fw": "0.1.0",
    "device": "hob-fuzz",
    "burners": ["left", "right"],
    "timer_max_min": 720,
    "warn_before_s": 60,
    "heartbeat_s": 10,
    "unattended_min": 15,
    "flame_loss_cut": True,
}


def good_state(device: Any) -> dict[str, Any]:
    return {
        "t": "state",
        "device": device,
        "locked": False,
        "fault": None,
        "uptime_s": 12,
        "reset_cause": "power_on",
        "events_dropped": 0,
        "unattended_cut_in_s": None,
        "burners": [
            {"id": b, "gas": "closed", "relay": "closed", "flame": "off", "tc_mv": 0.1, "timer_remaining_s": None,
             "left_on_cut_in_s": None, "last_cut_reason": None, "cutting": False, "fault": None}
            for b in ("left", "right")
        ],
    }  # fmt: skip


NASTY = [
    "", " ", "\n", "a\nb", "\x00", "\x1b[2J", "+", "#", "/", "../x", "a/b", "$SYS", "hob-1\n", "Hob", "é", "\u2028",
    "x" * 40, "y" * 5000, "left", "bridge", "hob-fuzz", "hob-other", "ignited", "cut",
]  # fmt: skip
NASTY_VALUES: list[Any] = [
    None, True, False, 0, -1, 1e300, -1e300, 10**30, 2**63, 1.5, "1", "nan", [], [1, 2], {}, {"a": {"b": 1}},
    list(range(50)),
] + NASTY  # fmt: skip


def mutate(rng: random.Random, value: Any, depth: int = 0) -> Any:
    """A hostile variant of a JSON value."""
    if isinstance(value, dict) and depth < 3 and rng.random() < 0.7:
        out = dict(value)
        for _ in range(rng.randrange(1, 3)):
            key = rng.choice(list(out) + [rng.choice(NASTY)]) if out else rng.choice(NASTY)
            out[key] = mutate(rng, out.get(key), depth + 1)
        return out
    if isinstance(value, list) and value and depth < 3 and rng.random() < 0.7:
        out = list(value)
        index = rng.randrange(len(out))
        out[index] = mutate(rng, out[index], depth + 1)
        return out
    return rng.choice(NASTY_VALUES)


def hostile_frames(rng: random.Random, count: int):
    events = [
        {"t": "evt", "event_type": e, "burner": "left", "reason": "timer", "seq": 1} for e in protocol.EVENT_TYPES
    ]
    for _ in range(count):
        r = rng.random()
        if r < 0.45:
            yield mutate(rng, good_state(rng.choice(["hob-fuzz", "hob-fuzz", "hob-other"])))
        elif r < 0.85:
            yield mutate(rng, rng.choice(events))
        else:
            yield {"t": "evt", "event_type": "boot", "reset_cause": "power_on", "seq": 1}


@pytest.fixture
def hostile_rig(tmp_path):
    bridge = bridge_on_fake_mqtt(bridge_id="fuzz", base_topic="fuzz/hobguard", discovery_prefix="fuzz/homeassistant",
                                 state_file=tmp_path / "state.json")  # fmt: skip
    rules = bridge.mqtt  # records every publish, checked as a broker would take it
    bridge.announcer.start()
    host_end, device_end = socket.socketpair()
    device = FakeDeviceEnd(device_end)
    link = DeviceLink(SocketTransport(host_end), bridge, request_timeout_s=0.5, backoff_max_s=0.2)
    bridge.links.append(link)
    link.start()
    yield bridge, rules, device, link
    link.stop()
    bridge.announcer.stop()
    device.stop()
    host_end.close()
    device_end.close()


def _check_published(bridge: Bridge, rules: FakeMqtt, said: set[str]) -> None:
    assert not rules.violations, rules.violations[:5]
    base = bridge.base + "/"
    for topic, _data, _ in rules.published:
        if topic.startswith(base):
            level = topic[len(base) :].split("/")[0]
            assert level == "bridge" or level in said, f"published under {level!r}, which no good hello said"
        else:
            assert topic.startswith("fuzz/homeassistant/"), topic


def test_thousands_of_hostile_frames_never_reach_mqtt_as_anything_bad(hostile_rig, caplog) -> None:
    bridge, rules, device, link = hostile_rig
    caplog.set_level(logging.WARNING)
    wait_for(lambda: link.online, 10, what="the good device online")
    rng = random.Random(20261129)
    sent = 0
    for frame in hostile_frames(rng, 3000):
        device.send(frame)
        sent += 1
        if sent % 200 == 0:  # let the link keep up (and re-identify after boots)
            wait_for(lambda s=sent: link.stats.frames + link.stats.bad_lines >= s, 10, what="the link reading")
    wait_for(lambda: link.stats.frames + link.stats.bad_lines >= sent, 20, what="every frame read")
    _check_published(bridge, rules, {"hob-fuzz"})
    assert link.stats.frames_refused > 500, "the fuzzer hardly tried"
    published_states = [json.loads(d) for t, d, _ in rules.published if t.endswith("/left/state") and d]
    assert published_states
    for state in published_states:
        assert state["gas"] in ("open", "closed", "unknown") or edge.is_token(state["gas"])
    assert "error in a link listener" not in caplog.text
    assert "error in a reply handler" not in caplog.text


def test_hostile_hellos_are_quarantined_and_publish_nothing_under_their_id(hostile_rig, caplog) -> None:
    bridge, rules, device, link = hostile_rig
    wait_for(lambda: link.online, 10, what="the good device online")
    rng = random.Random(7)
    quarantines = too_long = 0
    for _ in range(150):
        hello = mutate(rng, dict(GOOD_HELLO))
        device.hello = hello if isinstance(hello, dict) else dict(GOOD_HELLO)
        # Each round starts with no hello in flight (the link serves the device
        # or is quarantined), so the next hello the link reads an answer to is
        # the one it asks after this boot, and the device answers it with the
        # hello just set. The boot clears any quarantine before that answer.
        checks, bad_lines = link.stats.identity_checks, link.stats.bad_lines
        device.send({"t": "evt", "event_type": "boot", "reset_cause": "power_on", "seq": 1})
        wait_for(
            lambda c=checks, b=bad_lines: link.stats.identity_checks > c or link.stats.bad_lines > b,
            5,
            what="the hello answered",
        )
        if link.stats.identity_checks == checks:
            # An answer longer than a line may be is dropped unread: nothing is
            # served from the device, it is asked again (a good hello then).
            assert len(protocol.encode(protocol.reply_ok(1, **device.hello))) > protocol.MAX_LINE
            assert not link.ready
            too_long += 1
            device.hello = dict(GOOD_HELLO)
            wait_for(lambda: link.ready, 10, what="the good hello asked again")
            continue
        if protocol.hello_problem(device.hello) is not None:
            wait_for(lambda: link.quarantined, 5, what="quarantine")
            quarantines += 1
            device.send(good_state(device.hello.get("device")))
        else:
            wait_for(lambda: link.ready or link.quarantined or link.standby, 5, what="the hello judged")
    said = {"hob-fuzz"} | {h for h in [device.hello.get("device")] if protocol.hello_problem(device.hello) is None}
    assert quarantines > 50 and too_long
    _check_published(bridge, rules, said | set(bridge.devices))
    for name in bridge.devices:
        assert protocol.is_device_id(name) and name not in protocol.RESERVED_DEVICE_IDS
    assert "error in a link listener" not in caplog.text


def test_the_hello_bounds_are_the_settings_check_bounds() -> None:
    """One set of rules: what the bridge accepts in a hello is what the
    settings check lets onto a board, no more, no less."""
    from hobguard_fw import settings, settings_rules

    for key, (low, high) in protocol.HELLO_LIMITS.items():
        kind, settings_low, settings_high = settings_rules._LIMITS[key]
        assert (low, high) == (settings_low, settings_high), key
    defaults = settings.defaults()
    hello = {"proto": 1, "fw": "0.1.0", "device": "hob-1a2b3c", "burners": [b["id"] for b in defaults["burners"]],
             **{k: defaults[k] for k in protocol.HELLO_LIMITS}}  # fmt: skip
    assert protocol.hello_problem(hello) is None


NETWORK_STATE = {"wifi": "up", "rssi": -61, "net_clients": 1, "net_auth_failures": 0, "net_frames_refused": 0}


def _network_value_ok(key: str, value: Any) -> bool:
    """What a board with a network link may say, written from docs/protocol.md."""
    if value is None:
        return True
    if key == "wifi":
        return (
            isinstance(value, str)
            and 0 < len(value) <= 32
            and all(c in "abcdefghijklmnopqrstuvwxyz0123456789_" for c in value)
        )
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return False
    return -128 <= value <= 0 if key == "rssi" else 0 <= value <= 1e12


@pytest.mark.parametrize("key", sorted(NETWORK_STATE))
def test_the_network_link_fields_of_a_state_frame_are_checked_too(key: str) -> None:
    """The Wi-Fi diagnostics reach MQTT and Home Assistant like the rest of
    the state: a bad value refuses the frame."""
    good = {**good_state("hob-fuzz"), **NETWORK_STATE}
    assert edge.state_problem(good, GOOD_HELLO) is None
    for value in NASTY_VALUES + [1, 5, -129, 0.5, 1e13, float("nan"), float("inf"), "connecting", "down"]:
        problem = edge.state_problem({**good, key: value}, GOOD_HELLO)
        assert (problem is None) == _network_value_ok(key, value), (key, value, problem)
