"""Test helpers for the network link: a simulated hob whose firmware serves
its network link on real loopback sockets, stepped in virtual time by the
test itself, and a raw client that speaks the link byte by byte (so a test
can send what no honest client would)."""

from __future__ import annotations

import os
import select
import socket
import time
from typing import Any, Callable

from hobguard_fw import auth, protocol
from hobguard_sim.device import SimDevice

KEY = bytes.fromhex("5a" * 16 + "a5" * 16)
WRONG_KEY = bytes.fromhex("11" * 32)
WALL_GUARD_S = 10.0  # a guard against a hang only; nothing measures time


def make_device(**kwargs: Any) -> SimDevice:
    """A hob with its network link up and listening (virtual time stepped
    until the simulated Wi-Fi has joined)."""
    dev = SimDevice(listen=("127.0.0.1", 0), key=KEY, **kwargs)
    dev.run_for(5_000)
    app = dev.app
    assert app is not None and app.net is not None and app.net.listener is not None, "not listening"
    return dev


def core_state(dev: SimDevice) -> tuple:
    """Everything a command could change in the control core."""
    assert dev.app is not None
    hob = dev.app.hob
    return (
        hob.locked,
        tuple(hob.relay_closed),
        tuple((b.timer_deadline, b.cut_until, b.cut_fault, b.last_cut_reason) for b in hob.burners),
    )


def nodelay(sock: socket.socket) -> None:
    """Send each line at once: the device runs in virtual time, so a wall-clock
    delayed ACK would hold a small segment for many virtual seconds."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def step(dev: SimDevice, virtual_ms: int = 5) -> None:
    """Let the firmware look at its sockets now, then run a little."""
    dev.poke()
    dev.run_for(virtual_ms)


class RawClient:
    """A TCP client of the simulated hob that the test drives line by line."""

    def __init__(self, dev: SimDevice, connect: bool = True) -> None:
        self.dev = dev
        assert dev.listen is not None
        self.sock = socket.create_connection(dev.listen, timeout=2)
        self.sock.setblocking(False)
        nodelay(self.sock)
        self.reader = protocol.LineReader(protocol.MAX_LINE + auth.OVERHEAD)
        self.lines: list[bytes] = []
        self.closed = False
        self.session: auth.Session | None = None
        self.sent_raw: list[bytes] = []  # every byte string sent, as a sniffer would record it
        self.seen: list[dict[str, Any]] = []  # every authenticated frame received
        if connect:
            step(dev)

    # -- bytes ---------------------------------------------------------------

    def send(self, data: bytes | str) -> None:
        if isinstance(data, str):
            data = data.encode()
        self.sent_raw.append(data)
        self.sock.sendall(data)

    def pump(self) -> None:
        while not self.closed:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return
            except ConnectionError:
                self.closed = True
                return
            if not data:
                self.closed = True
                return
            for line in self.reader.feed(data):
                assert line is not None, "the device sent an over-long line"
                self.lines.append(line)

    def wait_for(self, predicate: Callable[[], bool], virtual_ms: int = 5, what: str = "") -> None:
        """Step the device and read until predicate() holds."""
        deadline = time.monotonic() + WALL_GUARD_S
        while True:
            self.pump()
            if predicate():
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what or predicate}; lines: {self.lines[-5:]}")
            step(self.dev, virtual_ms)
            select.select([self.sock], [], [], 0.005)

    def next_line(self) -> bytes:
        self.wait_for(lambda: bool(self.lines) or self.closed, what="a line")
        assert self.lines, "connection closed without a line"
        return self.lines.pop(0)

    def wait_closed(self, virtual_ms: int = 5) -> list[bytes]:
        self.wait_for(lambda: self.closed, virtual_ms, what="the device to close the connection")
        return self.lines

    def errors(self) -> list[str]:
        return [code for line in self.lines if (code := auth.parse_error(line.decode(errors="replace")))]

    # -- the handshake and frames ---------------------------------------------

    def authenticate(self, key: bytes = KEY) -> str:
        """Run the handshake; returns '' when it succeeded, else the error code."""
        session = auth.Session(key, False, os.urandom(auth.NONCE_BYTES))
        greeting = self.next_line()
        self.send(session.handshake(greeting))
        answer = self.next_line()
        try:
            session.handshake(answer)
        except auth.AuthError as err:
            return err.code
        self.session = session
        return ""

    def seal(self, body: str) -> bytes:
        assert self.session is not None
        return self.session.seal(body).encode()

    def command(self, request_id: int, cmd: str, **args: Any) -> bytes:
        frame = self.seal(protocol.request(request_id, cmd, **args))
        self.send(frame)
        return frame

    def frames(self) -> list[dict[str, Any]]:
        """The authenticated frames received since the last call (also kept
        in self.seen); the device's keep-alives are answered."""
        assert self.session is not None
        self.pump()
        out = []
        for line in self.lines:
            body = self.session.unseal(line)
            if body:
                out.append(protocol.decode(body))
            else:
                self.send(self.session.seal(""))
        self.lines = []
        self.seen.extend(out)
        return out

    def reply(self, request_id: int, virtual_ms: int = 5) -> dict[str, Any]:
        """Wait for the answer to request_id."""

        def answered() -> list[dict[str, Any]]:
            self.frames()
            return [f for f in self.seen if f.get("t") in ("ok", "err") and f.get("id") == request_id]

        self.wait_for(lambda: bool(answered()), virtual_ms, what=f"the reply to {request_id}")
        return answered()[0]

    def close(self) -> None:
        self.sock.close()
        self.closed = True
