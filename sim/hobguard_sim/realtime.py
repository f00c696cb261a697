"""A simulated hob behind a pseudo-terminal, in real time scaled by `speed`.

The bridge (or a plain serial terminal) opens `PtyDevice.path` exactly like
a USB serial port; a device made with `listen=` also serves its network
link on real sockets. A background thread maps wall time to virtual time,
steps the device whenever it is due, and wakes at once when bytes arrive on
the pty or on one of the firmware's sockets.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import select
import threading
import time
import tty
from pathlib import Path
from typing import IO, Any

from . import actions
from .device import SimDevice

log = logging.getLogger("hobguard.sim")

#: What stdin takes: the action language (hobguard_sim.actions), with the
#: burner optional (the first one) and the old spellings.
ACTIONS_HELP = actions.usage()


class PtyDevice:
    def __init__(
        self,
        device: SimDevice,
        speed: float = 1.0,
        trace_path: str | Path | None = None,
        link_path: str | Path | None = None,
        trace_every_ms: int = 500,
    ) -> None:
        if not (0 < speed <= 1_000_000):
            raise ValueError(f"speed={speed} must be more than 0 and at most 1000000")
        self.device = device
        self.speed = speed
        self.link_path = Path(link_path) if link_path else None
        self.trace_every_ms = trace_every_ms
        self._trace: IO[str] | None = open(trace_path, "w") if trace_path else None
        self._last_trace_ms = -trace_every_ms
        self._actions: queue.Queue[str] = queue.Queue()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._wake_r, self._wake_w = os.pipe()
        self.master = -1
        self.slave = -1
        self._open_pty()
        device.on_output = self._device_output
        device.keep_frames = False
        self.errors: list[str] = []

    # -- the pseudo-terminal -----------------------------------------------

    def _open_pty(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.pty_name = os.ttyname(self.slave)
        if self.link_path is not None:
            tmp = self.link_path.with_name(self.link_path.name + ".new")
            if tmp.is_symlink() or tmp.exists():
                tmp.unlink()
            tmp.symlink_to(self.pty_name)
            os.replace(tmp, self.link_path)

    @property
    def path(self) -> str:
        return str(self.link_path) if self.link_path is not None else self.pty_name

    def close_pty(self) -> None:
        """Unplug: whoever has the port open sees it vanish."""
        with self._lock:
            for fd in (self.master, self.slave):
                if fd >= 0:
                    os.close(fd)
            self.master = self.slave = -1
            if self.link_path is not None and self.link_path.is_symlink():
                self.link_path.unlink()
        self._poke()

    def reopen_pty(self) -> None:
        """Plug back in (a new pty; the link path, if any, points at it)."""
        with self._lock:
            if self.master < 0:
                self._open_pty()
        self._poke()

    def _device_output(self, text: str) -> None:
        if self.master < 0:
            return
        try:
            os.write(self.master, text.encode())
        except BlockingIOError:
            pass  # nobody reads the port: a real UART loses the bytes too
        except OSError:
            pass

    # -- actions -------------------------------------------------------------

    def act(self, line: str) -> None:
        self._actions.put(line)
        self._poke()

    def _poke(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    def _do(self, line: str) -> None:
        """One line of stdin: an action (hobguard_sim.actions), done now."""
        if not line.strip():
            return
        device = self.device
        try:
            action = actions.parse(line, device.names, first_burner_by_default=True, settings=device.settings)
            action.apply(device)
            log.info("t=%.1fs %s", device.clock.seconds, line.strip())
        except ValueError as err:  # an ActionError, or what this device cannot do (wifi without --listen)
            self.errors.append(str(err))
            log.error("%s", err)

    # -- the loop ----------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="pty-device", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._poke()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._trace is not None:
            self._trace.close()
            self._trace = None
        with self._lock:
            self.device.close()
        self.close_pty()

    def _virtual_now(self, wall0: float, virt0: int) -> int:
        return virt0 + int((time.monotonic() - wall0) * 1000 * self.speed)

    def _run(self) -> None:
        device = self.device
        wall0 = time.monotonic()
        virt0 = device.clock.ms
        while not self._stop.is_set():
            with self._lock:
                now = self._virtual_now(wall0, virt0)
                device.run_until(now)
                while not self._actions.empty():
                    self._do(self._actions.get_nowait())
                self._write_trace()
                wake = device.next_wake_ms()
                master = self.master
                net_readers, net_writers = device.net_watch()
            wait_s = 0.25 if wake is None else max(0.0, (wake - now) / 1000 / self.speed)
            wait_s = min(wait_s, 0.25, self.trace_every_ms / 1000 / self.speed)
            fds = [self._wake_r] + ([master] if master >= 0 else []) + net_readers
            try:
                readable, writable, _ = select.select(fds, net_writers, [], wait_s)
            except (OSError, ValueError):
                continue  # a socket closed meanwhile: look again
            if any(sock in readable for sock in net_readers) or writable:
                with self._lock:
                    device.run_until(self._virtual_now(wall0, virt0))
                    device.poke()  # the firmware's own poll finds what is ready
                    device.run_until(device.clock.ms)
            if self._wake_r in readable:
                os.read(self._wake_r, 4096)
            if master >= 0 and master in readable:
                try:
                    data = os.read(master, 4096)
                except (BlockingIOError, OSError):
                    data = b""
                if data:
                    with self._lock:
                        device.run_until(self._virtual_now(wall0, virt0))
                        device.send_line(data)

    def _write_trace(self) -> None:
        if self._trace is None:
            return
        now = self.device.clock.ms
        if now - self._last_trace_ms < self.trace_every_ms:
            return
        self._last_trace_ms = now
        for record in self.device.truth():
            self._trace.write(json.dumps(record) + "\n")
        self._trace.flush()


def trace_records(path: str | Path) -> list[dict[str, Any]]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]
