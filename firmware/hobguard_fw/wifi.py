# Wi-Fi on the device: the secrets file (network name, password, device key,
# port), the board's host name, and the station interface kept up with
# back-off. `network` is passed in (the simulator passes a fake), so this
# file imports nothing of the board and validate_secrets() is shared with
# the host tools. Nothing here ever puts a secret into a message.
import json

from hobguard_fw import SECRETS_FILE

DEFAULT_PORT = 7343
# MicroPython's network.hostname() takes at most 32 bytes.
HOSTNAME_MAX = 32

# Reconnect back-off after a failed or lost connection (ms).
RETRY_FIRST_MS = 2000
RETRY_MAX_MS = 60000
# While not connected, look at the interface this often.
POLL_MS = 500

_SECRET_KEYS = ("wifi_ssid", "wifi_password", "key", "port")


def validate_secrets(candidate):
    """Return (secrets, errors). Messages name the field and the rule, never
    the value. `secrets` is usable only when errors is empty."""
    errors = []
    if not isinstance(candidate, dict):
        return None, ["secrets: a JSON object"]
    for name in candidate:
        if name not in _SECRET_KEYS:
            errors.append("unknown key %r" % name[:32] if isinstance(name, str) else "unknown key")
    ssid = candidate.get("wifi_ssid")
    if not isinstance(ssid, str) or not 1 <= len(ssid.encode()) <= 32:
        errors.append("wifi_ssid: 1 to 32 bytes of text")
    password = candidate.get("wifi_password", "")
    if not isinstance(password, str) or not (password == "" or 8 <= len(password.encode()) <= 64):
        errors.append("wifi_password: empty (open network) or 8 to 64 characters")
    key = candidate.get("key")
    if not isinstance(key, str) or len(key) != 64 or not _is_hex(key):
        errors.append("key: 64 hex digits (hobguard keygen)")
        key = ""
    port = candidate.get("port", DEFAULT_PORT)
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        errors.append("port: an integer 1..65535")
    if errors:
        return None, errors
    return {"wifi_ssid": ssid, "wifi_password": password, "key": key.lower(), "port": port}, []


def _is_hex(text):
    for ch in text:
        if not ("0" <= ch <= "9" or "a" <= ch <= "f" or "A" <= ch <= "F"):
            return False
    return True


def load_secrets(path=SECRETS_FILE):
    """(secrets or None, errors). No file: (None, []) -- a USB-only board."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return None, []
    try:
        candidate = json.loads(text)
    except Exception:
        return None, ["%s is not valid JSON" % SECRETS_FILE]
    return validate_secrets(candidate)


def hostname(device_id):
    """`hobguard-<device id>` as a host name may hold it: letters, digits
    and '-' (a '_' becomes '-'), at most HOSTNAME_MAX characters, no '-'
    at the end."""
    name = "hobguard-"
    for ch in device_id.lower():
        if "a" <= ch <= "z" or "0" <= ch <= "9":
            name += ch
        elif ch in "-_":
            name += "-"
    return name[:HOSTNAME_MAX].rstrip("-")


class Station:
    """The Wi-Fi station interface. connect() returns at once on the ESP32;
    poll() looks at the interface without waiting and asks again, with
    back-off, while it is not connected. state: 'connecting', 'up' or
    'down' (was up, lost)."""

    def __init__(self, network, time_module, ssid, password, host_name, now):
        self.network = network
        self.time = time_module
        self._ssid = ssid
        self._password = password
        self.state = "connecting"
        self.address = None
        self.retry_ms = RETRY_FIRST_MS
        self.next_try = now
        self.wlan = None
        try:
            network.hostname(host_name)  # before the interface starts: DHCP and mDNS use it
        except Exception:
            pass
        try:
            self.wlan = network.WLAN(network.STA_IF)
            self.wlan.active(True)
        except Exception:
            self.wlan = None
            self.state = "down"

    def _connect(self, now):
        self.next_try = self.time.ticks_add(now, self.retry_ms)
        self.retry_ms = min(RETRY_MAX_MS, self.retry_ms * 2)
        if self.wlan is None:
            return
        try:
            self.wlan.connect(self._ssid, self._password)
        except Exception:
            pass  # e.g. the driver is busy: try again after the back-off

    def poll(self, now):
        """Returns True when the link came up or went down on this call."""
        wlan = self.wlan
        connected = False
        if wlan is not None:
            try:
                connected = wlan.isconnected()
            except Exception:
                connected = False
        if connected:
            if self.state == "up":
                return False
            try:
                self.address = wlan.ifconfig()[0]  # pyright: ignore[reportOptionalMemberAccess]
            except Exception:
                self.address = "0.0.0.0"
            self.state = "up"
            self.retry_ms = RETRY_FIRST_MS
            return True
        changed = self.state == "up"
        if changed:
            self.state = "down"
            self.address = None
            self.next_try = now  # ask again at once, then back off
        if self.time.ticks_diff(now, self.next_try) >= 0:
            self._connect(now)
        return changed

    def next_wake_ms(self, now):
        if self.state == "up":
            return None
        return min(POLL_MS, max(0, self.time.ticks_diff(self.next_try, now)))

    def rssi(self):
        if self.state != "up" or self.wlan is None:
            return None
        try:
            value = self.wlan.status("rssi")
        except Exception:
            return None
        return value if isinstance(value, int) else None
