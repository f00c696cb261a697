"""Home Assistant MQTT discovery, as data.

`ENTITIES` is the one table: every entity hobguard shows in Home Assistant,
per burner or per device, with its component and the keys of its discovery
config. `configs()` expands it for one device (from its hello reply) into
{discovery topic: config}; nothing else in the bridge knows about entities.

Conventions, kept the same for every row (and checked by one parametrised
test): per-entity topics `<prefix>/<component>/<node_id>/<object_id>/config`,
retained; a `unique_id`; the same device block (identifiers, name,
manufacturer, model, sw_version); an availability list of the bridge's last
will and the device's heartbeat availability with `availability_mode: all`.

Strings in the table may hold `$state` (the burner or device state topic),
`$cmd` (the command topic root: `<base>/<device>` or `<base>/<device>/<burner>`),
`$burner` / `$Burner` (the burner id / its display name) and `$event`.
A value `Hello("key")` is taken from the device's hello reply (a number).
Jinja templates (`{{ … }}`) pass through untouched. A row with `needs`
exists only for a device that has that feature (FEATURES: "network", a
board with a network link, known from its state frames; "ota", such a
board served over that link).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from string import Template
from typing import Any

from hobguard_fw import protocol

from .. import __version__

# Every event_type the event entity accepts: the device's events plus the
# bridge's `rejected`. Home Assistant drops events of types not listed.
EVENT_TYPES = list(protocol.EVENT_TYPES) + [t for t in protocol.BRIDGE_EVENT_TYPES if t not in protocol.EVENT_TYPES]


@dataclass(frozen=True)
class Hello:
    """A discovery value taken from the device's hello reply."""

    key: str
    default: Any = None


# What a device may have beyond the basics; an entity that `needs` one is
# announced only for a device that has it. "ota": the bridge reaches the
# device over its network link, the only way a device takes an update.
FEATURES = frozenset({"network", "ota"})


@dataclass(frozen=True)
class Entity:
    scope: str  # "burner" or "device"
    component: str  # Home Assistant platform
    key: str  # object id (per burner: prefixed with the burner id)
    config: dict[str, Any]
    # Availability entries of this entity beyond the bridge's and the device's
    # (availability_mode "all": every entry must say online).
    availability: tuple[dict[str, str], ...] = ()
    needs: str | None = None  # one of FEATURES, or None: every device


# Templates shared by several rows. A value Home Assistant cannot place
# renders as "None", which Home Assistant's MQTT platforms read as
# "unknown" (timestamp sensors and valves only since 2024.10: older ones
# log a warning, so those never get "None" in normal operation).
_ON_OFF_FAULT = "{{ 'ON' if value_json.fault else 'OFF' }}"
_DIAG = "diagnostic"
# A timestamp sensor must get a timestamp whatever happens: when there is
# none, the entity is made unavailable by its own availability entry, and
# its state is this placeholder, never shown.
NO_TIME = "1970-01-01T00:00:00+00:00"


def _only_while(field: str) -> dict[str, str]:
    """An availability entry: online while the state's `field` is set."""
    return {"topic": "$state", "value_template": "{{ 'online' if value_json.%s else 'offline' }}" % field}


ENTITIES: list[Entity] = [
    # -- per burner ---------------------------------------------------------
    Entity(
        "burner",
        "valve",
        "gas",
        {
            "name": "$Burner gas",
            "device_class": "gas",
            "command_topic": "$cmd/gas/set",
            # Close-only: with payload_open null Home Assistant offers no
            # open service at all. hobguard can never open gas.
            "payload_open": None,
            "payload_close": "CLOSE",
            "payload_stop": None,
            "reports_position": False,
            "optimistic": False,
            "state_topic": "$state",
            "value_template": "{{ value_json.gas if value_json.gas in ['open', 'closed'] else 'None' }}",
            "state_open": "open",
            "state_closed": "closed",
        },
    ),
    Entity(
        "burner",
        "binary_sensor",
        "flame",
        {
            "name": "$Burner flame",
            "device_class": "heat",
            "state_topic": "$state",
            "value_template": "{{ {'on': 'ON', 'off': 'OFF'}.get(value_json.flame, 'None') }}",
            "payload_on": "ON",
            "payload_off": "OFF",
        },
    ),
    Entity(
        "burner",
        "number",
        "timer",
        {
            "name": "$Burner timer",
            "icon": "mdi:timer-outline",
            "command_topic": "$cmd/timer/set",
            "state_topic": "$state",
            # Whole minutes left, rounded up, never above the number's max.
            "value_template": "{{ [((value_json.timer_remaining_s or 0) / 60) | round(0, 'ceil') | int, "
            "$timer_max] | min }}",
            # Home Assistant's default min is 1: 0 (= cancel) must be allowed.
            "min": 0,
            "max": Hello("timer_max_min", 720),
            "step": 1,
            "mode": "box",
            "unit_of_measurement": "min",
        },
    ),
    Entity(
        "burner",
        "sensor",
        "time_left",
        {
            "name": "$Burner time left",
            "device_class": "duration",
            "unit_of_measurement": "s",
            "state_topic": "$state",
            "value_template": "{{ value_json.timer_remaining_s }}",
        },
    ),
    Entity(
        "burner",
        "sensor",
        "timer_end",
        {
            "name": "$Burner timer ends",
            "device_class": "timestamp",
            "state_topic": "$state",
            "value_template": "{{ value_json.timer_deadline or '%s' }}" % NO_TIME,
        },
        # No timer, no end: unavailable (a timestamp sensor given "None"
        # logs "Invalid state message" in Home Assistant before 2024.10).
        availability=(_only_while("timer_deadline"),),
    ),
    Entity(
        "burner",
        "button",
        "timer_plus_10",
        {
            "name": "$Burner timer +10 min",
            "icon": "mdi:timer-plus-outline",
            "command_topic": "$cmd/timer/extend",
            "payload_press": "10",
        },
    ),
    Entity(
        "burner",
        "button",
        "timer_cancel",
        {
            "name": "$Burner timer cancel",
            "icon": "mdi:timer-off-outline",
            "command_topic": "$cmd/timer/cancel",
            "payload_press": "CANCEL",
        },
    ),
    Entity(
        "burner",
        "sensor",
        "thermocouple",
        {
            "name": "$Burner thermocouple",
            "device_class": "voltage",
            "unit_of_measurement": "mV",
            "state_class": "measurement",
            "suggested_display_precision": 1,
            "entity_category": _DIAG,
            "state_topic": "$state",
            "value_template": "{{ value_json.tc_mv }}",
        },
    ),
    Entity(
        "burner",
        "sensor",
        "relay",
        {
            "name": "$Burner relay",
            "icon": "mdi:electric-switch",
            "entity_category": _DIAG,
            "state_topic": "$state",
            "value_template": "{{ value_json.relay }}",
        },
    ),
    Entity(
        "burner",
        "sensor",
        "last_cut",
        {
            "name": "$Burner last cut reason",
            "icon": "mdi:fire-off",
            "entity_category": _DIAG,
            "state_topic": "$state",
            "value_template": "{{ value_json.last_cut_reason or 'none' }}",
        },
    ),
    Entity(
        "burner",
        "binary_sensor",
        "fault",
        {
            "name": "$Burner fault",
            "device_class": "problem",
            "entity_category": _DIAG,
            "state_topic": "$state",
            "value_template": _ON_OFF_FAULT,
            "json_attributes_topic": "$state",
            "json_attributes_template": "{{ {'fault': value_json.fault} | tojson }}",
        },
    ),
    Entity(
        "burner",
        "button",
        "clear_fault",
        {
            "name": "$Burner clear fault",
            "icon": "mdi:restore-alert",
            "entity_category": "config",
            "command_topic": "$cmd/fault/clear",
            "payload_press": "CLEAR",
        },
    ),
    # -- per device -----------------------------------------------------------
    Entity(
        "device",
        "switch",
        "child_lock",
        {
            "name": "Child lock",
            "icon": "mdi:lock",
            "command_topic": "$cmd/lock/set",
            "payload_on": "ON",
            "payload_off": "OFF",
            "state_topic": "$state",
            "value_template": "{{ 'ON' if value_json.locked else 'OFF' }}",
            "state_on": "ON",
            "state_off": "OFF",
        },
    ),
    Entity(
        "device",
        "button",
        "cut_all",
        {
            "name": "Cut all burners",
            "icon": "mdi:fire-off",
            "command_topic": "$cmd/gas/set",
            "payload_press": "CLOSE",
        },
    ),
    Entity(
        "device",
        "binary_sensor",
        "problem",
        {
            "name": "Problem",
            "device_class": "problem",
            "state_topic": "$state",
            "value_template": _ON_OFF_FAULT,
            "json_attributes_topic": "$state",
            "json_attributes_template": "{{ {'fault': value_json.fault} | tojson }}",
        },
    ),
    Entity(
        "device",
        "event",
        "events",
        {
            "name": "Events",
            "icon": "mdi:stove",
            "state_topic": "$event",
            "event_types": EVENT_TYPES,
        },
    ),
    Entity(
        "device",
        "sensor",
        "fault_code",
        {
            "name": "Fault code",
            "icon": "mdi:alert-circle-outline",
            "entity_category": _DIAG,
            "state_topic": "$state",
            "value_template": "{{ value_json.fault or 'none' }}",
        },
    ),
    Entity(
        "device",
        "sensor",
        "uptime",  # the object id of the former uptime sensor: the entity keeps its id
        {
            # A boot time, not an uptime in seconds: it does not change with
            # every heartbeat, so neither does the retained state.
            "name": "Last boot",
            "device_class": "timestamp",
            "entity_category": _DIAG,
            "state_topic": "$state",
            "value_template": "{{ value_json.booted_at or '%s' }}" % NO_TIME,
        },
        availability=(_only_while("booted_at"),),
    ),
    Entity(
        "device",
        "sensor",
        "reset_cause",
        {
            "name": "Last reset cause",
            "icon": "mdi:restart",
            "entity_category": _DIAG,
            "state_topic": "$state",
            "value_template": "{{ value_json.reset_cause }}",
        },
    ),
    Entity(
        "device",
        "sensor",
        "events_dropped",
        {
            "name": "Events dropped",
            "icon": "mdi:counter",
            "entity_category": _DIAG,
            "enabled_by_default": False,
            "state_class": "total_increasing",
            "state_topic": "$state",
            "value_template": "{{ value_json.events_dropped }}",
        },
    ),
    Entity(
        "device",
        "sensor",
        "frames_refused",
        {
            # What the device said that the bridge refused (bad ids, types,
            # numbers): above 0, see the bridge's log.
            "name": "Frames refused",
            "icon": "mdi:message-alert-outline",
            "entity_category": _DIAG,
            "state_class": "total_increasing",
            "state_topic": "$state",
            "value_template": "{{ value_json.frames_refused }}",
        },
    ),
    # -- per device: the guards (docs/guards.md) --------------------------------
    Entity(
        "device",
        "button",
        "presence",
        {
            # "I am here": a sign of a person for the unattended-cooking guard,
            # which also takes back an unattended warning under way.
            "name": "I am here",
            "icon": "mdi:account-check",
            "command_topic": "$cmd/presence/set",
            "payload_press": "ON",
        },
    ),
    Entity(
        "device",
        "sensor",
        "unattended_cut_in",
        {
            # Seconds until the unattended guard cuts, while it is on and a
            # burner burns; unknown otherwise.
            "name": "Unattended cut in",
            "device_class": "duration",
            "unit_of_measurement": "s",
            "icon": "mdi:account-clock",
            "state_topic": "$state",
            "value_template": "{{ value_json.unattended_cut_in_s }}",
        },
    ),
    Entity(
        "device",
        "sensor",
        "unattended_cut_at",
        {
            "name": "Unattended cut at",
            "device_class": "timestamp",
            "icon": "mdi:account-clock",
            "state_topic": "$state",
            "value_template": "{{ value_json.unattended_cut_at or '%s' }}" % NO_TIME,
        },
        # Nothing counting down, no time: unavailable (as the timer's end).
        availability=(_only_while("unattended_cut_at"),),
    ),
    Entity(
        "device",
        "sensor",
        "unattended_min",
        {
            # The unattended guard's setting, from the device's hello: 0 = off.
            "name": "Unattended guard",
            "device_class": "duration",
            "unit_of_measurement": "min",
            "icon": "mdi:account-clock-outline",
            "entity_category": _DIAG,
            "state_topic": "$state",
            "value_template": "{{ value_json.unattended_min }}",
        },
    ),
    Entity(
        "device",
        "binary_sensor",
        "flame_loss_cut",
        {
            # The flame-loss cut's setting, from the device's hello.
            "name": "Flame-loss cut",
            "icon": "mdi:fire-alert",
            "entity_category": _DIAG,
            "state_topic": "$state",
            "value_template": "{{ {true: 'ON', false: 'OFF'}.get(value_json.flame_loss_cut, 'None') }}",
            "payload_on": "ON",
            "payload_off": "OFF",
        },
    ),
    # -- per device, on a board with a network link ----------------------------
    Entity(
        "device",
        "sensor",
        "wifi",
        {
            # connecting, up or down: the board's own view of its Wi-Fi.
            "name": "Wi-Fi link",
            "icon": "mdi:wifi",
            "entity_category": _DIAG,
            "state_topic": "$state",
            "value_template": "{{ value_json.wifi | default('None') }}",
        },
        needs="network",
    ),
    Entity(
        "device",
        "sensor",
        "wifi_signal",
        {
            "name": "Wi-Fi signal",
            "device_class": "signal_strength",
            "unit_of_measurement": "dBm",
            "state_class": "measurement",
            "entity_category": _DIAG,
            "state_topic": "$state",
            # None (unknown) while the link is down.
            "value_template": "{{ value_json.rssi if value_json.rssi is defined and value_json.rssi is number "
            "else 'None' }}",
        },
        needs="network",
    ),
    Entity(
        "device",
        "sensor",
        "net_auth_failures",
        {
            # Connections to the board that ended without the device key:
            # above 0, something on the network tried (docs/security.md).
            "name": "Network login failures",
            "icon": "mdi:shield-alert-outline",
            "entity_category": _DIAG,
            "state_class": "total_increasing",
            "state_topic": "$state",
            "value_template": "{{ value_json.net_auth_failures | default('None') }}",
        },
        needs="network",
    ),
    # -- per device, served over its network link ------------------------------------
    Entity(
        "device",
        "update",
        "firmware",
        {
            # Installed: what the device says it runs; latest: the firmware
            # this bridge ships; install: over the bridge's link (firmware.py).
            "name": "Firmware",
            "device_class": "firmware",
            "entity_category": "config",
            "state_topic": "$cmd/firmware",
            "command_topic": "$cmd/firmware/install",
            "payload_install": "install",
        },
        needs="ota",
    ),
]


@dataclass(frozen=True)
class Topics:
    """Where a device's data lives, from the base topic and ids."""

    base: str
    device: str
    bridge: str

    @property
    def root(self) -> str:
        return f"{self.base}/{self.device}"

    @property
    def availability(self) -> str:
        return f"{self.root}/availability"

    @property
    def bridge_availability(self) -> str:
        return bridge_availability_topic(self.base, self.bridge)

    @property
    def state(self) -> str:
        return f"{self.root}/state"

    @property
    def event(self) -> str:
        return f"{self.root}/event"

    def burner_state(self, burner: str) -> str:
        return f"{self.root}/{burner}/state"


def bridge_availability_topic(base: str, bridge_id: str) -> str:
    return f"{base}/bridge/{bridge_id}/availability"


def bridge_event_topic(base: str, bridge_id: str) -> str:
    """Events of the bridge itself (extension): commands for devices it does
    not serve, devices it quarantined."""
    return f"{base}/bridge/{bridge_id}/event"


def node_id(device_id: str) -> str:
    """The discovery topic level of a device. A valid device id
    (protocol.is_device_id) is its own node id, so two devices never share
    one; anything else is made safe (and the bridge refuses a collision)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", device_id)


def display_name(burner: str) -> str:
    return burner.replace("_", " ").capitalize()


def _expand(value: Any, subs: dict[str, str], hello: dict[str, Any]) -> Any:
    if isinstance(value, str):
        return Template(value).safe_substitute(subs)
    if isinstance(value, Hello):
        found = hello.get(value.key, value.default)
        return found if found is not None else value.default
    if isinstance(value, list):
        return [_expand(v, subs, hello) for v in value]
    if isinstance(value, dict):
        return {k: _expand(v, subs, hello) for k, v in value.items()}
    return value


def device_block(device_id: str, hello: dict[str, Any]) -> dict[str, Any]:
    burners = hello.get("burners") or []
    return {
        "identifiers": [f"hobguard_{device_id}"],
        "name": f"Hob {device_id}",
        "manufacturer": "hobguard",
        "model": f"hobguard gas cut-off, {len(burners)} burner{'s' if len(burners) != 1 else ''}",
        "sw_version": str(hello.get("fw", "")),
        "serial_number": device_id,
    }


ORIGIN = {"name": "hobguard bridge", "sw_version": __version__}


def configs(
    topics: Topics, hello: dict[str, Any], prefix: str = "homeassistant", features: frozenset[str] = frozenset()
) -> dict[str, dict[str, Any]]:
    """Every discovery config for one device that has `features`: {config
    topic: payload dict}."""
    device = device_block(topics.device, hello)
    node = node_id(topics.device)
    timer_max = hello.get("timer_max_min", 720)
    out: dict[str, dict[str, Any]] = {}
    for entity in ENTITIES:
        if entity.needs is not None and entity.needs not in features:
            continue
        if entity.scope == "burner":
            scopes = [(b, f"{b}_{entity.key}") for b in hello.get("burners") or []]
        else:
            scopes = [(None, entity.key)]
        for burner, object_id in scopes:
            subs = {
                "state": topics.burner_state(burner) if burner else topics.state,
                "cmd": f"{topics.root}/{burner}" if burner else topics.root,
                "event": topics.event,
                "burner": burner or "",
                "Burner": display_name(burner) if burner else "",
                "timer_max": json.dumps(timer_max),
            }
            config = _expand(entity.config, subs, hello)
            availability = [{"topic": topics.bridge_availability}, {"topic": topics.availability}]
            availability += [_expand(extra, subs, hello) for extra in entity.availability]
            config.update(
                {
                    "unique_id": f"hobguard_{node}_{object_id}",
                    "device": device,
                    "origin": ORIGIN,
                    "availability": availability,
                    "availability_mode": "all",
                    "payload_available": "online",
                    "payload_not_available": "offline",
                    "qos": 1,
                }
            )
            out[f"{prefix}/{entity.component}/{node}/{object_id}/config"] = config
    return out


def payload(config: dict[str, Any]) -> str:
    return json.dumps(config, separators=(",", ":"), sort_keys=True)
