"""The bridge service: devices on the network or on serial ports ↔ an MQTT broker and Home Assistant.

One process serves several devices. Each device's id comes from its hello
reply, and only from there (device_link: a link never carries commands or
state under an id the device did not just say); its topics live under
`<base>/<device>/…` (contract: docs/contract.md, "MQTT"; this bridge's details:
docs/bridge.md).

MQTT commands are checked here first — a retained message, a payload that
is not exactly what the topic takes, an unknown burner, a topic that is no
command, a device this bridge does not serve: a `rejected` event, nothing
sent — then become device commands with request ids; the device's answer,
or a timeout, is logged in one line with the time since the message
arrived, and a refusal is published as a `rejected` event with the
device's code and message. A retained command is also removed from the
broker (empty retained message) so it cannot come back.

Threads: paho's network thread runs the MQTT callbacks and turns commands
into device requests at once: it only queues them (DeviceLink.request never
writes, so a device that stops reading cannot hold up another hob's
commands); each DeviceLink runs its own reader thread and writer thread;
the announcer thread re-publishes discovery, availability and states
(after a connect, a Home Assistant restart or a device's hello), one run
at a time, requests coalesced, in batches that wait for the broker's
acknowledgements, so a flood of `homeassistant/status` messages costs
bounded memory and never delays a command. The shared maps are guarded by
one lock and every callback is wrapped so an exception is logged and never
kills the service.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hobguard_fw import protocol

from . import config as config_mod
from . import discovery, firmware
from .announce import Announcer, wait_acknowledged
from .commands import MAX_PAYLOAD, Rejection, describe, is_output, parse_command, subscriptions
from .device_link import DeviceLink, Refusal, Reply, SerialTransport, Transport
from .network import NetworkTransport
from .state import NETWORK_STATE_KEYS, burner_states, device_state, dumps, event_payload, has_network, local_now

log = logging.getLogger("hobguard.bridge")

# -- the bridge ----------------------------------------------------------------------


def transports(config: config_mod.BridgeConfig) -> list[Transport]:
    """One transport per device connection the configuration lists: each
    network device (`tcp://`, network.NetworkTransport), then each serial
    port. Every link gets the same rules whatever carries its bytes
    (device_link)."""
    made: list[Transport] = [
        NetworkTransport(device.address, device.key, key_file=device.key_file, expected_id=device.id)
        for device in config.devices
    ]
    return made + [SerialTransport(port, config.baudrate) for port in config.serial_ports]


def is_network(link: DeviceLink | None) -> bool:
    return isinstance(getattr(link, "transport", None), NetworkTransport)


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
    frames_refused: int = 0
    last_frame: dict[str, Any] | None = None  # the last device state frame
    state: dict[str, Any] | None = None  # the device state published last
    # What the device has beyond the basics ("network": a network link;
    # "ota": served over it, so it takes updates), from its state frames;
    # None until the first one (discovery waits for it before it adds or
    # clears the entities that depend on it).
    features: frozenset[str] | None = None
    install: firmware.Install | None = None  # an update from Home Assistant, while it runs

    @property
    def burners(self) -> list[str]:
        return list(self.hello.get("burners") or [])

    @property
    def timer_max_min(self) -> float:
        value = self.hello.get("timer_max_min")
        return float(value) if isinstance(value, (int, float)) and protocol.is_number(value) else 720.0


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
            subscriptions=subscriptions(self.base, self.status_topic),
        )
        self.announcer = Announcer(self._announce)
        self.links = [self._link(transport) for transport in transports(config)]
        # The firmware this bridge installs from Home Assistant: the one it ships.
        self.firmware_package: Path | None = None
        self.latest_firmware: str | None = None
        try:
            self.firmware_package = firmware.tool.package_dir_of(None)
            self.latest_firmware = firmware.tool.firmware_version(self.firmware_package)
        except firmware.tool.UpdateError as err:
            log.warning("no firmware to offer Home Assistant's update entities: %s", err)
        self.commands_handled = 0
        # (arrival → answer, at the device) in seconds, for the last commands.
        self.latencies: deque[tuple[float, float]] = deque(maxlen=1000)
        self._duplicate_logged = False
        self._stopped = False

    def _link(self, transport: Transport) -> DeviceLink:
        backoff_initial_s, jitter = 0.25, 0.0
        if isinstance(transport, NetworkTransport):
            backoff_initial_s, jitter = transport.backoff_initial_s, transport.backoff_jitter
        return DeviceLink(
            transport,
            self,
            request_timeout_s=self.config.request_timeout_s,
            offline_after_s=self.config.offline_after_s,
            backoff_initial_s=backoff_initial_s,
            backoff_max_s=self.config.reconnect_max_s,
            backoff_jitter=jitter,
        )

    # -- life cycle ----------------------------------------------------------------

    def start(self) -> None:
        log.info(
            "bridge %s: %d device(s) on the network, %d serial port(s), broker %s, base topic %s, discovery %s",
            self.config.bridge_id,
            len(self.config.devices),
            len(self.config.serial_ports),
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
        with self._lock:
            installs = [view.install for view in self.devices.values() if view.install is not None]
        for install in installs:
            install.stopping.set()
        for link in self.links:
            link.request_stop()  # all at once: a link in the middle of a connect does not hold up the others
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
        retained messages, so everything is sent again (the subscriptions
        are made again by MqttConnection, before anything is published)."""
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
                wait_acknowledged(last)  # outside the lock: the links go on meanwhile
        if last is not None:
            wait_acknowledged(last)
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
        prefix = self.config.discovery_prefix
        configs = discovery.configs(view.topics, view.hello, prefix, view.features or frozenset())
        payloads = {topic: discovery.payload(config) for topic, config in configs.items()}
        before = set(self.remembered.get(view.id, [])) | set(view.discovery)
        undecided: set[str] = set()
        if view.features is None:
            # Entities that depend on the device's features wait for its first
            # state frame: neither added nor cleared before it.
            undecided = (
                set(discovery.configs(view.topics, view.hello, prefix, discovery.FEATURES)) - set(payloads)
            ) & before
        stale = before - set(payloads) - undecided
        messages = [(topic, "") for topic in sorted(stale)]  # empty retained: Home Assistant removes the entity
        if stale:
            log.info("device %s: clearing %d stale discovery config(s)", view.id, len(stale))
        messages += [(t, p) for t, p in payloads.items() if force or view.discovery.get(t) != p]
        view.discovery = payloads
        remembered = sorted(set(payloads) | undecided)
        if remembered != sorted(self.remembered.get(view.id, [])):
            self.remembered[view.id] = remembered
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
        if result.device_cmd == "update":
            self._install(view, topic)
            return
        described = describe(result)
        link = view.link
        if link is None:
            reply = Reply(False, None, result.device_cmd, result.args, 0.0, code="device_offline",
                          message=f"device {view.id} is not connected to this bridge")  # fmt: skip
            self._command_done(view, topic, shown, described, arrived, reply)
            return

        def done(reply: Reply) -> None:
            self._command_done(view, topic, shown, described, arrived, reply)

        # Queued for the link's writer: returns at once, whatever the device
        # does; the timeout counts from when the message arrived.
        link.request(result.device_cmd, done, for_device=view.id, since=arrived, **result.args)

    def _command_done(
        self, view: DeviceView, topic: str, shown: str, described: str, arrived: float, reply: Reply
    ) -> None:
        total_ms = (time.monotonic() - arrived) * 1000
        self.commands_handled += 1
        if reply.request_id is not None:
            self.latencies.append((total_ms / 1000, reply.latency_s))
        if reply.ok:
            if reply.state is not None and reply.device is not None:
                self.on_state(view.link, reply.device, reply.state, reply=True)
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

    # -- firmware updates from Home Assistant (firmware.py) ------------------------------

    def _install(self, view: DeviceView, topic: str) -> None:
        """The update entity's install command: start an install over the
        bridge's link, or say why not (a `rejected` event)."""
        with self._lock:
            link = view.link
            problem = None
            if self.firmware_package is None or self.latest_firmware is None:
                problem = ("no_firmware", "this bridge has no firmware to install (see its log)")
            elif link is None or not view.online:
                problem = ("device_offline", f"device {view.id} is not connected to this bridge")
            elif not firmware.link_takes_updates(link):
                problem = (
                    "not_network",
                    "updates go over the device's network link; this bridge reaches it over USB "
                    "(use hobguard deploy, or serve the device over the network)",
                )
            elif view.install is not None:
                problem = ("busy", f"an update of {view.id} is already running")
            if problem is None:
                assert link is not None and self.firmware_package is not None
                view.install = firmware.Install(
                    link,
                    view.id,
                    self.firmware_package,
                    lambda percent, summary: self._install_progress(view, percent, summary),
                    lambda outcome: self._install_done(view, outcome),
                )
        if problem is not None:
            log.warning("%s → update refused: %s (%s)", _topic_shown(topic), problem[0], problem[1])
            self._reject(view, topic, None, problem[0], problem[1])
            return
        log.info("device %s: installing firmware %s from Home Assistant", view.id, self.latest_firmware)
        assert view.install is not None
        view.install.start()

    def _install_progress(self, view: DeviceView, percent: int | None, summary: str | None) -> None:
        with self._lock:
            self._publish_firmware(view, True, percent, summary)

    def _install_done(self, view: DeviceView, outcome: firmware.Outcome) -> None:
        level = logging.INFO if outcome.result == "installed" else logging.WARNING
        log.log(level, "device %s: update %s: %s", view.id, outcome.result, outcome.detail)
        with self._lock:
            view.install = None
            self._publish_firmware(view, False, None, outcome.detail)
        if outcome.result == "refused":
            topic = f"{view.topics.root}/firmware/install"
            self._reject(view, topic, None, outcome.code or "refused", outcome.detail, code=outcome.code)
        event = {
            "event_type": "update",
            "burner": None,
            "result": outcome.result,
            "version": outcome.version,
            "detail": outcome.detail,
            "source": "bridge",
            "device": view.id,
            "time": local_now().replace(microsecond=0).isoformat(),
        }
        self.mqtt.publish(view.topics.event, dumps(event))

    def _publish_firmware(
        self, view: DeviceView, in_progress: bool | None = None, percent: int | None = None, summary: str | None = None
    ) -> None:
        """The update entity's state, for a device that takes updates. Holds the lock."""
        if "ota" not in (view.features or frozenset()):
            return
        topic = f"{view.topics.root}/firmware"
        if in_progress is None:  # a hello or a state: keep what an install said last
            try:
                before = json.loads(view.retained.get(topic) or "{}")
            except ValueError:
                before = {}
            in_progress = view.install is not None
            percent = before.get("update_percentage") if in_progress else None
            summary = before.get("release_summary")
        state = firmware.state_payload(view.hello.get("fw"), self.latest_firmware, in_progress, percent, summary)
        self._publish(topic, dumps(state), view=view)

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
        event["time"] = local_now().replace(microsecond=0).isoformat()
        self.mqtt.publish(view.topics.event, dumps(event))

    @staticmethod
    def _add_payload(event: dict[str, Any], payload: bytes | None) -> None:
        if payload is not None:
            try:
                event["payload"] = payload[:MAX_PAYLOAD].decode("utf-8")
            except UnicodeDecodeError:
                pass

    def _publish_bridge_event(self, event: dict[str, Any]) -> None:
        event.setdefault("time", local_now().replace(microsecond=0).isoformat())
        self.mqtt.publish(self.bridge_event_topic, dumps(event))

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
        self.mqtt.publish(topic, payload, retain=True, qos=0)

    # -- device side (link threads) -----------------------------------------------------

    def _view_of(self, link: DeviceLink | None, device_id: str) -> DeviceView | None:
        """The view of `device_id` if `link` serves it now, else None (a late
        message from a link that serves another device by now)."""
        view = self.devices.get(device_id)
        return view if view is not None and link is not None and view.link is link else None

    def on_hello(self, link: DeviceLink, info: dict[str, Any]) -> bool | Refusal:
        """`info` passed protocol.hello_problem. False or a Refusal: not
        served on this link (the link quarantines it, or stands by)."""
        device_id = info["device"]
        node = discovery.node_id(device_id)
        expected = getattr(getattr(link, "transport", None), "expected_id", None)
        if expected is not None and device_id != expected:
            log.error(
                "%s answers as device %s, but the configuration expects device %s there: not serving it "
                "(nothing it says is published, no command is sent to it). Fix the id in the configuration, "
                "or the address",
                link.port,
                device_id,
                expected,
            )
            return Refusal(f"{link.port} answers as device {device_id}; the configuration expects {expected} there")
        with self._lock:
            self.quarantines.pop(link.port, None)  # (put back below if refused again)
            other = self.devices.get(device_id)
            if other is not None and other.link is not None and other.link is not link:
                if other.link.serves(device_id) and is_network(other.link) != is_network(link):
                    # One board on its USB cable and on Wi-Fi: the link that
                    # said hello first serves it, the other stands by (and
                    # takes over from a link whose device fell silent).
                    if other.link.online:
                        if not getattr(link, "standby", None):
                            log.warning(
                                "device %s answers on %s and on %s: served on %s; %s stands by and takes over if "
                                "%s loses it (one board on USB and Wi-Fi; two boards need two device ids)",
                                device_id, other.link.port, link.port, other.link.port, link.port, other.link.port,
                            )  # fmt: skip
                        return Refusal(f"device {device_id} is served on {other.link.port}", standby=True)
                    log.info("device %s: %s is silent; %s takes over", device_id, other.link.port, link.port)
                elif other.link.serves(device_id):
                    log.error(
                        "device id %s answers on %s and on %s: device ids must be unique; not serving %s",
                        device_id,
                        other.link.port,
                        link.port,
                        link.port,
                    )
                    # Quarantined (asked again after 30 s … 5 min) while the
                    # first port serves it; its event names both ports.
                    return Refusal(
                        f"device id {device_id} is already served on {other.link.port}; it answers on {link.port} "
                        "too: device ids must be unique"
                    )
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
                self._publish_firmware(view)  # the version it runs now
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

    def on_state(self, link: DeviceLink | None, device_id: str, frame: dict[str, Any], reply: bool = False) -> None:
        """A device state frame, or (`reply`) the state in a command's reply,
        which holds the control core's state but not the network link's
        diagnostics: those stay as the last state frame said."""
        announce = False
        with self._lock:
            view = self._view_of(link, device_id)
            if view is None:
                return
            if reply:
                kept = {k: v for k, v in (view.last_frame or {}).items() if k in NETWORK_STATE_KEYS}
                frame = {**kept, **frame}
            else:
                features = frozenset({"network"}) if has_network(frame) else frozenset()
                if features and firmware.link_takes_updates(link):
                    features |= {"ota"}  # served over its network link: it takes updates
                announce = view.features != features
                view.features = features
                if announce:
                    self._publish_firmware(view)
            view.last_frame = frame
            self._publish_device_state(view)
            states = burner_states(frame, local_now(), view.deadlines)
            for burner, state in states.items():
                view.deadlines[burner] = state["timer_deadline"]
                self._publish(view.topics.burner_state(burner), dumps(state), view=view)
        if announce:  # the entities that depend on what the device has
            self.announcer.request(f"device {device_id}'s features known", device=device_id)

    def _publish_device_state(self, view: DeviceView) -> None:
        frame = view.last_frame
        if frame is None or view.link is None:
            return
        state = device_state(frame, view.hello, view.link.port, local_now(), view.state, view.frames_refused)
        view.state = state
        self._publish(view.topics.state, dumps(state), view=view)

    def on_event(self, link: DeviceLink, device_id: str, frame: dict[str, Any]) -> None:
        with self._lock:
            view = self._view_of(link, device_id)
        if view is None:
            return
        event = event_payload(frame, view.id, local_now())
        level = logging.WARNING if event.get("event_type") in ("fault", "cut_unverified", "rejected") else logging.INFO
        log.log(
            level,
            "device %s: event %s%s%s",
            view.id,
            event.get("event_type"),
            f" {event['burner']}" if event.get("burner") else "",
            f" ({event['reason']})" if event.get("reason") else "",
        )
        self.mqtt.publish(view.topics.event, dumps(event))

    def on_availability(self, link: DeviceLink, device_id: str, online: bool, reason: str) -> None:
        with self._lock:
            view = self._view_of(link, device_id)
            if view is None:
                return
            view.online = online
            self._publish(view.topics.availability, "online" if online else "offline", view=view)
        if not online:
            for other in self.links:  # a link standing by for this device takes over
                if other is not link and other.standby:
                    other.ask_again()

    def on_problem(self, link: DeviceLink, device_id: str | None, kind: str, detail: str) -> None:
        """A device said something the bridge refuses (device_link and
        hobguard.bridge.edge say what). Counted in its state, or, for a device not
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
        now = local_now().replace(microsecond=0).isoformat()
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
            self.mqtt.publish(topics.event, dumps(event))
        self._publish_bridge_event(dict(event, bridge=self.config.bridge_id))


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
