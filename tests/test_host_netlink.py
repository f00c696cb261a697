"""The host end of the network link (hobguard/bridge/netlink.py) and `hobguard
keygen`: key files, addresses, and NetTransport against the real firmware
(in real time, on loopback) and against servers that misbehave."""

from __future__ import annotations

import os
import select
import socket
import stat
import threading
import time
from pathlib import Path

import pytest
from hobguard import cli
from hobguard.bridge.netlink import (
    DEFAULT_PORT,
    KeyFileError,
    NetLinkError,
    NetTransport,
    key_file_is_private,
    load_key,
    parse_url,
    write_key_file,
)
from hobguard_fw import auth, protocol
from hobguard_sim.device import SimDevice
from hobguard_sim.realtime import PtyDevice
from netclient import KEY, WRONG_KEY

# -- keys and addresses ------------------------------------------------------------


def test_keygen_writes_a_private_key_once(tmp_path: Path, capsys):
    path = tmp_path / "kitchen.key"
    assert cli.main(["keygen", str(path)]) == 0
    text = path.read_text()
    assert len(text) == 65 and text.endswith("\n") and int(text, 16) >= 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and key_file_is_private(path)
    assert text.strip() not in capsys.readouterr().out  # the key is never printed
    assert len(load_key(path)) == 32
    # A second run refuses to overwrite, and leaves the key alone.
    assert cli.main(["keygen", str(path)]) == 1
    assert "exists" in capsys.readouterr().err
    assert path.read_text() == text
    assert cli.main(["keygen", "--force", str(path)]) == 0
    assert path.read_text() != text and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["kitchen.key"]  # no temporary file left


def test_keygen_refuses_a_name_that_appears_meanwhile(tmp_path: Path):
    path = tmp_path / "k"
    path.symlink_to(tmp_path / "elsewhere")  # a dangling link: exists() is False
    with pytest.raises(FileExistsError):
        write_key_file(path)
    assert not (tmp_path / "elsewhere").exists()


def test_bad_key_files_are_refused_without_echoing_them(tmp_path: Path):
    secret_looking = "ab" * 31 + "zz"
    path = tmp_path / "bad.key"
    path.write_text(secret_looking)
    with pytest.raises(KeyFileError) as caught:
        load_key(path)
    assert secret_looking not in str(caught.value) and str(path) in str(caught.value)
    with pytest.raises(KeyFileError):
        load_key(tmp_path / "missing.key")


@pytest.mark.parametrize(
    "url, expected",
    [
        ("tcp://hob.local", ("hob.local", DEFAULT_PORT)),
        ("tcp://192.168.1.20:7000", ("192.168.1.20", 7000)),
        ("tcp://[fe80::1]:7343", ("fe80::1", 7343)),
        ("tcp://hobguard-hob-1a2b3c.local/", ("hobguard-hob-1a2b3c.local", DEFAULT_PORT)),
    ],
)
def test_addresses(url, expected):
    assert parse_url(url) == expected


@pytest.mark.parametrize(
    "url", ["hob.local", "http://hob.local", "tcp://", "tcp://hob:0", "tcp://hob:99999", "tcp://u:p@hob", "tcp://h/x"]
)
def test_bad_addresses(url):
    with pytest.raises(ValueError):
        parse_url(url)


# -- against the real firmware ----------------------------------------------------------


@pytest.fixture
def live():
    """The simulated hob in real time (x1), its network link on loopback."""
    device = SimDevice(listen=("127.0.0.1", 0), key=KEY)
    runner = PtyDevice(device, speed=1.0)
    runner.start()
    yield device, runner
    runner.stop()


def _connect(device, key=KEY, attempts=100) -> NetTransport:
    transport = NetTransport("tcp://%s:%d" % device.listen, key, timeout_s=2)
    for _ in range(attempts):
        try:
            transport.open()
            return transport
        except (ConnectionRefusedError, ConnectionResetError):
            time.sleep(0.05)  # the simulated Wi-Fi is still joining, or just left
    raise AssertionError("could not connect")


def _read_frames(transport: NetTransport, until, timeout_s: float = 5.0) -> list[dict]:
    frames: list[dict] = []
    buffer = b""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        select.select([transport.fileno()], [], [], 0.2)
        buffer += transport.read(max(1, transport.in_waiting))
        *lines, buffer = buffer.split(b"\n")
        frames += [protocol.decode(line) for line in lines if line]
        if until(frames):
            return frames
    raise AssertionError(f"not seen in time; got {frames[-3:]}")


def test_transport_speaks_to_the_firmware_like_a_serial_port(live):
    device, _ = live
    transport = _connect(device)
    assert transport.is_open and transport.port.startswith("tcp://127.0.0.1:")
    transport.write(
        protocol.request(1, "hello").encode() + protocol.request(2, "timer_set", burner="left", minutes=3).encode()
    )
    transport.flush()
    frames = _read_frames(transport, lambda fs: {1, 2} <= {f.get("id") for f in fs if f.get("t") == "ok"})
    hello = next(f for f in frames if f.get("id") == 1)
    assert hello["device"] == "hob-1a2b3c" and hello["burners"] == ["left", "right"]
    assert device.app.hob.burners[0].timer_deadline is not None
    # A line written in two pieces goes out once it is complete.
    line = protocol.request(3, "ping").encode()
    transport.write(line[:10])
    transport.write(line[10:])
    _read_frames(transport, lambda fs: any(f.get("id") == 3 for f in fs))
    transport.close()
    assert not transport.is_open


def test_transport_wakes_the_device_at_once(live):
    """The real-time loop sleeps on the firmware's sockets: a ping is answered
    far sooner than the loop's 250 ms fallback tick or the idle hob's next
    sample (4 s), which is what a loop that only polled would give."""
    device, _ = live
    transport = _connect(device)
    rounds = []
    for request_id in range(1, 16):
        start = time.monotonic()
        transport.write(protocol.request(request_id, "ping").encode())
        _read_frames(transport, lambda fs, r=request_id: any(f.get("id") == r for f in fs))
        rounds.append(time.monotonic() - start)
        time.sleep(0.03)
    rounds.sort()
    assert rounds[len(rounds) // 2] < 0.1, rounds


def test_transport_with_the_wrong_key_is_refused(live):
    device, _ = live
    transport = NetTransport("tcp://%s:%d" % device.listen, WRONG_KEY, timeout_s=2)
    for _ in range(100):
        try:
            transport.open()
        except ConnectionRefusedError:
            time.sleep(0.05)
            continue
        except NetLinkError as err:
            assert err.code == auth.E_AUTH_FAILED
            break
        raise AssertionError("a wrong key was accepted")
    assert not transport.is_open


def test_transport_sees_wifi_loss_as_a_lost_port_and_reconnects(live):
    device, runner = live
    transport = _connect(device)
    runner.act("wifi off")
    with pytest.raises(OSError):
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            select.select([transport.fileno()], [], [], 0.2)
            transport.read(max(1, transport.in_waiting))
    assert not transport.is_open
    runner.act("wifi on")
    again = _connect(device, attempts=400)  # the station's back-off: up to a few seconds
    again.write(protocol.request(9, "ping").encode())
    _read_frames(again, lambda fs: any(f.get("id") == 9 for f in fs))


# -- against servers that misbehave ---------------------------------------------------------


class _FakeDevice:
    """A TCP server that plays the device's part with a key of its choosing
    and then does what the test tells it."""

    def __init__(self, key: bytes, after_ok: bytes = b"", greet: bool = True) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.key = key
        self.after_ok = after_ok
        self.greet = greet
        self.conn: socket.socket | None = None
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.server.accept()
        self.conn = conn
        if not self.greet:
            return
        session = auth.Session(self.key, True, os.urandom(32))
        conn.sendall(session.greeting().encode())
        line = conn.makefile("rb").readline()
        try:
            conn.sendall(session.handshake(line).encode())
        except auth.AuthError as err:
            conn.sendall(auth.error_line(err.code).encode())
            return
        conn.sendall(self.after_ok if not callable(self.after_ok) else self.after_ok(session))

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.server.close()


def test_a_server_without_the_key_is_not_taken_for_the_device():
    impostor = _FakeDevice(WRONG_KEY)
    transport = NetTransport(f"tcp://127.0.0.1:{impostor.port}", KEY, timeout_s=2)
    with pytest.raises(NetLinkError) as caught:
        transport.open()
    assert caught.value.code in (auth.E_AUTH_FAILED,)
    assert not transport.is_open
    impostor.close()


def test_a_server_that_never_greets_times_out():
    silent = _FakeDevice(KEY, greet=False)
    transport = NetTransport(f"tcp://127.0.0.1:{silent.port}", KEY, timeout_s=0.5)
    with pytest.raises(NetLinkError) as caught:
        transport.open()
    assert caught.value.code == auth.E_TIMEOUT
    silent.close()


@pytest.mark.parametrize(
    "injected",
    [
        protocol.encode({"t": "evt", "event_type": "cut", "burner": "left", "reason": "timer"}).encode(),
        b"00000000 " + protocol.encode({"t": "ok", "id": 1}).rstrip("\n").encode() + b" " + b"0" * 64 + b"\n",
        b"x" * 5000 + b"\n",
    ],
    ids=["unsealed-line", "forged-tag", "over-long"],
)
def test_frames_not_sealed_by_the_device_end_the_connection(injected):
    genuine_then_injected = lambda session: (  # noqa: E731
        session.seal(protocol.encode({"t": "ok", "id": 1})).encode() + injected
    )
    fake = _FakeDevice(KEY, after_ok=genuine_then_injected)  # type: ignore[arg-type]
    transport = NetTransport(f"tcp://127.0.0.1:{fake.port}", KEY, timeout_s=2)
    transport.open()
    received = b""
    with pytest.raises(NetLinkError):
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            select.select([transport.fileno()], [], [], 0.2)
            received += transport.read(max(1, transport.in_waiting))
    # The genuine frame came through; the injected one never did.
    assert [protocol.decode(line) for line in received.splitlines()] == [{"t": "ok", "id": 1}]
    assert not transport.is_open
    fake.close()
