"""A protocol-level fake hobguard device behind a pty, for the bridge's
tests: answers hello/status/cut like a device would; can be told to stay
silent, refuse, talk garbage, lie about itself, or be unplugged."""

from __future__ import annotations

import os
import select
import threading
import time
import tty
from pathlib import Path
from typing import Any

from hobguard_fw import protocol


class FakeDevice:
    """Answers hello/status/cut like a device would; can be told to stay
    silent, refuse, talk garbage, or be unplugged. `hello` overrides fields
    of its hello reply (to lie about itself); `tc_mv` marks its states, so a
    test can tell which physical device a published state came from."""

    def __init__(
        self, link_path: Path, device_id: str = "fake-1", burners: tuple[str, ...] = ("left", "right")
    ) -> None:
        self.link_path = link_path
        self.device_id = device_id
        self.burners = list(burners)
        self.answer = True  # reply to commands
        self.answer_hello = True
        self.refuse: dict[str, tuple[str, str]] = {}  # cmd -> (code, msg)
        self.hello: dict[str, Any] = {}  # fields of the hello reply to override
        self.tc_mv = 0.0
        self.received: list[tuple[int, str, dict]] = []
        self.reading = True  # False: stops reading its line, as hung firmware does
        self._paused = threading.Event()  # the thread saw `reading` False
        self.master = -1
        self.slave = -1
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.plug()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def plug(self) -> None:
        with self._lock:
            self.master, self.slave = os.openpty()
            tty.setraw(self.slave)
            tmp = self.link_path.with_name(self.link_path.name + ".new")
            if tmp.is_symlink():
                tmp.unlink()
            tmp.symlink_to(os.ttyname(self.slave))
            os.replace(tmp, self.link_path)

    def unplug(self) -> None:
        with self._lock:
            for fd in (self.master, self.slave):
                os.close(fd)
            self.master = self.slave = -1
            self.link_path.unlink()

    def send(self, message: dict[str, Any] | bytes) -> None:
        data = message if isinstance(message, bytes) else protocol.encode(message).encode()
        with self._lock:
            if self.master >= 0:
                os.write(self.master, data)

    def stall(self) -> int:
        """Stop reading, and fill the line towards the device (with empty
        lines, which it ignores when it reads again) until the next write
        to it blocks. Returns how many bytes that took."""
        self._paused.clear()
        self.reading = False
        if not self._paused.wait(5):
            raise RuntimeError("the fake device did not stop reading")
        fd = os.open(os.ttyname(self.slave), os.O_WRONLY | os.O_NOCTTY | os.O_NONBLOCK)
        filled = 0
        try:
            # The pty takes a little more as the kernel moves what it holds
            # along: fill until a pass takes nothing at all.
            while True:
                taken = 0
                for size in (1024, 64, 1):
                    try:
                        while True:
                            taken += os.write(fd, b"\n" * size)
                    except BlockingIOError:
                        pass
                filled += taken
                if not taken:
                    return filled
                time.sleep(0.02)
        finally:
            os.close(fd)

    def state(self) -> dict[str, Any]:
        return {
            "t": "state",
            "device": self.device_id,
            "locked": False,
            "fault": None,
            "uptime_s": 1,
            "reset_cause": "power_on",
            "events_dropped": 0,
            "burners": [
                {"id": b, "gas": "closed", "relay": "closed", "flame": "off", "tc_mv": self.tc_mv} for b in self.burners
            ],
        }

    def _run(self) -> None:
        reader = protocol.LineReader(protocol.MAX_REQUEST)
        while not self._stop.is_set():
            master = self.master
            if not self.reading:
                self._paused.set()
            if master < 0 or not self.reading:
                time.sleep(0.01)
                continue
            try:
                ready, _, _ = select.select([master], [], [], 0.05)
                data = os.read(master, 4096) if ready else b""
            except OSError:
                continue
            for line in reader.feed(data):
                if not line:
                    continue
                try:
                    request_id, cmd, args = protocol.parse_request(line)
                except protocol.ProtocolError as err:
                    self.send(protocol.reply_error(err.code, err.message, err.request_id))
                    continue
                self.received.append((request_id, cmd, args))
                if cmd == "hello":
                    if self.answer_hello:
                        fields: dict[str, Any] = {
                            "proto": 1,
                            "fw": "9.9",
                            "device": self.device_id,
                            "burners": self.burners,
                            "timer_max_min": 720,
                            "warn_before_s": 60,
                            "heartbeat_s": 1,
                        }
                        fields.update(self.hello)
                        self.send(protocol.reply_ok(request_id, **fields))
                elif not self.answer:
                    continue
                elif cmd in self.refuse:
                    self.send(protocol.reply_error(*self.refuse[cmd], request_id))
                else:
                    self.send(protocol.reply_ok(request_id, state=self.state()))

    def close(self) -> None:
        self._stop.set()
        self.thread.join(2)
        if self.master >= 0:
            self.unplug()

    def commands(self, cmd: str) -> list[dict]:
        """The arguments of every `cmd` this device received."""
        return [args for _, c, args in list(self.received) if c == cmd]
