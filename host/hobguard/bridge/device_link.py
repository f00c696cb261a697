"""The device side of the bridge: one `DeviceLink` per device connection.

A link owns a reader thread that opens its transport (a serial port, a
network connection; any byte stream with a file descriptor: see
`Transport`), says hello, reads frames and keeps requests and their
replies together, and a writer thread that writes what is queued (below:
"Writes never hold anyone up").

**Identity.** A link never carries commands or state under a device id
the device did not just say itself. A device says who it is in its hello
reply; the link forwards nothing (state, events) and sends no command
until that reply has come and passed the checks, and it asks again:

- after every (re)open of the transport: a port that now holds another
  device is a new device (USB re-plugged, `/dev/ttyUSB0` renumbered);
- after every `boot` event: the device restarted, its settings (id,
  burners) may have changed;
- when a state frame names another device than the one said hello.

Meanwhile frames are held (a bounded queue) and forwarded under the id of
the answer, commands are refused at once (`device_offline`), and a command
addressed to one device id (`for_device`) is never written to a link that
now serves another. This logic is the link's, not the transport's: a
network transport gets the same rule for free.

**What a device says is checked.** The hello (protocol.hello_problem: the
rules of the settings check) before a device is served at all; every state,
event and reply frame (edge.py) before it reaches the listener. A
hello that fails puts the link in quarantine: nothing is forwarded or sent,
the listener is told once (`on_problem`), and hello is asked again after a
growing delay (30 s … 5 min) or at once after a boot event. A bad frame
from a device that is served is dropped and counted (`frames_refused`).

Failure modes of the transport, and what happens:

- it cannot be opened (unplugged, wrong path, another program holds it):
  retried with exponential back-off, capped at `backoff_max_s`; the device
  is offline meanwhile. For `FAST_RETRY_S` after losing a device it served
  the back-off does not grow (a Wi-Fi drop or a replug is usually short);
- it fails while open (USB unplugged, pty closed): the transport is closed,
  pending requests fail with `device_offline`, the device is marked
  offline, and the transport is reopened as above;
- the device goes silent (hung, link cut, powered off) with the port still
  open: after `offline_after_s` (default 3 x the device's heartbeat) without
  a usable frame the device is offline; any usable frame brings it back;
- a reply never comes: the request fails with `timeout` after
  `request_timeout_s`; a late reply is logged and dropped;
- garbage on the line: lines that do not decode are counted and logged at
  debug level; they never reach the bridge.

**Writes never hold anyone up.** `request()` only checks and queues: it
returns at once, whatever the device does. Each link has a second thread,
its writer, that takes lines off a bounded queue (`OUT_MAX`; a cut goes
ahead of everything else queued) and writes them, one at a time, each
bounded in time: the serial transport writes with non-blocking writes and
select() (no `flush()`: pyserial's is `tcdrain()`, which waits for ever on
a native-USB board whose firmware stopped reading), the network transport
gives up after `network.WRITE_TIMEOUT_S`. So a stuck device holds up only
its own link, never MQTT's thread nor another hob's commands:

- a write that the device does not take in time fails its request
  (`device_offline`, "the device does not take what is sent") and the
  transport is reset (closed, its unsent output discarded, reopened, hello
  asked again), as for a port that failed;
- a request still queued when its deadline passes fails with `timeout`
  ("not sent within …"); deadlines count from when the command arrived
  (`request(since=...)`), not from when it was written;
- a full queue refuses the request at once (`device_offline`); a cut then
  takes the place of the newest queued command that is not a cut.

No busy polling: the thread sleeps in select() on the transport and a
wake-up pipe, with a timeout set by the next deadline (hello retry, request
timeout, silence), so an idle link costs nothing; the writer sleeps on a
condition until there is something to write.
"""

from __future__ import annotations

import itertools
import logging
import os
import random
import select
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import serial
from hobguard_fw import protocol

from . import edge

log = logging.getLogger("hobguard.link")

HELLO_TIMEOUT_S = 2.0
# After losing a device it served, a link tries again at its first back-off
# step (no growth) for this long: see DeviceLink._run.
FAST_RETRY_S = 30.0
# Without any frame for this long, the device is offline (when the hello
# reply gave no heartbeat period to derive it from).
DEFAULT_OFFLINE_AFTER_S = 30.0
# Frames held while the device's identity is being checked.
HELD_MAX = 32
# A device whose hello fails the checks is asked again after this long,
# doubling up to QUARANTINE_MAX_S (at once after a boot event).
QUARANTINE_FIRST_S = 30.0
QUARANTINE_MAX_S = 300.0
# A link standing by (its device is served on another link: the same board
# on USB and on Wi-Fi) asks hello again this often, and at once when the
# serving link loses the device.
STANDBY_RETRY_S = 5.0
# Lines waiting for a link's writer; more are refused (device_offline).
OUT_MAX = 32
# Commands that go ahead of whatever else waits for the writer.
URGENT_COMMANDS = frozenset({"cut"})
# A serial write the device does not take within this long fails, and the
# port is reset. A line is at most a few hundred bytes: at 115200 baud it
# leaves in tens of milliseconds once the device reads.
SERIAL_WRITE_TIMEOUT_S = 0.5


class WriteStalled(OSError):
    """The device did not take a write in time (it stopped reading)."""


@dataclass
class Refusal:
    """What `LinkListener.on_hello` returns to refuse a device on a link:
    `reason` goes into the quarantine (or the standby) and its event.
    `standby`: the device is served on another link; this one waits quietly
    and takes over when that one loses it."""

    reason: str
    standby: bool = False


@dataclass
class Reply:
    """The outcome of one request: the device's answer, or why there is none."""

    ok: bool
    request_id: int | None
    cmd: str
    args: dict[str, Any]
    latency_s: float
    frame: dict[str, Any] | None = None  # the device's reply frame (checked)
    code: str | None = None  # error code (device's, or timeout / device_offline)
    message: str | None = None
    device: str | None = None  # the device that answered (its hello id)

    @property
    def state(self) -> dict[str, Any] | None:
        if self.frame and isinstance(self.frame.get("state"), dict):
            return self.frame["state"]
        return None


class LinkListener(Protocol):
    def on_hello(self, link: "DeviceLink", info: dict[str, Any]) -> "bool | Refusal | None":
        """A device said hello (checked). Return False or a Refusal to refuse
        to serve it on this link (the link goes into quarantine, or stands
        by)."""
        ...

    def on_state(self, link: "DeviceLink", device_id: str, frame: dict[str, Any]) -> None: ...
    def on_event(self, link: "DeviceLink", device_id: str, frame: dict[str, Any]) -> None: ...
    def on_availability(self, link: "DeviceLink", device_id: str, online: bool, reason: str) -> None: ...

    def on_problem(self, link: "DeviceLink", device_id: str | None, kind: str, detail: str) -> None:
        """kind: `quarantined` (the device is not served), `frame_refused`
        (one frame dropped), or a transport's problem at open (`auth_failed`:
        a network device refuses the key). device_id: the id the device
        gave, if valid."""
        ...


class Transport(Protocol):
    """A byte stream to one device. `name` is what logs and the device
    state show (a port path, an address). open() may block (it runs on the
    link's thread) and raises OSError (or serial.SerialException) when the
    device cannot be reached; fileno() becomes readable whenever read() has
    bytes; read() never blocks and raises when the stream is gone; write()
    runs on the link's writer thread and returns or raises within a bounded
    time (it never waits for the device without a deadline: close() waits
    for a write in progress); close() does not wait for unsent output.
    `SerialTransport` is the serial port; `PortTransport` wraps anything
    shaped like a pyserial port (a network link, say)."""

    name: str

    def open(self) -> None: ...
    def fileno(self) -> int: ...
    def read(self) -> bytes: ...
    def write(self, data: bytes) -> None: ...
    def close(self) -> None: ...


class PortTransport:
    """A transport around any pyserial-shaped port: `open()`, `fileno()`,
    `in_waiting` (bytes ready now), `read(n)`, `write(data)` (bounded in
    time), `close()` — a `serial.Serial`, or a network link shaped like one.
    A new port object comes from `make_port()` at every open. Nothing here
    calls `flush()`: pyserial's waits for the device without a deadline."""

    def __init__(self, name: str, make_port: Callable[[], Any]) -> None:
        self.name = name
        self._make_port = make_port
        self._port: Any = None

    def open(self) -> None:
        port = self._make_port()
        port.open()
        self._port = port

    def fileno(self) -> int:
        assert self._port is not None
        return self._port.fileno()

    def read(self) -> bytes:
        port = self._port
        if port is None:
            raise serial.SerialException("port closed")
        # Called when select() says readable: a port with nothing to give
        # then has gone away, and read(1) says so (it raises).
        return port.read(max(1, port.in_waiting))

    def write(self, data: bytes) -> None:
        port = self._port
        if port is None:
            raise serial.SerialException("port closed")
        port.write(data)

    def close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            # Discard what the device has not taken yet: closing a tty waits
            # for its output to drain (for up to 30 s on Linux) otherwise.
            reset = getattr(port, "reset_output_buffer", None)
            if reset is not None:
                try:
                    reset()
                except Exception:
                    pass
            try:
                port.close()
            except Exception:
                pass


class SerialTransport(PortTransport):
    """A serial port (a USB-UART, or a pty standing in for one)."""

    def __init__(self, port: str, baudrate: int = 115200, write_timeout_s: float | None = None) -> None:
        super().__init__(port, self._serial)
        self.baudrate = baudrate
        self.write_timeout_s = write_timeout_s  # None: SERIAL_WRITE_TIMEOUT_S

    def open(self) -> None:
        super().open()
        os.set_blocking(self.fileno(), False)  # write() waits in select(), with a deadline

    def write(self, data: bytes) -> None:
        """Write all of `data` with non-blocking writes, waiting in select()
        while the port's buffer is full; WriteStalled when the device has
        not taken it all within the write timeout (pyserial's own write
        with a timeout spins on a full buffer, and its flush() has none)."""
        if self._port is None:
            raise serial.SerialException("port closed")
        fd = self.fileno()
        limit = SERIAL_WRITE_TIMEOUT_S if self.write_timeout_s is None else self.write_timeout_s
        deadline = time.monotonic() + limit
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(fd, view) :]
                continue
            except BlockingIOError:
                pass
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WriteStalled(
                    f"the device does not take what is sent ({len(view)} of {len(data)} bytes not taken "
                    f"within {limit:g} s)"
                )
            select.select([], [fd], [], remaining)

    def _serial(self) -> serial.Serial:
        ser = serial.Serial()
        ser.port = self.name
        ser.baudrate = self.baudrate
        ser.timeout = 0  # reads never block: select() does the waiting
        ser.write_timeout = SERIAL_WRITE_TIMEOUT_S  # (write() above does not use pyserial's)
        # Many ESP32 boards wire DTR/RTS to reset and boot mode: keep both
        # released so opening the port does not reset the controller.
        ser.dtr = False
        ser.rts = False
        try:
            ser.exclusive = True  # a second bridge on the same port fails loudly
        except (AttributeError, ValueError):
            pass
        return ser


@dataclass
class _Pending:
    cmd: str
    args: dict[str, Any]
    sent_at: float  # when it was written (until then: when it arrived)
    deadline: float
    on_done: Callable[[Reply], None]
    internal: bool = False
    written: bool = False

    def fail(self, request_id: int, now: float, code: str, message: str | None) -> None:
        """Tell the requester there is no answer, and why."""
        _call(
            self.on_done,
            Reply(False, request_id, self.cmd, self.args, now - self.sent_at, code=code, message=message),
        )


@dataclass
class _Out:
    """A line waiting for the link's writer."""

    request_id: int
    line: bytes
    cmd: str
    internal: bool
    device: str | None  # the device it is for (None: internal, for whatever answers)
    session: int  # the transport session it was queued in


class LinkClosed(Exception):
    pass


@dataclass
class LinkStats:
    frames: int = 0
    bad_lines: int = 0
    opens: int = 0
    timeouts: int = 0
    commands_sent: int = 0  # requests written for the bridge (hello/status not counted)
    last_frame_at: float | None = None  # the last usable frame
    errors_from_device: int = 0
    frames_refused: int = 0  # decoded, but failed the checks (edge.py)
    frames_held_dropped: int = 0  # held while identifying, and overflowed
    identity_checks: int = 0  # hellos answered
    writes_failed: int = 0  # writes the device did not take in time (or that failed)
    queue_full: int = 0  # requests refused (or dropped for a cut) with the writer's queue full


class DeviceLink:
    def __init__(
        self,
        port: str | Transport,
        listener: LinkListener,
        *,
        baudrate: int = 115200,
        request_timeout_s: float = 5.0,
        offline_after_s: float | None = None,
        backoff_initial_s: float = 0.25,
        backoff_max_s: float = 10.0,
        backoff_jitter: float = 0.0,
        fast_retry_s: float = FAST_RETRY_S,
    ) -> None:
        self.transport: Transport = SerialTransport(port, baudrate) if isinstance(port, str) else port
        self.port = self.transport.name
        self.listener = listener
        self.request_timeout_s = request_timeout_s
        self.offline_after_override = offline_after_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.fast_retry_s = fast_retry_s  # after losing a device it served: no back-off growth this long
        self.backoff_jitter = backoff_jitter  # each wait shortened by up to this fraction, at random
        # The hello (checked) of the device this link serves, or served last:
        # availability and state go out under its id. None before the first.
        self.info: dict[str, Any] | None = None
        self.online = False
        self.stats = LinkStats()
        self._open = False  # the transport is open
        self._ready = False  # open, and the device's hello answered and accepted
        self._lock = threading.Lock()
        # Held by the writer while it writes: close() and identity changes
        # wait for a write in progress (bounded: see Transport.write).
        self._write_lock = threading.Lock()
        self._pending: dict[int, _Pending] = {}
        self._outq: deque[_Out] = deque()
        self._out_ready = threading.Condition(self._lock)
        self._session_no = 0
        self._reset_reason: str | None = None  # the writer asks the reader to reset the transport
        self.writing_since: float | None = None  # a write in progress since (monotonic)
        self._writer: threading.Thread | None = None
        self._ids = itertools.count(1)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._hello_id: int | None = None
        self._hello_due = 0.0
        self._hello_tries = 0
        self._identify_started: float | None = None  # identity in question since
        self._held: deque[dict[str, Any]] = deque()
        self._closed_reason = "port closed"
        self.quarantined: str | None = None  # why, while quarantined
        self.standby: str | None = None  # why, while standing by (Refusal.standby)
        self._quarantine_s = QUARANTINE_FIRST_S
        self._refusals: dict[str, int] = {}  # problem -> count, for rate-limited logs
        self._claiming: str | None = None  # the device id whose hello is being accepted

    # -- public --------------------------------------------------------------

    @property
    def device_id(self) -> str | None:
        """The device this link serves (or served last)."""
        return self.info.get("device") if self.info else None

    @property
    def ready(self) -> bool:
        return self._ready

    def serves(self, device_id: str) -> bool:
        """True while this link serves `device_id`, or is taking it on (its
        hello is being accepted right now)."""
        return self._open and (self._claiming == device_id or (self._ready and self.device_id == device_id))

    @property
    def offline_after_s(self) -> float:
        if self.offline_after_override:
            return self.offline_after_override
        if self.info and protocol.is_number(self.info.get("heartbeat_s")) and self.info["heartbeat_s"] > 0:
            return 3 * float(self.info["heartbeat_s"])
        return DEFAULT_OFFLINE_AFTER_S

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"link {self.port}", daemon=True)
        self._writer = threading.Thread(target=self._write_loop, name=f"link {self.port} writer", daemon=True)
        self._thread.start()
        self._writer.start()

    def request_stop(self) -> None:
        """Tell the threads to stop, without waiting (stop() waits)."""
        self._stop.set()
        self._wake()
        with self._out_ready:
            self._out_ready.notify_all()

    def ask_again(self) -> None:
        """A link standing by asks its device's hello now (the link that
        served the device has lost it)."""
        if self.standby:
            self._hello_due = 0.0
            self._wake()

    def stop(self) -> None:
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._writer is not None:
            self._writer.join(timeout=5)
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
        self,
        cmd: str,
        on_done: Callable[[Reply], None],
        timeout_s: float | None = None,
        *,
        for_device: str | None = None,
        since: float | None = None,
        **args: Any,
    ) -> int | None:
        """Queue one command for the writer and return at once; `on_done(reply)`
        is called exactly once, from one of the link's threads (or at once,
        from this one, when it is refused). With `for_device`, the command is
        written only while this link serves that device (its hello said so),
        else refused as `device_offline`; without it, only to the device
        served now. `since` (time.monotonic()): when the command arrived;
        its timeout counts from then (default: now). Returns the request id,
        or None when it was refused at once."""
        return self._send(cmd, args, on_done, timeout_s, internal=False, for_device=for_device, since=since)

    # -- sending ---------------------------------------------------------------

    def _send(
        self,
        cmd: str,
        args: dict[str, Any],
        on_done: Callable[[Reply], None],
        timeout_s: float | None,
        internal: bool,
        for_device: str | None = None,
        since: float | None = None,
    ) -> int | None:
        now = time.monotonic()
        since = now if since is None else min(since, now)
        failure = None
        dropped: tuple[int, _Pending | None] | None = None
        request_id = 0
        with self._lock:
            if not self._open:
                failure = "the device is not connected"
            elif not internal and not self._ready:
                if self.quarantined:
                    failure = f"quarantined: {self.quarantined}"
                elif self.standby:
                    failure = f"standing by: {self.standby}"
                else:
                    failure = "the device's identity is being checked (it restarted or was reconnected)"
            elif for_device is not None and for_device != self.device_id:
                failure = f"{self.port} now serves device {self.device_id}, not {for_device}"
            elif len(self._outq) >= OUT_MAX:
                self.stats.queue_full += 1
                dropped = self._drop_one_for_urgent() if cmd in URGENT_COMMANDS else None
                if dropped is None:
                    failure = f"{len(self._outq)} commands already wait for {self.port} (the device does not take them)"
            if failure is None:
                request_id = (next(self._ids) - 1) % protocol.MAX_ID + 1
                line = protocol.request(request_id, cmd, **args).encode()
                timeout = self.request_timeout_s if timeout_s is None else timeout_s
                self._pending[request_id] = _Pending(cmd, args, since, since + timeout, on_done, internal)
                device = None if internal else self.device_id
                out = _Out(request_id, line, cmd, internal, device, self._session_no)
                if cmd in URGENT_COMMANDS:
                    # Ahead of everything queued but earlier urgent ones.
                    at = next((i for i, o in enumerate(self._outq) if o.cmd not in URGENT_COMMANDS), len(self._outq))
                    self._outq.insert(at, out)
                else:
                    self._outq.append(out)
                self._out_ready.notify()
        if failure:
            _call(on_done, Reply(False, None, cmd, args, now - since, code="device_offline", message=failure))
            return None
        if dropped is not None and dropped[1] is not None:
            dropped[1].fail(dropped[0], now, "device_offline", f"dropped for a cut: {OUT_MAX} commands waited")
        self._wake()  # the reader recomputes its next deadline
        return request_id

    def _drop_one_for_urgent(self) -> tuple[int, _Pending | None] | None:
        """With the queue full: take out the newest queued command that is
        not urgent, to make room for a cut (under _lock; the caller fails
        it). None when every queued command is urgent."""
        for i in range(len(self._outq) - 1, -1, -1):
            out = self._outq[i]
            if out.cmd not in URGENT_COMMANDS and not out.internal:
                del self._outq[i]
                return out.request_id, self._pending.pop(out.request_id, None)
        return None

    # -- the writer thread -------------------------------------------------------------

    def _write_loop(self) -> None:
        """Take queued lines one at a time and write them, each bounded in
        time (Transport.write); a write that fails resets the transport."""
        while not self._stop.is_set():
            with self._out_ready:
                while not self._outq and not self._stop.is_set():
                    self._out_ready.wait()
            if self._stop.is_set():
                return
            try:
                self._write_next()
            except Exception:  # a bug: log it, never let the thread die
                log.exception("%s: unexpected error in the writer", self.port)

    def _write_next(self) -> None:
        refused: tuple[int, _Pending, str] | None = None
        error: Exception | None = None
        with self._write_lock:
            with self._lock:
                if not self._outq:
                    return
                out = self._outq.popleft()
                pending = self._pending.get(out.request_id)
                if pending is None:
                    return  # failed meanwhile (timeout, port closed)
                problem = None
                if not self._open or out.session != self._session_no or self._reset_reason is not None:
                    problem = "the device is not connected"
                elif not out.internal and (not self._ready or self.device_id != out.device):
                    # Its identity changed while the command waited: the
                    # command was for the device served when it came.
                    problem = f"{self.port} no longer serves device {out.device}"
                if problem is not None:
                    del self._pending[out.request_id]
                    refused = (out.request_id, pending, problem)
                else:
                    self.writing_since = pending.sent_at = time.monotonic()
                    pending.written = True
            if refused is None:
                try:
                    self.transport.write(out.line)
                except (serial.SerialException, OSError, ValueError) as err:
                    error = err
                finally:
                    self.writing_since = None
        if refused is not None:
            request_id, pending, problem = refused
            if not pending.internal:
                pending.fail(request_id, time.monotonic(), "device_offline", problem)
            return
        if error is None:
            if not out.internal:
                self.stats.commands_sent += 1
            log.debug("%s → %s", self.port, out.line.decode(errors="replace").rstrip())
            return
        self.stats.writes_failed += 1
        with self._lock:
            pending = self._pending.pop(out.request_id, None)
            if not isinstance(error, ValueError) and self._reset_reason is None:
                # A line may be half written: the stream cannot go on.
                self._reset_reason = f"write failed: {_short(error)}; reconnecting"
        if isinstance(error, ValueError):
            log.warning("%s: not sent (%s): %s", self.port, _short(error), out.line[:80])
        else:
            log.warning("%s: %s", self.port, self._reset_reason)
        if pending is not None and not pending.internal:
            pending.fail(out.request_id, time.monotonic(), "device_offline", f"write failed: {_short(error)}")
        self._wake()

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
        # When a device that was served is lost, it is usually back soon (a
        # Wi-Fi drop, a replug): for FAST_RETRY_S the back-off stays at its
        # first step instead of growing, so it is found again within about
        # one step of its return; after that it grows as usual.
        fast_until = 0.0
        told: str | None = None  # the problem told to the listener in this run of failures
        last_kind: tuple[Any, ...] | None = None  # of the last failure: a new kind is logged at once
        while not self._stop.is_set():
            try:
                self.transport.open()
            except (serial.SerialException, OSError, ValueError) as err:
                failures += 1
                kind = (type(err).__name__, getattr(err, "code", None), getattr(err, "errno", None))
                new_kind, last_kind = kind != last_kind, kind
                # A transport may mark a failure the bridge should tell (a
                # network device that refuses the key): told once per run.
                problem = getattr(err, "link_problem", None)
                if isinstance(problem, str) and problem != told:
                    told = problem
                    _listen(self.listener.on_problem, self, None, problem, _short(err))
                level = logging.WARNING if new_kind or failures in (1, 10) or failures % 100 == 0 else logging.DEBUG
                wait = self._jittered(backoff)
                log.log(level, "%s: cannot open (%s); retrying in %.1f s", self.port, _short(err), wait)
                backoff = self._pause(wait, backoff, fast_until)
                continue
            told = last_kind = None
            with self._lock:
                self._open = True
                self._session_no += 1
                self._reset_reason = None
            log.info("%s: port open%s", self.port, f" again after {failures} failed attempt(s)" if failures else "")
            failures = 0
            self.stats.opens += 1
            said_hello = False
            hellos_before = self.stats.identity_checks
            try:
                said_hello = self._session()
            except LinkClosed:
                pass
            except (serial.SerialException, OSError) as err:
                self._closed_reason = "port lost: " + _short(err)
                log.warning("%s: %s", self.port, self._closed_reason)
            except Exception:  # a bug: log it, never let the thread die
                self._closed_reason = "internal error"
                log.exception("%s: unexpected error; reopening the port", self.port)
            finally:
                self._close()
            # A session that ended in an error (the port vanished, the
            # connection dropped) may have served a device too.
            if said_hello or self.stats.identity_checks > hellos_before:
                backoff = self.backoff_initial_s
                fast_until = time.monotonic() + self.fast_retry_s
            if not self._stop.is_set():
                backoff = self._pause(self._jittered(backoff), backoff, fast_until)

    def _pause(self, wait: float, backoff: float, fast_until: float) -> float:
        """Wait before the next open; the back-off after it (grown, unless a
        lost device is still looked for at the first step)."""
        self._stop.wait(wait)
        return backoff if time.monotonic() < fast_until else min(self.backoff_max_s, backoff * 2)

    def _jittered(self, wait: float) -> float:
        return wait * (1.0 - random.random() * self.backoff_jitter) if self.backoff_jitter else wait

    def _close(self) -> None:
        # Waits for a write in progress (bounded: Transport.write), so the
        # transport is never closed under the writer.
        with self._write_lock:
            with self._lock:
                self._open = False
                self._ready = False
                pending = list(self._pending.items())
                self._pending.clear()
                self._outq.clear()
            self.transport.close()  # (not under _lock: request() never waits for it)
        self._held.clear()
        now = time.monotonic()
        for request_id, p in pending:
            if not p.internal:
                p.fail(request_id, now, "device_offline", self._closed_reason)
        self._set_online(False, self._closed_reason if not self._stop.is_set() else "bridge stopping")

    def _session(self) -> bool:
        """Read until the transport fails or the link stops. True once a hello was answered."""
        reader = protocol.LineReader(protocol.MAX_LINE)
        fd = self.transport.fileno()
        # Whatever this port held before, it may hold another device now.
        self.quarantined = None
        self.standby = None
        self._question_identity("the port was (re)opened")
        self.stats.last_frame_at = None
        said_hello = False
        self._closed_reason = "port closed"
        while not self._stop.is_set():
            now = time.monotonic()
            if not self._ready and now >= self._hello_due:
                self._say_hello(now)
            self._expire(now)
            self._check_identity_timeout(now)
            self._check_silence(now)
            self._check_transport_silence(now)
            reset = self._reset_reason
            if reset is not None:
                self._closed_reason = reset
                raise LinkClosed()
            timeout = self._next_deadline(now) - now
            readable, _, _ = select.select([fd, self._wake_r], [], [], max(0.0, timeout))
            if self._wake_r in readable:
                try:
                    os.read(self._wake_r, 4096)
                except (BlockingIOError, OSError):
                    pass
            if fd in readable:
                for line in reader.feed(self.transport.read()):
                    self._line(line)
                said_hello = said_hello or self._ready
        raise LinkClosed()

    def _next_deadline(self, now: float) -> float:
        deadline = now + 60.0
        if not self._ready:
            deadline = min(deadline, self._hello_due)
            if self._identify_started is not None and self.online:
                deadline = min(deadline, self._identify_started + self._identify_grace_s() + 0.01)
        with self._lock:
            for p in self._pending.values():
                deadline = min(deadline, p.deadline)
        if self._ready and self.online and self.stats.last_frame_at is not None:
            deadline = min(deadline, self.stats.last_frame_at + self.offline_after_s + 0.01)
        drop_at = self._transport_drop_at(now)
        if drop_at is not None:
            deadline = min(deadline, drop_at + 0.01)
        return deadline

    def _transport_drop_at(self, now: float) -> float | None:
        """When a transport that can tell how long its peer has said nothing
        at all (a network link: `silent_for()`) is to be dropped and made
        again: a half-open connection never says that it is gone."""
        silent_for = getattr(self.transport, "silent_for", None)
        silent = silent_for() if silent_for is not None else None
        return None if silent is None else now - silent + self.offline_after_s

    def _check_transport_silence(self, now: float) -> None:
        drop_at = self._transport_drop_at(now)
        if drop_at is not None and now >= drop_at:
            raise OSError(f"nothing received for {self.offline_after_s:.1f} s: connecting again")

    # -- identity ------------------------------------------------------------------

    def _question_identity(self, why: str) -> None:
        """From now on nothing is forwarded or sent for the bridge until the
        device has said hello again (held frames wait for the answer)."""
        with self._write_lock, self._lock:
            was_ready = self._ready
            self._ready = False
        if was_ready or self._identify_started is None:
            self._identify_started = time.monotonic()
        if was_ready:
            log.info("%s: device %s: %s; asking who it is before anything else", self.port, self.device_id, why)
        self._hello_due = 0.0
        self._hello_tries = 0
        self._hello_id = None

    def _identify_grace_s(self) -> float:
        return HELLO_TIMEOUT_S * 3

    def _check_identity_timeout(self, now: float) -> None:
        """A device that restarted and does not say who it is within a few
        hellos is offline under the id it had."""
        started = self._identify_started
        if self._ready or started is None or not self.online:
            return
        if now - started > self._identify_grace_s():
            self._set_online(False, "restarted and has not said who it is")

    def _say_hello(self, now: float) -> None:
        self._hello_tries += 1
        if self._hello_tries == 4 and not self.quarantined and not self.standby:
            log.warning("%s: no answer to hello yet (is a hobguard device on this port?)", self.port)
        if self.quarantined:
            self._hello_due = now + self._quarantine_s
        elif self.standby:
            self._hello_tries = 0
            self._hello_due = now + STANDBY_RETRY_S
        else:
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
        self.stats.identity_checks += 1
        problem = protocol.hello_problem(info)
        said = info.get("device")
        if not protocol.is_device_id(said) or said in protocol.RESERVED_DEVICE_IDS:
            said = None
        if problem is not None:
            self._quarantine(said, f"hello refused: {problem}")
            return
        device = info["device"]
        before = self.device_id
        if before is not None and before != device:
            # Another device than the one served: the old one is gone from here.
            log.warning("%s: device %s is gone; device %s answers here now", self.port, before, device)
            self._set_online(False, f"{self.port} now holds device {device}")
        self._claiming = device
        accepted = _listen(self.listener.on_hello, self, info)
        if isinstance(accepted, Refusal) and accepted.standby:
            self._claiming = None
            self._stand_by(device, accepted.reason)
            return
        if accepted is False or isinstance(accepted, Refusal):
            self._claiming = None
            reason = accepted.reason if isinstance(accepted, Refusal) else None
            self._quarantine(device, reason or "the bridge refuses to serve this device here (see the log)")
            return
        if self.quarantined:
            log.info("%s: device %s answers correctly again: no longer quarantined", self.port, device)
        if self.standby:
            log.info("%s: device %s: this link serves it now", self.port, device)
        with self._write_lock, self._lock:
            self.info = info
            self._ready = self._open
            self.quarantined = None
            self.standby = None
        self._claiming = None
        self._quarantine_s = QUARANTINE_FIRST_S
        self._identify_started = None
        self._refusals.clear()
        self.stats.last_frame_at = time.monotonic()
        log.info(
            "%s: device %s (firmware %s, burners %s, heartbeat %s s)%s",
            self.port,
            device,
            info.get("fw"),
            ", ".join(info["burners"]),
            info.get("heartbeat_s"),
            "" if before != device else " (again)",
        )
        self._set_online(True, "hello")
        # Frames that came while the identity was checked, then a fresh snapshot.
        while self._held and self._ready:
            self._dispatch(self._held.popleft())
        self._send("status", {}, self._status_done, None, internal=True)

    def _stand_by(self, device_id: str, reason: str) -> None:
        """Serve nothing here while another link serves this device; ask
        again every STANDBY_RETRY_S (and at once on ask_again())."""
        first = self.standby is None
        with self._write_lock, self._lock:
            self._ready = False
            self.standby = reason
        self._held.clear()
        if self.online:
            self._set_online(False, "standing by")
        if first:
            log.info("%s: device %s: standing by (%s)", self.port, device_id, reason)
        self._hello_due = time.monotonic() + STANDBY_RETRY_S

    def _quarantine(self, device_id: str | None, problem: str) -> None:
        """Serve nothing from this device until a later hello passes."""
        first = self.quarantined != problem
        with self._write_lock, self._lock:
            self._ready = False
            self.quarantined = problem
        self._held.clear()
        if self.online:
            self._set_online(False, "quarantined")
        if first:
            self._quarantine_s = QUARANTINE_FIRST_S
            log.error(
                "%s: device %s quarantined: %s. Nothing it says is published and no command is sent to it; "
                "hello is asked again in %.0f s and after it restarts.",
                self.port,
                device_id or "(no usable id)",
                problem,
                self._quarantine_s,
            )
            _listen(self.listener.on_problem, self, device_id, "quarantined", problem)
        else:
            self._quarantine_s = min(QUARANTINE_MAX_S, self._quarantine_s * 2)
            log.debug("%s: still quarantined (%s)", self.port, problem)
        self._hello_due = time.monotonic() + self._quarantine_s

    def _status_done(self, reply: Reply) -> None:
        if reply.ok and reply.state is not None and reply.device is not None:
            _listen(self.listener.on_state, self, reply.device, reply.state)

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
        log.debug("%s ← %s", self.port, line[:200])
        kind = frame.get("t")
        if kind in ("ok", "err"):
            self._reply(frame)
            return
        is_boot = kind == "evt" and frame.get("event_type") == "boot"
        if self.quarantined or self.standby:
            if not is_boot:
                return
            # A restart is a fresh start: its hello is judged (and reported) anew.
            log.info("%s: the %s device restarted: asking who it is", self.port,
                     "quarantined" if self.quarantined else "standing-by")  # fmt: skip
            self.quarantined = None
            self.standby = None
            self._question_identity("the device restarted")
        if self._ready and is_boot:
            self._question_identity("the device restarted")
        elif self._ready and kind == "state" and frame.get("device") != self.device_id:
            self._question_identity("a state frame names another device")
        if not self._ready:
            if len(self._held) >= HELD_MAX:
                self._held.popleft()
                self.stats.frames_held_dropped += 1
            self._held.append(frame)
            return
        self._dispatch(frame)

    def _dispatch(self, frame: dict[str, Any]) -> None:
        """Forward one frame from the device this link serves, if it passes."""
        info = self.info
        assert info is not None
        device = info["device"]
        kind = frame.get("t")
        if kind == "state":
            problem = edge.state_problem(frame, info)
            if problem is None:
                self._usable_frame()
                _listen(self.listener.on_state, self, device, frame)
        elif kind == "evt":
            problem = edge.event_problem(frame, info)
            if problem is None:
                self._usable_frame()
                _listen(self.listener.on_event, self, device, frame)
        else:
            problem = "a frame of unknown kind"
        if problem is not None:
            self._refuse(device, problem)

    def _usable_frame(self) -> None:
        self.stats.last_frame_at = time.monotonic()
        if self._ready and not self.online:
            self._set_online(True, "frames again")

    def _refuse(self, device: str, problem: str) -> None:
        """A frame from the device served here failed the checks: dropped,
        counted, logged (the first time, then every 100th), reported."""
        self.stats.frames_refused += 1
        count = self._refusals.get(problem, 0) + 1
        self._refusals[problem] = count
        if count == 1 or count % 100 == 0:
            log.warning(
                "%s: device %s: frame refused (%s)%s", self.port, device, problem, f" ×{count}" if count > 1 else ""
            )
        _listen(self.listener.on_problem, self, device, "frame_refused", problem)

    def _reply(self, frame: dict[str, Any]) -> None:
        request_id = frame.get("id")
        with self._lock:
            pending = self._pending.pop(request_id, None) if isinstance(request_id, int) else None
        if pending is None:
            if frame.get("t") == "err":
                self.stats.errors_from_device += 1
                if edge.error_reply_problem(frame) is None:
                    log.warning("%s: device reports %s: %s", self.port, frame.get("code"), frame.get("msg"))
                else:
                    log.warning("%s: device reports an error it cannot spell", self.port)
            else:
                log.debug("%s: late or unknown reply dropped", self.port)
            return
        latency = time.monotonic() - pending.sent_at
        device = self.device_id if self._ready else None
        if frame.get("t") == "ok":
            checked = frame
            state = frame.get("state")
            if state is not None and pending.cmd != "hello":
                problem = (
                    edge.state_problem(state, self.info) if device is not None and self.info else "no identity yet"
                )
                if problem is not None:
                    if device is not None:
                        self._refuse(device, problem)
                    checked = {k: v for k, v in frame.items() if k != "state"}
            if checked is frame and device is not None:
                self._usable_frame()
            reply = Reply(True, request_id, pending.cmd, pending.args, latency, frame=checked, device=device)
        else:
            problem = edge.error_reply_problem(frame)
            if problem is not None:
                if device is not None:
                    self._refuse(device, problem)
                code, message = "bad_reply", "the device's answer could not be read"
            else:
                code, message = str(frame["code"]), str(frame.get("msg") or "")
                if device is not None:
                    self._usable_frame()
            reply = Reply(
                False, request_id, pending.cmd, pending.args, latency, frame=None, code=code, message=message,
                device=device,
            )  # fmt: skip
        _call(pending.on_done, reply)

    def _expire(self, now: float) -> None:
        expired = []
        with self._lock:
            for request_id, p in list(self._pending.items()):
                if now >= p.deadline:
                    expired.append((request_id, p))
                    del self._pending[request_id]
            if expired and self._outq:  # not written, and never will be: room for others
                live = [o for o in self._outq if o.request_id in self._pending]
                self._outq.clear()
                self._outq.extend(live)
        for request_id, p in expired:
            if not p.internal:
                self.stats.timeouts += 1
            waited = now - p.sent_at
            if p.written:
                message = f"no answer within {waited:.1f} s"
            else:
                message = f"not sent within {waited:.1f} s: the device does not take what is sent"
            p.fail(request_id, now, "timeout", message)

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
        device = self.device_id
        log.info("%s: device %s %s (%s)", self.port, device or "?", "online" if online else "offline", reason)
        if device is not None:
            _listen(self.listener.on_availability, self, device, online, reason)


def _short(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    return text if len(text) < 160 else text[:157] + "..."


def _call(fn: Callable[[Reply], None], reply: Reply) -> None:
    try:
        fn(reply)
    except Exception:
        log.exception("error in a reply handler")


def _listen(fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception:
        log.exception("error in a link listener")
        return None
