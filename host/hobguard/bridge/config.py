"""The bridge's configuration: defaults, a TOML file, the command line.

Precedence, strongest first: command-line options, the environment
(HOBGUARD_MQTT_PASSWORD), the config file, the defaults below. Example file
with every key: docs/bridge.example.toml.

Secrets: the MQTT password may come from the broker URL, --password,
--password-file, the environment or the file's `password_file`; it is kept
out of every log line and out of `repr(config)`. A network device's key is
read from its key file (`--key-file`, or `key_file` in a `[[device]]`
table) when the configuration is built; no message ever shows it.

Network devices: `--device tcp://HOST[:PORT]` (repeat) with `--key-file
FILE` (repeat, as many, in the same order: the first key file is the first
device's), or `[[device]]` tables in the file, each with `address`,
`key_file` and optionally `id` (the device id expected at that address).
Devices given on the command line replace the file's, as `--serial`
replaces `[serial] ports`.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import socket
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

log = logging.getLogger("hobguard.bridge")

PASSWORD_ENV = "HOBGUARD_MQTT_PASSWORD"
TOPIC_LEVEL = re.compile(r"^[A-Za-z0-9_-]+$")


class ConfigError(ValueError):
    """A configuration that cannot work; the message says what to fix."""


@dataclass
class MqttSettings:
    host: str = "localhost"
    port: int = 1883
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_cert: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    tls_insecure: bool = False  # test setups only: skips the host-name check
    client_id: str | None = None
    client_id_given: bool = False  # set by the user (else one per process)
    keepalive: int = 30
    # "5" (default), or "3.1.1" for a broker without MQTT 5: then a retained
    # command published while the bridge is connected cannot be told from a
    # live one (see mqtt.py).
    protocol: str = "5"

    @property
    def url(self) -> str:
        """The broker as a URL, password masked: safe to log."""
        scheme = "mqtts" if self.tls else "mqtt"
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = ""
        if self.username:
            user = self.username + (":***" if self.password else "") + "@"
        return f"{scheme}://{user}{host}:{self.port}"


@dataclass
class NetDevice:
    """A device on the network: where it listens, its key (from key_file),
    and the device id the user expects there (None: whatever it says)."""

    address: str
    key_file: str
    key: bytes = field(repr=False)
    id: str | None = None


@dataclass
class BridgeConfig:
    serial_ports: list[str] = field(default_factory=list)
    devices: list[NetDevice] = field(default_factory=list)
    baudrate: int = 115200
    mqtt: MqttSettings = field(default_factory=MqttSettings)
    bridge_id: str = ""
    base_topic: str = "hobguard"
    discovery_prefix: str = "homeassistant"
    discovery: bool = True
    # Remembers which discovery topics were published per device, so that
    # entities of a burner that disappeared are cleared (empty retained).
    state_file: str | None = None
    request_timeout_s: float = 5.0
    # Silence after which a device is offline; None: 3 x its heartbeat_s.
    offline_after_s: float | None = None
    reconnect_max_s: float = 10.0

    def __post_init__(self) -> None:
        if not self.bridge_id:
            self.bridge_id = default_bridge_id()


def default_bridge_id() -> str:
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", socket.gethostname()).strip("-")
    return name or "bridge"


def default_state_file(bridge_id: str) -> str:
    base = os.environ.get("STATE_DIRECTORY") or os.environ.get("XDG_STATE_HOME")
    if not base:
        base = str(Path.home() / ".local" / "state")
    return str(Path(base) / "hobguard" / f"bridge-{bridge_id}.json")


def _split_url(url: str) -> tuple[str, str | None, str]:
    """(scheme, userinfo or None, host part) of a broker URL, split by hand:
    a password may hold '/', '#', '?' or '@' unencoded, which urlsplit would
    take for a path, a fragment, a query or the host. The user information
    ends at the LAST '@'; the host part may not hold '/', '?' or '#'."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "mqtt", url
    userinfo: str | None = None
    if "@" in rest:
        userinfo, _, rest = rest.rpartition("@")
    return scheme.lower(), userinfo, rest


def mask_url(url: str) -> str:
    """The URL with any password replaced by ***: safe to print and log."""
    scheme, sep, _ = url.partition("://")
    _, userinfo, hostpart = _split_url(url)
    if userinfo is None:
        return url
    user = userinfo.split(":", 1)[0]
    shown = user + (":***" if ":" in userinfo else "")
    return f"{scheme}://{shown}@{hostpart}" if sep else f"{shown}@{hostpart}"


def parse_broker_url(url: str, mqtt: MqttSettings | None = None) -> MqttSettings:
    """mqtt://[user[:password]@]host[:port] or mqtts://… (TLS, default port
    8883). User and password may be percent-encoded (%2F for '/', %40 for
    '@', %23 for '#', %3F for '?', %25 for '%'); a password that holds
    '/', '#', '?' or '@' unencoded parses too. Error messages never show the
    password."""
    mqtt = mqtt or MqttSettings()
    shown = mask_url(url)
    if any(ord(c) < 32 or ord(c) == 127 for c in url):
        raise ConfigError(f"broker URL {shown!r}: holds a control character")
    scheme, userinfo, hostpart = _split_url(url.strip())
    if scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        raise ConfigError(f"broker URL {shown!r}: the scheme must be mqtt:// or mqtts://")
    if hostpart.endswith("/"):
        hostpart = hostpart[:-1]
    if any(c in hostpart for c in "/?#"):
        raise ConfigError(
            f"broker URL {shown!r}: only mqtt[s]://[user[:password]@]host[:port] is understood (no path, query or "
            "fragment); percent-encode special characters of the password (%2F for /, %23 for #, %3F for ?)"
        )
    if hostpart.startswith("["):  # [IPv6]:port
        host, bracket, port_text = hostpart[1:].partition("]")
        if not bracket or (port_text and not port_text.startswith(":")):
            raise ConfigError(f"broker URL {shown!r}: an IPv6 address goes in brackets: [::1]:1883")
        port_text = port_text[1:]
    else:
        host, _, port_text = hostpart.partition(":")
    if not host or any(c.isspace() for c in host):
        raise ConfigError(f"broker URL {shown!r} has no host")
    mqtt.tls = scheme in ("mqtts", "ssl")
    mqtt.host = host
    if port_text:
        if not port_text.isdecimal() or not port_text.isascii() or not 1 <= int(port_text) <= 65535:
            # Not the URL itself: without an '@', a password may sit where the port goes.
            raise ConfigError(
                "broker URL: the port (after the host's ':') must be a number from 1 to 65535; write a user and "
                "password as mqtt://user:password@host"
            )
        mqtt.port = int(port_text)
    else:
        mqtt.port = 8883 if mqtt.tls else 1883
    if userinfo is not None:
        user, colon, password = userinfo.partition(":")
        try:
            if user:
                mqtt.username = unquote(user, errors="strict")
            if colon:
                mqtt.password = unquote(password, errors="strict")
        except UnicodeDecodeError:
            raise ConfigError(f"broker URL {shown!r}: a %-escape in the user or password is not UTF-8") from None
    return mqtt


def read_password_file(path: str) -> str:
    """The first line of the file (its line end removed): the password."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except IsADirectoryError:
        raise ConfigError(f"password file {path}: is a directory") from None
    except OSError as err:
        raise ConfigError(f"password file {path}: {err.strerror or type(err).__name__}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"password file {path}: not UTF-8 text") from None
    lines = text.splitlines()
    if not lines or not lines[0]:
        raise ConfigError(f"password file {path}: the first line is empty (it should hold the password)")
    return lines[0]


_FILE_KEYS = {
    "mqtt": {
        "broker",
        "username",
        "password",
        "password_file",
        "ca_cert",
        "client_cert",
        "client_key",
        "tls_insecure",
        "client_id",
        "keepalive",
        "protocol",
    },
    "bridge": {
        "id",
        "base_topic",
        "discovery_prefix",
        "discovery",
        "state_file",
        "request_timeout_s",
        "offline_after_s",
        "reconnect_max_s",
    },
    "serial": {"ports", "baudrate"},
}
# [[device]] tables: one per device on the network.
_DEVICE_KEYS = {"address", "key_file", "id"}


def load_file(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as err:
        raise ConfigError(f"config file {path}: {err.strerror or err}") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"config file {path}: {err}") from None
    for section, value in data.items():
        if section == "device":
            if not isinstance(value, list) or not all(isinstance(table, dict) for table in value):
                raise ConfigError(f"config file {path}: devices on the network go in [[device]] tables")
            for number, table in enumerate(value, 1):
                unknown = set(table) - _DEVICE_KEYS
                if unknown:
                    raise ConfigError(
                        f"config file {path}: unknown key(s) in [[device]] number {number}: "
                        f"{', '.join(sorted(unknown))} (known: address, key_file, id)"
                    )
            continue
        if section not in _FILE_KEYS:
            known = ", ".join([*_FILE_KEYS, "[device]"])
            raise ConfigError(f"config file {path}: unknown section [{section}] (known: {known})")
        if not isinstance(value, dict):
            raise ConfigError(f"config file {path}: {section} must be a [section]")
        unknown = set(value) - _FILE_KEYS[section]
        if unknown:
            raise ConfigError(f"config file {path}: unknown key(s) in [{section}]: {', '.join(sorted(unknown))}")
    return data


def _typed(section: str, key: str, value: Any, kind: type | tuple[type, ...]) -> Any:
    names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
    names = {"int": "a whole number", "float": "a number", "int or float": "a number", "str": "text",
             "bool": "true or false", "list": "a list"}.get(names, names)  # fmt: skip
    if isinstance(value, bool) and kind is not bool:
        raise ConfigError(f"[{section}] {key} must be {names}, not true/false")
    if not isinstance(value, kind):
        raise ConfigError(f"[{section}] {key} must be {names}")
    return value


def _text(what: str, value: str, limit: int = 256) -> str:
    if not value or len(value) > limit or any(ord(c) < 32 or 127 <= ord(c) < 160 for c in value):
        raise ConfigError(f"{what} must be 1 to {limit} characters, without control characters")
    return value


def _in_range(what: str, value: float, low: float, high: float, unit: str = "") -> float:
    if not (low <= value <= high):  # also false for NaN
        raise ConfigError(f"{what} must be from {low:g} to {high:g}{unit}")
    return value


def check_tls_files(mqtt: MqttSettings) -> None:
    """Load the TLS files as the bridge will, so a file that is not PEM, a
    key that does not match its certificate or one locked by a passphrase is
    a clear configuration error now rather than a traceback later."""
    import ssl

    for key in ("ca_cert", "client_cert", "client_key"):
        path = getattr(mqtt, key)
        option = "--" + key.replace("_", "-")
        if not path:
            continue
        file = Path(path)
        if not file.exists():
            raise ConfigError(f"{option} {path}: no such file")
        if not file.is_file():
            raise ConfigError(f"{option} {path}: not a file")
        try:
            with open(file, "rb"):
                pass
        except OSError as err:
            raise ConfigError(f"{option} {path}: {err.strerror or type(err).__name__}") from None
    try:
        context = ssl.create_default_context(cafile=mqtt.ca_cert)
    except (ssl.SSLError, ValueError, OSError) as err:
        raise ConfigError(f"--ca-cert {mqtt.ca_cert}: not a PEM certificate file ({_ssl_reason(err)})") from None
    if mqtt.client_cert:
        asked: list[bool] = []

        def no_passphrase() -> str:
            asked.append(True)
            raise ValueError("locked")

        try:
            context.load_cert_chain(mqtt.client_cert, mqtt.client_key, password=no_passphrase)
        except (ssl.SSLError, ValueError, OSError) as err:
            if asked:
                raise ConfigError(
                    f"--client-key {mqtt.client_key}: the key is locked with a passphrase; the bridge runs "
                    "unattended and needs it unlocked (keep the file readable by the bridge's user only)"
                ) from None
            raise ConfigError(
                f"--client-cert {mqtt.client_cert} / --client-key {mqtt.client_key}: not a PEM certificate and its "
                f"matching private key ({_ssl_reason(err)})"
            ) from None


def _ssl_reason(err: BaseException) -> str:
    return str(getattr(err, "reason", None) or getattr(err, "strerror", None) or err)[:120]


def build(
    args: Any = None, file_data: dict[str, Any] | None = None, environ: dict[str, str] | None = None
) -> BridgeConfig:
    """Merge defaults, the file (already parsed), the environment and the
    command-line namespace (attributes left None mean "not given").
    Raises ConfigError, saying what to fix, for anything that cannot work;
    no message ever holds the password."""
    environ = dict(os.environ) if environ is None else environ
    data = file_data or {}
    fm = data.get("mqtt", {})
    fb = data.get("bridge", {})
    fs = data.get("serial", {})

    def arg(name: str) -> Any:
        return getattr(args, name, None) if args is not None else None

    mqtt = MqttSettings()
    broker = arg("broker") or fm.get("broker")
    if broker:
        parse_broker_url(_typed("mqtt", "broker", broker, str), mqtt)
    for key in ("username", "ca_cert", "client_cert", "client_key", "client_id"):
        value = arg(key) if arg(key) is not None else fm.get(key)
        if value is not None:
            setattr(mqtt, key, _typed("mqtt", key, value, str))
    if mqtt.username is not None:
        _text("the MQTT user name", mqtt.username)
    # Password: --password, --password-file, environment, file, URL.
    if arg("password") is not None:
        mqtt.password = arg("password")
    elif arg("password_file"):
        mqtt.password = read_password_file(arg("password_file"))
    elif environ.get(PASSWORD_ENV):
        # Set for the whole environment: without a user name it is not meant for this broker.
        mqtt.password = environ[PASSWORD_ENV] if mqtt.username else mqtt.password
    elif fm.get("password_file"):
        mqtt.password = read_password_file(_typed("mqtt", "password_file", fm["password_file"], str))
    elif fm.get("password") is not None:
        mqtt.password = _typed("mqtt", "password", fm["password"], str)
    if mqtt.password is not None and not mqtt.username:
        raise ConfigError("a password is given but no user name: give --username (or user@ in the broker URL)")
    if fm.get("tls_insecure") is not None:
        mqtt.tls_insecure = _typed("mqtt", "tls_insecure", fm["tls_insecure"], bool)
    if arg("tls_insecure"):
        mqtt.tls_insecure = True
    if fm.get("keepalive") is not None:
        keepalive = _typed("mqtt", "keepalive", fm["keepalive"], int)
        mqtt.keepalive = int(_in_range("[mqtt] keepalive", keepalive, 5, 65535, " seconds"))
    protocol = arg("mqtt_protocol") or fm.get("protocol")
    if protocol is not None:
        protocol = _typed("mqtt", "protocol", protocol, str)
        if protocol not in ("5", "3.1.1"):
            raise ConfigError('[mqtt] protocol must be "5" or "3.1.1"')
        mqtt.protocol = protocol
    if mqtt.ca_cert or mqtt.client_cert:
        mqtt.tls = True  # the port stays as the URL says (mqtts:// defaults to 8883)
    if bool(mqtt.client_cert) != bool(mqtt.client_key):
        raise ConfigError("--client-cert and --client-key go together")
    if mqtt.tls:
        check_tls_files(mqtt)
    elif mqtt.tls_insecure:
        raise ConfigError("--tls-insecure without TLS: use an mqtts:// broker URL or --ca-cert")

    ports = list(arg("serial") or [])
    if not ports:
        ports = list(_typed("serial", "ports", fs.get("ports", []), list))
    for port in ports:
        _text("a serial port", _typed("serial", "ports[]", port, str), 4096)
    if len(set(ports)) != len(ports):
        raise ConfigError("a serial port is listed twice")
    config = BridgeConfig(serial_ports=ports, devices=_net_devices(arg, data.get("device")), mqtt=mqtt)
    if fs.get("baudrate") is not None:
        config.baudrate = _typed("serial", "baudrate", fs["baudrate"], int)
    if arg("baudrate") is not None:
        config.baudrate = arg("baudrate")
    _in_range("the baud rate", config.baudrate, 300, 4_000_000)

    bridge_id = arg("bridge_id") or fb.get("id")
    if bridge_id:
        config.bridge_id = _typed("bridge", "id", bridge_id, str)
    for key, name in (("base_topic", "base_topic"), ("discovery_prefix", "discovery_prefix")):
        value = arg(name) or fb.get(key)
        if value:
            setattr(config, key, _typed("bridge", key, value, str).strip("/"))
    if fb.get("discovery") is not None:
        config.discovery = _typed("bridge", "discovery", fb["discovery"], bool)
    if arg("no_discovery"):
        config.discovery = False
    state_file = arg("state_file") or fb.get("state_file")
    config.state_file = _typed("bridge", "state_file", state_file, str) if state_file else None
    for key in ("request_timeout_s", "offline_after_s", "reconnect_max_s"):
        value = arg(key) if arg(key) is not None else fb.get(key)
        if value is not None:
            value = float(_typed("bridge", key, value, (int, float)))
            setattr(config, key, _in_range(key, value, 0.1, 3600, " seconds"))
    if mqtt.client_id:
        _text("[mqtt] client_id", mqtt.client_id, 128)
        mqtt.client_id_given = True
    else:
        # One per process: two bridges (or two runs) never take over each
        # other's MQTT session, which the broker would end with "Session
        # taken over" on both sides, again and again.
        mqtt.client_id = f"hobguard-bridge-{config.bridge_id}-{secrets.token_hex(3)}"
    validate(config)
    return config


def _net_devices(arg: Any, tables: Any) -> list[NetDevice]:
    """The devices on the network: --device/--key-file pairs, or else the
    file's [[device]] tables. Each key is read now, so a missing, unreadable
    or malformed key file is a configuration error at start."""
    addresses = list(arg("device") or [])
    key_files = list(arg("key_file") or [])
    entries: list[tuple[str, Any, Any, Any]] = []  # (where, address, key file, id)
    if addresses or key_files:
        if len(addresses) != len(key_files):
            raise ConfigError(
                f"{len(addresses)} --device and {len(key_files)} --key-file: give one --key-file per --device, "
                "in the same order (the first key file is the first device's)"
            )
        entries = [(f"--device {a}", a, k, None) for a, k in zip(addresses, key_files, strict=True)]
    elif tables:
        entries = [
            (f"[[device]] number {n}", t.get("address"), t.get("key_file"), t.get("id"))
            for n, t in enumerate(tables, 1)
        ]
    from hobguard_fw import protocol

    from .netlink import KeyFileError, key_file_is_private, load_key, parse_url

    devices: list[NetDevice] = []
    seen: dict[tuple[str, int], str] = {}
    for where, address, key_file, device_id in entries:
        if address is None:
            raise ConfigError(f'{where}: no address (address = "tcp://HOST[:PORT]")')
        address = _text(f"{where}: the address", _typed("device", "address", address, str), 512).strip()
        try:
            host, port = parse_url(address)
        except ValueError as err:
            raise ConfigError(f"{where}: {err}") from None
        if (host.lower(), port) in seen:
            raise ConfigError(f"{where}: {address} is listed twice (also as {seen[(host.lower(), port)]})")
        seen[(host.lower(), port)] = address
        if key_file is None:
            raise ConfigError(f"{where}: no key_file (the device's key, written by `hobguard keygen`)")
        key_file = _text(f"{where}: the key file", _typed("device", "key_file", key_file, str), 4096)
        try:
            key = load_key(key_file)
        except KeyFileError as err:
            raise ConfigError(f"{where}: {err}") from None
        try:
            if not key_file_is_private(key_file):
                log.warning(
                    "key file %s can be read by other users: chmod 600 %s (anyone who reads it can command the hob)",
                    key_file,
                    key_file,
                )
        except OSError:
            pass
        if device_id is not None:
            device_id = _typed("device", "id", device_id, str)
            if not protocol.is_device_id(device_id) or device_id in protocol.RESERVED_DEVICE_IDS:
                raise ConfigError(f"{where}: id {device_id!r} is not a device id (1-32 of a-z, 0-9, '_', '-')")
        devices.append(NetDevice(address, key_file, key, device_id))
    return devices


def validate(config: BridgeConfig) -> None:
    if not TOPIC_LEVEL.match(config.bridge_id) or len(config.bridge_id) > 64:
        raise ConfigError(f"bridge id {config.bridge_id!r}: 1 to 64 letters, digits, '_' and '-'")
    for name in ("base_topic", "discovery_prefix"):
        value = getattr(config, name)
        levels = value.split("/")
        if (
            not value
            or len(value) > 200
            or value.startswith("$")
            or any(c in value for c in "+#")
            or any(ord(c) < 32 or 127 <= ord(c) < 160 for c in value)
            or "" in levels
        ):
            raise ConfigError(
                f"{name} {value!r} is not a valid MQTT topic prefix: levels of printable characters separated by "
                "'/', without '+', '#' or a leading '$'"
            )
    if not 1 <= config.mqtt.port <= 65535:
        raise ConfigError(f"MQTT port {config.mqtt.port} out of range")
