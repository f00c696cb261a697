"""Command latency: MQTT publish -> relay opened in the simulated device.

A real Mosquitto on a free port, the real bridge (`hobguard bridge`), and a
simulated hob (`hobguard sim device`, the real firmware behind a pty, at
20x real time so the 3 s cut pulse is over in 0.15 s); both run through
bench.probes, which stamps what they see with the machine-wide monotonic
clock. The benchmark publishes `<device>/<burner>/gas/set CLOSE` (QoS 0,
as Home Assistant does by default), alternating the burners, one command at
a time, each when that burner's relay is closed again; it waits for the
burner state that shows the relay open, then sends the next. Three set-ups:
back to back with Mosquitto's default configuration; the same with a random
0.1-0.3 s pause before each command (commands at random moments, as a
person sends them); back to back with `set_tcp_nodelay true` in Mosquitto.

Why they could differ: were the bridge to publish its states with QoS 1,
the broker would answer each with a PUBACK; the bridge's kernel delays its
TCP ACK of that PUBACK (delayed ACK, ~40 ms), and with Nagle's algorithm on
(Mosquitto's default) the broker holds the next small packet to the bridge
-- our command -- until that ACK comes: a command right after a state
publish waited ~40 ms (measured: 44 ms p50 back to back, before the
bridge published its retained states at QoS 0). `set_tcp_nodelay true`
removes the wait too. At 20x the simulated device sends states 20x as
often as a real one, so "spaced" over-states how often a command meets
such a window.

Legs of each command (all wall-clock, one clock):
  broker -> bridge   client publish() called  -> Bridge._on_message entered
  bridge             _on_message entered      -> command line written to the port
  serial -> device   written to the pty       -> bytes reach SimDevice.send_line
  device handling    bytes at the device      -> firmware drives the relay pin open
  end to end         client publish() called  -> relay pin open
  round trip         client publish() called  -> relay-open state back at the client
The relay's contact opens 5 ms (simulated) after its pin: see gas_off for
what follows in the physics.
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path
from typing import Any

from hobguard.testing import Seen, wait_for

from .common import Figure, bench_command, median, percentile
from .rig import Rig

BASE = "bench/hobguard"
SPEED = 20.0
BURNERS = ("left", "right")


def _read_probes(path: Path) -> list[list[str]]:
    if not path.exists():
        return []
    return [line.split() for line in path.read_text().splitlines() if line.strip()]


def run(commands: int, warmup: int = 10, tcp_nodelay: bool = False, pause_s: tuple[float, float] = (0.0, 0.0),
        seed: int = 1, wifi: bool = False) -> dict[str, Any]:  # fmt: skip
    """The legs of `commands` cuts (after `warmup` more). wifi: the hob on
    its network link (`sim device --listen 127.0.0.1:0 --key-file`, the
    bridge with --device/--key-file) instead of the pty; the legs "serial"
    and "device" then are one, "link" (handed to the transport -> relay
    pin open: framing, HMAC, loopback TCP, the firmware's poll, checking
    the frame, handling the command)."""
    from hobguard.bridge.netlink import write_key_file

    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="hobguard-bench-") as tmp:
        work = Path(tmp)
        dev_probe, br_probe = work / "device.probe", work / "bridge.probe"
        with Rig(work, tcp_nodelay=tcp_nodelay) as rig:
            link = work / "hob.tty"
            key_file = work / "hob.key"
            net = ()
            if wifi:
                write_key_file(key_file)
                net = ("--listen", "127.0.0.1:0", "--key-file", str(key_file))
            device = rig.start(
                "-m", "bench.probes", "device", str(dev_probe), "--",
                "--speed", str(SPEED), "--link", str(link), *net,
                quit_line="quit", stdin=True, stdout=True, log=work / "device.log",
            )  # fmt: skip
            if wifi:
                assert device.stdout is not None
                url = device.stdout.readline().strip()
                if not url.startswith("tcp://"):
                    raise RuntimeError("sim device --listen printed no address: " + (work / "device.log").read_text())
                argv = rig.bridge_argv([], devices=[(url, key_file)])
            else:
                wait_for(link.exists, 10, "the device's pty")
                argv = rig.bridge_argv([str(link)])
            rig.start("-m", "bench.probes", "bridge", str(br_probe), "--", *argv, log=work / "bridge.log")
            client = rig.record([f"{BASE}/#"])
            online = client.wait(lambda m: m.topic.endswith("/availability") and m.payload == b"online"
                                 and "/bridge/" not in m.topic, 20, what="device online")  # fmt: skip
            device_id = online.topic.split("/")[-2]
            state_topic = {b: f"{BASE}/{device_id}/{b}/state" for b in BURNERS}
            wait_for(lambda: all(client.json(state_topic[b]) for b in BURNERS), 10, "burner states")
            sent: list[tuple[int, str, int]] = []  # (publish ns, burner, arrival ns of the open state)
            mark = client.mark()
            for n in range(commands + warmup):
                burner = BURNERS[n % 2]
                topic = state_topic[burner]

                def closed(m: Seen, topic: str = topic) -> bool:
                    if m.topic != topic:
                        return False
                    s = m.json()
                    return s.get("relay") == "closed" and not s.get("cutting")

                state = client.json(topic) or {}
                if not (state.get("relay") == "closed" and not state.get("cutting")):
                    client.wait(closed, 10, since=mark, what=f"{burner} relay closed")
                if pause_s[1] > 0:
                    time.sleep(rng.uniform(*pause_s))
                mark = client.mark()
                t0 = time.monotonic_ns()
                client.client.publish(f"{BASE}/{device_id}/{burner}/gas/set", "CLOSE", qos=0)

                def opened(m: Seen, topic: str = topic) -> bool:
                    return m.topic == topic and m.json().get("relay") == "open"

                seen = client.wait(opened, 10, since=mark, what=f"{burner} relay open")
                sent.append((t0, burner, seen.at_ns))
                mark = seen.index + 1
            time.sleep(0.2)
        bridge_rx = [int(p[1]) for p in _read_probes(br_probe) if p[0] == "mqtt_rx" and p[2].endswith("/gas/set")]
        tx = "net_tx" if wifi else "serial_tx"
        serial_tx = {int(p[2]): int(p[1]) for p in _read_probes(br_probe) if p[0] == tx and p[3] == "cut"}
        dev = _read_probes(dev_probe)
        dev_rx = {int(p[2]): int(p[1]) for p in dev if p[0] == "dev_rx" and p[3] == "cut"}
        relay = [(int(p[1]), int(p[2])) for p in dev if p[0] == "relay_open"]
        ids = sorted(serial_tx)
    if not (len(bridge_rx) == len(sent) == len(ids)):
        raise RuntimeError(
            f"probes do not line up: {len(sent)} sent, {len(bridge_rx)} at the bridge, {len(ids)} written"
        )
    names = ("broker", "bridge", "serial", "device", "link", "end_to_end", "round_trip")
    legs: dict[str, list[float]] = {k: [] for k in names}
    for n, ((t0, burner, t_state), t_brx, rid) in enumerate(zip(sent, bridge_rx, ids, strict=True)):
        if n < warmup:
            continue
        t_tx = serial_tx[rid]
        index = BURNERS.index(burner)
        ms = 1e-6
        if wifi:  # the device's `received` hook sees the pty only: one leg from the transport to the relay
            t_relay = next(t for t, i in relay if i == index and t >= t_tx)
            legs["link"].append((t_relay - t_tx) * ms)
        else:
            t_drx = dev_rx[rid]
            t_relay = next(t for t, i in relay if i == index and t >= t_drx)
            legs["serial"].append((t_drx - t_tx) * ms)
            legs["device"].append((t_relay - t_drx) * ms)
        legs["broker"].append((t_brx - t0) * ms)
        legs["bridge"].append((t_tx - t_brx) * ms)
        legs["end_to_end"].append((t_relay - t0) * ms)
        legs["round_trip"].append((t_state - t0) * ms)
    return legs


LEG_NAMES = {
    "end_to_end": "latency: MQTT publish -> relay open",
    "broker": "  leg 1: publish -> bridge on_message",
    "bridge": "  leg 2: on_message -> serial write",
    "serial": "  leg 3: serial write -> device (pty)",
    "device": "  leg 4: device -> relay pin open",
    "round_trip": "latency: publish -> relay-open state at client",
}


# (suffix, label, broker with TCP_NODELAY, pause before each command (s))
CONFIGS = [
    ("", "", False, (0.0, 0.0)),
    ("_spaced", " [spaced]", False, (0.1, 0.3)),
    ("_nodelay", " [broker nodelay]", True, (0.0, 0.0)),
]
CONFIG_NOTES = {
    "": "default Mosquitto config; each command right after the previous one's state",
    "_spaced": "default Mosquitto config; a random 0.1-0.3 s pause before each command",
    "_nodelay": "Mosquitto with set_tcp_nodelay true; back to back",
}


def measure(quick: bool = False) -> list[Figure]:
    commands = 60 if quick else 240
    figures = []
    for suffix, label, nodelay, pause in CONFIGS:
        legs = run(commands, tcp_nodelay=nodelay, pause_s=pause)
        for key, name in LEG_NAMES.items():
            if suffix and key not in ("end_to_end", "broker", "round_trip"):
                continue
            values = legs[key]
            for p in (50, 99):
                figures.append(
                    Figure(
                        id=f"latency_{key}_p{p}{suffix}",
                        name=f"{name}, p{p}{label}",
                        value=percentile(values, p),
                        unit="ms",
                        command=bench_command("latency", quick),
                        runs=[],
                        target="<= 20" if key == "end_to_end" and p == 99 else None,
                        note=f"{CONFIG_NOTES[suffix]}; {len(values)} commands; median {median(values):.2f} ms, "
                        f"max {max(values):.2f} ms",
                        details={"n": len(values), "max_ms": max(values), "min_ms": min(values)},
                    )
                )
    return figures
