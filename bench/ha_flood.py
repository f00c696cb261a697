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

import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

import psutil
from hobguard.testing import Recorder, Seen, wait_for

from .common import Figure, bench_command, median, percentile
from .rig import Rig

BASE = "bench/hobguard"
PREFIX = "bench/homeassistant"
SPEED = 20.0
FLOOD_RATE = 2000  # status messages per second


def _probes(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


class Flooder:
    """Publishes `<prefix>/status online` at `rate`/s from its own client."""

    def __init__(self, url: str, rate: int) -> None:
        self.rate = rate
        self.sent = 0
        self._stop = threading.Event()
        self.recorder = Recorder(url, [f"{PREFIX}/flooder/#"], qos=0)  # (a client that hears nothing)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        started = time.monotonic()
        while not self._stop.is_set():
            due = int((time.monotonic() - started) * self.rate)
            while self.sent < due:
                self.recorder.publish(f"{PREFIX}/status", "online", qos=0)
                self.sent += 1
            time.sleep(0.005)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(5)
        self.recorder.close()


def _relay(topic: str, relay: str, cutting: bool | None = None) -> Callable[[Seen], bool]:
    def matches(m: Seen) -> bool:
        if m.topic != topic:
            return False
        state = m.json()
        return state.get("relay") == relay and (cutting is None or bool(state.get("cutting")) == cutting)

    return matches


def _cuts(client: Recorder, device_id: str, count: int, mark: int) -> tuple[list[int], int]:
    """Send `count` cuts one at a time; their publish times (ns)."""
    topic = f"{BASE}/{device_id}/left/state"
    sent = []
    for _ in range(count):
        state = client.json(topic) or {}
        if not (state.get("relay") == "closed" and not state.get("cutting")):
            client.wait(_relay(topic, "closed", cutting=False), 20, since=mark, what="relay closed")
        mark = client.mark()
        sent.append(time.monotonic_ns())
        client.client.publish(f"{BASE}/{device_id}/left/gas/set", "CLOSE", qos=0)
        mark = client.wait(_relay(topic, "open"), 20, since=mark, what="relay open").index + 1
    return sent, mark


def run(cuts: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="hobguard-bench-") as tmp:
        work = Path(tmp)
        probe = work / "bridge.probe"
        with Rig(work, tcp_nodelay=True) as rig:
            link = work / "hob.tty"
            rig.start("-m", "hobguard.cli", "sim", "device", "--speed", str(SPEED), "--link", str(link),
                      quit_line="quit", stdin=True, stdout=True, log=work / "device.log")  # fmt: skip
            wait_for(link.exists, 10, "the device's pty")
            bridge = rig.start("-m", "bench.probes", "bridge", str(probe), "--", *rig.bridge_argv([str(link)]),
                               log=work / "bridge.log")  # fmt: skip
            client = rig.record([f"{BASE}/#", f"{PREFIX}/#"])
            online = client.wait(lambda m: m.topic.endswith("/availability") and m.payload == b"online"
                                 and "/bridge/" not in m.topic, 20, what="device online")  # fmt: skip
            device_id = online.topic.split("/")[-2]
            valve = f"{PREFIX}/valve/{device_id}/left_gas/config"
            client.wait(lambda m: m.topic == valve, 10, what="discovery")
            time.sleep(1.0)
            quiet, mark = _cuts(client, device_id, cuts, client.mark())
            rss_before = psutil.Process(bridge.pid).memory_info().rss
            flooder = Flooder(rig.broker.url, FLOOD_RATE)
            flood_mark = client.mark()
            flooder.start()
            try:
                time.sleep(1.0)  # the flood under way
                flooded, mark = _cuts(client, device_id, cuts, client.mark())
                time.sleep(1.0)
            finally:
                flooder.stop()
            status_sent = flooder.sent
            rss_after = psutil.Process(bridge.pid).memory_info().rss
            time.sleep(1.0)
            republished = len(client.on(valve, since=flood_mark))
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
