"""The bridge's resident memory and CPU, idle and under load.

`hobguard bridge` (the real service, not instrumented) runs as its own
process against a throwaway Mosquitto, and psutil samples it once a second:
resident set size (RSS) and CPU time (user + system) over a measurement
window after a settling period. CPU is given in % of one core.

- idle: one simulated two-burner hob (`hobguard sim device`, default
  settings: a state frame every 10 s), nothing happening;
- loaded: 32 simulated two-burner hobs in one helper process (bench.probes
  devices: one SimDevice behind one PtyDevice each, as `hobguard sim device`
  runs them), each with heartbeat_s = 1 and both burners lit (so the
  firmware samples every second and reports a state frame every second),
  i.e. 32 state frames/s in, ~100 MQTT messages/s out.
The MQTT messages the bridge publishes during the window are counted by a
subscriber, to show the load was real.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
from hobguard.testing import Recorder, wait_for

from .common import Figure, bench_command, median
from .rig import Rig

BASE = "bench/hobguard"


def _sample(pid: int, settle_s: float, window_s: float, client: Recorder) -> dict[str, Any]:
    proc = psutil.Process(pid)
    time.sleep(settle_s)
    cpu0 = proc.cpu_times()
    wall0 = time.monotonic()
    count0 = len(client.messages)
    rss = []
    while time.monotonic() - wall0 < window_s:
        rss.append(proc.memory_info().rss)
        time.sleep(1.0)
    cpu1 = proc.cpu_times()
    wall = time.monotonic() - wall0
    used = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    return {
        "cpu_percent": 100.0 * used / wall,
        "rss_mb_max": max(rss) / 1e6,
        "rss_mb_median": median(rss) / 1e6,
        "mqtt_messages_per_s": (len(client.messages) - count0) / wall,
        "threads": proc.num_threads(),
        "window_s": wall,
    }


def online_count(client: Recorder) -> int:
    """Availability topics that say online, the bridge's own included."""
    with client.cond:
        return sum(1 for t, m in client.latest.items() if t.endswith("/availability") and m.payload == b"online")


def resource_figures(
    results: list[dict[str, Any]], key: str, label: str, command: str, rss_target: str, cpu_target: str, note: str
) -> list[Figure]:
    """The bridge's RSS (max) and CPU over runs of _sample, as two figures."""
    rss = [r["rss_mb_max"] for r in results]
    cpu = [r["cpu_percent"] for r in results]
    return [
        Figure(
            id=f"bridge_rss_{key}",
            name=f"bridge RSS (max), {label}",
            value=median(rss),
            unit="MB",
            command=command,
            runs=rss,
            target=rss_target,
            note=note,
            details={"per_run": results},
        ),
        Figure(
            id=f"bridge_cpu_{key}",
            name=f"bridge CPU, {label}",
            value=median(cpu),
            unit="%",
            command=command,
            runs=cpu,
            target=cpu_target,
            note="% of one core; " + note,
        ),
    ]


def run(devices: int, settle_s: float, window_s: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="hobguard-bench-") as tmp:
        work = Path(tmp)
        with Rig(work) as rig:
            if devices == 1:
                links = [work / "hob0.tty"]
                holder = rig.start("-m", "hobguard.cli", "sim", "device", "--link", str(links[0]),
                                   quit_line="quit", stdin=True, stdout=True, log=work / "device.log")  # fmt: skip
            else:
                settings = work / "settings.json"
                settings.write_text(json.dumps({"heartbeat_s": 1}))
                links = [work / f"hob{n}.tty" for n in range(devices)]
                holder = rig.start("-m", "bench.probes", "devices", str(work), str(devices), "--settings",
                                   str(settings), quit_line="quit", stdin=True, stdout=True,
                                   log=work / "devices.log")  # fmt: skip
            wait_for(lambda: all(link.exists() for link in links), 30, "the devices' ptys")
            bridge = rig.start("-m", "hobguard.cli", "bridge", *rig.bridge_argv([str(x) for x in links]),
                               log=work / "bridge.log")  # fmt: skip
            client = rig.record([f"{BASE}/#"])

            wait_for(lambda: online_count(client) >= devices + 1, 60, f"{devices} device(s) online")
            if devices > 1 and holder.stdin is not None:
                holder.stdin.write("ignite\n")
                holder.stdin.flush()
            result = _sample(bridge.pid, settle_s, window_s, client)
            result["holder_cpu_percent"] = psutil.Process(holder.pid).cpu_percent(interval=1.0)
            return result


def measure(quick: bool = False) -> list[Figure]:
    runs = 1 if quick else 3
    window = 10.0 if quick else 30.0
    figures = []
    for devices, label in ((1, "idle, 1 hob"), (32, "32 hobs, a report/s each")):
        results = [run(devices, settle_s=5.0, window_s=window) for _ in range(runs)]
        msgs = median([r["mqtt_messages_per_s"] for r in results])
        note = f"{window:.0f} s window after 5 s settling; {msgs:.0f} MQTT messages/s published"
        key = "idle" if devices == 1 else "32"
        figures += resource_figures(results, key, label, bench_command("bridge_load", quick), "<= 40", "< 5", note)
    return figures
