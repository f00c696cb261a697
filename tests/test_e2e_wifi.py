"""End to end over Wi-Fi, the rest of issue #11's list: a throwaway
Mosquitto, the bridge, and `hobguard sim device --listen 127.0.0.1:0
--key-file` (the firmware's own network code on real loopback sockets).

- Every MQTT command over TCP gets the outcome it gets over the cable: the
  command tests of test_e2e_bridge.py run here again, unchanged, with the
  `hob` fixture giving a hob on its network link; presence too.
- A Wi-Fi drop in the middle of a timer: the device cuts on time while the
  bridge has it offline, and the bridge catches up when it is back.
- A bridge restarted (a new instance, three times): it reconnects and serves.
- No key, an empty key file: a configuration error, exit 2, nothing sent.
- An attacker on the LAN who recorded the bridge's traffic (a sniffing
  proxy between the bridge and the hob) replays it, sends it altered, and
  floods the hob with connections, while the bridge is connected: nothing
  changes in MQTT and the bridge goes on serving.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import test_e2e_network as over_wifi
from conftest import REPO, SIM_DEVICE_ID
from netsim import NetSim

# The command tests of the serial link, collected here again: in this module
# their `hob` fixture is the one below, a hob on the Wi-Fi.
from test_e2e_bridge import (  # noqa: F401
    test_burner_gas_close_cuts_that_burner,
    test_child_lock_on_off_and_refusal_while_locked,
    test_device_gas_close_cuts_every_burner,
    test_every_kind_of_bad_payload_is_rejected_and_changes_nothing,
    test_fault_clear_after_a_welded_relay,
    test_timer_set_extend_cancel_and_zero,
)
from test_e2e_network import _cut_left, _ready

pytestmark = pytest.mark.e2e

# test_e2e_network's fixtures: a NetSim (`sim device --listen`) maker and a bridge maker.
net_sims = over_wifi.net_sims
net_rig = over_wifi.net_rig

DEV = SIM_DEVICE_ID


@pytest.fixture
def hob(mosquitto, net_sims, net_rig, topic_prefix):
    """test_e2e_bridge's `hob`, over the Wi-Fi: (rig, sim, device id)."""
    sim = net_sims(speed=20)
    rig = net_rig(mosquitto.url, topic_prefix, device=[sim.url], key_file=[sim.key_file], offline_after_s=3.0)
    _ready(rig)
    assert rig.recorder.json(rig.topic(DEV, "state"))["port"] == sim.url  # the command tests run over TCP
    return rig, sim, DEV


def test_presence_over_tcp_takes_an_unattended_warning_back(mosquitto, net_sims, net_rig, topic_prefix) -> None:
    sim = net_sims(speed=10, settings={"unattended_min": 1, "warn_before_s": 30})
    rig = net_rig(mosquitto.url, topic_prefix, device=[sim.url], key_file=[sim.key_file])
    _ready(rig)
    mark = rig.recorder.mark()
    sim.act("ignite left")
    warned = rig.wait_event(DEV, lambda e: e["event_type"] == "warning", since=mark, timeout=20)
    assert (warned["burner"], warned["reason"]) == ("left", "unattended")
    sent = rig.send(DEV, "presence/set", "ON")
    cancelled = rig.wait_event(DEV, lambda e: e["event_type"] == "warning_cancelled", since=sent)
    assert (cancelled["burner"], cancelled["reason"], cancelled["sign"]) == ("left", "unattended", "presence")
    assert not [e for e in rig.events(DEV, mark) if e["event_type"] == "cut"]
    assert rig.burner(DEV, "left")["flame"] == "on"


# -- a Wi-Fi drop in the middle of a timer ------------------------------------------------------


def _trace_cuts(path: Path, burner: str) -> list[float]:
    """Simulated seconds at which `burner`'s relay went from closed to open, in a sim trace."""
    opened, before = [], None
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if record["burner"] != burner:
            continue
        if before == "closed" and record["relay"] == "open":
            opened.append(record["t"])
        before = record["relay"]
    return opened


def _action_times(log: Path, action: str) -> list[float]:
    """Simulated seconds at which the sim did `action` (its log: `t=12.3s wifi off`)."""
    found = re.findall(r"t=([0-9.]+)s " + re.escape(action) + "$", log.read_text(), re.MULTILINE)
    return [float(t) for t in found]


def test_a_wifi_drop_during_a_timer_the_device_cuts_on_time_and_the_bridge_catches_up(
    mosquitto, tmp_path: Path, net_rig, topic_prefix
) -> None:
    trace = tmp_path / "trace.jsonl"
    sim = NetSim(tmp_path / "sim", speed=20, args=["--trace", str(trace)])
    try:
        rig = net_rig(mosquitto.url, topic_prefix, device=[sim.url], key_file=[sim.key_file], offline_after_s=3.0)
        _ready(rig)
        mark = rig.recorder.mark()
        sim.act("ignite left")
        rig.wait_burner(DEV, "left", lambda s: s["flame"] == "on", since=mark)
        mark = rig.send(DEV, "left/timer/set", "2")
        rig.wait_burner(DEV, "left", lambda s: s["timer_remaining_s"] is not None, since=mark)
        availability = rig.topic(DEV, "availability")
        gone = rig.recorder.mark()
        sim.act("wifi off")  # the timer was set before this: it runs out at most 120 s after it
        rig.recorder.wait(lambda m: m.topic == availability and m.payload == b"offline", 15, since=gone)
        # Offline past the deadline (2 simulated minutes = 6 s here): nothing reaches the
        # bridge, and the device does not wait for it.
        time.sleep(120 / 20 + 2)
        assert not [e for e in rig.events(DEV, gone) if e["event_type"] == "cut"]
        assert rig.recorder.last(availability).payload == b"offline"
        back = rig.recorder.mark()
        sim.act("wifi on")
        rig.wait_online(DEV, since=back, timeout=30)
        # The bridge catches up from the device's state: cut by the timer, the timer gone.
        left = rig.wait_burner(DEV, "left", lambda s: s["relay"] == "open" or s["gas"] == "closed", since=back)
        assert left.json()["last_cut_reason"] == "timer" and left.json()["timer_remaining_s"] is None, left.json()
        rig.wait_burner(DEV, "left", lambda s: s["gas"] == "closed" and s["flame"] == "off", since=back)
        # Served again: a command goes through.
        mark = rig.send(DEV, "right/gas/set", "CLOSE")
        rig.wait_burner(DEV, "right", lambda s: s["last_cut_reason"] == "remote", since=mark)
    finally:
        sim.stop()
    # On time, by the simulated clock: the left relay opened once, while the Wi-Fi was
    # away, and no later than 2 minutes after `wifi off` (the timer was set before it;
    # the trace samples every 0.5 s). Not early either: the command and `wifi off`
    # were at most a second of real time (20 simulated) apart.
    (off,) = _action_times(sim.log_path, "wifi off")
    (on,) = _action_times(sim.log_path, "wifi on")
    cuts = _trace_cuts(trace, "left")
    assert len(cuts) == 1, cuts
    assert off < cuts[0] < on, (off, cuts, on)
    assert off + 120 - 20 <= cuts[0] <= off + 120 + 1.0, (off, cuts)


# -- a bridge restarted ------------------------------------------------------------------------------


def test_a_restarted_bridge_reconnects_and_serves(mosquitto, net_sims, net_rig, topic_prefix) -> None:
    """Three bridges one after the other (a restart, an update of the add-on):
    each finds the hob, gets it online and cuts with it; the hob's
    connection slots are not used up by the bridges that went."""
    sim = net_sims()
    for _ in range(3):
        rig = net_rig(mosquitto.url, topic_prefix, device=[sim.url], key_file=[sim.key_file], offline_after_s=3.0)
        # Each rig's recorder subscribes before its bridge starts: what this
        # bridge publishes comes live, what the one before left on the broker
        # comes flagged retained (and says nothing about this one). Online,
        # and past the hob's boot (see HobRig.wait_booted).
        availability = rig.topic(DEV, "availability")
        rig.recorder.wait(
            lambda m, t=availability: m.topic == t and m.payload == b"online" and not m.retain, 20, what="online"
        )
        for topic in (rig.topic(DEV, "left", "state"), rig.topic(DEV, "right", "state")):
            rig.recorder.wait(
                lambda m, t=topic: (
                    m.topic == t and not m.retain and m.json()["relay"] == "closed" and m.json()["flame"] == "off"
                ),
                15,
                what=f"{topic} closed and off",
            )
        mark = rig.send(DEV, "left/gas/set", "CLOSE")
        event = rig.wait_event(DEV, lambda e: e["event_type"] == "cut", since=mark)
        assert event["reason"] == "remote"
        rig.wait_burner(DEV, "left", lambda s: s["relay"] == "closed" and not s.get("cutting"), since=mark)
        rig.close()


# -- no key ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["no-key-file", "empty-key-file", "blank-key-file"])
def test_no_key_is_a_configuration_error_and_nothing_is_sent(
    mosquitto,
    net_sims,
    recorder_factory,
    topic_prefix,
    tmp_path: Path,
    case: str,
) -> None:
    sim = net_sims()
    base = f"{topic_prefix}/hobguard"
    watcher = recorder_factory(mosquitto.url, [f"{base}/#"])
    argv = ["--device", sim.url, "--broker", mosquitto.url, "--base-topic", base]
    argv += ["--state-file", str(tmp_path / "state.json")]
    if case != "no-key-file":
        key = tmp_path / "hob.key"
        key.write_text("" if case == "empty-key-file" else "   \n")
        key.chmod(0o600)
        argv += ["--key-file", str(key)]
    done = subprocess.run(
        [sys.executable, "-m", "hobguard.cli", "bridge", *argv],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("hobguard bridge: "), done.stderr
    assert ("key" in lines[0]) and "Traceback" not in done.stderr
    if case != "no-key-file":
        assert "hob.key" in lines[0] and "hobguard keygen" in lines[0], lines[0]
    time.sleep(0.3)
    assert not watcher.messages, "the bridge published although its configuration was refused"
    assert sim.key_file.read_text().strip() not in done.stderr


# -- an attacker on the LAN --------------------------------------------------------------------------


class SniffingProxy:
    """A TCP relay between the bridge and the hob that records every byte
    the bridge sends: what an attacker on the LAN can capture."""

    def __init__(self, target: str) -> None:
        host, port = target.removeprefix("tcp://").rsplit(":", 1)
        self.target = (host, int(port))
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(4)
        self.url = f"tcp://127.0.0.1:{self.server.getsockname()[1]}"
        self.sessions: list[bytearray] = []  # what the bridge sent, one per connection
        self.socks: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:  # the hob not listening yet: the bridge sees the connection end and tries again
                client.close()
                continue
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            recorded = bytearray()
            self.sessions.append(recorded)
            self.socks += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, recorded), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, None), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket, recorded: bytearray | None) -> None:
        try:
            while data := src.recv(65536):
                if recorded is not None:
                    recorded += data
                dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        self.server.close()
        for sock in self.socks:
            sock.close()


def _attack(target: str, payload: bytes, read_s: float = 0.5) -> bytes:
    """One connection to the hob: send `payload`, return what comes back."""
    host, port = target.removeprefix("tcp://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=2) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.sendall(payload)
        except OSError:
            pass
        received = b""
        end = time.monotonic() + read_s
        sock.settimeout(0.1)
        while time.monotonic() < end:
            try:
                data = sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                break
            received += data
        return received


def _alter(frame: bytes) -> list[bytes]:
    """Altered copies of an authenticated frame: a byte of the command, of
    the counter, of the tag changed; the tag cut short."""
    counter, rest = frame.split(b" ", 1)
    line, tag = rest.rsplit(b" ", 1)
    flipped = line.replace(b'"left"', b'"right"') if b'"left"' in line else line[:-1] + b"X"
    return [
        counter + b" " + flipped + b" " + tag,
        (b"%08x" % (int(counter, 16) + 1)) + b" " + line + b" " + tag,
        counter + b" " + line + b" " + tag[:-1] + (b"0" if tag[-1:] != b"0" else b"1"),
        counter + b" " + line + b" " + tag[:20],
    ]


def test_an_attacker_replaying_altering_and_flooding_changes_nothing_and_the_bridge_serves(
    mosquitto,
    net_sims,
    net_rig,
    topic_prefix,
) -> None:
    sim = net_sims()
    proxy = SniffingProxy(sim.url)
    try:
        rig = net_rig(mosquitto.url, topic_prefix, device=[proxy.url], key_file=[sim.key_file], offline_after_s=3.0)
        _ready(rig)
        # What the attacker records: a whole session of the bridge with a cut in it.
        mark = rig.recorder.mark()
        _cut_left(rig, sim)
        rig.wait_event(DEV, lambda e: e["event_type"] == "cut_verified" and e["burner"] == "left", since=mark)
        rig.wait_burner(DEV, "left", lambda s: s["relay"] == "closed" and s["gas"] == "closed", since=mark)
        # The right burner burns: a replayed cut, or one altered to say "right", would cut it.
        mark = rig.recorder.mark()
        sim.act("ignite right")
        rig.wait_burner(DEV, "right", lambda s: s["flame"] == "on", since=mark)
        recorded = bytes(proxy.sessions[0])
        lines = [line + b"\n" for line in recorded.split(b"\n") if line.strip()]
        frames = [line for line in lines if not line.startswith(b"HGA1")]
        cut_frames = [f for f in frames if b'"cut"' in f]
        assert lines[0].startswith(b"HGA1 AUTH") and cut_frames, lines[:3]

        before = {b: rig.burner(DEV, b) for b in ("left", "right")}
        state_before = rig.recorder.json(rig.topic(DEV, "state"))
        mark = rig.recorder.mark()
        answers: list[bytes] = []
        # The whole recorded session, again, on a new connection: the hob's nonce is new.
        answers.append(_attack(sim.url, recorded))
        # The recorded AUTH and then the cut, one by one.
        for frame in cut_frames:
            answers.append(_attack(sim.url, lines[0] + frame))
        # The cut alone, without a handshake; altered copies of it.
        for frame in cut_frames[:1]:
            answers.append(_attack(sim.url, frame))
            for altered in _alter(frame.rstrip(b"\n")):
                answers.append(_attack(sim.url, lines[0] + altered + b"\n"))
                answers.append(_attack(sim.url, altered + b"\n"))
        # Garbage, a line too long, a connection that never sends.
        answers.append(_attack(sim.url, b"\x00\xff garbage \r\n"))
        answers.append(_attack(sim.url, b"A" * 100_000))
        answers.append(_attack(sim.url, b"", read_s=0.3))
        # A flood: many connections at once, held open without a word.
        flood = []
        for _ in range(40):
            try:
                flood.append(socket.create_connection(("127.0.0.1", int(sim.url.rsplit(":", 1)[1])), timeout=2))
            except OSError:
                break
        assert len(flood) >= 8, "the flood made no connections"
        try:
            # The bridge still serves while the flood stands: a command goes through.
            sent = rig.send(DEV, "right/timer/set", "30")
            rig.wait_event(DEV, lambda e: e["event_type"] == "timer_set" and e["burner"] == "right", since=sent)
        finally:
            for sock in flood:
                sock.close()
        # No attempt was accepted: every answer is a nonce and an error, never OK.
        for answer in answers:
            assert b"HGA1 OK" not in answer, answer[:200]
        assert any(b"HGA1 ERR" in a for a in answers)
        # Nothing the attacker sent changed anything: no cut, no other event but the
        # right timer, the left burner as it was, the link never lost.
        events = rig.events(DEV, mark)
        assert not [e for e in events if e["event_type"] in ("cut", "lock", "timer_cancelled", "reset")], events
        assert {(e["event_type"], e.get("burner")) for e in events} <= {("timer_set", "right")}, events
        for burner in ("left", "right"):
            now = rig.burner(DEV, burner)
            keys = ("relay", "flame", "gas", "last_cut_reason") + (("timer_remaining_s",) if burner == "left" else ())
            for key in keys:
                assert now[key] == before[burner][key], (burner, key)
        assert rig.recorder.json(rig.topic(DEV, "state"))["locked"] == state_before["locked"] is False
        assert not [m for m in rig.recorder.on(rig.topic(DEV, "availability"), mark) if m.payload != b"online"]
        assert len(proxy.sessions) == 1, "the bridge's connection was dropped"
        # ...and after it all, a cut over MQTT still works.
        mark = rig.send(DEV, "left/gas/set", "CLOSE")
        event = rig.wait_event(DEV, lambda e: e["event_type"] == "cut" and e["burner"] == "left", since=mark)
        assert event["reason"] == "remote"
    finally:
        proxy.close()
