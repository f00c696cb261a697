"""The serial link against a protocol-level fake device behind a pty:
hello, request ids and replies, timeouts, garbage, silence, unplugging."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fakedevice import FakeDevice
from hobguard.bridge.device_link import DeviceLink, Reply
from hobguard.testing import wait_for


class Listener:
    """Records what a link tells the bridge, with the device id it says it is for."""

    def __init__(self) -> None:
        self.hellos: list[dict] = []
        self.states: list[tuple[str, dict]] = []
        self.events: list[tuple[str, dict]] = []
        self.availability: list[tuple[str, bool, str]] = []
        self.problems: list[tuple[str | None, str, str]] = []
        self.explode = False
        self.refuse: set[str] = set()

    def on_hello(self, link: DeviceLink, info: dict) -> bool:
        self.hellos.append(info)
        return info["device"] not in self.refuse

    def on_state(self, link: DeviceLink, device_id: str, frame: dict) -> None:
        if self.explode:
            raise RuntimeError("listener bug")
        self.states.append((device_id, frame))

    def on_event(self, link: DeviceLink, device_id: str, frame: dict) -> None:
        self.events.append((device_id, frame))

    def on_availability(self, link: DeviceLink, device_id: str, online: bool, reason: str) -> None:
        self.availability.append((device_id, online, reason))

    def on_problem(self, link: DeviceLink, device_id: str | None, kind: str, detail: str) -> None:
        self.problems.append((device_id, kind, detail))


@pytest.fixture
def rig(tmp_path: Path):
    device = FakeDevice(tmp_path / "tty")
    listener = Listener()
    links: list[DeviceLink] = []

    def make(**kw: Any) -> DeviceLink:
        kw.setdefault("request_timeout_s", 1.0)
        kw.setdefault("backoff_max_s", 0.5)
        link = DeviceLink(str(tmp_path / "tty"), listener, **kw)
        link.start()
        links.append(link)
        return link

    yield device, listener, make
    for link in links:
        link.stop()
    device.close()


def call(link: DeviceLink, cmd: str, **args: Any) -> Reply:
    done: list[Reply] = []
    event = threading.Event()

    def on_done(reply: Reply) -> None:
        done.append(reply)
        event.set()

    link.request(cmd, on_done, **args)
    assert event.wait(10), "no reply and no timeout"
    assert len(done) == 1
    return done[0]


def test_hello_then_command_with_request_id(rig) -> None:
    device, listener, make = rig
    link = make()
    wait_for(lambda: link.online, what="online")
    assert listener.hellos[0]["device"] == "fake-1"
    assert link.device_id == "fake-1"
    wait_for(lambda: listener.states, what="the status snapshot after hello")
    reply = call(link, "cut", burner="left")
    assert reply.ok and reply.cmd == "cut" and reply.state["device"] == "fake-1" and reply.device == "fake-1"
    assert reply.latency_s >= 0
    ids = [r[0] for r in device.received]
    assert len(ids) == len(set(ids)), "request ids are unique"
    assert "cut" in [r[1] for r in device.received]


def test_device_refusal_carries_code_and_message(rig) -> None:
    device, listener, make = rig
    device.refuse["timer_set"] = ("refused", "the hob is locked")
    link = make()
    wait_for(lambda: link.online)
    reply = call(link, "timer_set", burner="left", minutes=5)
    assert not reply.ok and reply.code == "refused" and reply.message == "the hob is locked"


def test_no_answer_is_a_timeout(rig) -> None:
    device, listener, make = rig
    link = make(request_timeout_s=0.3)
    wait_for(lambda: link.online)
    device.answer = False
    started = time.monotonic()
    reply = call(link, "cut", burner="left")
    assert not reply.ok and reply.code == "timeout"
    assert time.monotonic() - started >= 0.3
    assert link.stats.timeouts == 1


def test_commands_before_hello_are_refused_at_once(rig) -> None:
    device, listener, make = rig
    device.answer_hello = False
    link = make()
    reply = call(link, "cut")
    assert not reply.ok and reply.code == "device_offline"
    assert not link.online
    # The link keeps saying hello until the device answers.
    wait_for(lambda: sum(1 for r in device.received if r[1] == "hello") >= 2, 10, what="hello retries")
    device.answer_hello = True
    wait_for(lambda: link.online, 15, what="online after a late hello")


def test_garbage_on_the_line_is_ignored(rig) -> None:
    device, listener, make = rig
    link = make()
    wait_for(lambda: link.online)
    device.send(b"\x00\xff garbage\n")
    device.send(b'HG1 {"t": "evt"} *00000000\n')  # bad checksum
    device.send(b"x" * 5000 + b"\n")  # over-long
    device.send({"t": "evt", "event_type": "ignited", "burner": "left", "seq": 5})
    wait_for(lambda: listener.events, what="the good event after the garbage")
    assert listener.events[0] == ("fake-1", {"t": "evt", "event_type": "ignited", "burner": "left", "seq": 5})
    assert link.stats.bad_lines >= 3
    assert call(link, "ping").ok


def test_silence_makes_the_device_offline_and_frames_bring_it_back(rig) -> None:
    device, listener, make = rig
    link = make(offline_after_s=0.5)
    wait_for(lambda: link.online)
    wait_for(lambda: listener.availability and listener.availability[-1][1] is False, 5, what="offline by silence")
    assert "silent" in listener.availability[-1][2]
    device.send(device.state())
    wait_for(lambda: listener.availability[-1][1] is True, 5, what="online again")


def test_unplugged_port_goes_offline_and_comes_back(rig) -> None:
    device, listener, make = rig
    link = make()
    wait_for(lambda: link.online)
    device.unplug()
    wait_for(lambda: not link.online, 5, what="offline after unplug")
    reply = call(link, "cut")
    assert not reply.ok and reply.code == "device_offline"
    time.sleep(0.3)  # a few reopen attempts fail meanwhile
    device.plug()
    wait_for(lambda: link.online, 10, what="online after replug")
    assert link.stats.opens >= 2
    assert call(link, "cut", burner="right").ok
    assert [a[:2] for a in listener.availability] == [("fake-1", True), ("fake-1", False), ("fake-1", True)]


class _Waits(threading.Event):
    """A link's stop event that notes every wait (the link's back-off)."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        if timeout is not None:
            self.waits.append(timeout)
        return super().wait(timeout)


def test_a_lost_device_is_looked_for_at_the_first_step_until_fast_retry_ends(tmp_path: Path) -> None:
    """A device that was served and is lost (a Wi-Fi drop, a replug) is
    usually back soon: for fast_retry_s the back-off stays at its first step
    rather than doubling, so it is found within a step of its return; after
    that it grows as before (a port that never comes back costs little)."""
    device = FakeDevice(tmp_path / "tty")
    link = DeviceLink(
        str(tmp_path / "tty"), Listener(), request_timeout_s=1.0, backoff_initial_s=0.02, backoff_max_s=0.64,
        fast_retry_s=0.5,
    )  # fmt: skip
    waits = _Waits()
    link._stop = waits
    link.start()
    try:
        wait_for(lambda: link.online)
        device.unplug()
        wait_for(lambda: not link.online, 5, what="offline after unplug")
        lost_at = time.monotonic()
        wait_for(lambda: any(w > 0.02 for w in waits.waits), 10, what="the back-off growing after the window")
        assert time.monotonic() - lost_at >= 0.5 - 0.05  # not before the window ended
        first = waits.waits.index(next(w for w in waits.waits if w > 0.02))
        assert first >= 5 and set(waits.waits[:first]) == {0.02}, waits.waits
        wait_for(lambda: len(waits.waits) >= first + 3, 10, what="three grown steps")
        assert waits.waits[first : first + 3] == [0.04, 0.08, 0.16]
        device.plug()
        wait_for(lambda: link.online, 10, what="online after replug")
    finally:
        link.stop()
        device.close()


def test_a_failing_listener_does_not_kill_the_link(rig) -> None:
    device, listener, make = rig
    listener.explode = True
    link = make()
    wait_for(lambda: link.online)
    device.send(device.state())
    device.send({"t": "evt", "event_type": "flame_out", "burner": "left", "seq": 9})
    wait_for(lambda: listener.events, what="event after the listener raised")
    assert call(link, "ping").ok


def test_boot_event_makes_the_link_say_hello_again(rig) -> None:
    device, listener, make = rig
    link = make()
    wait_for(lambda: link.online)
    device.burners = ["main"]
    device.send({"t": "evt", "event_type": "boot", "reset_cause": "watchdog", "seq": 1})
    wait_for(lambda: len(listener.hellos) >= 2, what="a second hello")
    assert listener.hellos[-1]["burners"] == ["main"]
    # The boot event itself is forwarded, after the device said who it is.
    wait_for(lambda: listener.events, what="the boot event")
    assert listener.events[0][0] == "fake-1" and listener.events[0][1]["event_type"] == "boot"


def test_idle_link_does_not_spin(rig) -> None:
    """No busy polling: an idle link's thread sleeps in select()."""
    device, listener, make = rig
    link = make()
    wait_for(lambda: link.online)
    wait_for(lambda: listener.states, what="snapshot")
    start = time.process_time()
    time.sleep(0.6)
    # CPU time of the whole test process while idle: a spinning thread would
    # burn ~0.6 s here. This is a sanity bound, not a performance figure.
    assert time.process_time() - start < 0.3


# -- identity: a link carries nothing under an id the device did not just say ------------------


def call_for(link: DeviceLink, device_id: str, cmd: str, **args: Any) -> Reply:
    done: list[Reply] = []
    event = threading.Event()

    def on_done(reply: Reply) -> None:
        done.append(reply)
        event.set()

    link.request(cmd, on_done, for_device=device_id, **args)
    assert event.wait(10), "no reply and no timeout"
    return done[0]


def test_a_replugged_port_holding_another_device_is_a_new_device(rig) -> None:
    """/dev/ttyUSB0 renumbered: the port now holds another hob. Its state is
    never reported as the old one's, and a command for the old one never
    reaches it."""
    device, listener, make = rig
    link = make()
    wait_for(lambda: link.online and listener.states, what="fake-1 online")
    device.unplug()
    wait_for(lambda: not link.online, 5, what="offline after unplug")
    device.device_id, device.tc_mv = "fake-2", 22.0
    device.plug()
    device.send(device.state())  # said before the bridge even asked who it is
    wait_for(lambda: link.online and link.device_id == "fake-2", 10, what="online as fake-2")
    wait_for(lambda: any(d == "fake-2" for d, _ in listener.states), what="fake-2's state")
    assert all(frame["device"] == device_id for device_id, frame in listener.states)
    assert not [f for d, f in listener.states if d == "fake-1" and f["burners"][0]["tc_mv"] == 22.0]
    assert ("fake-1", False) in [a[:2] for a in listener.availability]
    assert listener.availability[-1][:2] == ("fake-2", True)
    reply = call_for(link, "fake-1", "cut", burner="left")
    assert not reply.ok and reply.code == "device_offline" and "fake-2" in (reply.message or "")
    assert device.commands("cut") == [], "a command for fake-1 reached fake-2"
    assert call_for(link, "fake-2", "cut", burner="left").ok


def test_after_a_boot_nothing_is_forwarded_until_the_device_says_who_it_is(rig) -> None:
    device, listener, make = rig
    link = make()
    wait_for(lambda: link.online and listener.states, what="online")
    states, events = len(listener.states), len(listener.events)
    device.answer_hello = False
    device.device_id, device.tc_mv = "fake-9", 9.0  # its settings changed with the restart
    device.send({"t": "evt", "event_type": "boot", "reset_cause": "watchdog", "seq": 1})
    device.send(device.state())
    device.send({"t": "evt", "event_type": "ignited", "burner": "left", "tc_mv": 9.0, "seq": 2})
    wait_for(lambda: not link.ready, 5, what="the link to question the device's identity")
    time.sleep(0.5)
    assert len(listener.states) == states and len(listener.events) == events, "forwarded before the new hello"
    for target in ("fake-1", "fake-9"):
        reply = call_for(link, target, "cut")
        assert not reply.ok and reply.code == "device_offline"
    assert device.commands("cut") == []
    device.answer_hello = True
    wait_for(lambda: link.ready and link.device_id == "fake-9", 10, what="fake-9 identified")
    wait_for(lambda: len(listener.events) >= events + 2, what="the held events")
    assert [(d, e["event_type"]) for d, e in listener.events[events:]] == [("fake-9", "boot"), ("fake-9", "ignited")]
    assert all(d == "fake-9" for d, _ in listener.states[states:])
    assert ("fake-1", False) in [a[:2] for a in listener.availability]


def test_a_state_naming_another_device_makes_the_link_ask_again(rig) -> None:
    device, listener, make = rig
    link = make()
    wait_for(lambda: link.online and listener.states, what="online")
    before = len(listener.states)
    device.device_id = "fake-3"
    device.send(device.state())
    wait_for(lambda: link.ready and link.device_id == "fake-3", 10, what="fake-3 identified")
    wait_for(lambda: len(listener.states) > before, what="a state")
    assert all(d == f["device"] for d, f in listener.states)


# -- what a device says is checked ------------------------------------------------------------

BAD_HELLOS = [
    {"device": "Hob-1"},
    {"device": "hob-1\n"},
    {"device": "hob/1"},
    {"device": "hob+1"},
    {"device": "#"},
    {"device": ""},
    {"device": "h" * 33},
    {"device": "bridge"},
    {"device": 7},
    {"burners": []},
    {"burners": ["a", "b", "c", "d", "e"]},
    {"burners": ["left", "left"]},
    {"burners": ["le/ft"]},
    {"burners": ["left\n"]},
    {"burners": "left"},
    {"burners": [1]},
    {"proto": 2},
    {"proto": True},
    {"timer_max_min": 1e300},
    {"timer_max_min": -1},
    {"timer_max_min": "720"},
    {"heartbeat_s": 0},
    {"heartbeat_s": 10**12},
    {"warn_before_s": None},
    {"fw": "x" * 100},
    {"fw": "1.0\x1b[2J"},
]


def test_a_device_that_lies_about_itself_is_quarantined_and_never_served(rig) -> None:
    """Every kind of bad hello: the device is not served (no hello reaches
    the bridge, nothing it says is forwarded, no command is sent to it), the
    bridge is told once per problem, and it is served as soon as a hello
    after a restart passes."""
    device, listener, make = rig
    link = make()
    wait_for(lambda: link.online, what="online")
    served = len(listener.hellos)
    for bad in BAD_HELLOS:
        problems = len(listener.problems)
        device.hello = dict(bad)
        device.send({"t": "evt", "event_type": "boot", "reset_cause": "power_on", "seq": 1})
        wait_for(lambda n=problems: len(listener.problems) > n, 5, what=f"quarantine for {bad}")
        said, kind, detail = listener.problems[-1]
        assert kind == "quarantined" and detail
        # The id it gave is passed on only when it is a usable one.
        assert said == (None if "device" in bad else device.device_id)
        assert not link.ready and not link.online
        states, events = len(listener.states), len(listener.events)
        device.send(device.state())
        device.send({"t": "evt", "event_type": "ignited", "burner": "left", "seq": 2})
        reply = call(link, "cut")
        assert not reply.ok and reply.code == "device_offline" and "quarantined" in (reply.message or "")
        time.sleep(0.05)
        assert (len(listener.states), len(listener.events)) == (states, events)
    assert len(listener.hellos) == served, "a bad hello reached the bridge"
    assert device.commands("cut") == []
    # Not hammered: a quarantined device is asked again only after a while.
    hellos = len(device.commands("hello"))
    time.sleep(1.0)
    assert len(device.commands("hello")) == hellos
    device.hello = {}
    device.send({"t": "evt", "event_type": "boot", "reset_cause": "power_on", "seq": 1})
    wait_for(lambda: link.ready and link.online, 10, what="served again after a good hello")
    assert call(link, "ping").ok


BAD_FRAMES = [
    {"tc_mv": "hot"},
    {"tc_mv": 1e300},
    {"tc_mv": True},
    {"timer_remaining_s": -5},
    {"timer_remaining_s": 10**9},
    {"gas": ""},
    {"gas": "open gas"},
    {"gas": "o" * 40},
    {"fault": "cut failed\n"},
    {"id": "../x"},
    {"id": "oven"},
    {"cutting": "no"},
]
BAD_EVENTS = [
    {"event_type": "pwned"},
    {"event_type": "ignited", "burner": "oven"},
    {"event_type": "ignited", "burner": "left/../x"},
    {"event_type": "cut", "reason": "x" * 500},
    {"event_type": "cut", "reason": "a\nb"},
    {"event_type": "cut", "Bad-Key": 1},
    {"event_type": "cut", "nested": {"a": 1}},
    {"event_type": "cut", "many": list(range(20))},
    {"event_type": "cut", "huge": 1e300},
    {"event_type": "fault", "detail": "d" * 300},
]


def test_bad_frames_from_a_served_device_are_refused_one_by_one(rig) -> None:
    device, listener, make = rig
    link = make()
    wait_for(lambda: link.online and listener.states, what="online")
    states, events = len(listener.states), len(listener.events)
    for bad in BAD_FRAMES:
        frame = device.state()
        frame["burners"][0].update(bad)
        device.send(frame)
    for bad in BAD_EVENTS:
        device.send({"t": "evt", "seq": 9, **bad})
    device.send({"t": "state", "device": "fake-1", "locked": "no", "burners": [], "uptime_s": 1})
    device.send({"t": "status?", "device": "fake-1"})
    total = len(BAD_FRAMES) + len(BAD_EVENTS) + 2
    wait_for(lambda: link.stats.frames_refused >= total, 5, what="every bad frame refused")
    assert link.stats.frames_refused == total
    assert (len(listener.states), len(listener.events)) == (states, events), "a bad frame got through"
    assert len([p for p in listener.problems if p[1] == "frame_refused"]) == total
    assert all(p[0] == "fake-1" for p in listener.problems)
    # The device stays served: good frames and commands go on.
    device.send({"t": "evt", "event_type": "ignited", "burner": "left", "seq": 10})
    wait_for(lambda: len(listener.events) > events, what="a good event after the bad ones")
    assert link.online and call(link, "ping").ok


def test_a_network_link_gets_the_identity_rule_too() -> None:
    """The identity rule lives above the transport: the device's network link
    (hobguard.bridge.netlink, shaped like a serial port) plugs into DeviceLink
    through PortTransport, and a Wi-Fi drop is a reopen like a re-plug —
    the device is asked who it is again before anything is forwarded."""
    from hobguard.bridge.device_link import PortTransport
    from hobguard.bridge.netlink import NetTransport
    from hobguard_sim.device import SimDevice
    from hobguard_sim.realtime import PtyDevice
    from netclient import KEY

    device = SimDevice(listen=("127.0.0.1", 0), key=KEY, settings={"device_id": "hob-net"})
    runner = PtyDevice(device, speed=20.0)
    runner.start()
    listener = Listener()
    url = "tcp://%s:%d" % device.listen
    link = DeviceLink(PortTransport(url, lambda: NetTransport(url, KEY, timeout_s=2)), listener,
                      request_timeout_s=2.0, backoff_max_s=0.3)  # fmt: skip
    link.start()
    try:
        wait_for(lambda: link.online and link.device_id == "hob-net", 20, what="online over the network")
        wait_for(lambda: listener.states, 10, what="a state over the network")
        assert call_for(link, "hob-net", "timer_set", burner="left", minutes=5).ok
        assert not call_for(link, "hob-other", "cut").ok
        checks = link.stats.identity_checks
        runner.act("wifi off")
        wait_for(lambda: not link.online, 20, what="offline when the Wi-Fi drops")
        reply = call_for(link, "hob-net", "cut")
        assert not reply.ok and reply.code == "device_offline"
        runner.act("wifi on")
        wait_for(lambda: link.online and link.stats.identity_checks > checks, 30, what="asked again after the drop")
        assert link.stats.opens >= 2
        assert all(device_id == frame["device"] == "hob-net" for device_id, frame in listener.states)
    finally:
        link.stop()
        runner.stop()


def test_a_device_on_the_network_shows_its_wi_fi_in_its_state_and_in_home_assistant(tmp_path) -> None:
    """The real firmware with a network link adds its Wi-Fi diagnostics to
    every state frame: the bridge passes them on in the device state, and
    announces the Wi-Fi entities for that device (and only for it)."""
    from hobguard.bridge.device_link import PortTransport
    from hobguard.bridge.netlink import NetTransport
    from hobguard.testing import bridge_on_fake_mqtt
    from hobguard_sim.device import SimDevice
    from hobguard_sim.realtime import PtyDevice
    from netclient import KEY

    device = SimDevice(listen=("127.0.0.1", 0), key=KEY, settings={"device_id": "hob-net"})
    runner = PtyDevice(device, speed=20.0)
    runner.start()
    bridge = bridge_on_fake_mqtt(state_file=tmp_path / "state.json", base_topic="net/hobguard",
                                 discovery_prefix="net/homeassistant", bridge_id="net")  # fmt: skip
    url = "tcp://%s:%d" % device.listen
    link = DeviceLink(PortTransport(url, lambda: NetTransport(url, KEY, timeout_s=2)), bridge,
                      request_timeout_s=2.0, backoff_max_s=0.3)  # fmt: skip
    bridge.links.append(link)
    bridge.announcer.start()
    link.start()
    signal_config = "net/homeassistant/sensor/hob-net/wifi_signal/config"
    try:
        wait_for(lambda: bridge.mqtt.count(signal_config), 20, what="the Wi-Fi entities announced")
        states = [json.loads(p.payload) for p in bridge.mqtt.published if p.topic == "net/hobguard/hob-net/state"]
        assert states[-1]["wifi"] == "up" and states[-1]["rssi"] == -58 and states[-1]["net_clients"] == 1
        assert not bridge.mqtt.violations
    finally:
        link.stop()
        bridge.announcer.stop()
        runner.stop()
