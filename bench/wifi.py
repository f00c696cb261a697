"""The hob on the Wi-Fi (issue #11): what the network link costs and how it
recovers, measured on loopback with the real processes.

- Command latency over TCP: bench/latency.py's set-up (a throwaway
  Mosquitto, the instrumented bridge, `hobguard sim device` at 20x behind
  bench.probes, `<device>/<burner>/gas/set CLOSE` one at a time) with the
  hob on its network link: `sim device --listen 127.0.0.1:0 --key-file`,
  the bridge with `--device tcp://… --key-file`. Every command is framed
  and authenticated (HMAC-SHA256) by the bridge, sent over loopback TCP,
  checked by the firmware's own auth.py and handled. Legs: publish ->
  bridge on_message, on_message -> handed to the network transport, that
  -> relay pin open (framing, TCP, the firmware's poll, the HMAC check,
  the command), and end to end.
- Wi-Fi back -> online in MQTT: `hobguard sim device --listen` at real
  speed (1x: the simulated Wi-Fi joins 0.6 s after it is in reach, as the
  firmware's station sees it) and the real `hobguard bridge` (not
  instrumented). Each round: `wifi off` on the device's stdin, wait for
  `<device>/availability offline`, keep the Wi-Fi away DROP_S seconds,
  `wifi on`, and time until `<device>/availability online` reaches an MQTT
  client. What it adds up: the Wi-Fi join, the firmware's listener coming
  back, the bridge's next reconnect attempt (its back-off: 1 s doubling,
  with jitter, at most reconnect_max_s, 10 s by default — so the drop's
  length matters), the handshake, the hello and the publish.
- Bridge RSS and CPU with 128 network hobs: one helper process
  (bench.probes devices --key-file) runs 128 SimDevices (the real
  firmware), each serving its network link on a loopback port of its own,
  with heartbeat_s = 1 and both burners lit, so each reports a state frame
  every second (1 Hz) over an authenticated TCP connection. The real
  `hobguard bridge` serves all 128 (one --device/--key-file pair each);
  psutil samples it once a second, as bench/bridge_load.py does for hobs
  on ptys.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from hobguard.testing import wait_for

from . import latency
from .bridge_load import _sample, online_count, resource_figures
from .common import Figure, bench_command, median, percentile
from .rig import Rig

BASE = "bench/hobguard"
DROP_S = 3.0
LOAD_DEVICES = 128


# -- command latency over TCP -------------------------------------------------------------


TCP_LEGS = {
    "end_to_end": "TCP latency: MQTT publish -> relay open",
    "broker": "  TCP leg 1: publish -> bridge on_message",
    "bridge": "  TCP leg 2: on_message -> network transport",
    "link": "  TCP leg 3: transport -> relay pin open (HMAC, TCP, firmware)",
    "round_trip": "TCP latency: publish -> relay-open state at client",
}


# (suffix, label, broker with TCP_NODELAY, note): latency.CONFIGS' back-to-back set-ups
TCP_CONFIGS = [
    ("", "", False, "default Mosquitto config"),
    ("_nodelay", " [broker nodelay]", True, "Mosquitto with set_tcp_nodelay true"),
]


def tcp_latency(quick: bool) -> list[Figure]:
    commands = 60 if quick else 240
    figures = []
    for suffix, label, nodelay, config in TCP_CONFIGS:
        legs = latency.run(commands, wifi=True, tcp_nodelay=nodelay)
        for key, name in TCP_LEGS.items():
            if suffix and key in ("bridge", "link"):
                continue
            values = legs[key]
            for p in (50, 99):
                figures.append(
                    Figure(
                        id=f"tcp_latency_{key}_p{p}{suffix}",
                        name=f"{name}, p{p}{label}",
                        value=percentile(values, p),
                        unit="ms",
                        command=bench_command("wifi", quick),
                        target="<= 20" if key == "end_to_end" and p == 99 else None,
                        note=f"hob on its network link (loopback, authenticated frames); {config}; "
                        f"{len(values)} commands back to back; median {median(values):.2f} ms, "
                        f"max {max(values):.2f} ms",
                        details={"n": len(values), "max_ms": max(values), "min_ms": min(values)},
                    )
                )
    return figures


# -- Wi-Fi back -> online -----------------------------------------------------------------


def wifi_back(drops: int, drop_s: float = DROP_S) -> list[float]:
    """Seconds from `wifi on` to the device's availability `online` at an
    MQTT client, for each of `drops` Wi-Fi drops of `drop_s` seconds."""
    from hobguard.bridge.netlink import write_key_file

    with tempfile.TemporaryDirectory(prefix="hobguard-bench-") as tmp:
        work = Path(tmp)
        key_file = work / "hob.key"
        write_key_file(key_file)
        with Rig(work) as rig:
            device = rig.start(
                "-m", "hobguard.cli", "sim", "device", "--speed", "1", "--link", str(work / "hob.tty"),
                "--listen", "127.0.0.1:0", "--key-file", str(key_file),
                quit_line="quit", stdin=True, stdout=True, log=work / "device.log",
            )  # fmt: skip
            assert device.stdout is not None and device.stdin is not None
            url = device.stdout.readline().strip()
            if not url.startswith("tcp://"):
                raise RuntimeError("sim device --listen printed no address: " + (work / "device.log").read_text())
            rig.start("-m", "hobguard.cli", "bridge", *rig.bridge_argv([], devices=[(url, key_file)]),
                      log=work / "bridge.log")  # fmt: skip
            client = rig.record([f"{BASE}/+/availability"])

            def device_is(state: bytes, since: int = 0) -> Any:
                return client.wait(
                    lambda m: "/bridge/" not in m.topic and m.payload == state,
                    60,
                    since=since,
                    what=f"the device {state.decode()}",
                )

            device_is(b"online")
            times = []
            for _ in range(drops):
                mark = client.mark()
                device.stdin.write("wifi off\n")
                device.stdin.flush()
                device_is(b"offline", mark)
                time.sleep(drop_s)
                mark = client.mark()
                t0 = time.monotonic_ns()
                device.stdin.write("wifi on\n")
                device.stdin.flush()
                seen = device_is(b"online", mark)
                times.append((seen.at_ns - t0) / 1e9)
                time.sleep(1.0)
            return times


def wifi_back_figures(quick: bool) -> list[Figure]:
    drops = 3 if quick else 10
    times = wifi_back(drops)
    return [
        Figure(
            id="wifi_back_to_online_s",
            name="Wi-Fi back -> device online in MQTT (median)",
            value=median(times),
            unit="s",
            command=bench_command("wifi", quick),
            runs=times,
            # A hob back on the Wi-Fi is served within the bridge's longest back-off.
            target="<= 10",
            note=f"{drops} drops of {DROP_S:g} s (device seen offline first); sim device --listen at 1x, the bridge "
            f"with its default back-off (1 s doubling, jitter, at most 10 s); max {max(times):.2f} s",
        )
    ]


# -- the bridge with 128 network hobs ------------------------------------------------------


def load(devices: int, settle_s: float, window_s: float) -> dict[str, Any]:
    from hobguard.bridge.netlink import write_key_file

    with tempfile.TemporaryDirectory(prefix="hobguard-bench-") as tmp:
        work = Path(tmp)
        key_file = work / "hob.key"
        write_key_file(key_file)
        settings = work / "settings.json"
        settings.write_text(json.dumps({"heartbeat_s": 1}))
        with Rig(work) as rig:
            holder = rig.start("-m", "bench.probes", "devices", str(work), str(devices), "--settings", str(settings),
                               "--key-file", str(key_file), quit_line="quit", stdin=True, stdout=True,
                               log=work / "devices.log")  # fmt: skip
            urls_file = work / "urls.txt"
            wait_for(urls_file.exists, 120, "the devices' addresses")
            urls = urls_file.read_text().split()
            if len(urls) != devices:
                raise RuntimeError(f"{len(urls)} addresses for {devices} devices")
            bridge = rig.start("-m", "hobguard.cli", "bridge",
                               *rig.bridge_argv([], devices=[(u, key_file) for u in urls]),
                               log=work / "bridge.log")  # fmt: skip
            client = rig.record([f"{BASE}/#"])

            t0 = time.monotonic()
            try:
                wait_for(lambda: online_count(client) >= devices + 1, 180, f"{devices} network devices online")
            except TimeoutError:
                on = online_count(client)
                tail = (work / "bridge.log").read_text()[-3000:] + (work / "devices.log").read_text()[-2000:]
                raise TimeoutError(
                    f"{on - 1} of {devices} network devices online; the logs end with:\n{tail}"
                ) from None
            all_online_s = time.monotonic() - t0
            assert holder.stdin is not None
            holder.stdin.write("ignite\n")
            holder.stdin.flush()
            result = _sample(bridge.pid, settle_s, window_s, client)
            import psutil

            result["holder_cpu_percent"] = psutil.Process(holder.pid).cpu_percent(interval=1.0)
            result["all_online_s"] = all_online_s
            state_topics = [t for t in client.latest if t.endswith("/state") and t.count("/") == 3]
            result["devices_with_state"] = len(state_topics)
            return result


def load_figures(quick: bool) -> list[Figure]:
    runs = 1 if quick else 3
    window = 10.0 if quick else 30.0
    results = [load(LOAD_DEVICES, settle_s=10.0, window_s=window) for _ in range(runs)]
    msgs = median([r["mqtt_messages_per_s"] for r in results])
    holder = median([r["holder_cpu_percent"] for r in results])
    note = (
        f"{LOAD_DEVICES} SimDevices on loopback TCP, authenticated, a state frame/s each; {window:.0f} s window "
        f"after 10 s settling; {msgs:.0f} MQTT messages/s published; the devices' process used {holder:.0f} % CPU"
    )
    label = f"{LOAD_DEVICES} network hobs, a report/s each"
    return resource_figures(results, f"net{LOAD_DEVICES}", label, bench_command("wifi", quick), "<= 64", "< 25", note)


def measure(quick: bool = False) -> list[Figure]:
    return tcp_latency(quick) + wifi_back_figures(quick) + load_figures(quick)
