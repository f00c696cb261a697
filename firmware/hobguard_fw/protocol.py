# The serial protocol between a hobguard device and its host, defined once.
# Imported by the firmware (MicroPython) and by the host bridge and simulator
# (CPython), so it uses only what both have: json, binascii.crc32.
# Specification with examples: docs/protocol.md.
import binascii
import json

PROTOCOL_VERSION = 1
PREFIX = "HG1 "
# Longest device->host line, prefix and checksum included. The largest state
# frame (four burners, longest ids, every field filled) is about 1.1 KB.
MAX_LINE = 2048
# Longest command line a device accepts: commands are short, so a long line
# is garbage and is refused before anything parses it.
MAX_REQUEST = 256

# Bytes of firmware in one ota_chunk command: 43 base64 groups, the most
# that fits MAX_REQUEST with the largest id and offset (so the command line
# limit, and every buffer sized by it, stays what it is).
OTA_CHUNK = 129

# Commands a host may send, with their arguments: name -> (kind, required).
# kind: "burner" (a burner id string), "minutes" (a finite number), "bool",
# "text" (1-32 characters of printable text), "count" (an integer
# 0..MAX_ID), "word" (1-172 printable ASCII characters, no space: a hash or
# a chunk in base64, whose form ota.py checks).
# No command can open gas: the strongest thing a command can do is cut it.
COMMANDS = {
    "hello": {},
    "status": {},
    "ping": {},
    "cut": {"burner": ("burner", False)},
    "timer_set": {"burner": ("burner", True), "minutes": ("minutes", True)},
    "timer_extend": {"burner": ("burner", True), "minutes": ("minutes", True)},
    "timer_cancel": {"burner": ("burner", True)},
    "lock": {"on": ("bool", True)},
    "clear_fault": {"burner": ("burner", False)},
    # A person is at the hob now (a motion or occupancy sensor, through the
    # bridge): feeds the unattended-cooking guard; changes nothing else.
    "presence": {},
    # USB only: stop the controller (every relay open) and hand the line to
    # the MicroPython REPL, for a developer (hobguard deploy sends it before
    # mpremote). A Ctrl-C byte does not stop a running hob (review F12).
    "repl": {},
    # Firmware updates (docs/updates.md): see NETWORK_ONLY.
    "ota_status": {},
    "ota_begin": {"version": ("text", True), "size": ("count", True), "sha256": ("word", True)},
    "ota_chunk": {"off": ("count", True), "data": ("word", True)},
    "ota_end": {},
    "ota_abort": {},
}
# Commands the USB line refuses: they carry or stage a new firmware, which
# only the authenticated network link may do (docs/updates.md).
NETWORK_ONLY = ("ota_begin", "ota_chunk", "ota_end")

# Error codes a device answers with (t="err").
E_FRAME = "bad_frame"  # no prefix, no checksum, or not one JSON object
E_CRC = "bad_crc"  # the checksum does not match
E_TOO_LONG = "too_long"  # longer than MAX_REQUEST
E_JSON = "bad_json"
E_ID = "bad_id"  # missing or not an integer in 0..2**31-1
E_UNKNOWN = "unknown_cmd"
E_ARG = "bad_arg"  # missing, extra, wrong type, NaN, out of range
E_BURNER = "no_burner"  # no burner of that id on this device
E_STATE = "refused"  # valid, but not now (e.g. timer while locked)
E_UPDATE = "bad_update"  # a firmware bundle that fails a check: nothing was changed

MAX_ID = 2147483647

# -- the vocabulary, defined once ---------------------------------------------
# Every event a device emits (t="evt", event_type=...). The bridge adds
# BRIDGE_EVENT_TYPES of its own. Home Assistant's event entity, the scenario
# checks, the renderer of events into words and the docs all read these.
EVENT_TYPES = (
    "boot",
    "cut",
    "cut_verified",
    "cut_unverified",
    "warning",
    "fault",
    "fault_cleared",
    "ignited",
    "flame_out",
    "timer_set",
    "timer_cancelled",
    "lock",
    "rejected",
    # A warning taken back before its cut: a sign of a person during an
    # `unattended` warning ("don't fight the cook").
    "warning_cancelled",
)
# "update": how an install from Home Assistant's update entity ended.
BRIDGE_EVENT_TYPES = ("rejected", "quarantined", "update")
# Why a burner was cut (event "cut", state "last_cut_reason").
CUT_REASONS = (
    "timer",
    "remote",
    "button",
    "left_on",
    "lock",
    "fault",
    "reset",
    # The thermocouple shows the flame has gone out while the valve still
    # holds (blown out, boiled over, or the knob turned off): no warning.
    "flame_lost",
    # A burner burned with no sign of a person for unattended_min.
    "unattended",
)
# Why a device warns (event "warning" reason). With a burner: a cut follows
# warn_before_s later unless something takes the warning back. Without one:
# the device runs, but something about its set-up is wrong.
WARNING_REASONS = (
    "timer",
    "left_on",
    "unattended",
    # A burner last seen lit whose thermocouple has been unreadable for a
    # minute: the `fault` cut follows (core.SENSOR_FAULT_CUT_MS).
    "fault",
    "settings_invalid",
    "secrets_invalid",
    "network_unavailable",
    # The child lock changed but the flash refused to keep it: it holds
    # until the next restart, which finds the old value.
    "lock_not_saved",
)
# The shortest timer a command may set or add: one second (1/60 minute).
# Below it only an exact integer 0 is taken (timer_set: cancel). A board's
# floats are 32 bits: "1e-50" reads there as 0.0, which must not cancel a
# timer someone meant as "cut almost now" (review F11); so 0.0 is refused
# as too short, and the bridge sends a whole number of minutes as an int.
TIMER_MIN_MIN = 1 / 60


def timer_too_short(minutes):
    """True for a number of minutes under one second, to the nearest
    millisecond (so 1/60 passes whether it was rounded to 32 or 64 bits).
    Check `minutes == 0 and isinstance(minutes, int)` (cancel) first."""
    return round(minutes * 60000) < 1000


# Fault codes (event "fault" reason, state "fault").
FAULT_CODES = ("sensor", "cut_failed", "crash")

# Device ids name MQTT topic levels, Home Assistant node ids and the board's
# host name: lower-case letters, digits, '_' and '-', starting with a letter
# or digit, so two different ids never map to the same node id.
DEVICE_ID_MAX = 32


class ProtocolError(Exception):
    def __init__(self, code, message, request_id=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id


def checksum(text):
    return "%08x" % (binascii.crc32(text.encode()) & 0xFFFFFFFF)


def encode(message):
    """Frame one message (a dict) as a line: prefix, JSON, '*', CRC-32."""
    body = json.dumps(message)
    return PREFIX + body + " *" + checksum(body) + "\n"


def decode(line, limit=MAX_LINE):
    """Unframe one line (str or bytes, newline optional) into a dict.

    Raises ProtocolError for anything that is not exactly one well-formed,
    checksummed frame holding a JSON object.
    """
    if isinstance(line, (bytes, bytearray)):
        if len(line) > limit + 2:
            raise ProtocolError(E_TOO_LONG, "line longer than %d bytes" % limit)
        try:
            line = bytes(line).decode()
        except Exception:
            raise ProtocolError(E_FRAME, "line is not UTF-8")
    line = line.rstrip("\r\n")
    if len(line) > limit:
        raise ProtocolError(E_TOO_LONG, "line longer than %d bytes" % limit)
    if not line.startswith(PREFIX):
        raise ProtocolError(E_FRAME, "line does not start with %r" % PREFIX)
    star = line.rfind(" *")
    if star < 0 or len(line) - star != 10:
        raise ProtocolError(E_FRAME, "line has no ' *' and 8-digit checksum")
    body = line[len(PREFIX) : star]
    given = line[star + 2 :]
    if given != checksum(body):
        raise ProtocolError(E_CRC, "checksum mismatch")
    try:
        message = json.loads(body)
    except Exception:
        raise ProtocolError(E_JSON, "body is not JSON")
    if not isinstance(message, dict):
        raise ProtocolError(E_JSON, "body is not a JSON object")
    return message


def is_number(value):
    # bool is an int subclass in both Pythons: true/false are not numbers here.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    # Rejects NaN (not equal to itself) and both infinities.
    return value == value and -1e18 < value < 1e18


def is_device_id(value):
    if not isinstance(value, str) or not 0 < len(value) <= DEVICE_ID_MAX:
        return False
    for i, ch in enumerate(value):
        if not ("a" <= ch <= "z" or "0" <= ch <= "9" or (i > 0 and ch in "_-")):
            return False
    return True


def is_burner_id(value):
    if not isinstance(value, str) or not 0 < len(value) <= 16:
        return False
    for ch in value:
        if not ("a" <= ch <= "z" or "0" <= ch <= "9" or ch == "_"):
            return False
    return True


# -- what a device may say about itself ----------------------------------------
# The bridge checks every hello reply with these rules before it serves a
# device: the same bounds the settings check puts on a settings file.
MAX_BURNERS = 4
# hello field -> (lowest, highest), as the settings check bounds them.
HELLO_LIMITS = {"timer_max_min": (1, 1440), "warn_before_s": (0, 600), "heartbeat_s": (1, 300)}
# Device ids that name something else: <base>/bridge/... is the bridges' own.
RESERVED_DEVICE_IDS = ("bridge",)
TEXT_MAX = 200


def is_text(value, limit=TEXT_MAX):
    """A short single-line string: no control characters, at most `limit` long."""
    if not isinstance(value, str) or len(value) > limit:
        return False
    for ch in value:
        code = ord(ch)
        if code < 32 or 127 <= code < 160 or code == 0x2028 or code == 0x2029:
            return False
    return True


def hello_problem(message):
    """None when a hello reply names a device the host may serve, else what
    is wrong with it, in words (never echoing the bad value)."""
    proto = message.get("proto")
    if isinstance(proto, bool) or proto != PROTOCOL_VERSION:
        return "it does not speak protocol %d" % PROTOCOL_VERSION
    device = message.get("device")
    if not is_device_id(device):
        return "its device id is not 1-%d characters of a-z, 0-9, '_', '-' (first a letter or digit)" % DEVICE_ID_MAX
    if device in RESERVED_DEVICE_IDS:
        return "its device id %r is reserved" % device
    burners = message.get("burners")
    if not isinstance(burners, list) or not 0 < len(burners) <= MAX_BURNERS:
        return "its burner list is not a list of 1 to %d burners" % MAX_BURNERS
    for i in range(len(burners)):
        if not is_burner_id(burners[i]):
            return "burner %d's id is not 1-16 characters of a-z, 0-9, _" % (i + 1)
        if burners[i] in burners[:i]:
            return "burner %r is listed twice" % burners[i]
    for key in HELLO_LIMITS:
        low, high = HELLO_LIMITS[key]
        value = message.get(key)
        if not is_number(value) or not low <= value <= high:
            return "%s is not a number from %s to %s" % (key, low, high)
    if not is_text(message.get("fw"), 32):
        return "its firmware version is not short text"
    return None


def _is_word(value):
    if not isinstance(value, str) or not 0 < len(value) <= 172:
        return False
    for ch in value:
        if not "!" <= ch <= "~":
            return False
    return True


def parse_request(line):
    """Decode and validate one host->device line. Returns (id, cmd, args).

    Checks only what the protocol knows (types, names, finiteness); the
    device checks ranges and burner ids against its settings.
    """
    message = decode(line, MAX_REQUEST)
    request_id = message.get("id")
    if isinstance(request_id, bool) or not isinstance(request_id, int) or not 0 <= request_id <= MAX_ID:
        raise ProtocolError(E_ID, "id must be an integer 0..%d" % MAX_ID)
    cmd = message.get("cmd")
    if not isinstance(cmd, str) or cmd not in COMMANDS:
        raise ProtocolError(E_UNKNOWN, "unknown command", request_id)
    spec = COMMANDS[cmd]
    args = {}
    for key in message:
        if key in ("id", "cmd"):
            continue
        if key not in spec:
            raise ProtocolError(E_ARG, "unexpected argument %r" % key, request_id)
        value = message[key]
        kind = spec[key][0]
        if kind == "burner" and not is_burner_id(value):
            raise ProtocolError(E_ARG, "%s must be a burner id" % key, request_id)
        if kind == "minutes" and not is_number(value):
            raise ProtocolError(E_ARG, "%s must be a finite number" % key, request_id)
        if kind == "bool" and not isinstance(value, bool):
            raise ProtocolError(E_ARG, "%s must be true or false" % key, request_id)
        if kind == "text" and not (is_text(value, 32) and value):
            raise ProtocolError(E_ARG, "%s must be 1-32 characters of text" % key, request_id)
        if kind == "count" and (isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ID):
            raise ProtocolError(E_ARG, "%s must be an integer 0..%d" % (key, MAX_ID), request_id)
        if kind == "word" and not _is_word(value):
            raise ProtocolError(E_ARG, "%s must be 1-172 characters of ASCII, no space" % key, request_id)
        args[key] = value
    for key in spec:
        if spec[key][1] and key not in args:
            raise ProtocolError(E_ARG, "missing argument %r" % key, request_id)
    return request_id, cmd, args


def request(request_id, cmd, **args):
    """Build a framed host->device command line."""
    message = {"id": request_id, "cmd": cmd}
    for key in args:
        message[key] = args[key]
    return encode(message)


def reply_ok(request_id, **fields):
    message = {"t": "ok", "id": request_id}
    for key in fields:
        message[key] = fields[key]
    return message


def reply_error(code, message, request_id=None):
    return {"t": "err", "id": request_id, "code": code, "msg": message}


class LineReader:
    """Splits a byte stream into lines with a bounded buffer.

    A line longer than the limit is dropped whole (up to its newline) and
    reported once as too long, so a flood of garbage costs bounded memory.
    """

    def __init__(self, limit=MAX_REQUEST):
        self.limit = limit
        self.buffer = bytearray()
        self.overflow = False

    def feed(self, data):
        """Take bytes; return a list of complete lines (bytes) and
        None entries, one per line that overflowed the limit."""
        lines = []
        for byte in data:
            if byte == 10:  # newline
                if self.overflow:
                    lines.append(None)
                else:
                    lines.append(bytes(self.buffer))
                self.buffer = bytearray()
                self.overflow = False
            elif not self.overflow:
                if len(self.buffer) >= self.limit + 1:
                    self.overflow = True
                    self.buffer = bytearray()
                else:
                    self.buffer.append(byte)
        return lines
