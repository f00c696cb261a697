"""`hobguard bridge`: devices on serial ports ↔ an MQTT broker and Home Assistant.

One process serves several devices. Each device's id comes from its hello
reply, and only from there (device_link: a link never carries commands or
state under an id the device did not just say); its topics live under
`<base>/<device>/…` (contract: DESIGN.md, "MQTT"; this bridge's details and
extensions: docs/bridge.md).

MQTT commands are checked here first — a retained message, a payload that
is not exactly what the topic takes, an unknown burner, a topic that is no
command, a device this bridge does not serve: a `rejected` event, nothing
sent — then become device commands with request ids; the device's answer,
or a timeout, is logged in one line with the time since the message
arrived, and a refusal is published as a `rejected` event with the
device's code and message. A retained command is also removed from the
broker (empty retained message) so it cannot come back.

Threads: paho's network thread runs the MQTT callbacks and turns commands
into device requests at once; each DeviceLink runs its own reader thread;
the announcer thread re-publishes discovery, availability and states
(after a connect, a Home Assistant restart or a device's hello), one run
at a time, requests coalesced, in batches that wait for the broker's
acknowledgements, so a flood of `homeassistant/status` messages costs
bounded memory and never delays a command. The shared maps are guarded by
one lock and every callback is wrapped so an exception is logged and never
kills the service.
"""

from __future__ import annotations

import argparse
import difflib
import json
import logging
import math
import re
import signal
import ssl
import sys
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable

from hobguard_fw import protocol

from . import config as config_mod
from . import discovery
from .device_link import DeviceLink, Reply, SerialTransport

log = logging.getLogger("hobguard.bridge")

# Longest command payload taken; every valid payload is far shorter.
MAX_PAYLOAD = 64
# A host-computed timer deadline moves only when it drifts more than this,
# so Home Assistant's end-time sensor does not flicker with every state frame.
DEADLINE_JITTER_S = 2.0
# The same for the boot time computed from the device's uptime (the two
# clocks drift apart by a second or two a day).
BOOT_JITTER_S = 5.0

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


# Topics under `<base>/<device>/` that bridges publish (theirs, or ours seen
# again): never commands. Everything else there is taken as a command.
OUTPUT_SUFFIXES = (("availability",), ("state",), ("event",))


def is_output(suffix: list[str]) -> bool:
    """`suffix`: the topic levels after `<base>/<device>/`."""
    return tuple(suffix) in OUTPUT_SUFFIXES or (len(suffix) == 2 and suffix[1] == "state")


def command_subscriptions(root: str) -> list[str]:
    """The command topics of one device (`root` = `<base>/<device>`)."""
    return [f"{root}/{suffix}" for suffix in DEVICE_COMMANDS] + [f"{root}/+/{suffix}" for suffix in BURNER_COMMANDS]


def subscriptions(base: str, status_topic: str | None) -> list[str]:
    """What the bridge subscribes to: everything under the base topic, so a
    mistyped command topic or a command for a device nobody serves gets an
    answer too (the bridge's own messages do not come back: no-local), and
    Home Assistant's status topic. One filter per topic at most: a broker
    speaking MQTT 5 delivers a message once per matching subscription."""
    topics = [f"{base}/#"]
    if status_topic and not status_topic.startswith(base + "/"):
        topics.append(status_topic)
    return topics


def command_suggestion(suffix: list[str], burners: list[str]) -> str:
    """' (did you mean left/timer/set?)' for a mistyped command topic, or ''."""
    given = "/".join(suffix)
    valid = list(DEVICE_COMMANDS) + [f"{b}/{c}" for b in burners for c in BURNER_COMMANDS]
    longer = [v for v in valid if v.startswith(given + "/")]
    close = longer or difflib.get_close_matches(given, valid, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


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
            if kind == "minutes_or_zero":
                detail = f"minutes must be from 0 to {timer_max_min:g} (0 cancels the timer)"
            else:
                detail = f"minutes must be more than 0 and at most {timer_max_min:g}"
            return Rejection("out_of_range", detail)
        return int(value) if value == int(value) else value
    raise ValueError(f"unknown payload kind {kind!r}")


def parse_command(
    rest: list[str], payload: bytes, retain: bool, burners: list[str], timer_max_min: float
) -> Command | Rejection:
    """Check one MQTT command: `rest` is the topic after `<base>/<device>/`."""
    burner = rest[0] if len(rest) == 3 and protocol.is_burner_id(rest[0]) else None
    if retain:
        return Rejection("retained", "retained command ignored: commands must be live, not replayed", burner)
    if len(rest) == 2:
        spec = DEVICE_COMMANDS.get("/".join(rest))
    elif len(rest) == 3:
        spec = BURNER_COMMANDS.get("/".join(rest[1:]))
        if spec is not None and burner not in burners:
            shown = rest[0][:32]
            return Rejection("unknown_burner", f"no burner {shown!r} on this hob (have {', '.join(burners)})", None)
    else:
        spec = None
    if spec is None:
        shown = "/".join(rest)[:100]
        return Rejection("unknown_command", f"no command topic {shown!r}{command_suggestion(rest, burners)}", burner)
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

# From the device's state frame into `<base>/<device>/state`. The device's
# uptime_s is not published as such: it changes with every heartbeat, so the
# retained state would be sent again every time. `booted_at` (host time of
# the boot, from uptime_s) says the same and stays put.
DEVICE_STATE_KEYS = ("locked", "fault", "reset_cause", "events_dropped")
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


def boot_time(uptime_s: Any, now: datetime, previous: str | None = None) -> str | None:
    """When the device booted, host time (ISO 8601 with offset), from its
    uptime; `previous` is kept while it is within BOOT_JITTER_S."""
    if not protocol.is_number(uptime_s) or uptime_s < 0:
        return None
    when = (now - timedelta(seconds=uptime_s)).replace(microsecond=0)
    if previous:
        try:
            if abs((datetime.fromisoformat(previous) - when).total_seconds()) < BOOT_JITTER_S:
                return previous
        except ValueError:
            pass
    return when.isoformat()


def device_state(
    frame: dict[str, Any],
    hello: dict[str, Any],
    port: str,
    now: datetime | None = None,
    booted_before: str | None = None,
    frames_refused: int = 0,
) -> dict[str, Any]:
    state = {key: frame.get(key) for key in DEVICE_STATE_KEYS}
    state["booted_at"] = boot_time(frame.get("uptime_s"), now or _now(), booted_before)
    state["frames_refused"] = frames_refused
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
        if not isinstance(burner, dict) or not protocol.is_burner_id(burner.get("id")):
            continue
        state = {key: burner.get(key) for key in BURNER_STATE_KEYS}
        remaining = burner.get("timer_remaining_s")
        deadline = None
        if protocol.is_number(remaining) and 0 <= remaining <= 1e8:
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


# -- re-announcing, off the command path ------------------------------------------


class Announcer:
    """Runs `publish(full, devices)` on its own thread, one run at a time.
    Requests that come while a run waits or runs are coalesced into one more
    run, so a flood of requests costs one flag and a small set, not a queue:
    `full` (everything again) or the ids of devices whose discovery changed.
    A short debounce gathers a burst; two full runs are at least
    `min_interval_s` apart."""

    def __init__(
        self, publish: Callable[[bool, set[str]], None], debounce_s: float = 0.2, min_interval_s: float = 1.0
    ) -> None:
        self._publish = publish
        self.debounce_s = debounce_s
        self.min_interval_s = min_interval_s
        self._cond = threading.Condition()
        self._full = False
        self._devices: set[str] = set()
        self._reasons: set[str] = set()
        self._stopped = False
        self._last_full = -math.inf
        self.requests = 0
        self.runs = 0
        self.busy = False
        self._thread = threading.Thread(target=self._run, name="announcer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def request(self, reason: str, device: str | None = None) -> None:
        with self._cond:
            self.requests += 1
            if device is None:
                self._full = True
            else:
                self._devices.add(device)
            if len(self._reasons) < 8:
                self._reasons.add(reason)
            self._cond.notify_all()

    def _sleep(self, until: float) -> None:
        """Wait (holding the condition) until `until`, or until stopped:
        requests coming meanwhile do not cut the wait short."""
        while not self._stopped:
            left = until - time.monotonic()
            if left <= 0:
                return
            self._cond.wait(left)

    def idle(self) -> bool:
        with self._cond:
            return not (self._full or self._devices or self.busy)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and not (self._full or self._devices):
                    self._cond.wait()
                if self._stopped:
                    return
                self.busy = True
                self._sleep(time.monotonic() + self.debounce_s)  # gather the rest of a burst
                if self._full:
                    self._sleep(self._last_full + self.min_interval_s)
                if self._stopped:
                    return
                full, devices, reasons = self._full, self._devices, self._reasons
                self._full, self._devices, self._reasons = False, set(), set()
                if full:
                    self._last_full = time.monotonic()
            try:
                log.debug("announcing (%s)", ", ".join(sorted(reasons)))
                self._publish(full, devices)
            except Exception:
                log.exception("error while re-publishing discovery and states")
            finally:
                with self._cond:
                    self.runs += 1
                    self.busy = False
                    self._cond.notify_all()


# -- the bridge ----------------------------------------------------------------------


@dataclass
class DeviceView:
    """What the bridge knows about one device. `link` is the link that
    serves it now (None after that link said hello as another device)."""

    id: str
    link: DeviceLink | None
    topics: discovery.Topics
    hello: dict[str, Any]
    online: bool = False
    retained: dict[str, str] = field(default_factory=dict)  # topic → last payload
    deadlines: dict[str, str | None] = field(default_factory=dict)
    discovery: dict[str, str] = field(default_factory=dict)  # config topic → payload
    booted_at: str | None = None
    frames_refused: int = 0
    last_frame: dict[str, Any] | None = None  # the last device state frame

    @property
    def burners(self) -> list[str]:
        return list(self.hello.get("burners") or [])

    @property
    def timer_max_min(self) -> float:
        value = self.hello.get("timer_max_min")
        return float(value) if protocol.is_number(value) else 720.0


# Announced elsewhere: device ids whose availability another bridge (or an
# earlier run) published, remembered up to this many.
FOREIGN_MAX = 4096
# Retained command topics of devices not served yet, cleared once they are.
RETAINED_LATER_MAX = 256
# Publishes the announcer makes before it waits for the broker's acknowledgement.
ANNOUNCE_BATCH = 20


class Bridge:
    def __init__(self, config: config_mod.BridgeConfig) -> None:
        from .mqtt import MqttConnection

        self.config = config
        self.base = config.base_topic
        self.bridge_topic = discovery.bridge_availability_topic(self.base, config.bridge_id)
        self.bridge_event_topic = discovery.bridge_event_topic(self.base, config.bridge_id)
        self.status_topic = f"{config.discovery_prefix}/status" if config.discovery else None
        self._lock = threading.RLock()
        self.devices: dict[str, DeviceView] = {}
        self.foreign: OrderedDict[str, bool] = OrderedDict()  # device id → its availability said online
        # topic → (device id, payload): retained commands for devices not served yet
        self.retained_later: OrderedDict[str, tuple[str, bytes]] = OrderedDict()
        # port → (device id to report under, event): devices quarantined now
        self.quarantines: dict[str, tuple[str | None, dict[str, Any]]] = {}
        self.state_file = config.state_file or config_mod.default_state_file(config.bridge_id)
        self.remembered = self._load_state_file()  # device → discovery topics published before
        self.mqtt = MqttConnection(
            config.mqtt,
            will_topic=self.bridge_topic,
            on_connected=self._on_connected,
            on_message=self._on_message,
            reconnect_max_s=config.reconnect_max_s,
        )
        self.announcer = Announcer(self._announce)
        self.links = [
            DeviceLink(
                SerialTransport(port, config.baudrate),
                self,
                request_timeout_s=config.request_timeout_s,
                offline_after_s=config.offline_after_s,
                backoff_max_s=config.reconnect_max_s,
            )
            for port in config.serial_ports
        ]
        self.commands_handled = 0
        # (arrival → answer, at the device) in seconds, for the last commands.
        self.latencies: deque[tuple[float, float]] = deque(maxlen=1000)
        self._duplicate_logged = False
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
        self.announcer.start()
        self.mqtt.start()
        for link in self.links:
            link.start()

    def stop(self, remove: bool = False) -> None:
        """Stop serving: every device `offline`, the bridge `offline`, a
        clean disconnect. remove: instead delete (empty retained) everything
        this bridge announced — discovery, states, availability — as the
        demo does on a shared broker."""
        if self._stopped:
            return
        self._stopped = True
        for link in self.links:
            link.stop()
        self.announcer.stop()
        with self._lock:
            if remove:
                final = []
                for view in self.devices.values():
                    topics = set(view.discovery) | set(self.remembered.get(view.id, [])) | set(view.retained)
                    topics |= {view.topics.availability, view.topics.state}
                    topics |= {view.topics.burner_state(b) for b in view.burners}
                    final += [(topic, "") for topic in sorted(topics)]
                    self.remembered.pop(view.id, None)
                final.append((self.bridge_topic, ""))
                self._save_state_file()
            else:
                final = [(view.topics.availability, "offline") for view in self.devices.values()]
                final.append((self.bridge_topic, "offline"))
        self.mqtt.stop(final)
        log.info("bridge %s stopped%s", self.config.bridge_id, " and removed what it announced" if remove else "")

    # -- the state file: discovery topics published per device -------------------------

    def _load_state_file(self) -> dict[str, list[str]]:
        try:
            data = json.loads(Path(self.state_file).read_text())
            published = data.get("discovery", {})
            if isinstance(published, dict):
                return {
                    k: [t for t in v if isinstance(t, str)]
                    for k, v in published.items()
                    if isinstance(v, list) and protocol.is_device_id(k)
                }
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

    # -- MQTT side: (re)announcing -------------------------------------------------------

    def _on_connected(self) -> None:
        """After every (re)connect: a broker without persistence has lost all
        retained messages and subscriptions, so everything is sent again."""
        self.mqtt.subscribe(subscriptions(self.base, self.status_topic))
        self.announcer.request("connected")

    def republish(self, reason: str) -> None:
        """Ask for availability, discovery and state of every device again."""
        self.announcer.request(reason)

    def _announce(self, full: bool, devices: set[str]) -> None:
        """The announcer's run: discovery (changed configs; all of them when
        `full`), then availability and the last states when `full`. Published
        in batches, each waiting for the broker's acknowledgements, so no more
        than a batch of it ever sits ahead of a command's answer."""
        if not self.mqtt.connected.is_set():
            return  # done again on (re)connect
        # (topic, payload, view): a view's retained topics are published with
        # the payload they hold at that moment (the link threads change them).
        messages: list[tuple[str, str | None, DeviceView | None]] = []
        with self._lock:
            views = [v for v in self.devices.values() if full or v.id in devices]
            for view in views:
                messages += [(t, p, None) for t, p in self._discovery_messages(view, force=full)]
            if full:
                for view in views:
                    view.retained[view.topics.availability] = "online" if view.online else "offline"
                    messages += [(t, None, view) for t in list(view.retained)]
        sent = 0
        last = None
        for topic, payload, view in messages:
            with self._lock:
                if view is not None:
                    payload = view.retained.get(topic)
                if payload is not None:
                    last = self.mqtt.publish(topic, payload, retain=True) or last
            sent += 1
            if sent % ANNOUNCE_BATCH == 0 and last is not None:
                _wait_acknowledged(last)  # outside the lock: the links go on meanwhile
        if last is not None:
            _wait_acknowledged(last)
        if full:
            with self._lock:
                quarantines = list(self.quarantines.values())
            for device_id, event in quarantines:
                self._publish_quarantine(device_id, event)
            log.info("published availability, discovery and state of %d device(s)", len(views))

    def _discovery_messages(self, view: DeviceView, force: bool = False) -> list[tuple[str, str]]:
        """Discovery of one device as (topic, payload): stale configs cleared,
        changed (or, forced, all) configs. Holds the lock."""
        if not self.config.discovery:
            return []
        configs = discovery.configs(view.topics, view.hello, self.config.discovery_prefix)
        payloads = {topic: discovery.payload(config) for topic, config in configs.items()}
        stale = (set(self.remembered.get(view.id, [])) | set(view.discovery)) - set(payloads)
        messages = [(topic, "") for topic in sorted(stale)]  # empty retained: Home Assistant removes the entity
        if stale:
            log.info("device %s: clearing %d stale discovery config(s)", view.id, len(stale))
        messages += [(t, p) for t, p in payloads.items() if force or view.discovery.get(t) != p]
        view.discovery = payloads
        if sorted(payloads) != sorted(self.remembered.get(view.id, [])):
            self.remembered[view.id] = sorted(payloads)
            self._save_state_file()
        return messages

    # -- MQTT side: messages (paho's network thread) ------------------------------------

    def _on_message(self, message: Any) -> None:
        arrived = getattr(message, "timestamp", 0.0) or time.monotonic()
        topic = message.topic
        if topic == self.status_topic:
            if message.payload == b"online":
                self.announcer.request("Home Assistant came online")
            return
        if not topic.startswith(self.base + "/"):
            return
        rest = topic[len(self.base) + 1 :].split("/")
        if rest[0] == "bridge":
            self._bridge_message(rest[1:], message)
            return
        device, suffix = rest[0], rest[1:]
        if is_output(suffix):
            self._seen_output(device, suffix, message.payload)
            return
        retain = bool(message.retain)
        if retain and not message.payload:
            return  # a retained message being deleted: nothing to do
        with self._lock:
            view = self.devices.get(device)
        if view is None:
            self._not_served(topic, device, message.payload, retain)
            return
        shown = _show(message.payload)
        result = parse_command(suffix, message.payload, retain, view.burners, view.timer_max_min)
        if isinstance(result, Rejection):
            log.warning("%s %s → rejected: %s (%s)", _topic_shown(topic), shown, result.reason, result.detail)
            self._reject(view, topic, result.burner, result.reason, result.detail, payload=message.payload)
            if retain:
                self._clear_retained(topic)
            return
        described = _describe(result)
        link = view.link
        if link is None:
            reply = Reply(False, None, result.device_cmd, result.args, 0.0, code="device_offline",
                          message=f"device {view.id} is not connected to this bridge")  # fmt: skip
            self._command_done(view, topic, shown, described, arrived, reply)
            return

        def done(reply: Reply) -> None:
            self._command_done(view, topic, shown, described, arrived, reply)

        link.request(result.device_cmd, done, for_device=view.id, **result.args)

    def _command_done(
        self, view: DeviceView, topic: str, shown: str, described: str, arrived: float, reply: Reply
    ) -> None:
        total_ms = (time.monotonic() - arrived) * 1000
        self.commands_handled += 1
        if reply.request_id is not None:
            self.latencies.append((total_ms / 1000, reply.latency_s))
        if reply.ok:
            if reply.state is not None and reply.device is not None:
                self.on_state(view.link, reply.device, reply.state)
            log.info(
                "%s %s → %s → ok in %.1f ms since it arrived (%.1f ms at the device)",
                topic,
                shown,
                described,
                total_ms,
                reply.latency_s * 1000,
            )
            return
        if reply.code in ("timeout", "device_offline", "bad_reply"):
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

    def _seen_output(self, device: str, suffix: list[str], payload: bytes) -> None:
        """A device's availability published by another bridge (or by an
        earlier run of this one): remembered, so a command for it is left to
        the bridge that serves it."""
        if suffix != ["availability"] or not protocol.is_device_id(device):
            return
        with self._lock:
            if device in self.devices:
                return
            if payload:
                self.foreign[device] = payload == b"online"
                self.foreign.move_to_end(device)
                while len(self.foreign) > FOREIGN_MAX:
                    self.foreign.popitem(last=False)
            else:
                self.foreign.pop(device, None)

    def _not_served(self, topic: str, device: str, payload: bytes, retain: bool) -> None:
        """A command (or a mistyped topic) for a device this bridge does not
        serve: left alone when another bridge says it serves it (online);
        else a `rejected` event on this bridge's own event topic."""
        usable = protocol.is_device_id(device)
        with self._lock:
            served_elsewhere = usable and self.foreign.get(device) is True
            if retain and usable:
                # Cleared if it turns out to be ours: a retained command never comes back.
                self.retained_later[topic] = (device, payload[:MAX_PAYLOAD])
                while len(self.retained_later) > RETAINED_LATER_MAX:
                    self.retained_later.popitem(last=False)
        if retain:
            reason, detail = "retained", "retained command ignored: commands must be live, not replayed"
        elif served_elsewhere:
            log.debug("%s: device %s is served by another bridge", _topic_shown(topic), device)
            return
        elif not usable:
            reason, detail = "unknown_device", "not a device id (1-32 of a-z, 0-9, '_', '-')"
        elif device in self.foreign:
            reason, detail = "device_offline", f"device {device} is offline: no bridge serves it now"
        else:
            reason, detail = "unknown_device", f"no device {device} is served by this bridge (nor announced by another)"
        log.warning("%s %s → rejected: %s (%s)", _topic_shown(topic), _show(payload), reason, detail)
        event: dict[str, Any] = {
            "event_type": "rejected",
            "reason": reason,
            "detail": detail,
            "topic": topic[:200],
            "device": device[:64] if usable else None,
            "source": "bridge",
            "bridge": self.config.bridge_id,
        }
        self._add_payload(event, payload)
        self._publish_bridge_event(event)

    def _bridge_message(self, rest: list[str], message: Any) -> None:
        """`<base>/bridge/…`: only our own availability topic matters — who
        else says something there uses our bridge id."""
        if rest != [self.config.bridge_id, "availability"] or not self.mqtt.v5:
            return  # (MQTT 3.1.1 has no user properties, and echoes our own)
        instance = None
        properties = getattr(message, "properties", None)
        for key, value in getattr(properties, "UserProperty", None) or []:
            if key == "hobguard-instance":
                instance = value
        if instance == self.mqtt.instance:
            return
        if message.payload == b"online":
            if not self._duplicate_logged:
                self._duplicate_logged = True
                log.error(
                    "another bridge runs with bridge id %r (it said online on %s): give each bridge its own "
                    "--bridge-id ([bridge] id). Until then each marks the other's hobs unavailable when it stops, "
                    "and they share the state file %s",
                    self.config.bridge_id,
                    self.bridge_topic,
                    self.state_file,
                )
        elif self.mqtt.connected.is_set() and not self._stopped:
            # Our availability was set offline (or removed) by someone else —
            # another bridge with our id stopping, or an earlier run's last
            # will arriving late. We are here: say so again.
            log.info("%s said %r by another client: this bridge is online, saying so again", self.bridge_topic,
                     _show(message.payload))  # fmt: skip
            self.mqtt.publish(self.bridge_topic, "online", retain=True, instance=True)

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
            "topic": topic[:200],
        }
        self._add_payload(event, payload)
        event.update({k: v for k, v in extra.items() if v is not None})
        event["source"] = "device" if "code" in extra else "bridge"
        event["device"] = view.id
        event["time"] = _now().replace(microsecond=0).isoformat()
        self.mqtt.publish(view.topics.event, _dumps(event))

    @staticmethod
    def _add_payload(event: dict[str, Any], payload: bytes | None) -> None:
        if payload is not None:
            try:
                event["payload"] = payload[:MAX_PAYLOAD].decode("utf-8")
            except UnicodeDecodeError:
                pass

    def _publish_bridge_event(self, event: dict[str, Any]) -> None:
        event.setdefault("time", _now().replace(microsecond=0).isoformat())
        self.mqtt.publish(self.bridge_event_topic, _dumps(event))

    def _clear_retained(self, topic: str) -> None:
        """Remove a retained command from the broker (an empty retained
        message), so it is never delivered again. Not under MQTT 3.1.1: the
        bridge would receive the empty message back as a live command."""
        if not self.mqtt.v5:
            return
        if self.mqtt.publish(topic, b"", retain=True) is not None:
            log.info("%s: removed the retained command from the broker", _topic_shown(topic))

    def _publish(self, topic: str, payload: str, force: bool = False, view: DeviceView | None = None) -> None:
        """Publish a retained message when it changed (or when forced); remember it."""
        if view is not None:
            if not force and view.retained.get(topic) == payload:
                return
            view.retained[topic] = payload
        self.mqtt.publish(topic, payload, retain=True)

    # -- device side (link threads) -----------------------------------------------------

    def _view_of(self, link: DeviceLink | None, device_id: str) -> DeviceView | None:
        """The view of `device_id` if `link` serves it now, else None (a late
        message from a link that serves another device by now)."""
        view = self.devices.get(device_id)
        return view if view is not None and link is not None and view.link is link else None

    def on_hello(self, link: DeviceLink, info: dict[str, Any]) -> bool:
        """`info` passed protocol.hello_problem. False: not served on this
        link (the link quarantines it)."""
        device_id = info["device"]
        node = discovery.node_id(device_id)
        with self._lock:
            self.quarantines.pop(link.port, None)  # (put back below if refused again)
            other = self.devices.get(device_id)
            if other is not None and other.link is not None and other.link is not link:
                if other.link.serves(device_id):
                    log.error(
                        "device id %s answers on %s and on %s: device ids must be unique; not serving %s",
                        device_id,
                        other.link.port,
                        link.port,
                        link.port,
                    )
                    return False
            for view in self.devices.values():
                if view.id != device_id and discovery.node_id(view.id) == node:
                    log.error(
                        "device ids %s and %s would share Home Assistant's node id %s; not serving %s on %s",
                        view.id,
                        device_id,
                        node,
                        device_id,
                        link.port,
                    )
                    return False
            for view in self.devices.values():
                if view.link is link and view.id != device_id:
                    view.link = None  # this link serves another device now
            if other is None:
                view = DeviceView(device_id, link, discovery.Topics(self.base, device_id, self.config.bridge_id), info)
                self.devices[device_id] = view
                self.foreign.pop(device_id, None)
            else:
                view = other
                if view.link is not link:
                    log.info("device %s now on %s", device_id, link.port)
                view.link = link
                view.hello = info
            later = [(t, p) for t, (d, p) in self.retained_later.items() if d == device_id]
            for topic, _ in later:
                del self.retained_later[topic]
        for topic, payload in later:
            # Refused before the device was served (on the bridge's topic);
            # said again on the device's own, and removed from the broker.
            suffix = topic[len(view.topics.root) + 1 :].split("/")
            burner = suffix[0] if len(suffix) == 3 and suffix[0] in view.burners else None
            detail = "retained command ignored: commands must be live, not replayed"
            self._reject(view, topic, burner, "retained", detail, payload=payload)
            self._clear_retained(topic)
        self.announcer.request(f"device {device_id} said hello", device=device_id)
        return True

    def on_state(self, link: DeviceLink | None, device_id: str, frame: dict[str, Any]) -> None:
        with self._lock:
            view = self._view_of(link, device_id)
            if view is None:
                return
            view.last_frame = frame
            self._publish_device_state(view)
            states = burner_states(frame, _now(), view.deadlines)
            for burner, state in states.items():
                view.deadlines[burner] = state["timer_deadline"]
                self._publish(view.topics.burner_state(burner), _dumps(state), view=view)

    def _publish_device_state(self, view: DeviceView) -> None:
        frame = view.last_frame
        if frame is None or view.link is None:
            return
        state = device_state(frame, view.hello, view.link.port, _now(), view.booted_at, view.frames_refused)
        view.booted_at = state["booted_at"]
        self._publish(view.topics.state, _dumps(state), view=view)

    def on_event(self, link: DeviceLink, device_id: str, frame: dict[str, Any]) -> None:
        with self._lock:
            view = self._view_of(link, device_id)
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

    def on_availability(self, link: DeviceLink, device_id: str, online: bool, reason: str) -> None:
        with self._lock:
            view = self._view_of(link, device_id)
            if view is None:
                return
            view.online = online
            self._publish(view.topics.availability, "online" if online else "offline", view=view)

    def on_problem(self, link: DeviceLink, device_id: str | None, kind: str, detail: str) -> None:
        """A device said something the bridge refuses (device_link and
        hobguard.edge say what). Counted in its state, or, for a device not
        served, reported on its event topic (when it gave a usable id that
        no other link serves) and on the bridge's event topic."""
        with self._lock:
            view = self._view_of(link, device_id) if device_id else None
            if kind == "frame_refused":
                if view is not None:
                    view.frames_refused += 1
                    self._publish_device_state(view)
                return
            other = self.devices.get(device_id) if device_id else None
            own_topics = device_id is not None and (
                other is None or other.link in (None, link) or not other.link.serves(device_id)
            )
        now = _now().replace(microsecond=0).isoformat()
        event = {
            "event_type": "quarantined",
            "burner": None,
            "reason": kind,
            "detail": detail,
            "device": device_id,
            "port": link.port,
            "source": "bridge",
            "time": now,
        }
        with self._lock:
            # Said again after every (re)connect while it lasts: it may have
            # happened while the broker was out of reach.
            self.quarantines[link.port] = (device_id if own_topics else None, event)
        self._publish_quarantine(device_id if own_topics else None, event)

    def _publish_quarantine(self, device_id: str | None, event: dict[str, Any]) -> None:
        if device_id is not None:
            topics = discovery.Topics(self.base, device_id, self.config.bridge_id)
            self.mqtt.publish(topics.event, _dumps(event))
        self._publish_bridge_event(dict(event, bridge=self.config.bridge_id))


def _wait_acknowledged(info: Any, timeout_s: float = 5.0) -> None:
    try:
        info.wait_for_publish(timeout_s)
    except (RuntimeError, ValueError):
        pass


def _topic_shown(topic: str) -> str:
    return topic if len(topic) <= 120 and topic.isprintable() else repr(topic)[:120]


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
    try:
        bridge = Bridge(config)
    except (config_mod.ConfigError, ssl.SSLError, OSError, ValueError) as err:
        # config.build has checked what it can; whatever is left is still a
        # configuration problem, said in one line (never a password: paho and
        # ssl do not put it in their messages).
        print(f"hobguard bridge: cannot start: {err}", file=sys.stderr)
        return 2
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
