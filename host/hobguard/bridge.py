"""`hobguard bridge`: devices on serial ports ↔ an MQTT broker and Home Assistant.

One process serves several devices. Each device's id comes from its hello
reply; its topics live under `<base>/<device>/…` (contract:
/DESIGN.md, "MQTT"). MQTT commands are checked here first — a retained
message, a payload that is not exactly what the topic takes, an unknown
burner: a `rejected` event, nothing sent — then become device commands
with request ids; the device's answer, or a timeout, is logged in one line
and a refusal is published as a `rejected` event with the device's code
and message.

Threads: paho's network thread runs the MQTT callbacks, each DeviceLink
runs its own reader thread; the shared maps are guarded by one lock and
every callback is wrapped so an exception is logged and never kills the
service.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import re
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from . import config as config_mod
from . import discovery
from .device_link import DeviceLink, Reply

log = logging.getLogger("hobguard.bridge")

# Longest command payload taken; every valid payload is far shorter.
MAX_PAYLOAD = 64
# A host-computed timer deadline moves only when it drifts more than this,
# so Home Assistant's end-time sensor does not flicker with every state frame.
DEADLINE_JITTER_S = 2.0

# -- commands, as data ---------------------------------------------------------
#
# topic suffix → (payload kind, device command). Device-level topics are
# `<base>/<device>/<suffix>`, burner-level ones `<base>/<device>/<burner>/<suffix>`.
# Payload kinds:  close: exactly "CLOSE";  on_off: exactly "ON" or "OFF";
# minutes: a plain number, 0 < m <= timer_max_min;  minutes_or_zero: the
# same or 0 (cancels);  any: any short UTF-8 payload.
DEVICE_COMMANDS: dict[str, tuple[str, str]] = {
    "gas/set": ("close", "cut"),
    "lock/set": ("on_off", "lock"),
    "fault/clear": ("any", "clear_fault"),  # extension: clears every burner's cut fault
}
BURNER_COMMANDS: dict[str, tuple[str, str]] = {
    "gas/set": ("close", "cut"),
    "timer/set": ("minutes_or_zero", "timer_set"),
    "timer/extend": ("minutes", "timer_extend"),
    "timer/cancel": ("any", "timer_cancel"),
    "fault/clear": ("any", "clear_fault"),  # extension: acknowledge a cut_failed fault
}

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$", re.ASCII)
_NOT_FINITE = {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}


@dataclass
class Command:
    device_cmd: str
    args: dict[str, Any]
    burner: str | None


@dataclass
class Rejection:
    reason: str  # short, machine-readable
    detail: str  # one sentence for people
    burner: str | None = None


def command_subscriptions(root: str) -> list[str]:
    return [f"{root}/{suffix}" for suffix in DEVICE_COMMANDS] + [f"{root}/+/{suffix}" for suffix in BURNER_COMMANDS]


def parse_payload(kind: str, payload: bytes, timer_max_min: float) -> Any:
    """The value of a payload of `kind`, or a Rejection saying what is wrong."""
    if len(payload) > MAX_PAYLOAD:
        return Rejection("too_long", f"payload is {len(payload)} bytes; at most {MAX_PAYLOAD} are taken")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return Rejection("not_utf8", "payload is not UTF-8 text")
    if kind == "any":
        return text
    if not text:
        return Rejection("empty", "payload is empty")
    if text != text.strip():
        return Rejection("whitespace", "payload has leading or trailing white space")
    if kind == "close":
        if text == "CLOSE":
            return True
        if text.upper() == "OPEN":
            return Rejection("open_refused", "hobguard never opens gas: only a person at the knob can")
        return Rejection("bad_payload", "expected CLOSE")
    if kind == "on_off":
        if text in ("ON", "OFF"):
            return text == "ON"
        return Rejection("bad_payload", "expected ON or OFF")
    if kind in ("minutes", "minutes_or_zero"):
        if text.lower() in _NOT_FINITE:
            return Rejection("not_finite", "minutes must be a finite number")
        if text[0] in '{["' or text in ("true", "false", "null"):
            return Rejection("not_a_number", "expected a plain number of minutes, not JSON")
        if not _NUMBER.match(text):
            return Rejection("not_a_number", "expected a plain number of minutes")
        value = float(text)
        if not math.isfinite(value):
            return Rejection("not_finite", "minutes must be a finite number")
        low_ok = value >= 0 if kind == "minutes_or_zero" else value > 0
        if not low_ok or value > timer_max_min:
            low = "0" if kind == "minutes_or_zero" else "more than 0"
            return Rejection("out_of_range", f"minutes must be {low} and at most {timer_max_min:g}")
        return int(value) if value == int(value) else value
    raise ValueError(f"unknown payload kind {kind!r}")


def parse_command(
    rest: list[str], payload: bytes, retain: bool, burners: list[str], timer_max_min: float
) -> Command | Rejection:
    """Check one MQTT command: `rest` is the topic after `<base>/<device>/`."""
    burner = rest[0] if len(rest) == 3 else None
    if retain:
        return Rejection("retained", "retained command ignored: commands must be live, not replayed", burner)
    if len(rest) == 2:
        spec = DEVICE_COMMANDS.get("/".join(rest))
    elif len(rest) == 3:
        spec = BURNER_COMMANDS.get("/".join(rest[1:]))
        if spec is not None and burner not in burners:
            return Rejection("unknown_burner", f"no burner {burner!r} on this hob (have {', '.join(burners)})", None)
    else:
        spec = None
    if spec is None:
        return Rejection("unknown_command", f"no command topic {'/'.join(rest)!r}", burner)
    kind, device_cmd = spec
    value = parse_payload(kind, payload, timer_max_min)
    if isinstance(value, Rejection):
        value.burner = burner
        return value
    args: dict[str, Any] = {}
    if burner is not None:
        args["burner"] = burner
    if device_cmd in ("timer_set", "timer_extend"):
        args["minutes"] = value
    elif device_cmd == "lock":
        args["on"] = value
    return Command(device_cmd, args, burner)


# -- state mapping (pure) --------------------------------------------------------

DEVICE_STATE_KEYS = ("locked", "fault", "uptime_s", "reset_cause", "events_dropped")
BURNER_STATE_KEYS = (
    "gas",
    "relay",
    "flame",
    "tc_mv",
    "timer_remaining_s",
    "left_on_cut_in_s",
    "last_cut_reason",
    "cutting",
    "fault",
)


def device_state(frame: dict[str, Any], hello: dict[str, Any], port: str) -> dict[str, Any]:
    state = {key: frame.get(key) for key in DEVICE_STATE_KEYS}
    state["fw"] = hello.get("fw")
    state["burners"] = list(hello.get("burners") or [])
    state["port"] = port
    return state


def burner_states(
    frame: dict[str, Any], now: datetime, previous: dict[str, str | None] | None = None
) -> dict[str, dict[str, Any]]:
    """Per burner: the contract's burner state, with `timer_deadline`
    computed on the host (ISO 8601 with offset) from timer_remaining_s."""
    previous = previous or {}
    out = {}
    for burner in frame.get("burners") or []:
        if not isinstance(burner, dict) or not isinstance(burner.get("id"), str):
            continue
        state = {key: burner.get(key) for key in BURNER_STATE_KEYS}
        remaining = burner.get("timer_remaining_s")
        deadline = None
        if isinstance(remaining, (int, float)) and not isinstance(remaining, bool) and math.isfinite(remaining):
            when = (now + timedelta(seconds=remaining)).replace(microsecond=0)
            deadline = when.isoformat()
            before = previous.get(burner["id"])
            if before:
                try:
                    if abs((datetime.fromisoformat(before) - when).total_seconds()) < DEADLINE_JITTER_S:
                        deadline = before
                except ValueError:
                    pass
        state["timer_deadline"] = deadline
        out[burner["id"]] = state
    return out


def event_payload(frame: dict[str, Any], device_id: str, now: datetime) -> dict[str, Any]:
    event = {k: v for k, v in frame.items() if k not in ("t", "_t_ms")}
    event.setdefault("burner", None)
    event.setdefault("reason", None)
    event["device"] = device_id
    event["time"] = now.replace(microsecond=0).isoformat()
    return event


def _now() -> datetime:
    return datetime.now().astimezone()


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


# -- the bridge ----------------------------------------------------------------------


@dataclass
class DeviceView:
    """What the bridge knows about one device."""

    id: str
    link: DeviceLink
    topics: discovery.Topics
    hello: dict[str, Any]
    online: bool = False
    retained: dict[str, str] = field(default_factory=dict)  # topic → last payload
    deadlines: dict[str, str | None] = field(default_factory=dict)
    discovery: dict[str, str] = field(default_factory=dict)  # config topic → payload

    @property
    def burners(self) -> list[str]:
        return list(self.hello.get("burners") or [])

    @property
    def timer_max_min(self) -> float:
        value = self.hello.get("timer_max_min")
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 720.0


class Bridge:
    def __init__(self, config: config_mod.BridgeConfig) -> None:
        from .mqtt import MqttConnection

        self.config = config
        self.base = config.base_topic
        self.bridge_topic = discovery.bridge_availability_topic(self.base, config.bridge_id)
        self._lock = threading.RLock()
        self.devices: dict[str, DeviceView] = {}
        self.by_link: dict[int, DeviceView] = {}
        self.state_file = config.state_file or config_mod.default_state_file(config.bridge_id)
        self.remembered = self._load_state_file()  # device → discovery topics published before
        self.mqtt = MqttConnection(
            config.mqtt,
            will_topic=self.bridge_topic,
            on_connected=self._on_connected,
            on_message=self._on_message,
            reconnect_max_s=config.reconnect_max_s,
        )
        self.links = [
            DeviceLink(
                port,
                self,
                baudrate=config.baudrate,
                request_timeout_s=config.request_timeout_s,
                offline_after_s=config.offline_after_s,
                backoff_max_s=config.reconnect_max_s,
            )
            for port in config.serial_ports
        ]
        self.commands_handled = 0
        self._stopped = False

    # -- life cycle ----------------------------------------------------------------

    def start(self) -> None:
        log.info(
            "bridge %s: %d serial port(s), broker %s, base topic %s, discovery %s",
            self.config.bridge_id,
            len(self.links),
            self.config.mqtt.url,
            self.base,
            self.config.discovery_prefix if self.config.discovery else "off",
        )
        self.mqtt.start()
        for link in self.links:
            link.start()

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        for link in self.links:
            link.stop()
        with self._lock:
            final = [(view.topics.availability, "offline") for view in self.devices.values()]
        final.append((self.bridge_topic, "offline"))
        self.mqtt.stop(final)
        log.info("bridge %s stopped", self.config.bridge_id)

    # -- the state file: discovery topics published per device -------------------------

    def _load_state_file(self) -> dict[str, list[str]]:
        try:
            data = json.loads(Path(self.state_file).read_text())
            published = data.get("discovery", {})
            if isinstance(published, dict):
                return {k: [t for t in v if isinstance(t, str)] for k, v in published.items() if isinstance(v, list)}
        except FileNotFoundError:
            pass
        except (OSError, ValueError, AttributeError) as err:
            log.warning("state file %s unreadable (%s); starting afresh", self.state_file, err)
        return {}

    def _save_state_file(self) -> None:
        path = Path(self.state_file)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(json.dumps({"discovery": self.remembered}, indent=1, sort_keys=True))
            tmp.replace(path)
        except OSError as err:
            log.warning("cannot write state file %s (%s): stale entities may linger", self.state_file, err)

    # -- MQTT side -------------------------------------------------------------------

    def _on_connected(self) -> None:
        """After every (re)connect: a broker without persistence has lost all
        retained messages and subscriptions, so everything is sent again."""
        subscriptions = [f"{self.config.discovery_prefix}/status"] if self.config.discovery else []
        with self._lock:
            for view in self.devices.values():
                subscriptions += command_subscriptions(view.topics.root)
        self.mqtt.subscribe(subscriptions)
        self.republish(reason="connected")

    def republish(self, reason: str) -> None:
        with self._lock:
            views = list(self.devices.values())
            for view in views:
                self._publish_discovery(view, force=True)
                self._publish(view.topics.availability, "online" if view.online else "offline", force=True, view=view)
                for topic, payload in list(view.retained.items()):
                    if topic != view.topics.availability:
                        self.mqtt.publish(topic, payload, retain=True)
        log.info("published availability, discovery and state of %d device(s) (%s)", len(views), reason)

    def _on_message(self, message: Any) -> None:
        topic = message.topic
        if self.config.discovery and topic == f"{self.config.discovery_prefix}/status":
            if message.payload == b"online":
                self.republish(reason="Home Assistant came online")
            return
        if not topic.startswith(self.base + "/"):
            return
        rest = topic[len(self.base) + 1 :].split("/")
        with self._lock:
            view = self.devices.get(rest[0])
        if view is None:
            log.debug("message for unknown device on %s ignored", topic)
            return
        shown = _show(message.payload)
        result = parse_command(rest[1:], message.payload, bool(message.retain), view.burners, view.timer_max_min)
        if isinstance(result, Rejection):
            log.warning("%s %s → rejected: %s (%s)", topic, shown, result.reason, result.detail)
            self._reject(view, topic, result.burner, result.reason, result.detail, payload=message.payload)
            return
        started = time.monotonic()
        described = _describe(result)

        def done(reply: Reply) -> None:
            self._command_done(view, topic, shown, described, started, reply)

        view.link.request(result.device_cmd, done, **result.args)

    def _command_done(
        self, view: DeviceView, topic: str, shown: str, described: str, started: float, reply: Reply
    ) -> None:
        total_ms = (time.monotonic() - started) * 1000
        self.commands_handled += 1
        if reply.ok:
            if reply.state is not None:
                self.on_state(view.link, reply.state)
            log.info("%s %s → %s → ok in %.1f ms", topic, shown, described, total_ms)
            return
        if reply.code in ("timeout", "device_offline"):
            log.warning(
                "%s %s → %s → %s (%s) after %.1f ms", topic, shown, described, reply.code, reply.message, total_ms
            )
            detail = reply.message or reply.code or ""
            self._reject(view, topic, reply.args.get("burner"), reply.code or "error", detail, command=reply.cmd)
        else:
            log.warning(
                "%s %s → %s → device refused: %s: %s (%.1f ms)",
                topic,
                shown,
                described,
                reply.code,
                reply.message,
                total_ms,
            )
            self._reject(
                view,
                topic,
                reply.args.get("burner"),
                reply.code or "error",
                reply.message or "",
                command=reply.cmd,
                code=reply.code,
                message=reply.message,
            )

    def _reject(
        self,
        view: DeviceView,
        topic: str,
        burner: str | None,
        reason: str,
        detail: str,
        payload: bytes | None = None,
        **extra: Any,
    ) -> None:
        event: dict[str, Any] = {
            "event_type": "rejected",
            "burner": burner,
            "reason": reason,
            "detail": detail,
            "topic": topic,
        }
        if payload is not None:
            try:
                event["payload"] = payload[:MAX_PAYLOAD].decode("utf-8")
            except UnicodeDecodeError:
                pass
        event.update({k: v for k, v in extra.items() if v is not None})
        event["source"] = "device" if "code" in extra else "bridge"
        event["device"] = view.id
        event["time"] = _now().replace(microsecond=0).isoformat()
        self.mqtt.publish(view.topics.event, _dumps(event))

    def _publish(self, topic: str, payload: str, force: bool = False, view: DeviceView | None = None) -> None:
        """Publish a retained message when it changed (or when forced); remember it."""
        if view is not None:
            if not force and view.retained.get(topic) == payload:
                return
            view.retained[topic] = payload
        self.mqtt.publish(topic, payload, retain=True)

    def _publish_discovery(self, view: DeviceView, force: bool = False) -> None:
        if not self.config.discovery or not self.mqtt.connected.is_set():
            return  # done on (re)connect
        configs = discovery.configs(view.topics, view.hello, self.config.discovery_prefix)
        payloads = {topic: discovery.payload(config) for topic, config in configs.items()}
        stale = (set(self.remembered.get(view.id, [])) | set(view.discovery)) - set(payloads)
        for topic in sorted(stale):
            self.mqtt.publish(topic, "", retain=True)  # empty retained: Home Assistant removes the entity
        if stale:
            log.info("device %s: cleared %d stale discovery config(s)", view.id, len(stale))
        for topic, text in payloads.items():
            if force or view.discovery.get(topic) != text:
                self.mqtt.publish(topic, text, retain=True)
        view.discovery = payloads
        if sorted(payloads) != sorted(self.remembered.get(view.id, [])):
            self.remembered[view.id] = sorted(payloads)
            self._save_state_file()

    # -- serial side (link threads) -----------------------------------------------------

    def on_hello(self, link: DeviceLink, info: dict[str, Any]) -> None:
        device_id = info["device"]
        if not discovery.TOPIC_SAFE.match(device_id) or device_id == "bridge":
            log.error("%s: device id %r cannot be an MQTT topic level; not serving it", link.port, device_id)
            return
        with self._lock:
            other = self.devices.get(device_id)
            if other is not None and other.link is not link:
                log.error(
                    "device id %s answers on %s and on %s: ids must be unique; ignoring %s",
                    device_id,
                    other.link.port,
                    link.port,
                    link.port,
                )
                return
            before = self.by_link.get(id(link))
            if before is not None and before.id != device_id:
                log.warning("%s: device %s replaced by %s", link.port, before.id, device_id)
                self._publish(before.topics.availability, "offline", view=before)
                before.online = False
                self.mqtt.unsubscribe(command_subscriptions(before.topics.root))
                del self.devices[before.id]
                before = None
            if before is None:
                view = DeviceView(device_id, link, discovery.Topics(self.base, device_id, self.config.bridge_id), info)
                self.devices[device_id] = view
                self.by_link[id(link)] = view
                self.mqtt.subscribe(command_subscriptions(view.topics.root))
            else:
                view = before
                view.hello = info
            self._publish_discovery(view)

    def on_state(self, link: DeviceLink, frame: dict[str, Any]) -> None:
        with self._lock:
            view = self.by_link.get(id(link))
            if view is None:
                return
            self._publish(view.topics.state, _dumps(device_state(frame, view.hello, link.port)), view=view)
            states = burner_states(frame, _now(), view.deadlines)
            for burner, state in states.items():
                view.deadlines[burner] = state["timer_deadline"]
                self._publish(view.topics.burner_state(burner), _dumps(state), view=view)

    def on_event(self, link: DeviceLink, frame: dict[str, Any]) -> None:
        with self._lock:
            view = self.by_link.get(id(link))
        if view is None:
            return
        event = event_payload(frame, view.id, _now())
        level = logging.WARNING if event.get("event_type") in ("fault", "cut_unverified", "rejected") else logging.INFO
        log.log(
            level,
            "device %s: event %s%s%s",
            view.id,
            event.get("event_type"),
            f" {event['burner']}" if event.get("burner") else "",
            f" ({event['reason']})" if event.get("reason") else "",
        )
        self.mqtt.publish(view.topics.event, _dumps(event))

    def on_availability(self, link: DeviceLink, online: bool, reason: str) -> None:
        with self._lock:
            view = self.by_link.get(id(link))
            if view is None:
                return
            view.online = online
            self._publish(view.topics.availability, "online" if online else "offline", view=view)


def _show(payload: bytes) -> str:
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return f"<{len(payload)} bytes, not UTF-8>"
    if len(text) > 40:
        text = text[:37] + "..."
    return json.dumps(text)


def _describe(command: Command) -> str:
    """The device command in one short phrase for the log: cut(burner=left)."""
    args = " ".join(f"{k}={v}" for k, v in command.args.items())
    if not args and command.device_cmd in ("cut", "clear_fault"):
        args = "all burners"
    return f"{command.device_cmd}({args})"


# -- the command line --------------------------------------------------------------------

EPILOG = """\
examples:
  hobguard bridge --serial /dev/ttyUSB0 --broker mqtt://localhost
  hobguard bridge --serial /dev/ttyUSB0 --serial /dev/ttyUSB1 \\
      --broker mqtts://hobguard@broker.lan --password-file /etc/hobguard/mqtt-password \\
      --ca-cert /etc/hobguard/ca.crt --bridge-id kitchen
  hobguard --log-level debug bridge --config /etc/hobguard/bridge.toml

The password can also come from the environment variable HOBGUARD_MQTT_PASSWORD
(preferred over --password, which other users can see in the process list).
Options given here override the config file. Documentation: docs/bridge.md.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bridge",
        help="the service: devices on serial ports <-> MQTT and Home Assistant",
        description="Connects hobguard devices on serial ports to an MQTT broker: publishes state,\n"
        "events, availability and Home Assistant discovery; turns MQTT commands into device\n"
        "commands (checked first: a bad or retained command is rejected, never sent).\n"
        "Runs until stopped (SIGTERM or Ctrl-C).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--serial",
        action="append",
        metavar="PORT",
        help="serial port of a device, e.g. /dev/ttyUSB0 or /dev/serial/by-id/…; repeat for more devices "
        "(default: [serial] ports in the config file)",
    )
    p.add_argument(
        "--broker",
        metavar="URL",
        help="MQTT broker: mqtt://[user[:pass]@]host[:port] (port 1883) or mqtts://… for TLS "
        "(port 8883) (default: mqtt://localhost:1883)",
    )
    p.add_argument("--config", metavar="FILE", help="TOML config file (example: docs/bridge.example.toml)")
    p.add_argument(
        "--bridge-id",
        metavar="ID",
        help="this bridge's id in hobguard/bridge/ID/availability (default: the host name)",
    )
    p.add_argument("--base-topic", metavar="TOPIC", help="MQTT base topic (default: hobguard)")
    p.add_argument(
        "--discovery-prefix", metavar="PREFIX", help="Home Assistant discovery prefix (default: homeassistant)"
    )
    p.add_argument("--no-discovery", action="store_true", help="do not publish Home Assistant discovery")
    p.add_argument("--username", metavar="USER", help="MQTT user name (default: from the URL, else none)")
    p.add_argument(
        "--password", metavar="PASSWORD", help="MQTT password; visible to other local users: prefer the next two"
    )
    p.add_argument("--password-file", metavar="FILE", help="read the MQTT password from FILE (first line)")
    p.add_argument(
        "--ca-cert", metavar="FILE", help="CA certificate(s) to check the broker's TLS certificate (turns TLS on)"
    )
    p.add_argument("--client-cert", metavar="FILE", help="client certificate for TLS client authentication")
    p.add_argument("--client-key", metavar="FILE", help="private key of --client-cert")
    p.add_argument(
        "--tls-insecure",
        action="store_true",
        help="FOR TESTS ONLY: do not check that the broker's certificate names the host",
    )
    p.add_argument(
        "--state-file",
        metavar="FILE",
        help="where to remember published discovery topics, to clear stale ones "
        "(default: $STATE_DIRECTORY or ~/.local/state/hobguard/bridge-ID.json)",
    )
    p.add_argument(
        "--request-timeout",
        dest="request_timeout_s",
        type=float,
        metavar="S",
        help="seconds to wait for a device's answer before reporting a timeout (default: 5)",
    )
    p.add_argument(
        "--offline-after",
        dest="offline_after_s",
        type=float,
        metavar="S",
        help="seconds of silence after which a device is offline (default: 3 x its heartbeat, 30 s by default)",
    )
    p.add_argument("--baudrate", type=int, metavar="BAUD", help="serial speed (default: 115200)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        file_data = config_mod.load_file(args.config) if args.config else None
        config = config_mod.build(args, file_data)
    except config_mod.ConfigError as err:
        print(f"hobguard bridge: {err}", file=sys.stderr)
        return 2
    if not config.serial_ports:
        print("hobguard bridge: no serial port: give --serial PORT (or [serial] ports in --config)", file=sys.stderr)
        return 2
    bridge = Bridge(config)
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    bridge.start()
    try:
        while not stop.wait(3600):
            pass
    finally:
        bridge.stop()
    return 0
