"""The serial side of the bridge: one `DeviceLink` per port.

A link owns one thread that opens the port, says hello, reads frames and
keeps requests and their replies together. Failure modes, and what happens:

- the port does not exist / cannot be opened (unplugged, wrong path,
  another program holds it): retried with exponential back-off, capped at
  `backoff_max_s`; the device is offline meanwhile;
- the port vanishes while open (USB unplugged, pty closed): reads fail,
  the port is closed, pending requests fail with `device_offline`, the
  device is marked offline, and the port is reopened as above;
- the device goes silent (hung, link cut, powered off) with the port still
  open: after `offline_after_s` (default 3 x the device's heartbeat) the
  device is offline; any valid frame brings it back;
- the device resets (a `boot` event): hello is said again, so a changed
  burner list is noticed;
- a reply never comes: the request fails with `timeout` after
  `request_timeout_s`; a late reply is logged and dropped;
- garbage on the line: lines that do not decode are counted and logged at
  debug level; they never reach the bridge.

No busy polling: the thread sleeps in select() on the port and a wake-up
pipe, with a timeout set by the next deadline (hello retry, request
timeout, silence), so an idle link costs nothing.
"""

from __future__ import annotations

import itertools
import logging
import os
import select
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import serial
from hobguard_fw import protocol

log = logging.getLogger("hobguard.link")

HELLO_TIMEOUT_S = 2.0
# Without any frame for this long, the device is offline (when the hello
# reply gave no heartbeat period to derive it from).
DEFAULT_OFFLINE_AFTER_S = 30.0


@dataclass
class Reply:
    """The outcome of one request: the device's answer, or why there is none."""

    ok: bool
    request_id: int | None
    cmd: str
    args: dict[str, Any]
    latency_s: float
    frame: dict[str, Any] | None = None  # the device's reply frame
    code: str | None = None  # error code (device's, or timeout / device_offline)
    message: str | None = None

    @property
    def state(self) -> dict[str, Any] | None:
        if self.frame and isinstance(self.frame.get("state"), dict):
            return self.frame["state"]
        return None


class LinkListener(Protocol):
    def on_hello(self, link: "DeviceLink", info: dict[str, Any]) -> None: ...
    def on_state(self, link: "DeviceLink", frame: dict[str, Any]) -> None: ...
    def on_event(self, link: "DeviceLink", frame: dict[str, Any]) -> None: ...
    def on_availability(self, link: "DeviceLink", online: bool, reason: str) -> None: ...


@dataclass
class _Pending:
    cmd: str
    args: dict[str, Any]
    sent_at: float
    deadline: float
    on_done: Callable[[Reply], None]
    internal: bool = False

    def fail(self, request_id: int, now: float, code: str, message: str | None) -> None:
        """Tell the requester there is no answer, and why."""
        _call(
            self.on_done,
            Reply(False, request_id, self.cmd, self.args, now - self.sent_at, code=code, message=message),
        )


class LinkClosed(Exception):
    pass


@dataclass
class LinkStats:
    frames: int = 0
    bad_lines: int = 0
    opens: int = 0
    timeouts: int = 0
    commands_sent: int = 0  # requests written for the bridge (hello/status not counted)
    last_frame_at: float | None = None
    errors_from_device: int = 0


class DeviceLink:
    def __init__(
        self,
        port: str,
        listener: LinkListener,
        *,
        baudrate: int = 115200,
        request_timeout_s: float = 5.0,
        offline_after_s: float | None = None,
        backoff_initial_s: float = 0.25,
        backoff_max_s: float = 10.0,
    ) -> None:
        self.port = port
        self.listener = listener
        self.baudrate = baudrate
        self.request_timeout_s = request_timeout_s
        self.offline_after_override = offline_after_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.info: dict[str, Any] | None = None  # the hello reply, once said
        self.online = False
        self.stats = LinkStats()
        self._ser: serial.Serial | None = None
        self._ready = False  # port open and hello answered
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._pending: dict[int, _Pending] = {}
        self._ids = itertools.count(1)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._hello_id: int | None = None
        self._hello_due = 0.0
        self._hello_tries = 0
        self._early: deque[dict[str, Any]] = deque(maxlen=32)  # frames before hello
        self._closed_reason = "port closed"

    # -- public --------------------------------------------------------------

    @property
    def device_id(self) -> str | None:
        return self.info.get("device") if self.info else None

    @property
    def ready(self) -> bool:
        return self._ready

    @property
    def offline_after_s(self) -> float:
        if self.offline_after_override:
            return self.offline_after_override
        if self.info and protocol.is_number(self.info.get("heartbeat_s")) and self.info["heartbeat_s"] > 0:
            return 3 * float(self.info["heartbeat_s"])
        return DEFAULT_OFFLINE_AFTER_S

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"link {self.port}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout=5)
        # Close the wake-up pipe once: closing a file descriptor number twice
        # could close whatever else has reused that number meanwhile.
        with self._lock:
            fds, self._wake_r, self._wake_w = (self._wake_r, self._wake_w), -1, -1
        for fd in fds:
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass

    def request(
        self, cmd: str, on_done: Callable[[Reply], None], timeout_s: float | None = None, **args: Any
    ) -> int | None:
        """Send one command; `on_done(reply)` is called exactly once, from the
        link's thread (or at once, from this one, when the device is offline).
        Returns the request id, or None when nothing was sent."""
        return self._send(cmd, args, on_done, timeout_s, internal=False)

    # -- sending ---------------------------------------------------------------

    def _send(
        self,
        cmd: str,
        args: dict[str, Any],
        on_done: Callable[[Reply], None],
        timeout_s: float | None,
        internal: bool,
    ) -> int | None:
        now = time.monotonic()
        failure = None
        with self._lock:
            ser = self._ser
            if ser is None or (not internal and not self._ready):
                failure = "the device is not connected"
            else:
                request_id = (next(self._ids) - 1) % protocol.MAX_ID + 1
                timeout = self.request_timeout_s if timeout_s is None else timeout_s
                self._pending[request_id] = _Pending(cmd, args, now, now + timeout, on_done, internal)
        if failure:
            _call(on_done, Reply(False, None, cmd, args, 0.0, code="device_offline", message=failure))
            return None
        line = protocol.request(request_id, cmd, **args).encode()
        try:
            with self._write_lock:
                ser.write(line)
                ser.flush()
        except (serial.SerialException, OSError) as err:
            # The reader notices the dead port too; fail this request now.
            with self._lock:
                pending = self._pending.pop(request_id, None)
            if pending is not None:
                _call(
                    on_done,
                    Reply(False, request_id, cmd, args, 0.0, code="device_offline", message=f"write failed: {err}"),
                )
            self._wake()
            return None
        if not internal:
            self.stats.commands_sent += 1
        log.debug("%s → %s", self.port, line.decode().rstrip())
        self._wake()  # the reader recomputes its next deadline
        return request_id

    def _wake(self) -> None:
        if self._wake_w < 0:
            return
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    # -- the thread --------------------------------------------------------------

    def _run(self) -> None:
        backoff = self.backoff_initial_s
        failures = 0
        while not self._stop.is_set():
            try:
                ser = self._open()
            except (serial.SerialException, OSError, ValueError) as err:
                failures += 1
                level = logging.WARNING if failures in (1, 10) or failures % 100 == 0 else logging.DEBUG
                log.log(level, "%s: cannot open (%s); retrying in %.1f s", self.port, _short(err), backoff)
                self._stop.wait(backoff)
                backoff = min(self.backoff_max_s, backoff * 2)
                continue
            if failures:
                log.info("%s: port open again after %d failed attempt(s)", self.port, failures)
            failures = 0
            self.stats.opens += 1
            said_hello = False
            try:
                said_hello = self._session(ser)
            except LinkClosed:
                pass
            except (serial.SerialException, OSError) as err:
                self._closed_reason = "port lost: " + _short(err)
                log.warning("%s: %s", self.port, self._closed_reason)
            except Exception:  # a bug: log it, never let the thread die
                self._closed_reason = "internal error"
                log.exception("%s: unexpected error; reopening the port", self.port)
            finally:
                self._close(ser)
            if said_hello:
                backoff = self.backoff_initial_s
            if not self._stop.is_set():
                self._stop.wait(backoff)
                backoff = min(self.backoff_max_s, backoff * 2)

    def _open(self) -> serial.Serial:
        ser = serial.Serial()
        ser.port = self.port
        ser.baudrate = self.baudrate
        ser.timeout = 0  # reads never block: select() does the waiting
        ser.write_timeout = 2
        # Many ESP32 boards wire DTR/RTS to reset and boot mode: keep both
        # released so opening the port does not reset the controller.
        ser.dtr = False
        ser.rts = False
        try:
            ser.exclusive = True  # a second bridge on the same port fails loudly
        except (AttributeError, ValueError):
            pass
        ser.open()
        with self._lock:
            self._ser = ser
        log.info("%s: port open", self.port)
        return ser

    def _close(self, ser: serial.Serial) -> None:
        with self._lock:
            self._ser = None
            self._ready = False
            pending = list(self._pending.items())
            self._pending.clear()
        try:
            ser.close()
        except Exception:
            pass
        now = time.monotonic()
        for request_id, p in pending:
            if not p.internal:
                p.fail(request_id, now, "device_offline", self._closed_reason)
        self._set_online(False, self._closed_reason if not self._stop.is_set() else "bridge stopping")

    def _session(self, ser: serial.Serial) -> bool:
        """Read until the port fails or the link stops. True once hello was answered."""
        reader = protocol.LineReader(protocol.MAX_LINE)
        fd = ser.fileno()
        self._hello_id = None
        self._hello_due = 0.0
        self._hello_tries = 0
        self._early.clear()
        self.stats.last_frame_at = None
        said_hello = False
        self._closed_reason = "port closed"
        while not self._stop.is_set():
            now = time.monotonic()
            if not self._ready and now >= self._hello_due:
                self._say_hello(now)
            self._expire(now)
            self._check_silence(now)
            timeout = self._next_deadline(now) - now
            readable, _, _ = select.select([fd, self._wake_r], [], [], max(0.0, timeout))
            if self._wake_r in readable:
                try:
                    os.read(self._wake_r, 4096)
                except (BlockingIOError, OSError):
                    pass
            if fd in readable:
                data = ser.read(max(1, ser.in_waiting))  # raises when the port is gone
                for line in reader.feed(data):
                    self._line(line)
                said_hello = said_hello or self._ready
        raise LinkClosed()

    def _next_deadline(self, now: float) -> float:
        deadline = now + 60.0
        if not self._ready:
            deadline = min(deadline, self._hello_due)
        with self._lock:
            for p in self._pending.values():
                deadline = min(deadline, p.deadline)
        if self._ready and self.online and self.stats.last_frame_at is not None:
            deadline = min(deadline, self.stats.last_frame_at + self.offline_after_s + 0.01)
        return deadline

    # -- hello -------------------------------------------------------------------

    def _say_hello(self, now: float) -> None:
        self._hello_tries += 1
        if self._hello_tries == 4:
            log.warning("%s: no answer to hello yet (is a hobguard device on this port?)", self.port)
        self._hello_due = now + min(HELLO_TIMEOUT_S * self._hello_tries, 10.0)
        self._hello_id = self._send("hello", {}, self._hello_done, HELLO_TIMEOUT_S, internal=True)

    def _hello_done(self, reply: Reply) -> None:
        if reply.request_id is not None and reply.request_id != self._hello_id:
            return  # the answer to an earlier hello that was already retried
        if not reply.ok:
            if reply.code not in ("timeout", "device_offline"):
                log.warning("%s: hello refused: %s %s", self.port, reply.code, reply.message)
            return
        info = dict(reply.frame or {})
        info.pop("t", None)
        info.pop("id", None)
        device = info.get("device")
        burners = info.get("burners")
        if info.get("proto") != protocol.PROTOCOL_VERSION:
            log.error(
                "%s: device speaks protocol %r, this bridge %d: not serving it",
                self.port,
                info.get("proto"),
                protocol.PROTOCOL_VERSION,
            )
            return
        if (
            not isinstance(device, str)
            or not device
            or not isinstance(burners, list)
            or not all(protocol.is_burner_id(b) for b in burners)
        ):
            log.error("%s: hello reply without a usable device id / burner list: %r", self.port, info)
            return
        first = self.info is None or self.info.get("device") != device
        self.info = info
        self._ready = True
        self.stats.last_frame_at = time.monotonic()
        log.info(
            "%s: device %s (firmware %s, burners %s, heartbeat %s s)%s",
            self.port,
            device,
            info.get("fw"),
            ", ".join(burners),
            info.get("heartbeat_s"),
            "" if first else " (again)",
        )
        _listen(self.listener.on_hello, self, info)
        self._set_online(True, "hello")
        # Frames that came before hello, then a fresh snapshot.
        while self._early:
            self._dispatch(self._early.popleft())
        self._send("status", {}, self._status_done, None, internal=True)

    def _status_done(self, reply: Reply) -> None:
        if reply.ok and reply.state is not None:
            _listen(self.listener.on_state, self, reply.state)

    # -- frames ------------------------------------------------------------------

    def _line(self, line: bytes | None) -> None:
        if line is None:
            self.stats.bad_lines += 1
            log.debug("%s: dropped an over-long line", self.port)
            return
        if not line.strip():
            return
        try:
            frame = protocol.decode(line)
        except protocol.ProtocolError as err:
            self.stats.bad_lines += 1
            log.debug("%s: not a frame (%s): %r", self.port, err.code, line[:80])
            return
        self.stats.frames += 1
        self.stats.last_frame_at = time.monotonic()
        log.debug("%s ← %s", self.port, line[:200])
        kind = frame.get("t")
        if kind in ("ok", "err"):
            self._reply(frame)
        elif not self._ready:
            self._early.append(frame)
        else:
            if not self.online:
                self._set_online(True, "frames again")
            self._dispatch(frame)

    def _dispatch(self, frame: dict[str, Any]) -> None:
        kind = frame.get("t")
        if kind == "state":
            _listen(self.listener.on_state, self, frame)
        elif kind == "evt":
            _listen(self.listener.on_event, self, frame)
            if frame.get("event_type") == "boot":
                # The device restarted: its settings (burners) may have changed.
                self._ready_again()
        else:
            log.debug("%s: frame of unknown kind %r ignored", self.port, kind)

    def _ready_again(self) -> None:
        self._hello_due = 0.0
        self._hello_tries = 0
        self._say_hello(time.monotonic())

    def _reply(self, frame: dict[str, Any]) -> None:
        request_id = frame.get("id")
        with self._lock:
            pending = self._pending.pop(request_id, None) if isinstance(request_id, int) else None
        if pending is None:
            if frame.get("t") == "err":
                self.stats.errors_from_device += 1
                log.warning(
                    "%s: device reports %s: %s (request id %r)",
                    self.port,
                    frame.get("code"),
                    frame.get("msg"),
                    request_id,
                )
            else:
                log.debug("%s: late or unknown reply id %r dropped", self.port, request_id)
            return
        latency = time.monotonic() - pending.sent_at
        if frame.get("t") == "ok":
            reply = Reply(True, request_id, pending.cmd, pending.args, latency, frame=frame)
        else:
            reply = Reply(
                False,
                request_id,
                pending.cmd,
                pending.args,
                latency,
                frame=frame,
                code=str(frame.get("code")),
                message=str(frame.get("msg")),
            )
        if self._ready and not self.online:
            self._set_online(True, "frames again")
        _call(pending.on_done, reply)

    def _expire(self, now: float) -> None:
        expired = []
        with self._lock:
            for request_id, p in list(self._pending.items()):
                if now >= p.deadline:
                    expired.append((request_id, p))
                    del self._pending[request_id]
        for request_id, p in expired:
            if not p.internal:
                self.stats.timeouts += 1
            p.fail(request_id, now, "timeout", f"no answer within {now - p.sent_at:.1f} s")

    def _check_silence(self, now: float) -> None:
        last = self.stats.last_frame_at
        if self._ready and self.online and last is not None and now - last > self.offline_after_s:
            self._set_online(False, f"silent for {now - last:.1f} s")

    def _set_online(self, online: bool, reason: str) -> None:
        if online == self.online:
            return
        if online and not self._ready:
            return
        self.online = online
        log.info("%s: device %s %s (%s)", self.port, self.device_id or "?", "online" if online else "offline", reason)
        if self.info is not None:
            _listen(self.listener.on_availability, self, online, reason)


def _short(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    return text if len(text) < 160 else text[:157] + "..."


def _call(fn: Callable[[Reply], None], reply: Reply) -> None:
    try:
        fn(reply)
    except Exception:
        log.exception("error in a reply handler")


def _listen(fn: Callable[..., None], *args: Any) -> None:
    try:
        fn(*args)
    except Exception:
        log.exception("error in a link listener")
