"""The host end of a device's network link: `NetTransport` connects to
`tcp://HOST[:PORT]`, proves it holds the device's key and checks that the
device holds it too (hobguard_fw/auth.py, the same code the firmware runs),
then carries plain protocol lines (`HG1 …`) both ways inside numbered,
authenticated frames.

It is shaped like the pyserial port that `device_link.DeviceLink` uses, so
the bridge can read a network device the way it reads a serial one:

- `open()` connects and authenticates (blocking, bounded by `timeout_s`);
  afterwards the socket is non-blocking;
- `fileno()` for select(); `in_waiting` reads whatever the socket holds
  without waiting, checks every frame and returns how many plain bytes are
  ready; `read(size)` returns them (call `in_waiting` first, as DeviceLink
  does: bytes already taken off the socket do not make it readable again);
- `write(data)` seals every complete line in `data` and sends it (bounded by
  `write_timeout_s`); `flush()` does nothing more; `close()`.

Anything the device did not seal in this very session (an altered,
replayed, reflected or injected frame, an unauthenticated line) ends the
connection with `NetLinkError`, an `OSError`, as a vanished serial port
does. The device's keep-alives are answered here; `silent_for()` tells how
long the device has sent nothing at all (it sends a state frame every
heartbeat, so a long silence means a half-open connection).

Failure modes of open(): the address does not resolve or answer
(`OSError`), the device is busy or refuses the key (`NetLinkError` with the
device's code), the device cannot prove the key (`auth_failed`: someone
else answers on that address), no answer in time (`timeout`).
"""

from __future__ import annotations

import os
import select
import socket
import stat
import threading
import time
from collections import deque
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

from hobguard_fw import auth, protocol, wifi

DEFAULT_PORT = wifi.DEFAULT_PORT
# The longest frame a device sends: the longest protocol line plus framing.
MAX_FRAME = protocol.MAX_LINE + auth.OVERHEAD
READ_CHUNK = 65536


class NetLinkError(ConnectionError):
    """The network link failed; `code` is one of auth.E_* (or `closed`)."""

    def __init__(self, code: str, message: str | None = None) -> None:
        super().__init__(message or code)
        self.code = code


class KeyFileError(ValueError):
    pass


def parse_url(url: str) -> tuple[str, int]:
    """`tcp://HOST[:PORT]` -> (host, port). IPv6 literals in brackets."""
    parts = urlsplit(url)
    if parts.scheme != "tcp" or not parts.hostname or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"{url!r}: expected tcp://HOST[:PORT]")
    if parts.username or parts.password:
        raise ValueError(f"{url!r}: no user or password in the address (the key file authenticates)")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{url!r}: the port must be 1..65535") from None
    if port == 0:
        raise ValueError(f"{url!r}: the port must be 1..65535")
    return parts.hostname, port or DEFAULT_PORT


def load_key(path: str | os.PathLike[str]) -> bytes:
    """The device key from a key file (64 hex digits). The error names the
    file, never its content."""
    path = Path(path)
    try:
        text = path.read_text(errors="replace")
    except OSError as err:
        raise KeyFileError(f"key file {path}: {err.strerror or err}") from None
    try:
        return auth.parse_key(text)
    except ValueError:
        raise KeyFileError(
            f"key file {path}: not a hobguard key (64 hex digits; make one with `hobguard keygen`)"
        ) from None


def key_file_is_private(path: str | os.PathLike[str]) -> bool:
    """True when nobody but the owner may read the key file."""
    return stat.S_IMODE(os.stat(path).st_mode) & 0o077 == 0


def new_key() -> str:
    """A new random device key: 64 hex digits."""
    return os.urandom(auth.KEY_BYTES).hex()


def write_key_file(path: str | os.PathLike[str], force: bool = False) -> Path:
    """Write a new key to `path`, created with mode 0600 and in place only
    once complete. Refuses to replace an existing file unless `force`."""
    path = Path(path)
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists (use --force to replace the key in it)")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(new_key() + "\n")
            f.flush()
            os.fsync(f.fileno())
        if force:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails if the name appeared meanwhile: never overwrites
    finally:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
    return path


class NetTransport:
    """One authenticated connection to one device at a time (open/close may
    repeat). Reads belong to one thread; writes may come from any thread."""

    def __init__(
        self,
        url: str,
        key: bytes,
        *,
        timeout_s: float = 5.0,
        write_timeout_s: float = 2.0,
        random_bytes: Callable[[int], bytes] = os.urandom,
        resolve: Callable[[str, int, float], list[str]] | None = None,
    ) -> None:
        """`resolve(host, port, timeout_s)`, when given, turns the URL's host
        into the addresses to try, in order (the bridge's resolver, which
        knows `.local` names); without it the OS resolver does."""
        self.url = url
        self.host, self.port_number = parse_url(url)
        if len(key) != auth.KEY_BYTES:
            raise ValueError("the device key must be 32 bytes")
        self._key = key
        self.timeout_s = timeout_s
        self.write_timeout_s = write_timeout_s
        self._random = random_bytes
        self._resolve = resolve
        self._sock: socket.socket | None = None
        self._session: auth.Session | None = None
        self._reader = protocol.LineReader(MAX_FRAME)
        self._lines: deque[bytes | None] = deque()
        self._plain = bytearray()
        self._partial = b""  # the start of a line written without its newline
        self._eof: NetLinkError | None = None
        self._send_lock = threading.RLock()  # one writer at a time, counters in order
        self._last_rx = 0.0
        self.frames_in = 0
        self.frames_out = 0

    # -- pyserial's shape ---------------------------------------------------

    @property
    def port(self) -> str:
        return self.url

    @property
    def is_open(self) -> bool:
        return self._sock is not None

    def fileno(self) -> int:
        if self._sock is None:
            raise NetLinkError(auth.E_CLOSED, "not connected")
        return self._sock.fileno()

    def open(self) -> None:
        if self._sock is not None:
            raise NetLinkError(auth.E_CLOSED, "already open")
        deadline = time.monotonic() + self.timeout_s
        sock = self._connect(deadline)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._reset_state()
            session = auth.Session(self._key, False, self._random(auth.NONCE_BYTES))
            try:
                answer = session.handshake(self._handshake_line(sock, deadline))
                sock.sendall(answer.encode())
                session.handshake(self._handshake_line(sock, deadline))
            except auth.AuthError as err:
                raise NetLinkError(err.code, f"{self.url}: authentication failed ({err.code})") from None
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._session = session
        self._last_rx = time.monotonic()

    def _connect(self, deadline: float) -> socket.socket:
        if self._resolve is None:
            return socket.create_connection((self.host, self.port_number), timeout=self.timeout_s)
        addresses = self._resolve(self.host, self.port_number, self.timeout_s)
        error: OSError = OSError(f"{self.host}: no address")
        for address in addresses:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                return socket.create_connection((address, self.port_number), timeout=remaining)
            except OSError as err:
                error = err
        raise error

    def _reset_state(self) -> None:
        self._reader = protocol.LineReader(MAX_FRAME)
        self._lines.clear()
        self._plain = bytearray()
        self._partial = b""
        self._eof = None
        self.frames_in = self.frames_out = 0

    def _handshake_line(self, sock: socket.socket, deadline: float) -> bytes:
        while not self._lines:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise NetLinkError(auth.E_TIMEOUT, f"{self.url}: no answer to the handshake in time")
            sock.settimeout(remaining)
            try:
                data = sock.recv(4096)
            except TimeoutError:
                continue
            if not data:
                raise NetLinkError(auth.E_CLOSED, f"{self.url}: the device closed the connection")
            self._lines.extend(self._reader.feed(data))
        line = self._lines.popleft()
        if line is None:
            raise NetLinkError(auth.E_TOO_LONG, f"{self.url}: an over-long handshake line")
        return line

    @property
    def in_waiting(self) -> int:
        self._pump()
        return len(self._plain)

    def read(self, size: int = 1) -> bytes:
        self._pump()
        if not self._plain and self._eof is not None:
            error, self._eof = self._eof, None
            self.close()
            raise error
        data = bytes(self._plain[:size])
        del self._plain[:size]
        return data

    def write(self, data: bytes | str) -> int:
        if isinstance(data, str):
            data = data.encode()
        with self._send_lock:
            text = (self._partial + data).decode(errors="replace")
            *lines, rest = text.split("\n")
            if len(rest) > protocol.MAX_REQUEST:
                self._partial = b""
                raise ValueError("a line longer than the device accepts")
            self._partial = rest.encode()
            for line in lines:
                self._send_line(line)
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        sock, self._sock = self._sock, None
        self._session = None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass

    def abort(self) -> None:
        """End the connection from any thread without closing the socket
        under the reader (which then reads its end and closes it)."""
        sock = self._sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def silent_for(self) -> float:
        """Seconds since the device last sent anything."""
        return time.monotonic() - self._last_rx

    # -- inside ---------------------------------------------------------------

    def _send_line(self, body: str) -> None:
        with self._send_lock:
            session = self._session
            if session is None or self._sock is None:
                raise NetLinkError(auth.E_CLOSED, f"{self.url}: not connected")
            frame = session.seal(body).encode()
            self._send_all(frame)
            self.frames_out += 1

    def _send_all(self, data: bytes) -> None:
        sock = self._sock
        assert sock is not None
        deadline = time.monotonic() + self.write_timeout_s
        view = memoryview(data)
        while view:
            try:
                sent = sock.send(view)
                view = view[sent:]
                continue
            except BlockingIOError:
                pass
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise NetLinkError(auth.E_SLOW, f"{self.url}: the device does not take what is sent")
            select.select([], [sock], [], remaining)

    def _pump(self) -> None:
        """Take whatever the socket holds, without waiting; check it."""
        sock = self._sock
        if sock is None:
            if self._eof is None and not self._plain:
                raise NetLinkError(auth.E_CLOSED, f"{self.url}: not connected")
            return
        while self._eof is None:
            try:
                data = sock.recv(READ_CHUNK)
            except BlockingIOError:
                break
            except OSError as err:
                self._eof = NetLinkError(auth.E_CLOSED, f"{self.url}: {err}")
                break
            if not data:
                self._eof = NetLinkError(auth.E_CLOSED, f"{self.url}: the device closed the connection")
                break
            self._last_rx = time.monotonic()
            self._lines.extend(self._reader.feed(data))
        while self._lines and self._eof is None:
            self._frame(self._lines.popleft())

    def _frame(self, line: bytes | None) -> None:
        session = self._session
        assert session is not None
        if line is None:
            self._eof = NetLinkError(auth.E_TOO_LONG, f"{self.url}: an over-long frame")
            return
        code = auth.parse_error(line.decode(errors="replace"))
        if code is not None:
            # Unauthenticated, so only a hint: the connection ends either way.
            self._eof = NetLinkError(code, f"{self.url}: the device ends the connection ({code})")
            return
        try:
            body = session.unseal(line)
        except auth.AuthError as err:
            self._eof = NetLinkError(err.code, f"{self.url}: refused a frame ({err.code}); reconnecting")
            return
        self.frames_in += 1
        if body:
            self._plain += body + b"\n"
        else:
            try:
                self._send_line("")  # the device asks whether we are alive
            except OSError as err:
                self._eof = err if isinstance(err, NetLinkError) else NetLinkError(auth.E_CLOSED, str(err))
