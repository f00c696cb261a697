"""The bridge's configuration: defaults, a TOML file, the command line.

Precedence, strongest first: command-line options, the environment
(HOBGUARD_MQTT_PASSWORD), the config file, the defaults below. Example file
with every key: docs/bridge.example.toml.

Secrets: the MQTT password may come from the broker URL, --password,
--password-file, the environment or the file's `password_file`; it is kept
out of every log line and out of `repr(config)`.
"""

from __future__ import annotations

import os
import re
import socket
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

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
    keepalive: int = 30

    @property
    def url(self) -> str:
        """The broker as a URL, password masked: safe to log."""
        scheme = "mqtts" if self.tls else "mqtt"
        user = ""
        if self.username:
            user = self.username + (":***" if self.password else "") + "@"
        return f"{scheme}://{user}{self.host}:{self.port}"


@dataclass
class BridgeConfig:
    serial_ports: list[str] = field(default_factory=list)
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


def mask_url(url: str) -> str:
    """The URL with any password replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return parts._replace(netloc=f"{user}:***@{netloc[1]}").geturl()


def parse_broker_url(url: str, mqtt: MqttSettings | None = None) -> MqttSettings:
    """mqtt://[user[:pass]@]host[:port] or mqtts://… (TLS, default port 8883)."""
    mqtt = mqtt or MqttSettings()
    if "://" not in url:
        url = "mqtt://" + url
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        raise ConfigError(f"broker URL {mask_url(url)!r}: scheme must be mqtt:// or mqtts://")
    if not parts.hostname:
        raise ConfigError(f"broker URL {mask_url(url)!r} has no host")
    mqtt.tls = parts.scheme in ("mqtts", "ssl")
    mqtt.host = parts.hostname
    try:
        port = parts.port
    except ValueError as err:
        raise ConfigError(f"broker URL {mask_url(url)!r}: {err}") from None
    mqtt.port = port or (8883 if mqtt.tls else 1883)
    if parts.username:
        mqtt.username = unquote(parts.username)
    if parts.password is not None:
        mqtt.password = unquote(parts.password)
    return mqtt


def read_password_file(path: str) -> str:
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise ConfigError(f"password file {path}: {err.strerror or err}") from None
    return text.rstrip("\r\n")


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


def load_file(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as err:
        raise ConfigError(f"config file {path}: {err.strerror or err}") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"config file {path}: {err}") from None
    for section, value in data.items():
        if section not in _FILE_KEYS:
            raise ConfigError(f"config file {path}: unknown section [{section}] (known: {', '.join(_FILE_KEYS)})")
        if not isinstance(value, dict):
            raise ConfigError(f"config file {path}: {section} must be a [section]")
        unknown = set(value) - _FILE_KEYS[section]
        if unknown:
            raise ConfigError(f"config file {path}: unknown key(s) in [{section}]: {', '.join(sorted(unknown))}")
    return data


def _typed(section: str, key: str, value: Any, kind: type | tuple[type, ...]) -> Any:
    if isinstance(value, bool) and kind is not bool:
        raise ConfigError(f"[{section}] {key} must be {getattr(kind, '__name__', kind)}")
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ConfigError(f"[{section}] {key} must be {names}, not {type(value).__name__}")
    return value


def build(
    args: Any = None, file_data: dict[str, Any] | None = None, environ: dict[str, str] | None = None
) -> BridgeConfig:
    """Merge defaults, the file (already parsed), the environment and the
    command-line namespace (attributes left None mean "not given")."""
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
    # Password: --password, --password-file, environment, file, URL.
    if arg("password") is not None:
        mqtt.password = arg("password")
    elif arg("password_file"):
        mqtt.password = read_password_file(arg("password_file"))
    elif environ.get(PASSWORD_ENV):
        mqtt.password = environ[PASSWORD_ENV]
    elif fm.get("password_file"):
        mqtt.password = read_password_file(_typed("mqtt", "password_file", fm["password_file"], str))
    elif fm.get("password") is not None:
        mqtt.password = _typed("mqtt", "password", fm["password"], str)
    if arg("tls_insecure") or fm.get("tls_insecure"):
        mqtt.tls_insecure = True
    if fm.get("keepalive") is not None:
        mqtt.keepalive = _typed("mqtt", "keepalive", fm["keepalive"], int)
    if mqtt.ca_cert or mqtt.client_cert:
        mqtt.tls = True  # the port stays as the URL says (mqtts:// defaults to 8883)
    if bool(mqtt.client_cert) != bool(mqtt.client_key):
        raise ConfigError("--client-cert and --client-key go together")
    for key in ("ca_cert", "client_cert", "client_key"):
        path = getattr(mqtt, key)
        if path and not Path(path).is_file():
            raise ConfigError(f"{key.replace('_', '-')} {path}: no such file")

    ports = list(arg("serial") or [])
    if not ports:
        ports = list(_typed("serial", "ports", fs.get("ports", []), list))
    for port in ports:
        _typed("serial", "ports[]", port, str)
    config = BridgeConfig(serial_ports=ports, mqtt=mqtt)
    if fs.get("baudrate") is not None:
        config.baudrate = _typed("serial", "baudrate", fs["baudrate"], int)
    if arg("baudrate") is not None:
        config.baudrate = arg("baudrate")

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
            if not 0 < value <= 3600:
                raise ConfigError(f"{key} must be more than 0 and at most 3600 seconds")
            setattr(config, key, value)
    if not mqtt.client_id:
        mqtt.client_id = f"hobguard-bridge-{config.bridge_id}"
    validate(config)
    return config


def validate(config: BridgeConfig) -> None:
    if not TOPIC_LEVEL.match(config.bridge_id):
        raise ConfigError(f"bridge id {config.bridge_id!r}: use letters, digits, '_' and '-' only")
    for name in ("base_topic", "discovery_prefix"):
        value = getattr(config, name)
        if not value or any(c in value for c in "+#\0") or "//" in value:
            raise ConfigError(f"{name} {value!r} is not a valid MQTT topic prefix")
    if not 1 <= config.mqtt.port <= 65535:
        raise ConfigError(f"MQTT port {config.mqtt.port} out of range")
