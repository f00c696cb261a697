"""Writes to a device never hold anyone up (device_link: the writer thread).

`request()` only queues; each link's writer writes, one line at a time,
each write bounded in time. A device that stops reading (hung firmware, a
native-USB board whose endpoint NAKs) fails its own requests with a reason
and has its port reset; it never delays MQTT's thread or another hob's
cut. Checked with fake devices behind real ptys (a device that stops
reading fills the pty until a write blocks, as a hung board fills its USB
buffer), and end to end through a real Mosquitto."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fakedevice import FakeDevice
from hobguard.bridge import device_link
from hobguard.bridge.device_link import OUT_MAX, DeviceLink, Reply, SerialTransport
from hobguard.testing import FakeLink, FakeMessage, bridge_on_fake_mqtt, serve_fake_device, wait_for
from test_bridge_link import Listener


class GatedTransport(SerialTransport):
    """The real serial transport to a pty, whose write can be held (a write
    that does not return) until the test opens the gate."""

    def __init__(self, port: str) -> None:
        super().__init__(port)
        self.gate = threading.Event()
        self.gate.set()
        self.held = threading.Event()  # a write waits at the gate

    def write(self, data: bytes) -> None:
        if not self.gate.is_set():
            self.held.set()
            self.gate.wait()
            self.held.clear()
        super().write(data)


class Replies:
    """Collects the replies of many requests."""

    def __init__(self) -> None:
        self.got: dict[str, Reply] = {}
        self.order: list[str] = []
        self.lock = threading.Lock()

    def to(self, name: str):
        def done(reply: Reply) -> None:
            with self.lock:
                assert name not in self.got, f"{name} answered twice"
                self.got[name] = reply
                self.order.append(name)

        return done


@pytest.fixture
def device(tmp_path: Path):
    made = FakeDevice(tmp_path / "tty")
    yield made
    made.close()


@pytest.fixture
def links():
    made: list[DeviceLink] = []
    yield made
    for link in made:
        link.stop()


def start(links: list[DeviceLink], transport: Any, **kw: Any) -> DeviceLink:
    kw.setdefault("request_timeout_s", 30.0)
    kw.setdefault("backoff_max_s", 0.5)
    listener = Listener()
    link = DeviceLink(transport, listener, **kw)
    link.start()
    links.append(link)
    # Online, and the snapshot asked after hello answered: nothing of the
    # link's own is queued or being written any more.
    wait_for(lambda: link.online and listener.states, what="link online, with its snapshot")
    return link


def test_request_returns_while_a_write_is_held_and_its_timeout_counts_from_arrival(device, links) -> None:
    transport = GatedTransport(str(device.link_path))
    link = start(links, transport)
    replies = Replies()
    transport.gate.clear()
    link.request("status", replies.to("held"))
    assert transport.held.wait(10), "the writer never reached the write"
    # The writer is stuck in a write: requests still return at once (this
    # thread would hang here otherwise), and are queued behind it.
    assert link.request("status", replies.to("queued")) is not None
    arrived_long_ago = time.monotonic() - 40.0  # before request_timeout_s (30 s)
    assert link.request("status", replies.to("late"), since=arrived_long_ago) is not None
    # The one that arrived 40 s ago is past its deadline: it fails without
    # waiting for the stuck write, and never reaches the device.
    wait_for(lambda: "late" in replies.got, what="the late request's outcome")
    late = replies.got["late"]
    assert (late.ok, late.code) == (False, "timeout")
    assert "not sent" in (late.message or "")
    assert late.latency_s >= 40.0  # counted from when it arrived
    assert "held" not in replies.got and "queued" not in replies.got
    transport.gate.set()
    wait_for(lambda: {"held", "queued"} <= replies.got.keys(), what="both answered")
    assert replies.got["held"].ok and replies.got["queued"].ok
    assert len(device.commands("status")) == 1 + 2  # the snapshot after hello, held, queued; not the late one


def test_a_full_queue_refuses_at_once_and_a_cut_goes_first(device, links) -> None:
    transport = GatedTransport(str(device.link_path))
    link = start(links, transport)
    replies = Replies()
    transport.gate.clear()
    link.request("status", replies.to("held"))
    assert transport.held.wait(10)
    for i in range(OUT_MAX):
        assert link.request("lock", replies.to(f"lock-{i}"), on=True) is not None
    # Full: another command is refused at once, with the reason.
    assert link.request("lock", replies.to("one too many"), on=False) is None
    refused = replies.got["one too many"]
    assert (refused.ok, refused.code) == (False, "device_offline")
    assert "wait for" in (refused.message or "")
    # A cut still gets in: it takes the place of the newest queued command...
    assert link.request("cut", replies.to("cut"), burner="left") is not None
    dropped = replies.got[f"lock-{OUT_MAX - 1}"]
    assert (dropped.code, "cut" in (dropped.message or "")) == ("device_offline", True)
    assert link.stats.queue_full == 2
    transport.gate.set()
    wait_for(lambda: "cut" in replies.got and f"lock-{OUT_MAX - 2}" in replies.got, what="the queue written")
    # ...and is written ahead of every command queued before it.
    written = [cmd for _, cmd, _ in device.received if cmd in ("cut", "lock")]
    assert written[0] == "cut"
    assert written.count("lock") == OUT_MAX - 1
    assert replies.got["cut"].ok


def test_a_device_that_stops_reading_fails_the_write_with_a_reason_and_its_port_is_reset(device, links) -> None:
    link = start(links, str(device.link_path), request_timeout_s=5.0)
    opens = link.stats.opens
    assert device.stall() > 0  # the line to the device is full: the next write blocks
    replies = Replies()
    link.request("cut", replies.to("cut"), burner="left")
    wait_for(lambda: "cut" in replies.got, what="the stuck request's outcome")
    reply = replies.got["cut"]
    assert (reply.ok, reply.code) == (False, "device_offline")
    assert "does not take what is sent" in (reply.message or "")
    assert link.stats.writes_failed >= 1
    # The port was reset (closed, reopened) and the device is offline until it answers again.
    wait_for(lambda: link.stats.opens > opens, what="the port reopened")
    assert not link.ready  # it does not read: its hello is not answered
    # The device reads again (drains the line): it is served again.
    device.reading = True
    wait_for(lambda: link.online and link.ready, timeout=20, what="the device served again")
    link.request("cut", replies.to("again"), burner="left")
    wait_for(lambda: "again" in replies.got, what="the cut after recovery")
    assert replies.got["again"].ok
    assert device.commands("cut")[-1] == {"burner": "left"}


def test_a_write_that_never_completes_holds_only_its_own_link(tmp_path: Path, links) -> None:
    """Two links: one's writer is stuck in a write; the other's requests
    are answered meanwhile, from the same requesting thread."""
    stuck_device = FakeDevice(tmp_path / "a", device_id="hob-a")
    other_device = FakeDevice(tmp_path / "b", device_id="hob-b")
    try:
        transport = GatedTransport(str(stuck_device.link_path))
        stuck = start(links, transport)
        other = start(links, str(other_device.link_path))
        replies = Replies()
        transport.gate.clear()
        stuck.request("cut", replies.to("stuck cut"), burner="left")
        assert transport.held.wait(10)
        other.request("cut", replies.to("other cut"), burner="right")
        wait_for(lambda: "other cut" in replies.got, what="the other hob's cut")
        assert replies.got["other cut"].ok
        assert "stuck cut" not in replies.got and transport.held.is_set()  # still blocked
        transport.gate.set()
        wait_for(lambda: "stuck cut" in replies.got, what="the stuck cut")
        assert replies.order == ["other cut", "stuck cut"]
        assert replies.got["stuck cut"].ok
    finally:
        stuck_device.close()
        other_device.close()


def test_the_bridge_only_queues_and_times_commands_from_their_arrival(tmp_path: Path) -> None:
    """The MQTT thread hands each command to the link with the time paho
    received it (`message.timestamp`), so a command that waited is timed
    (and logged) from then, not from when it was written."""
    bridge = bridge_on_fake_mqtt(serial=["/dev/null-not-opened"], state_file=tmp_path / "state.json")
    link = serve_fake_device(bridge, {"device": "hob-t", "burners": ["left"], "proto": 1, "heartbeat_s": 10}).link
    assert isinstance(link, FakeLink)
    arrived = time.monotonic() - 3.0
    bridge._on_message(FakeMessage(f"{bridge.base}/hob-t/left/gas/set", b"CLOSE", timestamp=arrived))
    assert link.requests == [("cut", {"burner": "left"})]
    assert link.since == [arrived]


# -- end to end: MQTT, the bridge, two hobs -------------------------------------------------------


@pytest.mark.e2e
def test_over_mqtt_a_hob_that_stops_reading_never_delays_another_hobs_cut(
    mosquitto, rig_factory, topic_prefix, tmp_path: Path, monkeypatch
) -> None:
    """Hob A stops reading and a cut for it is stuck in the write (a write
    timeout longer than the test, so it stays stuck until A reads again);
    a cut for hob B sent over MQTT after it is carried out and reported
    while A's write is still blocked; when A reads again, A's cut is
    carried out too."""
    monkeypatch.setattr(device_link, "SERIAL_WRITE_TIMEOUT_S", 120.0)
    hob_a = FakeDevice(tmp_path / "ttyA", device_id="hob-a")
    hob_b = FakeDevice(tmp_path / "ttyB", device_id="hob-b")
    try:
        rig = rig_factory(
            mosquitto.url,
            [str(hob_a.link_path), str(hob_b.link_path)],
            topic_prefix,
            request_timeout_s=120.0,
            offline_after_s=30,
        )
        rig.wait_online("hob-a")
        rig.wait_online("hob-b")
        link_a = next(link for link in rig.bridge.links if link.device_id == "hob-a")
        hob_a.stall()
        mark = rig.send("hob-a", "left/gas/set", "CLOSE")
        wait_for(lambda: link_a.writing_since is not None, what="hob A's write blocked")
        hob_b.tc_mv = 33.0  # marks the state in B's reply to this cut
        rig.send("hob-b", "right/gas/set", "CLOSE")
        rig.wait_burner("hob-b", "right", lambda s: s["tc_mv"] == 33.0, since=mark)  # B's reply, published
        assert hob_b.commands("cut") == [{"burner": "right"}]
        # A's cut is still stuck in its write: not carried out, not reported.
        assert link_a.writing_since is not None
        assert hob_a.commands("cut") == []
        assert [e for e in rig.events("hob-a", mark) if e["event_type"] == "rejected"] == []
        # A reads again: the write completes and A's cut is carried out.
        hob_a.tc_mv = 44.0
        hob_a.reading = True
        rig.wait_burner("hob-a", "left", lambda s: s["tc_mv"] == 44.0, since=mark)
        assert hob_a.commands("cut") == [{"burner": "left"}]
        assert [e for e in rig.events("hob-a", mark) if e["event_type"] == "rejected"] == []
    finally:
        hob_a.close()
        hob_b.close()


def outcomes(caplog: pytest.LogCaptureFixture, topic_end: str) -> list[str]:
    """The bridge's log lines that tell a command's outcome, for a topic."""
    lines = [r.getMessage() for r in list(caplog.records) if r.name == "hobguard.bridge"]
    return [line for line in lines if line.split(" ", 1)[0].endswith(topic_end) and " → " in line]


@pytest.mark.e2e
def test_over_mqtt_a_stuck_write_is_rejected_with_its_reason_and_the_hob_comes_back(
    mosquitto, rig_factory, topic_prefix, tmp_path: Path, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="hobguard.bridge")
    hob_a = FakeDevice(tmp_path / "ttyA", device_id="hob-a")
    try:
        rig = rig_factory(mosquitto.url, [str(hob_a.link_path)], topic_prefix, offline_after_s=30)
        rig.wait_online("hob-a")
        hob_a.stall()
        mark = rig.send("hob-a", "left/gas/set", "CLOSE")
        event = rig.wait_event("hob-a", lambda e: e["event_type"] == "rejected", since=mark)
        assert (event["reason"], event["burner"]) == ("device_offline", "left")
        assert "does not take what is sent" in event["detail"]
        offline = rig.recorder.wait(
            lambda m: m.topic == rig.topic("hob-a", "availability") and m.payload == b"offline",
            15,
            since=mark,
            what="hob A offline (its port reset)",
        )
        hob_a.reading = True
        rig.wait_online("hob-a", timeout=30, since=offline.index)
        caplog.clear()
        rig.send("hob-a", "left/gas/set", "CLOSE")
        wait_for(lambda: outcomes(caplog, "hob-a/left/gas/set"), what="the cut's outcome")
        assert "→ cut(burner=left) → ok in" in outcomes(caplog, "hob-a/left/gas/set")[0]
        assert hob_a.commands("cut") == [{"burner": "left"}]  # (the stuck one was discarded at the reset)
    finally:
        hob_a.close()
