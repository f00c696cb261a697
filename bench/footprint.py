"""The firmware's footprint: compiled size and MicroPython heap.

- `.mpy` size: every firmware file compiled with mpy-cross for the ESP32
  (-march=xtensawin), summed (tools/heap_report.py).
- Heap over a simulated day: tools/mpy-wasm/heap.mjs, which boots the whole App in
  the MicroPython WebAssembly port on tests/mp/mpfakes.py, plays a realistic
  day (timers, cuts, the lock), and measures the heap after each simulated
  hour in a runPython() call of its own (the port only collects garbage
  between calls). Its "firmware" figures exclude the fakes and the driver.
- An update over the air (heap.mjs --update): the heap it takes while a
  bundle is received and once it is staged, above an idle board with one
  client, and what stays after its code is dropped again (MicroPython's
  interned names). Its code, ota.py, is imported only then: the .mpy
  figure is split into what a running board loads and what only an update
  loads.
- Heap with the network link on (heap.mjs --net, as `python
  tools/heap_report.py --net`): the board has a secrets file, so start-up
  also imports wifi.py, netlink.py and auth.py (hashlib's HMAC-SHA256),
  joins the (fake) Wi-Fi, listens, and one client authenticates. Target
  <= 40 KB (issue #11). What takes the room is bytecode: MicroPython loads
  every imported .mpy into the heap; the App's own objects, the listener
  and a session are a few KB. Freezing the modules into the MicroPython
  image (a custom build with them in a manifest) moves the bytecode to
  flash and would leave only the data on the heap.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from typing import Any

from .common import REPO, Figure, median

HEAP_TARGET = 24 * 1024
HEAP_NET_TARGET = 40 * 1024
MPY_TARGET = 40 * 1024


def mpy_report() -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, str(REPO / "tools" / "heap_report.py"), "--json", "--no-heap"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def mp_heap_day(hours: int) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node not found")
    proc = subprocess.run(
        [node, str(REPO / "tools" / "mpy-wasm" / "heap.mjs"), str(REPO), "--hours", str(hours)],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip())
    return json.loads(proc.stdout.strip().splitlines()[-1])


def mp_heap_update() -> dict[str, Any]:
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node not found")
    proc = subprocess.run(
        [node, str(REPO / "tools" / "mpy-wasm" / "heap.mjs"), str(REPO), "--hours", "1", "--update"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip())
    return json.loads(proc.stdout.strip().splitlines()[-1])


def mp_heap_net() -> dict[str, Any]:
    """heap.mjs --net: started with the network link on, one client authenticated, an hour run."""
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node not found")
    proc = subprocess.run(
        [node, str(REPO / "tools" / "mpy-wasm" / "heap.mjs"), str(REPO), "--hours", "1", "--net"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip())
    return json.loads(proc.stdout.strip().splitlines()[-1])


# Modules a running board imports only for an update (app.py imports them lazily).
ON_DEMAND = ("hobguard_fw/ota.py",)


def measure(quick: bool = False) -> list[Figure]:
    runs = 1 if quick else 3
    hours = 2 if quick else 24
    reports = [mpy_report() for _ in range(runs)]
    days = [mp_heap_day(hours) for _ in range(runs)]
    report = reports[-1]
    cmd_report = "python tools/heap_report.py --json --no-heap"
    cmd_day = f"node tools/mpy-wasm/heap.mjs --hours {hours}"
    figures = [
        Figure(
            id="mpy_total_bytes",
            name="firmware .mpy total (mpy-cross xtensawin)",
            value=float(report["mpy_total_bytes"]),
            unit="bytes",
            command=cmd_report,
            runs=[float(r["mpy_total_bytes"]) for r in reports],
            target=f"<= {MPY_TARGET}",
            details={"per_file": report["mpy_bytes"]},
        ),
        Figure(
            id="mpy_on_demand_bytes",
            name="  of which loaded only for an update (ota.py)",
            value=float(sum(report["mpy_bytes"].get(name, 0) for name in ON_DEMAND)),
            unit="bytes",
            command=cmd_report,
            runs=[float(sum(r["mpy_bytes"].get(name, 0) for name in ON_DEMAND)) for r in reports],
            note="imported while an update runs or a new firmware is on trial, dropped after",
        ),
    ]
    started = [float(d["firmware_started"]) for d in days]
    code = [float(d["firmware_code"]) for d in days]
    data = [float(d["firmware_data_started"]) for d in days]
    day_max = [float(d["firmware_max"]) for d in days]
    last = [float(d["stages"][f"after {hours} h"] - d["stages"]["harness"]) for d in days]
    figures += [
        Figure(
            id="heap_fw_started",
            name="heap, firmware only, started",
            value=median(started),
            unit="bytes",
            command=cmd_day,
            runs=started,
            target=f"<= {HEAP_TARGET}",
            note="fakes and driver subtracted; includes the firmware's bytecode",
        ),
        Figure(
            id="heap_fw_code",
            name="  of which imported modules (bytecode)",
            value=median(code),
            unit="bytes",
            command=cmd_day,
            runs=code,
            note="what freezing the modules into the MicroPython image would move to flash",
        ),
        Figure(
            id="heap_fw_data",
            name="  of which the running App's objects",
            value=median(data),
            unit="bytes",
            command=cmd_day,
            runs=data,
        ),
        Figure(
            id=f"heap_fw_after_{hours}h",
            name=f"heap, firmware only, after {hours} h of use",
            value=median(last),
            unit="bytes",
            command=cmd_day,
            runs=last,
            target=f"<= {HEAP_TARGET}",
            details={"max_over_the_hours": median(day_max), "stages": days[-1]["stages"], "steps": days[-1]["steps"]},
        ),
    ]
    nets = [mp_heap_net() for _ in range(runs)]
    cmd_net = "python tools/heap_report.py --net"
    net_started = [float(d["firmware_started"]) for d in nets]
    net_code = [float(d["firmware_code"]) for d in nets]
    net_data = [float(d["firmware_data_started"]) for d in nets]
    net_session = [float(d["net_session"]) for d in nets]
    net_modules = ("hobguard_fw/auth.py", "hobguard_fw/netlink.py", "hobguard_fw/wifi.py")
    net_mpy = sum(report["mpy_bytes"].get(name, 0) for name in net_modules)
    figures += [
        Figure(
            id="heap_fw_started_net",
            name="heap, firmware only, started, network link on",
            value=median(net_started),
            unit="bytes",
            command=cmd_net,
            runs=net_started,
            target=f"<= {HEAP_NET_TARGET}",
            note=f"the room is bytecode ({median(net_code):,.0f} B; the network link's modules add "
            f"{median(net_code) - median(code):,.0f} B of it, {net_mpy:,} B as .mpy); the running App's objects "
            f"{median(net_data):,.0f} B. Freezing the modules into the MicroPython image moves the bytecode to "
            "flash and leaves the objects: that is what brings it under the target",
            details={"stages": nets[-1]["stages"], "net_modules_mpy_bytes": net_mpy},
        ),
        Figure(
            id="heap_fw_code_net",
            name="  of which imported modules (bytecode)",
            value=median(net_code),
            unit="bytes",
            command=cmd_net,
            runs=net_code,
            note="what freezing the modules into the MicroPython image would move to flash",
        ),
        Figure(
            id="heap_fw_data_net",
            name="  of which the running App's objects (with the listener)",
            value=median(net_data),
            unit="bytes",
            command=cmd_net,
            runs=net_data,
            note="what stays on the heap with frozen modules",
        ),
        Figure(
            id="heap_net_session",
            name="  one authenticated connection (device side)",
            value=median(net_session),
            unit="bytes",
            command=cmd_net,
            runs=net_session,
            note="noisy to +-1 KB (the heap is read between runPython calls)",
        ),
    ]
    updates = [mp_heap_update() for _ in range(runs)]
    cmd_update = "node tools/mpy-wasm/heap.mjs --hours 1 --update"
    for key, name in (
        ("update_receiving", "heap during an update (receiving), above an idle board"),
        ("update_staged", "heap with an update staged, above an idle board"),
        ("update_left", "heap left after the update code is dropped"),
    ):
        values = [float(u[key]) for u in updates]
        figures.append(
            Figure(
                id=f"heap_{key}",
                name=name,
                value=median(values),
                unit="bytes",
                command=cmd_update,
                runs=values,
                note="interned names, freed at the next boot (every update ends in one)"
                if key == "update_left"
                else "ota.py's code and one bundle's state",
            )
        )
    return figures
