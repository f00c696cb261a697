"""End to end over Wi-Fi (issue #11): a throwaway Mosquitto, the bridge in
this process, and `hobguard sim device --listen 127.0.0.1:0 --key-file`
(the firmware's own network code on real loopback sockets). The bridge
reaches each hob at its tcp:// address and serves it as it serves one on a
serial port: the same topics, entities and commands."""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import socket
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest
from conftest import SIM_DEVICE_ID, HobRig
from hobguard.bridge import config as config_mod
from hobguard.bridge import network
from hobguard.bridge.netlink import write_key_file
from hobguard.bridge.service import Bridge
from hobguard.testing import Recorder, bridge_namespace, wait_for
from netsim import NetSim

pytestmark = pytest.mark.e2e

DEV = SIM_DEVICE_ID


@pytest.fixture
def net_sims(tmp_path: Path) -> Iterator[Any]:
    made: list[NetSim] = []

    def make(speed: float = 20.0, settings: dict[str, Any] | None = None) -> NetSim:
        made.append(NetSim(tmp_path / f"netsim{len(made)}", speed=speed, settings=settings))
        return made[-1]

    yield make
    for sim in made:
        sim.stop()


class NetRig(HobRig):
    """HobRig's helpers (wait_online, send, wait_event, …) around a bridge
    built from command-line options plus [[device]] tables, as a config
    file gives them."""

    def __init__(
        self, broker_url: str, prefix: str, state_file: Path, tables: list[dict[str, Any]] | None = None, **options: Any
    ) -> None:
        self.base = f"{prefix}/hobguard"
        self.discovery_prefix = f"{prefix}/homeassistant"
        self.recorder = Recorder(broker_url, [f"{self.base}/#", f"{self.discovery_prefix}/#"])
        options.setdefault("bridge_id", "e2e")
        options.setdefault("request_timeout_s", 2.0)
        options.setdefault("offline_after_s", 3.0)
        namespace = bridge_namespace(
            broker=broker_url,
            base_topic=self.base,
            discovery_prefix=self.discovery_prefix,
            state_file=state_file,
            **options,
        )
        self.config = config_mod.build(namespace, {"device": tables} if tables else None, environ={})
        self.config.reconnect_max_s = 2.0
        self.bridge = Bridge(self.config)
        self.bridge.start()

    def bridge_events(self, since: int = 0) -> list[dict[str, Any]]:
        return [m.json() for m in self.recorder.on(f"{self.base}/bridge/e2e/event", since)]

    def close(self) -> None:
        self.bridge.stop()
        self.recorder.close()


@pytest.fixture
def net_rig(tmp_path: Path) -> Iterator[Any]:
    made: list[NetRig] = []

    def make(broker_url: str, prefix: str, **options: Any) -> NetRig:
        made.append(NetRig(broker_url, prefix, tmp_path / f"state{len(made)}.json", **options))
        return made[-1]

    yield make
    for rig in made:
        try:
            rig.close()
        except Exception:
            pass


def _ready(rig: NetRig, device: str = DEV) -> None:
    rig.wait_booted(device)


def _cut_left(rig: NetRig, sim: Any, device: str = DEV) -> dict[str, Any]:
    """Light the left burner, send CLOSE over MQTT, return the cut event."""
    mark = rig.recorder.mark()
    sim.act("ignite left")
    rig.wait_burner(device, "left", lambda s: s["flame"] == "on", since=mark)
    mark = rig.send(device, "left/gas/set", "CLOSE")
    event = rig.wait_event(device, lambda e: e["event_type"] == "cut", since=mark)
    rig.wait_burner(device, "left", lambda s: s["relay"] == "open", since=mark)
    return event


def test_a_hob_on_wifi_is_served_like_one_on_a_cable(mosquitto, net_sims, net_rig, topic_prefix) -> None:
    sim = net_sims()
    rig = net_rig(mosquitto.url, topic_prefix, device=[sim.url], key_file=[sim.key_file])
    _ready(rig)
    state = rig.recorder.json(rig.topic(DEV, "state"))
    assert state["port"] == sim.url
    # The Wi-Fi diagnostics: in the state and as entities.
    rig.recorder.wait(lambda m: m.topic == rig.topic(DEV, "state") and m.json().get("wifi") == "up", 15, what="wifi up")
    for entity in ("sensor/{}/wifi", "sensor/{}/wifi_signal", "update/{}/firmware"):  # (update: over Wi-Fi only)
        topic = f"{rig.discovery_prefix}/{entity.format(DEV)}/config"
        rig.recorder.wait(lambda m, t=topic: m.topic == t and bool(m.payload), 15, what=topic)
    assert rig.recorder.last(f"{rig.base}/bridge/e2e/availability").payload == b"online"
    # A command over MQTT cuts the burner on the network hob.
    event = _cut_left(rig, sim)
    assert event["burner"] == "left" and event["reason"] == "remote" and event["device"] == DEV


def test_a_hob_that_goes_away_is_offline_and_online_again_when_it_is_back(
    mosquitto, net_sims, net_rig, topic_prefix
) -> None:
    sim = net_sims()
    rig = net_rig(mosquitto.url, topic_prefix, device=[sim.url], key_file=[sim.key_file])
    _ready(rig)
    availability = rig.topic(DEV, "availability")
    mark = rig.recorder.mark()
    sim.act("wifi off")
    rig.recorder.wait(lambda m: m.topic == availability and m.payload == b"offline", 15, since=mark)
    mark = rig.recorder.mark()
    sim.act("wifi on")
    rig.wait_online(DEV, since=mark)
    _cut_left(rig, sim)  # served again: commands reach it
    mark = rig.recorder.mark()
    sim.kill()
    rig.recorder.wait(lambda m: m.topic == availability and m.payload == b"offline", 15, since=mark)


def test_a_wrong_key_is_not_served_and_other_hobs_are(
    mosquitto, net_sims, net_rig, topic_prefix, tmp_path: Path, caplog
) -> None:
    right = net_sims()
    wrong = net_sims(settings={"device_id": "hob-wrong-key"})
    other_key = tmp_path / "other.key"
    write_key_file(other_key)
    caplog.set_level(logging.INFO, logger="hobguard")
    rig = net_rig(mosquitto.url, topic_prefix, device=[wrong.url, right.url], key_file=[other_key, right.key_file])
    _ready(rig)
    _cut_left(rig, right)
    wait_for(
        lambda: any("authentication failed" in r.getMessage() and wrong.url in r.getMessage() for r in caplog.records),
        15,
        what="the log saying the key is refused",
    )
    event = rig.recorder.wait(
        lambda m: m.topic == f"{rig.base}/bridge/e2e/event" and m.json().get("reason") == "auth_failed", 10
    ).json()
    assert event["event_type"] == "quarantined" and event["port"] == wrong.url and event["device"] is None
    text = "\n".join(r.getMessage() for r in caplog.records) + json.dumps(event)
    assert str(other_key) in text
    for key_file in (other_key, right.key_file, wrong.key_file):
        assert key_file.read_text().strip() not in text  # no key in any log line
    assert not any("hob-wrong-key" in m.topic for m in rig.recorder.messages)


def test_an_address_answering_as_another_device_is_not_published_under_the_configured_id(
    mosquitto, net_sims, net_rig, topic_prefix, caplog
) -> None:
    sim = net_sims(settings={"device_id": "hob-kitchen"})
    caplog.set_level(logging.INFO, logger="hobguard")
    tables = [{"address": sim.url, "key_file": str(sim.key_file), "id": "hob-expected"}]
    rig = net_rig(mosquitto.url, topic_prefix, tables=tables)
    event = rig.recorder.wait(
        lambda m: m.topic == f"{rig.base}/bridge/e2e/event" and m.json().get("event_type") == "quarantined",
        20,
        what="a quarantined event",
    ).json()
    assert event["device"] == "hob-kitchen" and event["port"] == sim.url
    assert "hob-expected" in event["detail"]
    assert any("expects device hob-expected" in r.getMessage() for r in caplog.records)
    # Nothing under either id but that event: no state, no availability, no discovery.
    for message in rig.recorder.messages:
        if "hob-expected" in message.topic or "hob-kitchen" in message.topic:
            assert message.topic.endswith("/event"), message.topic
    # A command for the configured id is not sent to it.
    mark = rig.send("hob-expected", "left/gas/set", "CLOSE")
    rejected = rig.recorder.wait(
        lambda m: m.topic == f"{rig.base}/bridge/e2e/event" and m.json().get("event_type") == "rejected",
        10,
        since=mark,
    ).json()
    assert rejected["reason"] == "unknown_device"


class Blackhole:
    """A TCP port that accepts connections and never says a word: a host
    that answers the connect but hangs (or a slow Wi-Fi)."""

    def __init__(self) -> None:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(8)
        self.url = f"tcp://127.0.0.1:{self.server.getsockname()[1]}"
        self.connections: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.connections.append(conn)

    def held_open(self) -> bool:
        """True while the bridge keeps its connection (still waiting for the handshake)."""
        if not self.connections:
            return False
        conn = self.connections[-1]
        conn.setblocking(False)
        try:
            return conn.recv(1, socket.MSG_PEEK) != b""
        except BlockingIOError:
            return True
        except OSError:
            return False

    def close(self) -> None:
        self.server.close()
        for conn in self.connections:
            conn.close()


def test_an_address_that_hangs_does_not_hold_up_other_hobs(
    mosquitto, net_sims, sim_device_factory, net_rig, topic_prefix, monkeypatch
) -> None:
    """While the bridge waits on a host that accepted the connection and
    says nothing (its connect and handshake can take up to
    CONNECT_TIMEOUT_S), a cut for a hob on the network and one for a hob on
    a cable both go through: the waiting link is still waiting when both
    cuts are done."""
    monkeypatch.setattr(network, "CONNECT_TIMEOUT_S", 120.0)
    hole = Blackhole()
    try:
        wifi = net_sims(settings={"device_id": "hob-wifi"})
        usb = sim_device_factory(speed=20, settings={"device_id": "hob-usb"})
        rig = net_rig(
            mosquitto.url,
            topic_prefix,
            device=[hole.url, "tcp://192.0.2.1:7343", wifi.url],
            key_file=[wifi.key_file, wifi.key_file, wifi.key_file],
            serial=[str(usb.link)],
        )
        wait_for(lambda: bool(hole.connections), 10, what="the bridge connecting to the silent host")
        _ready(rig, "hob-wifi")
        _ready(rig, "hob-usb")
        _cut_left(rig, wifi, "hob-wifi")
        _cut_left(rig, usb, "hob-usb")
        assert hole.held_open(), "the silent host's connect gave up before the cuts: this test proves nothing"
    finally:
        hole.close()


def test_usb_and_wifi_to_one_hob_serve_it_once_and_the_cable_takes_over(
    mosquitto, net_sims, net_rig, topic_prefix, tmp_path: Path, caplog
) -> None:
    sim = net_sims()
    cable = tmp_path / "usb-hob.tty"  # plugged in later: Wi-Fi says hello first
    caplog.set_level(logging.INFO, logger="hobguard")
    rig = net_rig(mosquitto.url, topic_prefix, device=[sim.url], key_file=[sim.key_file], serial=[str(cable)])
    _ready(rig)
    assert rig.recorder.json(rig.topic(DEV, "state"))["port"] == sim.url
    os.symlink(sim.pty, cable)
    wait_for(lambda: any("stands by" in r.getMessage() for r in caplog.records), 15, what="the cable standing by")
    # One device, one set of entities.
    nodes = {
        m.topic.split("/")[-3]
        for m in rig.recorder.messages
        if m.topic.startswith(rig.discovery_prefix) and m.topic.endswith("/config") and m.payload
    }
    assert nodes == {DEV}, nodes
    # Wi-Fi gone: the cable serves the hob, under its own id.
    mark = rig.recorder.mark()
    sim.act("wifi off")
    rig.recorder.wait(lambda m: m.topic == rig.topic(DEV, "state") and m.json()["port"] == str(cable), 20, since=mark)
    rig.wait_online(DEV, since=mark)
    _cut_left(rig, sim)
    # Wi-Fi back: it stands by, the cable keeps serving.
    mark = rig.recorder.mark()
    sim.act("wifi on")
    wait_for(
        lambda: sum("stands by" in r.getMessage() or "standing by" in r.getMessage() for r in caplog.records) >= 2,
        20,
        what="Wi-Fi standing by",
    )
    assert rig.recorder.json(rig.topic(DEV, "state"))["port"] == str(cable)


def test_a_connection_that_goes_silent_is_dropped_and_made_again(
    mosquitto, net_sims, net_rig, topic_prefix, caplog
) -> None:
    """The hob stops talking but its connection stays up (stopped with
    SIGSTOP: its kernel still acknowledges, as a half-open connection after
    a Wi-Fi drop without a goodbye does): offline, the connection dropped
    and made again, online when it talks again."""
    sim = net_sims()
    caplog.set_level(logging.INFO, logger="hobguard")
    rig = net_rig(mosquitto.url, topic_prefix, device=[sim.url], key_file=[sim.key_file], offline_after_s=2.0)
    _ready(rig)
    mark = rig.recorder.mark()
    os.kill(sim.proc.pid, signal.SIGSTOP)
    try:
        rig.recorder.wait(
            lambda m: m.topic == rig.topic(DEV, "availability") and m.payload == b"offline", 15, since=mark
        )
        wait_for(
            lambda: any("nothing received for" in r.getMessage() for r in caplog.records),
            15,
            what="the silent connection dropped",
        )
    finally:
        os.kill(sim.proc.pid, signal.SIGCONT)
    rig.wait_online(DEV, since=mark, timeout=30)
    _cut_left(rig, sim)


def test_a_hob_that_stops_reading_fails_the_command_and_loses_the_connection(net_sims) -> None:
    """The hob stops reading (stopped: its socket buffers fill up). A
    command written to it then fails after WRITE_TIMEOUT_S instead of
    holding the MQTT thread, and the connection is ended, so the link
    connects again rather than sending the rest of a half-sent frame."""
    from hobguard.bridge.netlink import load_key
    from hobguard_fw import protocol

    sim = net_sims()
    transport = network.NetworkTransport(sim.url, load_key(sim.key_file))
    wait_for(lambda: _opened(transport), 10, what="a connection to the hob")
    os.kill(sim.proc.pid, signal.SIGSTOP)
    try:
        line = protocol.request(1, "timer_set", burner="left", minutes=30).encode()
        with pytest.raises(OSError):
            for _ in range(1_000_000):  # bounded: a few MB of buffers fill long before
                transport.write(line)
        fd = transport.fileno()  # still open here: the reader closes it when it reads the end
        ended = False
        for _ in range(100):
            select.select([fd], [], [], 0.1)
            try:
                transport.read()
            except OSError:
                ended = True
                break
        assert ended, "the connection goes on after a half-sent frame"
    finally:
        os.kill(sim.proc.pid, signal.SIGCONT)
        transport.close()


def _opened(transport: network.NetworkTransport) -> bool:
    try:
        transport.open()
    except OSError:
        return False
    return True
