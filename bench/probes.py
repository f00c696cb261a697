"""Instrumented entry points for the latency and load benchmarks.

    python -m bench.probes bridge PROBE_FILE -- [hobguard bridge options]
    python -m bench.probes device PROBE_FILE -- [hobguard sim device options]
    python -m bench.probes devices DIR COUNT [--speed S] [--settings FILE] [--key-file FILE]

`bridge` and `device` run the real `hobguard bridge` / `hobguard sim device`
(hobguard.cli.main) after wrapping a few of the bridge's functions, or
adding observers to every simulated device's hooks, so that they append one
line per observation to PROBE_FILE, stamped with time.monotonic_ns(): on
Linux that is CLOCK_MONOTONIC, one clock for every process on the machine,
so stamps from the client, the bridge and the device can be subtracted.

- bridge: `mqtt_rx <ns> <topic>` when Bridge._on_message is entered (paho
  has decoded the message), `serial_tx <ns> <request id> <cmd>` just before
  the command line is written to the serial port; `net_tx <ns> <request id>
  <cmd>` just before it is handed to a network device's transport (which
  frames and authenticates it and sends it on its socket).
- device: `dev_rx <ns> <request id> <cmd>` when the bytes reach the
  simulated device (its `received` hook: SimDevice.send_line, called by
  PtyDevice's thread as it reads the pty), `relay_open <ns> <burner index>`
  when a relay coil is released, opening the thermocouple loop (its `coil`
  hook; the contact itself follows after the relay's release time, 5 ms
  simulated).

`devices` runs COUNT simulated hobs (each a SimDevice behind its own
PtyDevice, i.e. `hobguard sim device` without the stdin loop) in one
process, with links DIR/hob<N>.tty and device ids bench-<N>; reads
`ignite` / `quit` on stdin. With --key-file each also serves its network
link on 127.0.0.1 (a port of its own, that key) and DIR/urls.txt lists
their tcp:// addresses, one a line, before `ready` is printed.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

_lock = threading.Lock()
_out: Any = None


def _probe(*fields: Any) -> None:
    line = " ".join(str(f) for f in fields) + "\n"
    with _lock:
        _out.write(line)
        _out.flush()


def _request_ids(data: bytes) -> list[tuple[int, str]]:
    from hobguard_fw import protocol

    found = []
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            request_id, cmd, _ = protocol.parse_request(line)
        except protocol.ProtocolError:
            continue
        found.append((request_id, cmd))
    return found


def instrument_bridge() -> None:
    from hobguard.bridge import service as bridge

    on_message = bridge.Bridge._on_message

    def probed_on_message(self, message):  # type: ignore[no-untyped-def]
        _probe("mqtt_rx", time.monotonic_ns(), message.topic)
        return on_message(self, message)

    bridge.Bridge._on_message = probed_on_message  # type: ignore[method-assign]

    # The link's writer thread writes through its transport (non-blocking
    # os.write on the port's descriptor, not serial.Serial.write).
    from hobguard.bridge import device_link

    write = device_link.SerialTransport.write

    def probed_write(self, data):  # type: ignore[no-untyped-def]
        t = time.monotonic_ns()
        for request_id, cmd in _request_ids(bytes(data)):
            _probe("serial_tx", t, request_id, cmd)
        return write(self, data)

    device_link.SerialTransport.write = probed_write  # type: ignore[method-assign]

    from hobguard.bridge import network

    net_write = network.NetworkTransport.write

    def probed_net_write(self, data):  # type: ignore[no-untyped-def]
        t = time.monotonic_ns()
        for request_id, cmd in _request_ids(bytes(data)):
            _probe("net_tx", t, request_id, cmd)
        return net_write(self, data)

    network.NetworkTransport.write = probed_net_write  # type: ignore[method-assign]


def instrument_device() -> None:
    from hobguard_sim import device

    def watch(dev: device.SimDevice) -> None:
        def received(t_ms: int, data: bytes) -> None:
            t = time.monotonic_ns()
            for request_id, cmd in _request_ids(data):
                _probe("dev_rx", t, request_id, cmd)

        def coil(t_ms: int, index: int, energised: bool) -> None:
            if not energised:
                _probe("relay_open", time.monotonic_ns(), index)

        dev.hooks.received.append(received)
        dev.hooks.coil.append(coil)

    device.ON_NEW_DEVICE.append(watch)


def run_devices(directory: Path, count: int, speed: float, settings: dict[str, Any], key: bytes | None = None) -> int:
    from hobguard_sim import netports
    from hobguard_sim.device import SimDevice
    from hobguard_sim.realtime import PtyDevice

    directory.mkdir(parents=True, exist_ok=True)
    ptys = []
    urls = []
    ports = netports.free_ports("127.0.0.1", count) if key is not None else []
    for n in range(count):
        chosen = dict(settings)
        chosen["device_id"] = f"bench-{n}"
        listen = ("127.0.0.1", ports[n]) if key is not None else None
        device = SimDevice(settings=chosen, seed=n + 1, listen=listen, key=key)
        if device.listen is not None:
            urls.append(f"tcp://{device.listen[0]}:{device.listen[1]}")
        pty = PtyDevice(device, speed=speed, link_path=directory / f"hob{n}.tty")
        pty.start()
        ptys.append(pty)
    if key is not None:
        tmp = directory / "urls.txt.new"
        tmp.write_text("".join(url + "\n" for url in urls))
        tmp.replace(directory / "urls.txt")
    print("ready", flush=True)
    try:
        for line in sys.stdin:
            word = line.strip()
            if word == "quit":
                break
            if word == "ignite":
                for pty in ptys:
                    pty.act("ignite left")
                    pty.act("ignite right")
    finally:
        for pty in ptys:
            pty.stop()
    return 0


def main(argv: list[str]) -> int:
    global _out
    kind = argv[0]
    if kind == "devices":
        directory, count = Path(argv[1]), int(argv[2])
        rest = argv[3:]
        speed = float(rest[rest.index("--speed") + 1]) if "--speed" in rest else 1.0
        settings = json.loads(Path(rest[rest.index("--settings") + 1]).read_text()) if "--settings" in rest else {}
        key = None
        if "--key-file" in rest:
            from hobguard.bridge.netlink import load_key

            key = load_key(rest[rest.index("--key-file") + 1])
        return run_devices(directory, count, speed, settings, key)
    probe_file, rest = argv[1], argv[2:]
    if rest and rest[0] == "--":
        rest = rest[1:]
    _out = open(probe_file, "a", buffering=1)
    from hobguard import cli

    if kind == "bridge":
        instrument_bridge()
        return cli.main(["bridge", *rest])
    if kind == "device":
        instrument_device()
        return cli.main(["sim", "device", *rest])
    raise SystemExit(f"unknown probe kind {kind!r}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
