"""`hobguard sim device --listen HOST:PORT --key-file FILE`: the simulated hob
serves its network link (the firmware's own code, real loopback sockets)
next to its pty, and takes `wifi off` / `wifi on` on stdin."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hobguard.bridge.netlink import NetTransport, write_key_file
from hobguard_fw import protocol
from hobguard_sim.device import SimDevice
from hobguard_sim.realtime import PtyDevice
from netclient import KEY

REPO = Path(__file__).resolve().parents[1]


class SimProcess:
    def __init__(self, tmp_path: Path, *extra: str, speed: float = 10.0) -> None:
        self.key_file = tmp_path / "hob.key"
        write_key_file(self.key_file)
        self.stderr = open(tmp_path / "sim.log", "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hobguard.cli", "sim", "device", "--speed", str(speed), *extra]
            + ["--listen", "127.0.0.1:0", "--key-file", str(self.key_file)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
            cwd=REPO,
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        self.pty = self.proc.stdout.readline().strip()

    def act(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.act("quit")
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()


@pytest.fixture
def sim(tmp_path: Path):
    process = SimProcess(tmp_path)
    yield process
    process.stop()


def _connect(url: str, key_file: Path) -> NetTransport:
    from hobguard.bridge.netlink import load_key

    transport = NetTransport(url, load_key(key_file), timeout_s=2)
    deadline = time.monotonic() + 10
    while True:
        try:
            transport.open()
            return transport
        except (ConnectionRefusedError, ConnectionResetError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _frames(read, fileno, until, timeout_s: float = 5.0) -> list[dict]:
    frames: list[dict] = []
    buffer = b""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        select.select([fileno], [], [], 0.2)
        buffer += read()
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            try:
                frames.append(protocol.decode(line))
            except protocol.ProtocolError:
                pass
        if until(frames):
            return frames
    raise AssertionError(f"not seen in time; got {frames[-3:]}")


def test_prints_the_address_then_the_pty_and_serves_both(sim):
    assert sim.url.startswith("tcp://127.0.0.1:") and not sim.url.endswith(":0")
    assert os.path.exists(sim.pty)
    transport = _connect(sim.url, sim.key_file)
    usb = os.open(sim.pty, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:

        def read_usb() -> bytes:
            try:
                return os.read(usb, 65536)
            except BlockingIOError:
                return b""

        def read_tcp() -> bytes:
            return transport.read(max(1, transport.in_waiting))

        transport.write(protocol.request(100, "timer_set", burner="left", minutes=30).encode())
        os.write(usb, protocol.request(200, "timer_set", burner="right", minutes=10).encode())
        tcp = _frames(read_tcp, transport.fileno(), lambda fs: any(f.get("id") == 100 for f in fs))
        usb_frames = _frames(read_usb, usb, lambda fs: any(f.get("id") == 200 for f in fs))
        # Each link got its own answer and only its own...
        assert not any(f.get("id") == 200 for f in tcp if f.get("t") in ("ok", "err"))
        assert not any(f.get("id") == 100 for f in usb_frames if f.get("t") in ("ok", "err"))
        # ...and both see both timers in the state everyone gets.
        both = lambda fs: any(  # noqa: E731
            f.get("t") == "state"
            and all(b["timer_remaining_s"] is not None for b in f["burners"])
            and f.get("wifi") == "up"
            for f in fs
        )
        _frames(read_tcp, transport.fileno(), both, timeout_s=10)
        _frames(read_usb, usb, both, timeout_s=10)
    finally:
        os.close(usb)
        transport.close()


def test_wifi_off_drops_the_link_and_wifi_on_brings_it_back(sim):
    transport = _connect(sim.url, sim.key_file)
    sim.act("wifi off")
    with pytest.raises(OSError):
        _frames(lambda: transport.read(max(1, transport.in_waiting)), transport.fileno(), lambda fs: False)
    with pytest.raises(OSError):
        host, port = sim.url[len("tcp://") :].split(":")
        socket.create_connection((host, int(port)), timeout=1).close()
    sim.act("wifi on")
    again = _connect(sim.url, sim.key_file)
    again.write(protocol.request(1, "status").encode())
    frames = _frames(
        lambda: again.read(max(1, again.in_waiting)), again.fileno(), lambda fs: any(f.get("id") == 1 for f in fs)
    )
    assert next(f for f in frames if f.get("id") == 1)["t"] == "ok"
    again.close()


def test_listen_needs_a_key_file(tmp_path: Path):
    proc = subprocess.run(
        [sys.executable, "-m", "hobguard.cli", "sim", "device", "--listen", "127.0.0.1:0"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=30,
    )
    assert proc.returncode == 2 and "--key-file" in proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "hobguard.cli", "sim", "device", "--listen", "localhost:0", "--key-file", "x"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=30,
    )
    assert proc.returncode == 2 and "IPV4ADDRESS:PORT" in proc.stderr


def test_a_connection_flood_does_not_delay_a_cut_in_real_time():
    """Strangers hammer the port while a timer runs: the firmware's loop,
    which serves both, still cuts when the timer says (real time at x4; the
    bound allows for a busy test machine, not for a loop that waits on the
    network)."""
    device = SimDevice(listen=("127.0.0.1", 0), key=KEY)
    runner = PtyDevice(device, speed=4.0)
    device.keep_frames = True  # the test reads what the device said
    runner.start()
    stop = threading.Event()
    attempts = [0]

    def flood() -> None:
        while not stop.is_set():
            try:
                sock = socket.create_connection(device.listen, timeout=0.2)
                sock.sendall(b"HGA1 AUTH " + b"0" * 129 + b"\n" if attempts[0] % 2 else b"")
                sock.close()
            except OSError:
                pass
            attempts[0] += 1

    try:
        runner.act("ignite left")
        time.sleep(8 / 4)  # the flame takes hold
        with runner._lock:
            device.command("timer_set", burner="left", minutes=0.25)
        threads = [threading.Thread(target=flood, daemon=True) for _ in range(3)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not [e for e in device.events("cut") if e.get("reason") == "timer"]:
            time.sleep(0.1)
        stop.set()
        for thread in threads:
            thread.join(2)
        with runner._lock:
            set_at = next(f["_t_ms"] for f in device.frames if f.get("event_type") == "timer_set")
            cut = next(e for e in device.events("cut") if e.get("reason") == "timer")
            assert device.app is not None and device.app.net is not None
            failures = device.app.net.auth_failures
        assert attempts[0] > 20 and failures > 0  # the flood reached the firmware
        late_ms = cut["_t_ms"] - (set_at + 15_000)
        print(f"flood: {attempts[0]} connections, {failures} refused; cut {late_ms} ms after the deadline")
        assert -1000 <= late_ms <= 2000, late_ms
        assert device.resets == []
    finally:
        stop.set()
        runner.stop()
