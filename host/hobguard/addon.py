"""The Home Assistant add-on's start: its options become a bridge
configuration, then the process becomes `hobguard bridge`.

The add-on (homeassistant/hobguard/: config.yaml, Dockerfile) runs
`python3 -m hobguard.addon`. This reads

- the add-on's options, /data/options.json, written by the Supervisor from
  what the user set in the add-on's Configuration tab (schema: config.yaml);
- the MQTT broker: the options' `broker` (with `mqtt_username` and
  `mqtt_password`) when given, else Home Assistant's MQTT service, asked of
  the Supervisor (GET http://supervisor/services/mqtt with the add-on's
  SUPERVISOR_TOKEN; the Mosquitto broker add-on provides it);

writes, in /data/hobguard (mode 0700, each file 0600),

- bridge.toml: the bridge's configuration (docs/bridge.example.toml),
- mqtt-password: the broker's password, read by the bridge as a file,
- keys/device-N.key: each network device's key (from the key text in the
  options, or copied from a key file in /share or /config),

and then replaces itself (exec) with `hobguard --log-level L bridge
--config /data/hobguard/bridge.toml`, without SUPERVISOR_TOKEN in its
environment. Passwords and keys are never logged, never on a command line.

Anything that cannot work stops the add-on with one line saying what to fix
(exit status 2), in the add-on's Log tab.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hobguard_fw import auth, protocol

from . import __version__
from .bridge.config import TOPIC_LEVEL
from .bridge.netlink import parse_url

log = logging.getLogger("hobguard.addon")

OPTIONS_FILE = "/data/options.json"
DATA_DIR = "/data/hobguard"
SUPERVISOR_URL = "http://supervisor"
TOKEN_ENV = "SUPERVISOR_TOKEN"
LOG_LEVELS = ("debug", "info", "warning", "error")
DEFAULTS: dict[str, Any] = {
    "devices": [],
    "serial_ports": [],
    "log_level": "info",
    "bridge_id": "home-assistant",
    "base_topic": "hobguard",
    "discovery": True,
    "discovery_prefix": "homeassistant",
}


class AddonError(Exception):
    """Something the user must fix in the add-on's options or in Home
    Assistant; the message says what. Never holds a secret."""


@dataclass
class Broker:
    url: str  # mqtt[s]://host:port, no credentials
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    source: str = ""


@dataclass
class Device:
    address: str
    key: bytes = field(repr=False)
    device_id: str | None = None


@dataclass
class Plan:
    """What the bridge will be started with (the broker is found once the
    options are known to be right)."""

    devices: list[Device]
    serial_ports: list[str]
    log_level: str
    bridge_id: str
    base_topic: str
    discovery: bool
    discovery_prefix: str
    broker: Broker | None = None


# -- the options ------------------------------------------------------------------


def read_options(path: str | Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AddonError(
            f"{path}: no options file (the Supervisor writes it; is this running as the add-on?)"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise AddonError(f"{path}: cannot read the options ({type(err).__name__})") from None
    if not isinstance(data, dict):
        raise AddonError(f"{path}: the options are not a JSON object")
    return {**DEFAULTS, **{k: v for k, v in data.items() if v is not None}}


def _text(what: str, value: Any, limit: int = 256) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise AddonError(f"{what} must be text of 1 to {limit} characters")
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in value):
        raise AddonError(f"{what} holds a control character")
    return value.strip()


def _key(number: int, entry: dict[str, Any]) -> bytes:
    """The device's key: the key text of the options, or the key file they
    name. Errors never echo the key."""
    text, file = entry.get("key"), entry.get("key_file")
    where = f"devices[{number}] ({entry.get('address')})"
    if text and file:
        raise AddonError(f"{where}: give the key or a key_file, not both")
    if file:
        path = Path(_text(f"{where} key_file", file, 4096))
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as err:
            raise AddonError(
                f"{where}: key_file {path}: {err.strerror or type(err).__name__} (put the file in /share or in "
                "this add-on's folder under /addon_configs, which it sees as /config)"
            ) from None
        what = f"key_file {path}"
    elif text:
        what = "key"
    else:
        raise AddonError(f"{where}: no key: paste the device's key (64 hex digits) or give a key_file")
    try:
        return auth.parse_key(text)
    except ValueError:
        raise AddonError(
            f"{where}: the {what} is not a hobguard key (64 hex digits, as `hobguard keygen` writes)"
        ) from None


def plan_from_options(options: dict[str, Any], broker: Broker | None = None) -> Plan:
    level = options.get("log_level")
    if level not in LOG_LEVELS:
        raise AddonError(f"log_level must be one of {', '.join(LOG_LEVELS)}")
    bridge_id = _text("bridge_id", options.get("bridge_id"), 64)
    if not TOPIC_LEVEL.match(bridge_id):
        raise AddonError("bridge_id: 1 to 64 letters, digits, '_' and '-'")
    entries = options.get("devices")
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise AddonError("devices must be a list of devices, each with an address and a key")
    devices = []
    seen: set[tuple[str, int]] = set()
    for number, entry in enumerate(entries, 1):
        address = _text(f"devices[{number}] address", entry.get("address"), 512)
        try:
            host, port = parse_url(address)
        except ValueError as err:
            raise AddonError(f"devices[{number}] address {address!r}: {err}") from None
        if (host.lower(), port) in seen:
            raise AddonError(f"devices[{number}] address {address!r} is listed twice")
        seen.add((host.lower(), port))
        device_id = entry.get("id") or None
        if device_id is not None and not (isinstance(device_id, str) and protocol.is_device_id(device_id)):
            raise AddonError(f"devices[{number}] id: a device id is 1-32 of a-z, 0-9, '_', '-'")
        devices.append(Device(address, _key(number, entry), device_id))
    ports = options.get("serial_ports")
    if not isinstance(ports, list):
        raise AddonError("serial_ports must be a list of serial ports")
    ports = [_text("a serial port", port, 4096) for port in ports]
    if len(set(ports)) != len(ports):
        raise AddonError("a serial port is listed twice")
    if not devices and not ports:
        raise AddonError(
            "no hob configured: add a device (its address, tcp://…, and its key) under devices, "
            "or a USB serial port under serial_ports, in the add-on's Configuration tab"
        )
    discovery = options.get("discovery")
    if not isinstance(discovery, bool):
        raise AddonError("discovery must be true or false")
    return Plan(
        broker=broker,
        devices=devices,
        serial_ports=ports,
        log_level=str(level),
        bridge_id=bridge_id,
        base_topic=_text("base_topic", options.get("base_topic"), 200),
        discovery=discovery,
        discovery_prefix=_text("discovery_prefix", options.get("discovery_prefix"), 200),
    )


# -- the broker -----------------------------------------------------------------------


def broker_from_options(options: dict[str, Any]) -> Broker | None:
    """The broker the options give, or None: then Home Assistant's."""
    url = options.get("broker")
    if not url:
        return None
    url = _text("broker", url, 512)
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("mqtt", "mqtts") or not rest or any(c in rest for c in "@/?# "):
        raise AddonError(
            "broker must look like mqtt://HOST[:PORT] or mqtts://HOST[:PORT]; "
            "the user and password go in mqtt_username and mqtt_password"
        )
    username = options.get("mqtt_username") or None
    password = options.get("mqtt_password") or None
    if password is not None and username is None:
        raise AddonError("mqtt_password is set but mqtt_username is not")
    if username is not None:
        username = _text("mqtt_username", username)
    if password is not None and not isinstance(password, str):
        raise AddonError("mqtt_password must be text")
    return Broker(url, username, password, source="the add-on's options")


def broker_from_supervisor(base_url: str, token: str | None, timeout_s: float = 10.0) -> Broker:
    """Home Assistant's MQTT service, as the Supervisor describes it:
    {"result": "ok", "data": {"host", "port", "ssl", "username", "password", ...}}."""
    if not token:
        raise AddonError(
            f"no broker in the options and no {TOKEN_ENV} to ask Home Assistant for its MQTT broker "
            "(is this running as the add-on?)"
        )
    request = urllib.request.Request(
        base_url.rstrip("/") + "/services/mqtt", headers={"Authorization": f"Bearer {token}"}
    )
    no_service = (
        "Home Assistant has no MQTT broker to give: install and start the Mosquitto broker add-on "
        "(Settings > Add-ons > Add-on store), or set broker, mqtt_username and mqtt_password in this "
        "add-on's Configuration tab"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            body = json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as err:
        if err.code == 403:
            raise AddonError("the Supervisor refuses this add-on the MQTT service (config.yaml: services)") from None
        if err.code in (400, 404):
            raise AddonError(no_service) from None
        raise AddonError(f"the Supervisor answered {err.code} when asked for the MQTT broker") from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise AddonError(f"cannot ask the Supervisor ({base_url}) for the MQTT broker: {reason}") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise AddonError("the Supervisor's answer about the MQTT broker is not JSON") from None
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict) or body.get("result") != "ok":
        raise AddonError(no_service)
    host, port = data.get("host"), data.get("port")
    if not isinstance(host, str) or not host or isinstance(port, bool) or not isinstance(port, int):
        raise AddonError("the Supervisor's MQTT service has no usable host and port")
    scheme = "mqtts" if data.get("ssl") is True else "mqtt"
    shown_host = f"[{host}]" if ":" in host else host
    username = data.get("username") or None
    password = data.get("password") or None
    return Broker(
        f"{scheme}://{shown_host}:{port}",
        str(username) if username is not None else None,
        str(password) if password is not None else None,
        source="Home Assistant's MQTT service",
    )


# -- the files ------------------------------------------------------------------------


def _toml_string(value: str) -> str:
    # JSON's string escapes are a subset of TOML's basic-string escapes.
    return json.dumps(value, ensure_ascii=False)


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path`, only ever readable by its owner (0600), in
    place only once complete."""
    temporary = path.with_name(path.name + ".new")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(descriptor, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as f:
            f.write(text)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    os.replace(temporary, path)


def write_files(plan: Plan, data_dir: str | Path) -> Path:
    """The bridge's configuration and secret files; returns the config's path."""
    assert plan.broker is not None, "the broker is found before the files are written"
    root = Path(data_dir)
    keys = root / "keys"
    for folder in (root, keys):
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder.chmod(0o700)
    for old in keys.glob("*.key"):  # devices removed from the options leave no key behind
        old.unlink()
    lines = ["# Written by the hobguard add-on at each start, from its options: edits here are lost.", ""]
    lines += ["[mqtt]", f"broker = {_toml_string(plan.broker.url)}"]
    if plan.broker.username is not None:
        lines.append(f"username = {_toml_string(plan.broker.username)}")
    if plan.broker.password is not None:
        password_file = root / "mqtt-password"
        _write_private(password_file, plan.broker.password + "\n")
        lines.append(f"password_file = {_toml_string(str(password_file))}")
    else:
        (root / "mqtt-password").unlink(missing_ok=True)
    lines += [
        "",
        "[bridge]",
        f"id = {_toml_string(plan.bridge_id)}",
        f"base_topic = {_toml_string(plan.base_topic)}",
        f"discovery_prefix = {_toml_string(plan.discovery_prefix)}",
        f"discovery = {'true' if plan.discovery else 'false'}",
        f"state_file = {_toml_string(str(root / 'bridge-state.json'))}",
    ]
    if plan.serial_ports:
        lines += ["", "[serial]", "ports = [" + ", ".join(_toml_string(p) for p in plan.serial_ports) + "]"]
    for number, device in enumerate(plan.devices, 1):
        key_file = keys / f"device-{number}.key"
        _write_private(key_file, device.key.hex() + "\n")
        lines += ["", "[[device]]", f"address = {_toml_string(device.address)}"]
        lines.append(f"key_file = {_toml_string(str(key_file))}")
        if device.device_id:
            lines.append(f"id = {_toml_string(device.device_id)}")
    config = root / "bridge.toml"
    _write_private(config, "\n".join(lines) + "\n")
    return config


def bridge_argv(plan: Plan, config: Path) -> list[str]:
    return [sys.executable, "-m", "hobguard", "--log-level", plan.log_level, "bridge", "--config", str(config)]


def describe(plan: Plan) -> list[str]:
    """What the add-on starts, in words: safe to log (no password, no key)."""
    lines = []
    if plan.broker is not None:
        user = f", user {plan.broker.username}" if plan.broker.username else ""
        lines.append(f"broker: {plan.broker.url}{user} (from {plan.broker.source})")
    for device in plan.devices:
        lines.append(
            f"device on the network: {device.address}" + (f" (id {device.device_id})" if device.device_id else "")
        )
    for port in plan.serial_ports:
        lines.append(f"device on a serial port: {port}")
    discovery = f"discovery under {plan.discovery_prefix}/" if plan.discovery else "no discovery"
    lines.append(f"bridge id {plan.bridge_id}, base topic {plan.base_topic}/, {discovery}")
    return lines


# -- the program ----------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hobguard.addon",
        description="The Home Assistant add-on's start: its options become a bridge configuration, "
        "then this process becomes `hobguard bridge`.",
    )
    parser.add_argument("--options", default=OPTIONS_FILE, help=f"the add-on's options (default {OPTIONS_FILE})")
    parser.add_argument("--data-dir", default=DATA_DIR, help=f"where the generated files go (default {DATA_DIR})")
    parser.add_argument("--supervisor", default=SUPERVISOR_URL, help=f"the Supervisor's API (default {SUPERVISOR_URL})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    log.info("hobguard add-on %s starting", __version__)
    try:
        options = read_options(args.options)
        plan = plan_from_options(options)
        plan.broker = broker_from_options(options) or broker_from_supervisor(args.supervisor, os.environ.get(TOKEN_ENV))
        config = write_files(plan, args.data_dir)
    except AddonError as err:
        log.error("%s", err)
        return 2
    except OSError as err:
        log.error("cannot write the bridge's files in %s: %s", args.data_dir, err.strerror or err)
        return 2
    for line in describe(plan):
        log.info("%s", line)
    argv_bridge = bridge_argv(plan, config)
    environment = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(argv_bridge[0], argv_bridge, environment)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
