"""A cut while Home Assistant's status topic floods the bridge (issue 9, item 5).

A real Mosquitto on a free port, the real bridge (`hobguard bridge` through
bench.probes, which stamps when a message enters Bridge._on_message and when
a command line is written to the port), and a simulated hob (`hobguard sim
device`, 20x). Cuts are sent one at a time, each when the burner's relay is
closed again (as in bench/latency.py), in two phases:

- quiet: nothing else happens;
- flood: a second client publishes `homeassistant/status` = `online` (what
  Home Assistant sends when it starts) at FLOOD_RATE messages/s, without a
  pause, for the whole phase.

Figures: from the cut's publish to the cut written to the device's port
(p50, p99) in each phase and their ratio; how many times the bridge re-sent
its discovery during the flood, per 1000 status messages; the bridge's
resident memory after the flood minus before (psutil). Before issue 9 the
bridge re-sent every config for every status message on the thread that
also reads commands: memory grew by tens of MB and a cut waited seconds.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
from hobguard.testing import wait_for

from .common import Figure, bench_command, median, percentile
from .rig import Broker, Client, bridge_args, python, stop_process

BASE = "bench/hobguard"
PREFIX = "bench/homeassistant"
SPEED = 20.0
FLOOD_RATE = 2000  # status messages per second


def _probes(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


class Flooder:
    """Publishes `<prefix>/status online` at `rate`/s from its own client."""

    def __init__(self, broker: Any, rate: int) -> None:
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        self.rate = rate
        self.sent = 0
        self._stop = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-flooder")
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        started = time.monotonic()
        while not self._stop.is_set():
            due = int((time.monotonic() - started) * self.rate)
            while self.sent < due:
                self.client.publish(f"{PREFIX}/status", "online", qos=0)
                self.sent += 1
            time.sleep(0.005)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(5)
        self.client.disconnect()
        self.client.loop_stop()


def _cuts(client: Client, device_id: str, count: int, mark: int) -> tuple[list[int], int]:
    """Send `count` cuts one at a time; their publish times (ns)."""
    topic = f"{BASE}/{device_id}/left/state"
    sent = []
    for _ in range(count):
        state = client.json(topic) or {}
        if not (state.get("relay") == "closed" and not state.get("cutting")):
            client.wait(lambda t, p: t == topic and json.loads(p).get("relay") == "closed"
                        and not json.loads(p).get("cutting"), mark, 20, "relay closed")  # fmt: skip
        mark = len(client.messages)
        sent.append(time.monotonic_ns())
        client.client.publish(f"{BASE}/{device_id}/left/gas/set", "CLOSE", qos=0)
        index = client.wait(lambda t, p: t == topic and json.loads(p).get("relay") == "open", mark, 20, "relay open")
        mark = index + 1
    return sent, mark


def run(cuts: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="hobguard-bench-") as tmp:
        work = Path(tmp)
        broker = Broker(work, tcp_nodelay=True)
        procs = []
        client = None
        flooder = None
        try:
            probe = work / "bridge.probe"
            link = work / "hob.tty"
            device = python("-m", "hobguard.cli", "sim", "device", "--speed", str(SPEED), "--link", str(link),
                            stdin=True, stdout=True, log=work / "device.log")  # fmt: skip
            procs.append((device, "quit"))
            wait_for(link.exists, 10, "the device's pty")
            args = bridge_args(broker, [str(link)], work)
            bridge = python("-m", "bench.probes", "bridge", str(probe), "--", *args, log=work / "bridge.log")
            procs.append((bridge, None))
            client = Client(broker, [f"{BASE}/#", f"{PREFIX}/#"])
            at = client.wait(lambda t, p: t.endswith("/availability") and p == b"online" and "/bridge/" not in t,
                             0, 20, "device online")  # fmt: skip
            device_id = client.messages[at][1].split("/")[-2]
            valve = f"{PREFIX}/valve/{device_id}/left_gas/config"
            client.wait(lambda t, p: t == valve, 0, 10, "discovery")
            time.sleep(1.0)
            quiet, mark = _cuts(client, device_id, cuts, len(client.messages))
            rss_before = psutil.Process(bridge.pid).memory_info().rss
            flooder = Flooder(broker, FLOOD_RATE)
            flood_mark = len(client.messages)
            flooder.start()
            time.sleep(1.0)  # the flood under way
            flooded, mark = _cuts(client, device_id, cuts, len(client.messages))
            time.sleep(1.0)
            flooder.stop()
            status_sent = flooder.sent
            rss_after = psutil.Process(bridge.pid).memory_info().rss
            flooder = None
            time.sleep(1.0)
            republished = sum(1 for _, t, _ in client.messages[flood_mark:] if t == valve)
        finally:
            if flooder is not None:
                flooder.stop()
            if client is not None:
                client.close()
            for proc, quit_line in reversed(procs):
                stop_process(proc, quit_line)
            broker.stop()
        probes = _probes(probe)
    written = sorted(int(p[1]) for p in probes if p[0] == "serial_tx" and p[3] == "cut")

    def legs(sent: list[int]) -> list[float]:
        out = []
        for t0 in sent:
            t = next((w for w in written if w >= t0), None)
            if t is not None:
                out.append((t - t0) / 1e6)
        return out

    return {
        "quiet_ms": legs(quiet),
        "flood_ms": legs(flooded),
        "status_sent": status_sent,
        "republished": republished,
        "rss_growth_mb": (rss_after - rss_before) / 1e6,
    }


def measure(quick: bool = False) -> list[Figure]:
    cuts = 20 if quick else 60
    r = run(cuts)
    command = bench_command("ha_flood", quick)
    quiet, flood = r["quiet_ms"], r["flood_ms"]
    note = f"{len(flood)} cuts during {r['status_sent']} status messages at {FLOOD_RATE}/s"
    figures = []
    for p in (50, 99):
        figures.append(Figure(id=f"ha_flood_cut_p{p}_quiet", name=f"cut publish -> written to the device, p{p}",
                              value=percentile(quiet, p), unit="ms", command=command,
                              note=f"{len(quiet)} cuts, nothing else going on"))  # fmt: skip
        figures.append(Figure(id=f"ha_flood_cut_p{p}_flood", name=f"  the same during a HA status flood, p{p}",
                              value=percentile(flood, p), unit="ms", command=command, note=note))  # fmt: skip
    figures.append(
        Figure(
            id="ha_flood_cut_ratio",
            name="  flood / quiet, median cut",
            unit="x",
            value=median(flood) / median(quiet),
            command=command,
            target="<= 3",
            note="a cut does not queue behind re-announcements",
        )  # fmt: skip
    )
    figures.append(
        Figure(
            id="ha_flood_republish_per_1000",
            name="discovery re-sent per 1000 status messages",
            unit="x",
            value=1000 * r["republished"] / max(1, r["status_sent"]),
            command=command,
            note=f"{r['republished']} times for {r['status_sent']} messages: coalesced",
        )  # fmt: skip
    )
    figures.append(
        Figure(
            id="ha_flood_rss_growth",
            name="bridge RSS growth over the flood",
            unit="MB",
            value=r["rss_growth_mb"],
            command=command,
            target="<= 5",
            note=note,
        )  # fmt: skip
    )
    return figures
