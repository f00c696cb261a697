# The device's network link: a TCP server on the Wi-Fi address that speaks
# the line protocol inside the authenticated framing of auth.py.
#
# Nothing here ever waits: sockets are non-blocking, readiness comes from
# select.poll with a zero timeout, the device makes no outgoing connection
# and no DNS lookup. A Wi-Fi drop or a peer that misbehaves costs at most a
# few bounded operations per loop step, so it never delays a cut or the
# watchdog. Failure modes and what happens:
#
# - Wi-Fi lost: every socket is closed; listening starts again once the
#   station has its address back (wifi.Station reconnects with back-off);
# - a connection that does not authenticate within AUTH_TIMEOUT_MS, sends
#   anything but the handshake, or the wrong proof: an error line, closed,
#   counted; each such failure in a row doubles a pause before the next
#   connection is accepted (never a wait: the listening socket is simply
#   not looked at until then), up to PENALTY_MAX_MS: short enough that an
#   honest client queued behind a host that keeps failing (BACKLOG + 1
#   pauses at worst) still gets its greeting well within a client's
#   handshake time-out (the bridge's and `hobguard update`'s: 5 s);
# - every slot taken: the oldest unauthenticated connection makes room; if
#   all are authenticated the newcomer gets `busy`;
# - an authenticated connection that has sent nothing for KEEPALIVE_MS is
#   asked to show it is alive (a keep-alive, which a client answers with
#   one); silent for IDLE_MS (half-open, peer gone), it is closed;
# - a peer that does not read: its output is bounded by OUT_MAX; beyond
#   that it is closed rather than buffered. Requests are taken one at a
#   time, and only while the peer's output has room for the largest reply
#   (MAX_OUT_LINE): a client that sends many requests at once (pipelines)
#   is paused, not dropped -- the rest of its input waits (at most one
#   READ_CHUNK of lines here, the remainder in its socket) until the peer
#   has read enough of the replies;
# - a frame that is altered, replayed, reflected or out of order: closed,
#   counted, nothing executed.
from hobguard_fw import auth, protocol, wifi

MAX_CLIENTS = 3
AUTH_TIMEOUT_MS = 5000
IDLE_MS = 45000
KEEPALIVE_MS = 15000
OUT_MAX = 3072  # bytes waiting for one peer: about two full state frames
READ_CHUNK = 512
BACKLOG = 2
PENALTY_FIRST_MS = 250
PENALTY_MAX_MS = 1000
LISTEN_RETRY_MS = 1000
# An authenticated frame from a client: a command line plus the framing.
MAX_IN_LINE = protocol.MAX_REQUEST + auth.OVERHEAD
# The longest frame the device sends: a protocol line (state frames and
# replies, four burners and every field filled, stay within MAX_LINE:
# tests/test_protocol.py) plus the framing and its newline. A request is
# handled only while a client's queue has this much room, so its reply
# always fits and a client that reads is never dropped for pipelining.
MAX_OUT_LINE = protocol.MAX_LINE + auth.OVERHEAD + 1

# errno values (the same on the ESP32 and on Linux) that mean "not now".
_WOULD_BLOCK = (11, 115, 110)  # EAGAIN, EINPROGRESS, ETIMEDOUT (ESP32 send)


def _errno(err):
    return err.args[0] if err.args else None


def _ahead(time_module, deadline, now, longest):
    """Milliseconds until a deadline set at most `longest` ahead: 0 when it
    is due, and also when it reads as further ahead than it was ever set (a
    stamp left 2**29 ms or more -- 6.2 days -- reads to ticks_diff as a
    future one: it is long past)."""
    ahead = time_module.ticks_diff(deadline, now)
    return ahead if 0 < ahead <= longest else 0


def _age(time_module, stamp, now):
    """Milliseconds since a past stamp; one that reads as in the future is
    older than ticks_diff can tell: as old as can be."""
    age = time_module.ticks_diff(now, stamp)
    return age if age >= 0 else 1 << 29


class Client:
    """One accepted connection. `write(text)` takes a plain protocol line,
    as the USB link does; it is sealed and queued for sending."""

    def __init__(self, link, sock, nonce, now):
        self.link = link
        self.sock = sock
        self.session = auth.Session(link.key, True, nonce)
        self.reader = protocol.LineReader(MAX_IN_LINE)
        self.pending = []  # lines received but not yet handled (no room for a reply)
        self.out = b""
        self.opened = now
        self.last_in = now
        self.probed = False  # a keep-alive went out since the peer last sent
        self.closed = False
        self.mask = None  # what the poller watches on this socket, once registered
        self.queue(self.session.greeting())

    @property
    def authenticated(self):
        # Once past the handshake, even if a bad frame has since ended it.
        return self.session.session_pads is not None

    def room(self):
        """True when the largest reply fits what is queued for this peer."""
        return OUT_MAX - len(self.out) >= MAX_OUT_LINE

    def queue(self, data):
        if self.closed:
            return
        if isinstance(data, str):
            data = data.encode()
        if len(self.out) + len(data) > OUT_MAX:
            self.link.close_client(self, auth.E_SLOW)
            return
        self.out += data

    def write(self, text):
        if self.closed or not self.session.open:
            return
        try:
            self.queue(self.session.seal(text))
        except auth.AuthError as err:
            self.link.close_client(self, err.code)


class NetLink:
    """The TCP server. `modules` holds what the board provides: `socket`,
    `select`, and `random` (a function giving n random bytes, os.urandom)."""

    def __init__(self, station, key, port, socket_module, select_module, random_bytes, time_module):
        self.station = station
        self.key = key
        self.port = port
        self.socket = socket_module
        self.select = select_module
        self.random = random_bytes
        self.time = time_module
        self.poller = select_module.poll()
        self.listener = None
        self.address = None
        self.clients = []
        self.failures_in_row = 0
        self.accept_after = None  # ticks before which no connection is accepted
        self.listen_after = None  # ticks before which a failed bind is not tried again
        self.listening_watched = False
        # Counters, reported in the state frame.
        self.auth_failures = 0  # connections that ended without authenticating
        self.frames_refused = 0  # authenticated connections closed for a bad frame
        self.dropped = 0  # idle, slow, evicted, or closed by the device

    # -- listening ---------------------------------------------------------

    def _listen(self, address, now):
        if self.listen_after is not None and _ahead(self.time, self.listen_after, now, LISTEN_RETRY_MS):
            return False
        self.listen_after = self.time.ticks_add(now, LISTEN_RETRY_MS)
        sock = None
        try:
            sock = self.socket.socket(self.socket.AF_INET, self.socket.SOCK_STREAM)
            try:
                sock.setsockopt(self.socket.SOL_SOCKET, self.socket.SO_REUSEADDR, 1)
            except Exception:
                pass
            sock.bind((address, self.port))
            sock.listen(BACKLOG)
            sock.setblocking(False)
        except Exception:
            if sock is not None:
                try:
                    sock.close()
                except Exception:
                    pass
            return False
        self.listener = sock
        self.address = address
        self._watch_listener(True)
        return True

    def _watch_listener(self, on):
        if self.listener is None or on == self.listening_watched:
            return
        try:
            if on:
                self.poller.register(self.listener, self.select.POLLIN)
            else:
                self.poller.unregister(self.listener)
            self.listening_watched = on
        except Exception:
            pass

    def close(self, code=auth.E_CLOSED):
        """Stop serving: close every connection (telling each peer `code`,
        unless None) and the listening socket."""
        if self.listener is not None:
            self._watch_listener(False)
            try:
                self.listener.close()  # first: nobody new arrives meanwhile
            except Exception:
                pass
        self.listener = None
        self.address = None
        # A pause after failed handshakes is about the listener that is
        # gone: the next one starts accepting at once (failures_in_row is
        # kept, so the next failure still pauses as long as it would have).
        self.accept_after = None
        for client in list(self.clients):
            self.close_client(client, code, counted=False)

    # -- connections -------------------------------------------------------

    def _accept(self, now):
        try:
            sock, _ = self.listener.accept()  # pyright: ignore[reportOptionalMemberAccess]
        except Exception:
            return  # nothing waiting after all
        try:
            sock.setblocking(False)
            # Each reply goes out at once, not after the peer's delayed ACK.
            sock.setsockopt(self.socket.IPPROTO_TCP, self.socket.TCP_NODELAY, 1)
        except Exception:
            pass
        if len(self.clients) >= MAX_CLIENTS:
            stranger = None
            for client in self.clients:  # in the order they came: the first is the oldest
                if not client.authenticated:
                    stranger = client
                    break
            if stranger is None:
                self._refuse(sock, auth.E_BUSY)
                return
            self.close_client(stranger, auth.E_BUSY)
        try:
            nonce = self.random(auth.NONCE_BYTES)
        except Exception:
            self._refuse(sock, auth.E_CLOSED)  # no randomness: never a predictable nonce
            return
        client = Client(self, sock, nonce, now)
        self.clients.append(client)
        mask = self.select.POLLIN | self.select.POLLOUT
        try:
            self.poller.register(sock, mask)
            client.mask = mask
        except Exception:
            self.close_client(client, auth.E_CLOSED)

    def _refuse(self, sock, code):
        self.dropped += 1
        try:
            sock.send(auth.error_line(code).encode())
        except Exception:
            pass
        try:
            sock.close()
        except Exception:
            pass

    def close_client(self, client, code=None, counted=True):
        if client.closed:
            return
        client.closed = True
        if client in self.clients:
            self.clients.remove(client)
        if not counted:
            pass
        elif not client.authenticated:
            self._failed()
        elif code in (auth.E_FRAME, auth.E_MAC, auth.E_REPLAY, auth.E_TOO_LONG):
            self.frames_refused += 1
        else:
            self.dropped += 1
        try:
            self.poller.unregister(client.sock)
        except Exception:
            pass
        if code is not None:
            # One try, never a wait: an error line the peer may or may not see.
            try:
                client.sock.send(client.out + auth.error_line(code).encode())
            except Exception:
                pass
        try:
            client.sock.close()
        except Exception:
            pass
        client.out = b""
        client.pending = []

    def _failed(self):
        self.auth_failures += 1
        self.failures_in_row += 1
        pause = min(PENALTY_MAX_MS, PENALTY_FIRST_MS << min(self.failures_in_row - 1, 6))
        self.accept_after = self.time.ticks_add(self.time.ticks_ms(), pause)
        self._watch_listener(False)

    # -- the loop ----------------------------------------------------------

    def poll(self, now, handle_line):
        """Do everything due now without waiting. `handle_line(line, now,
        client)` gets each authenticated plain protocol line."""
        station = self.station
        if station.poll(now):
            self.listen_after = None
            if station.state == "up":
                self._listen(station.address, now)
            else:
                self.close()
        elif station.state == "up" and self.listener is None:
            self._listen(station.address, now)  # a failed bind: again, once a second
        if self.listener is None:
            return
        if self.accept_after is not None and not _ahead(self.time, self.accept_after, now, PENALTY_MAX_MS):
            self.accept_after = None
            self._watch_listener(True)
        ready = self.poller.poll(0)
        select = self.select
        for entry in ready:
            target = entry[0]
            events = entry[1]
            if self._is(self.listener, target):
                if self.accept_after is None:
                    self._accept(now)
                continue
            for client in self.clients:
                if self._is(client.sock, target):
                    if client.pending:
                        # Paused (input not watched): only a hang-up or an
                        # error is news; its lines wait for room below.
                        if events & (select.POLLHUP | select.POLLERR):
                            self.close_client(client)
                    elif events & ~select.POLLOUT:  # readable, hung up or in error
                        self._read(client, now, handle_line)
                    break
        # A paused client whose peer has read enough goes on where it stopped.
        for client in list(self.clients):
            if client.pending:
                self._send(client)
                self._serve(client, now, handle_line)
        self._expire(now)
        self.flush()

    @staticmethod
    def _is(sock, target):
        # MicroPython's poll gives back the object, CPython's the descriptor.
        if sock is target:
            return True
        try:
            return isinstance(target, int) and sock.fileno() == target
        except Exception:
            return False

    def _read(self, client, now, handle_line):
        try:
            data = client.sock.recv(READ_CHUNK)
        except OSError as err:
            if _errno(err) in _WOULD_BLOCK:
                return
            self.close_client(client)
            return
        if not data:
            self.close_client(client)  # the peer closed
            return
        client.last_in = now
        client.probed = False
        client.pending = client.reader.feed(data)
        self._serve(client, now, handle_line)

    def _serve(self, client, now, handle_line):
        """Handle the client's received lines in order, each only while its
        reply is sure to fit; what is left waits (the client is paused)."""
        pending = client.pending
        while pending and not client.closed:
            if not client.room():
                self._send(client)  # what the socket takes now makes room
                if not client.room():
                    return  # paused: input is not watched until it drains
            client.last_in = now  # it read our replies: it is alive
            line = pending.pop(0)
            if line is None:
                self.close_client(client, auth.E_TOO_LONG)
                return
            try:
                if not client.authenticated:
                    client.queue(client.session.handshake(line))
                    self.failures_in_row = 0
                    continue
                body = client.session.unseal(line)
            except auth.AuthError as err:
                self.close_client(client, err.code)
                return
            if body:
                handle_line(body, now, client)

    def _expire(self, now):
        time = self.time
        for client in list(self.clients):
            if not client.authenticated:
                if _age(time, client.opened, now) >= AUTH_TIMEOUT_MS:
                    self.close_client(client, auth.E_TIMEOUT)
            elif _age(time, client.last_in, now) >= IDLE_MS:
                self.close_client(client, auth.E_TIMEOUT)
            elif not client.probed and _age(time, client.last_in, now) >= KEEPALIVE_MS:
                client.probed = True
                client.write("")

    def broadcast(self, text):
        """A plain protocol line to every authenticated connection."""
        for client in list(self.clients):
            if client.authenticated:
                client.write(text)

    def _send(self, client):
        """Send what is queued for one client, as much as its socket takes now."""
        if not client.out or client.closed:
            return
        try:
            sent = client.sock.send(client.out)
        except OSError as err:
            if _errno(err) not in _WOULD_BLOCK:
                self.close_client(client)
            return
        if sent:
            client.out = client.out[sent:]

    def flush(self):
        """Send what is queued, as much as each socket takes now."""
        select = self.select
        for client in list(self.clients):
            self._send(client)
        for client in self.clients:
            # Input is watched unless the client is paused; output while
            # something waits to go out.
            mask = (0 if client.pending else select.POLLIN) | (select.POLLOUT if client.out else 0)
            if mask != client.mask:
                try:
                    self.poller.modify(client.sock, mask)
                    client.mask = mask
                except Exception:
                    pass

    def next_wake_ms(self, now):
        """The longest the loop may sleep before something here is due."""
        time = self.time
        wait = self.station.next_wake_ms(now)
        if wait is None:
            wait = IDLE_MS
        if self.station.state == "up" and self.listener is None:
            wait = min(wait, LISTEN_RETRY_MS)  # bind failed: try again soon
        if self.accept_after is not None and self.listener is not None:
            wait = min(wait, _ahead(time, self.accept_after, now, PENALTY_MAX_MS))
        for client in self.clients:
            if client.pending and client.room():
                return 0  # a paused client can go on
            if not client.authenticated:
                due = AUTH_TIMEOUT_MS - _age(time, client.opened, now)
            elif client.probed:
                due = IDLE_MS - _age(time, client.last_in, now)
            else:
                due = KEEPALIVE_MS - _age(time, client.last_in, now)
            wait = min(wait, due)
        return max(0, wait)

    def wait(self, ms):
        """Sleep until a socket (or whatever else was registered in the
        poller, such as the USB line) has something, or ms pass."""
        self.poller.poll(max(0, ms))

    def watched(self):
        """(readable, writable): the sockets worth waking up for now."""
        readers = []
        writers = []
        if self.listener is not None and self.listening_watched:
            readers.append(self.listener)
        for client in self.clients:
            if not client.pending:
                readers.append(client.sock)
            if client.out:
                writers.append(client.sock)
        return readers, writers

    def describe(self, message):
        """Add the link's diagnostics to a state frame: no secrets."""
        message["wifi"] = self.station.state
        message["rssi"] = self.station.rssi()
        message["net_clients"] = sum(1 for c in self.clients if c.authenticated)
        message["net_auth_failures"] = self.auth_failures
        message["net_frames_refused"] = self.frames_refused


def start(secrets, device_id, now, time_module, modules):
    """(NetLink, []) for valid secrets (wifi.validate_secrets), or (None,
    errors) when the board lacks network support. The board's modules are
    imported here unless `modules` gives them (the simulator's): keys
    "network", "socket", "select", "random_bytes"."""
    try:
        network = modules.get("network")
        if network is None:
            import network
        socket_module = modules.get("socket")
        if socket_module is None:
            import socket as socket_module
        select_module = modules.get("select")
        if select_module is None:
            import select as select_module
        random_bytes = modules.get("random_bytes")
        if random_bytes is None:
            import os

            random_bytes = os.urandom
    except ImportError:
        return None, ["this board has no network support"]
    station = wifi.Station(
        network, time_module, secrets["wifi_ssid"], secrets["wifi_password"], wifi.hostname(device_id), now
    )
    key = auth.parse_key(secrets["key"])
    return NetLink(station, key, secrets["port"], socket_module, select_module, random_bytes, time_module), []
