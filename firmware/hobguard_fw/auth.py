# The authenticated network link, defined once: the handshake that proves
# both ends hold the device's key, and the framing that numbers and
# authenticates every line after it. Imported by the firmware (MicroPython)
# and by the host and the simulator (CPython); pure: no sockets, no clock,
# randomness passed in. Specification: docs/protocol.md, "The network link";
# why it is built this way: docs/security.md.
#
#   device -> client  HGA1 NONCE <Nd>
#   client -> device  HGA1 AUTH <Nc> <Pc>     Pc = HMAC(K, "hobguard-client-v1\0" Nd Nc)
#   device -> client  HGA1 OK <Pd>            Pd = HMAC(K, "hobguard-device-v1\0" Nd Nc)
#   both ways         <ctr> <HG1 line> <tag>  tag = HMAC(S, dir <ctr> " " <HG1 line>)
#                     S = HMAC(K, "hobguard-session-v1\0" Nd Nc); dir "D" or "C"
#
# Nd, Nc: 32 random bytes, fresh for every connection; <..> in lower-case hex.
import binascii
import hashlib

PREFIX = "HGA1 "
KEY_BYTES = 32
NONCE_BYTES = 32
COUNTER_DIGITS = 8
TAG_DIGITS = 64
# A session ends (the client connects again) before its counter would wrap.
COUNTER_MAX = 0xFFFFFFFF
# Frame overhead: counter, two spaces, tag.
OVERHEAD = COUNTER_DIGITS + 2 + TAG_DIGITS
# Longest handshake line (AUTH): prefix, word, two nonces' worth of hex.
MAX_HANDSHAKE = 160

_LABEL_CLIENT = b"hobguard-client-v1\x00"
_LABEL_DEVICE = b"hobguard-device-v1\x00"
_LABEL_SESSION = b"hobguard-session-v1\x00"
_TO_DEVICE = b"C"  # the direction byte of frames a client sends
_TO_CLIENT = b"D"  # ... and of frames the device sends

# Error codes of the network link (HGA1 ERR <code>). Every one of them ends
# the connection.
E_AUTH_REQUIRED = "auth_required"  # anything but AUTH before authenticating
E_HANDSHAKE = "bad_handshake"  # an AUTH line that is not well formed
E_AUTH_FAILED = "auth_failed"  # the proof is wrong: not this device's key
E_TIMEOUT = "timeout"  # no AUTH in time / nothing received for too long
E_BUSY = "busy"  # every connection slot is taken
E_FRAME = "bad_frame"  # an authenticated frame that is not well formed
E_MAC = "bad_mac"  # the tag does not match: altered, or from another session
E_REPLAY = "replay"  # a valid tag on a counter already used (or skipped)
E_TOO_LONG = "too_long"
E_SLOW = "slow_reader"  # the peer does not read what is sent to it
E_CLOSED = "closed"  # the device stops serving (Wi-Fi lost, shutting down)


class AuthError(Exception):
    def __init__(self, code):
        super().__init__(code)
        self.code = code


def _pads(key):
    """HMAC-SHA256's inner and outer key blocks (RFC 2104)."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key + bytes(64 - len(key))
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def _mac(pads, *parts):
    inner = hashlib.sha256(pads[0])
    for part in parts:
        inner.update(part)
    outer = hashlib.sha256(pads[1])
    outer.update(inner.digest())
    return outer.digest()


def hmac_sha256(key, message):
    """HMAC-SHA256 (RFC 2104) from hashlib.sha256, which is all MicroPython
    has."""
    return _mac(_pads(key), message)


def same(a, b):
    """Compare two byte strings in time that depends on their length only."""
    if len(a) != len(b):
        return False
    diff = 0
    for i in range(len(a)):
        diff |= a[i] ^ b[i]
    return diff == 0


def _hex(data):
    return binascii.hexlify(data).decode()


def _unhex(text, size):
    # Lower-case hex of exactly `size` bytes; anything else is malformed.
    if len(text) != 2 * size:
        return None
    for ch in text:
        if not ("0" <= ch <= "9" or "a" <= ch <= "f"):
            return None
    return binascii.unhexlify(text)


def parse_key(text):
    """The device key from its text form (64 hex digits, either case,
    surrounding white space ignored). Raises ValueError without echoing
    the text."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode()
        except Exception:
            raise ValueError("the key is not text")
    key = _unhex(text.strip().lower(), KEY_BYTES)
    if key is None:
        raise ValueError("the key must be %d hex digits" % (2 * KEY_BYTES))
    return key


def error_line(code):
    """An unauthenticated error line: informative only, never trusted."""
    return PREFIX + "ERR " + code + "\n"


def parse_error(line):
    """The code of an `HGA1 ERR` line, else None."""
    if line.startswith(PREFIX + "ERR "):
        return line[len(PREFIX) + 4 :].strip()[:32]
    return None


class Session:
    """One end of one connection: the handshake, then numbered,
    authenticated frames both ways. `device` chooses the end; `nonce` is
    this end's NONCE_BYTES of fresh randomness. Any AuthError leaves the
    session unusable: the connection must be closed."""

    def __init__(self, key, device, nonce):
        if len(key) != KEY_BYTES or len(nonce) != NONCE_BYTES:
            raise ValueError("key and nonce must be 32 bytes")
        self.key_pads = _pads(key)
        self.device = device
        self.nonce = nonce
        self.peer_nonce = None
        self.session_pads = None  # set once authenticated
        self.sent = 0  # the counter of the next frame sent
        self.received = 0  # the counter the next frame must carry
        self.failed = False
        if device:
            self._out_dir, self._in_dir = _TO_CLIENT, _TO_DEVICE
        else:
            self._out_dir, self._in_dir = _TO_DEVICE, _TO_CLIENT

    @property
    def open(self):
        return self.session_pads is not None and not self.failed

    def _nonces(self):
        if self.device:
            return self.nonce, self.peer_nonce
        return self.peer_nonce, self.nonce

    def _proof(self, label):
        device_nonce, client_nonce = self._nonces()
        return _mac(self.key_pads, label, device_nonce, client_nonce)

    def _start(self):
        self.session_pads = _pads(self._proof(_LABEL_SESSION))
        self.key_pads = None  # the key itself is not needed any more

    def _fail(self, code):
        self.failed = True
        raise AuthError(code)

    # -- the handshake -----------------------------------------------------

    def greeting(self):
        """Device: the first line, sent as soon as the connection is accepted."""
        return PREFIX + "NONCE " + _hex(self.nonce) + "\n"

    def handshake(self, line):
        """Take one handshake line (str or bytes, newline optional) from the
        peer; return the line to answer with ("" when there is none).
        Raises AuthError when the line is wrong; the session is then dead."""
        if self.failed or self.session_pads is not None:
            self._fail(E_HANDSHAKE)
        if isinstance(line, (bytes, bytearray)):
            try:
                line = bytes(line).decode()
            except Exception:
                self._fail(E_AUTH_REQUIRED)
        line = line.rstrip("\r\n")
        if len(line) > MAX_HANDSHAKE:
            self._fail(E_TOO_LONG)
        if not line.startswith(PREFIX):
            self._fail(E_AUTH_REQUIRED)
        words = line[len(PREFIX) :].split(" ")
        if self.device:
            if words[0] != "AUTH":
                self._fail(E_AUTH_REQUIRED)
            if len(words) != 3:
                self._fail(E_HANDSHAKE)
            client_nonce = _unhex(words[1], NONCE_BYTES)
            proof = _unhex(words[2], 32)
            if client_nonce is None or proof is None:
                self._fail(E_HANDSHAKE)
            self.peer_nonce = client_nonce
            if not same(proof, self._proof(_LABEL_CLIENT)):
                self._fail(E_AUTH_FAILED)
            answer = PREFIX + "OK " + _hex(self._proof(_LABEL_DEVICE)) + "\n"
            self._start()
            return answer
        if self.peer_nonce is None:
            if words[0] == "ERR":
                self._fail(parse_error(line) or E_HANDSHAKE)
            if len(words) != 2 or words[0] != "NONCE":
                self._fail(E_HANDSHAKE)
            device_nonce = _unhex(words[1], NONCE_BYTES)
            if device_nonce is None:
                self._fail(E_HANDSHAKE)
            self.peer_nonce = device_nonce
            return PREFIX + "AUTH " + _hex(self.nonce) + " " + _hex(self._proof(_LABEL_CLIENT)) + "\n"
        if words[0] == "ERR":
            self._fail(parse_error(line) or E_AUTH_FAILED)
        if len(words) != 2 or words[0] != "OK":
            self._fail(E_HANDSHAKE)
        proof = _unhex(words[1], 32)
        if proof is None:
            self._fail(E_HANDSHAKE)
        if not same(proof, self._proof(_LABEL_DEVICE)):
            self._fail(E_AUTH_FAILED)  # the other end does not hold the key
        self._start()
        return ""

    # -- frames ------------------------------------------------------------

    def seal(self, body):
        """Frame one plain protocol line (str, newline optional; "" is a
        keep-alive) for sending: counter, body, tag, newline."""
        if not self.open:
            raise AuthError(E_AUTH_REQUIRED)
        if self.sent > COUNTER_MAX:
            self._fail(E_REPLAY)  # never reuse a counter: reconnect instead
        if body.endswith("\n"):
            body = body[:-1]
        head = "%08x %s" % (self.sent, body)
        self.sent += 1
        tag = _mac(self.session_pads, self._out_dir, head.encode())
        return head + " " + _hex(tag) + "\n"

    def unseal(self, line):
        """Check one received frame (bytes or str, newline optional) and
        return its body as bytes (b"" for a keep-alive). Raises AuthError
        for anything not sealed by the other end of this very session, in
        order."""
        if not self.open:
            raise AuthError(E_AUTH_REQUIRED)
        if isinstance(line, str):
            line = line.encode()
        line = bytes(line)
        if line.endswith(b"\n"):
            line = line[:-1]
        if line.endswith(b"\r"):
            line = line[:-1]
        if len(line) < OVERHEAD or line[COUNTER_DIGITS] != 32 or line[-TAG_DIGITS - 1] != 32:
            self._fail(E_FRAME)
        try:
            counter_text = line[:COUNTER_DIGITS].decode()
            tag_text = line[-TAG_DIGITS:].decode()
        except Exception:
            counter_text = tag_text = ""
        tag = _unhex(tag_text, 32)
        if tag is None or _unhex(counter_text, 4) is None:
            self._fail(E_FRAME)
        head = line[: -TAG_DIGITS - 1]
        if not same(tag, _mac(self.session_pads, self._in_dir, head)):
            self._fail(E_MAC)
        if int(counter_text, 16) != self.received:
            self._fail(E_REPLAY)
        self.received += 1
        return head[COUNTER_DIGITS + 1 :]
