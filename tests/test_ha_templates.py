"""Every Home Assistant template of every entity, rendered (jinja2) with every
state the device can produce, as the bridge publishes it, and checked
against what Home Assistant's MQTT platform does with the result.

The rules below are Home Assistant's MQTT platform code, read (components/
mqtt/{valve,binary_sensor,sensor,number,switch,event}.py): what it takes
silently, and what makes it log. Two levels:

- always: nothing an entity renders makes Home Assistant log a warning or
  an error, with Home Assistant 2024.10 or later (where "None" means
  unknown for every platform);
- in normal operation (every burner's flame known, no fault, no unknown
  value): nothing renders "None" where Home Assistant 2024.1–2024.9 logs
  "Invalid state message" or "Payload … is not one of" for it (timestamp
  sensors, valves).

"Every state the device can produce": hypothesis builds state frames from
the firmware's vocabulary (protocol.py) and ranges; only those that pass
the bridge's own checks (hobguard.bridge.edge) are rendered, since no other frame
reaches MQTT.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hobguard.bridge import discovery, edge
from hobguard.bridge.state import burner_states, device_state, event_payload
from hobguard_fw import protocol
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

jinja2 = pytest.importorskip("jinja2")

HELLO = {
    "proto": 1,
    "fw": "0.1.0",
    "device": "hob-1a2b3c",
    "burners": ["left", "right", "wok"],
    "timer_max_min": 240,
    "warn_before_s": 60,
    "heartbeat_s": 10,
    "unattended_min": 15,
    "flame_loss_cut": True,
}
# What else a device may say hello with about its guards: an older firmware
# says nothing, a misbehaving one says nonsense (the bridge publishes null).
HELLO_GUARDS = st.one_of(
    st.just({}),
    st.fixed_dictionaries({"unattended_min": st.sampled_from([0, 0.5, 10, 720]), "flame_loss_cut": st.booleans()}),
    st.fixed_dictionaries(
        {"unattended_min": st.sampled_from([-1, 721, "15", None, True]), "flame_loss_cut": st.sampled_from(["on", 1])}
    ),
)
TOPICS = discovery.Topics("hobguard", HELLO["device"], "kitchen")
CONFIGS = discovery.configs(TOPICS, HELLO, "homeassistant", discovery.FEATURES)  # every entity
NOW = datetime(2026, 11, 24, 18, 30, 0, tzinfo=timezone(timedelta(hours=1)))

_env = jinja2.Environment(undefined=jinja2.StrictUndefined)
_env.filters["tojson"] = json.dumps  # Home Assistant's own filter of that name


def render(template: str, value_json: Any) -> str:
    # Home Assistant strips the rendered text (parse_result=False).
    return _env.from_string(template).render(value_json=value_json, value=json.dumps(value_json)).strip()


# -- what Home Assistant does with a rendered value ---------------------------------------------

NON_NUMERIC_SENSOR_CLASSES = {None, "enum", "timestamp", "date"}


def numeric_sensor(config: dict) -> bool:
    if config.get("device_class") in ("enum", "timestamp", "date"):
        return False
    return (
        config.get("state_class") is not None
        or config.get("unit_of_measurement") is not None
        or config.get("suggested_display_precision") is not None
        or config.get("device_class") is not None
    )


def _timestamp(text: str) -> bool:
    try:
        return datetime.fromisoformat(text).tzinfo is not None
    except ValueError:
        return False


def _float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def state_problem(component: str, config: dict, rendered: str, normal: bool) -> str | None:
    """None when Home Assistant takes `rendered` as this entity's state
    without a log line above debug (and, in normal operation, on the older
    releases too); else what it would log."""
    if component == "valve":
        if rendered == "":
            return None  # "Ignoring empty state message" (debug)
        if rendered in (config["state_open"], config["state_closed"]):
            return None
        if rendered == "None":
            return "valve: 'None' logs 'is not one of [open, closed…]' before 2024.10" if normal else None
        return f"valve: {rendered!r} is not one of [open, closed, opening, closing] (warning)"
    if component == "binary_sensor":
        if rendered in ("", "None", config.get("payload_on", "ON"), config.get("payload_off", "OFF")):
            return None
        return f"binary_sensor: {rendered!r} matches neither payload (logged)"
    if component == "switch":
        if rendered in ("", "None", config.get("state_on", "ON"), config.get("state_off", "OFF")):
            return None
        return f"switch: {rendered!r} matches neither state"
    if component == "number":
        value = _float(rendered)
        if value is None:
            return f"number: {rendered!r} is not a number (error)"
        if not config["min"] <= value <= config["max"]:
            return f"number: {value} is outside {config['min']}..{config['max']} (error)"
        return None
    if component == "sensor":
        if rendered == "None":
            if config.get("device_class") in ("timestamp", "date") and normal:
                return "sensor: 'None' on a timestamp sensor logs 'Invalid state message' before 2024.10"
            return None
        if numeric_sensor(config):
            if rendered == "":
                return None
            return None if _float(rendered) is not None else f"sensor: {rendered!r} is not numeric (error)"
        if config.get("device_class") == "timestamp":
            return None if _timestamp(rendered) else f"sensor: {rendered!r} logs 'Invalid state message'"
        if len(rendered) > 255:
            return "sensor: state longer than 255 characters (warning)"
        return None
    raise AssertionError(f"no rule for {component}")


# -- every state the device can produce -------------------------------------------------------

words = st.sampled_from
maybe = st.none

burner_frame = st.fixed_dictionaries(
    {
        "gas": words(["open", "closed", "unknown"]),
        "relay": words(["open", "closed"]),
        "flame": words(["on", "off", "unknown"]),
        "tc_mv": st.one_of(maybe(), st.floats(-300, 300, allow_nan=False), st.integers(-6144, 6144)),
        "timer_remaining_s": st.one_of(maybe(), st.integers(0, HELLO["timer_max_min"] * 60)),
        "left_on_cut_in_s": st.one_of(maybe(), st.integers(0, 1440 * 60)),
        "last_cut_reason": st.one_of(maybe(), words(list(protocol.CUT_REASONS))),
        "cutting": st.booleans(),
        "fault": st.one_of(maybe(), words(list(protocol.FAULT_CODES))),
    }
)


network_frame = st.fixed_dictionaries(
    {
        "wifi": words(["connecting", "up", "down"]),
        "rssi": st.one_of(maybe(), st.integers(-128, 0)),
        "net_clients": st.integers(0, 3),
        "net_auth_failures": st.integers(0, 10**6),
        "net_frames_refused": st.integers(0, 10**6),
    }
)


@st.composite
def state_frames(draw: Any) -> dict[str, Any]:
    names = draw(st.lists(words(HELLO["burners"]), min_size=1, max_size=3, unique=True))
    return {
        "t": "state",
        "device": HELLO["device"],
        "locked": draw(st.booleans()),
        "fault": draw(st.one_of(maybe(), words(list(protocol.FAULT_CODES)))),
        "uptime_s": draw(st.integers(0, 10**9)),
        "reset_cause": draw(st.one_of(maybe(), words(["power_on", "watchdog", "hard_reset", "soft_reset"]))),
        "events_dropped": draw(st.integers(0, 10**6)),
        "unattended_cut_in_s": draw(st.one_of(maybe(), st.integers(0, 720 * 60))),
        "burners": [dict(draw(burner_frame), id=name) for name in names],
        **draw(st.one_of(st.just({}), network_frame)),  # a board with a network link, or not
    }


def normal(burner: dict[str, Any] | None, frame: dict[str, Any]) -> bool:
    """Normal operation: every value known, no fault."""
    if frame.get("fault"):
        return False
    parts = [burner] if burner is not None else frame["burners"]
    return all(b["gas"] != "unknown" and b["flame"] != "unknown" and not b.get("fault") for b in parts)


def check_entity(topic: str, config: dict, payloads: dict[str, dict], is_normal: bool) -> list[str]:
    component = topic.split("/")[1]
    problems = []
    if component in ("button", "event"):
        return problems
    payload = payloads[config["state_topic"]]
    rendered = render(config["value_template"], payload)
    problem = state_problem(component, config, rendered, is_normal)
    if problem:
        problems.append(f"{topic}: {problem} (state {json.dumps(payload)[:300]})")
    if "json_attributes_template" in config:
        attributes = json.loads(render(config["json_attributes_template"], payloads[config["json_attributes_topic"]]))
        if not isinstance(attributes, dict):
            problems.append(f"{topic}: attributes are not a JSON object")
    for entry in config["availability"][2:]:
        said = render(entry["value_template"], payloads[entry["topic"]])
        if said not in ("online", "offline"):
            problems.append(f"{topic}: availability template renders {said!r}")
    return problems


def published(frame: dict[str, Any], hello: dict[str, Any] | None = None) -> dict[str, dict]:
    """What the bridge publishes from `frame` (from a device that said
    `hello`): state topic → payload."""
    said = {**HELLO, **(hello or {})} if hello is not None else HELLO
    if hello == {}:  # an older firmware: no guard settings in its hello
        said = {k: v for k, v in HELLO.items() if k not in ("unattended_min", "flame_loss_cut")}
    out = {TOPICS.state: json.loads(json.dumps(device_state(frame, said, "/dev/ttyUSB0", NOW)))}
    for burner, state in burner_states(frame, NOW).items():
        out[TOPICS.burner_state(burner)] = json.loads(json.dumps(state))
    return out


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=state_frames(), hello=HELLO_GUARDS)
def test_every_template_renders_what_home_assistant_takes_for_every_state(
    frame: dict[str, Any], hello: dict[str, Any]
) -> None:
    assert edge.state_problem(frame, HELLO) is None, "the strategy must build frames the bridge lets through"
    payloads = published(frame, hello)
    present = set(payloads)
    by_burner = {b["id"]: b for b in frame["burners"]}
    problems: list[str] = []
    for topic, config in sorted(CONFIGS.items()):
        if config.get("state_topic") not in present:
            continue  # that burner was not in this frame
        burner = next((b for name, b in by_burner.items() if f"/{name}_" in topic), None)
        problems += check_entity(topic, config, payloads, normal(burner, frame))
    assert not problems, "\n".join(problems)


def test_no_timer_running_is_normal_and_quiet() -> None:
    """The case Home Assistant used to log on every heartbeat: no timer."""
    frame = {
        "t": "state", "device": HELLO["device"], "locked": False, "fault": None, "uptime_s": 5,
        "reset_cause": "power_on", "events_dropped": 0,
        "burners": [{"id": "left", "gas": "closed", "relay": "closed", "flame": "off", "tc_mv": 0.2,
                     "timer_remaining_s": None, "left_on_cut_in_s": None, "last_cut_reason": None,
                     "cutting": False, "fault": None}],
    }  # fmt: skip
    payloads = published(frame)
    config = CONFIGS["homeassistant/sensor/hob-1a2b3c/left_timer_end/config"]
    assert check_entity("homeassistant/sensor/hob-1a2b3c/left_timer_end/config", config, payloads, True) == []
    # While no timer runs the end-time entity says it has nothing to show.
    assert render(config["availability"][2]["value_template"], payloads[TOPICS.burner_state("left")]) == "offline"
    frame["burners"][0]["timer_remaining_s"] = 90
    payloads = published(frame)
    assert render(config["availability"][2]["value_template"], payloads[TOPICS.burner_state("left")]) == "online"
    assert render(config["value_template"], payloads[TOPICS.burner_state("left")]) == "2026-11-24T18:31:30+01:00"


def test_the_unattended_countdown_is_quiet_while_nothing_counts() -> None:
    """No unattended countdown (guard off, nothing burning): the duration is
    unknown, the end time unavailable, nothing logged; while it counts, both
    say when; the guard's settings show as the device said hello."""
    frame = {
        "t": "state", "device": HELLO["device"], "locked": False, "fault": None, "uptime_s": 5,
        "reset_cause": "power_on", "events_dropped": 0, "unattended_cut_in_s": None,
        "burners": [{"id": "left", "gas": "open", "relay": "closed", "flame": "on", "tc_mv": 11.2,
                     "timer_remaining_s": None, "left_on_cut_in_s": None, "last_cut_reason": None,
                     "cutting": False, "fault": None}],
    }  # fmt: skip
    cut_in = "homeassistant/sensor/hob-1a2b3c/unattended_cut_in/config"
    cut_at = "homeassistant/sensor/hob-1a2b3c/unattended_cut_at/config"
    payloads = published(frame)
    for topic in (cut_in, cut_at):
        assert check_entity(topic, CONFIGS[topic], payloads, True) == []
    assert render(CONFIGS[cut_in]["value_template"], payloads[TOPICS.state]) == "None"  # unknown
    assert render(CONFIGS[cut_at]["availability"][2]["value_template"], payloads[TOPICS.state]) == "offline"
    frame["unattended_cut_in_s"] = 840
    payloads = published(frame)
    for topic in (cut_in, cut_at):
        assert check_entity(topic, CONFIGS[topic], payloads, True) == []
    assert render(CONFIGS[cut_in]["value_template"], payloads[TOPICS.state]) == "840"
    assert render(CONFIGS[cut_at]["availability"][2]["value_template"], payloads[TOPICS.state]) == "online"
    assert render(CONFIGS[cut_at]["value_template"], payloads[TOPICS.state]) == "2026-11-24T18:44:00+01:00"
    guard = CONFIGS["homeassistant/sensor/hob-1a2b3c/unattended_min/config"]
    flame_loss = CONFIGS["homeassistant/binary_sensor/hob-1a2b3c/flame_loss_cut/config"]
    assert render(guard["value_template"], payloads[TOPICS.state]) == "15"
    assert render(flame_loss["value_template"], payloads[TOPICS.state]) == "ON"
    older = published(frame, {})  # a firmware from before the guards: unknown, not wrong
    assert render(guard["value_template"], older[TOPICS.state]) == "None"
    assert render(flame_loss["value_template"], older[TOPICS.state]) == "None"
    off = published(frame, {"unattended_min": 0, "flame_loss_cut": False})
    assert render(guard["value_template"], off[TOPICS.state]) == "0"
    assert render(flame_loss["value_template"], off[TOPICS.state]) == "OFF"


def test_the_rules_catch_what_home_assistant_logs() -> None:
    """The checker itself: each rule fails on a value Home Assistant logs."""
    timer_end = CONFIGS["homeassistant/sensor/hob-1a2b3c/left_timer_end/config"]
    assert state_problem("sensor", timer_end, "None", normal=True)
    assert state_problem("sensor", timer_end, "2026-11-24T18:31:30", normal=True)  # no offset
    valve = CONFIGS["homeassistant/valve/hob-1a2b3c/left_gas/config"]
    assert state_problem("valve", valve, "unknown", normal=False)
    assert state_problem("valve", valve, "None", normal=True)
    number = CONFIGS["homeassistant/number/hob-1a2b3c/left_timer/config"]
    assert state_problem("number", number, str(HELLO["timer_max_min"] + 1), normal=True)
    thermo = CONFIGS["homeassistant/sensor/hob-1a2b3c/left_thermocouple/config"]
    assert state_problem("sensor", thermo, "warm", normal=True)
    assert state_problem("sensor", CONFIGS["homeassistant/sensor/hob-1a2b3c/reset_cause/config"], "x" * 256, True)


@pytest.mark.parametrize("event_type", list(protocol.EVENT_TYPES) + list(protocol.BRIDGE_EVENT_TYPES))
def test_every_event_the_bridge_can_publish_is_one_the_event_entity_takes(event_type: str) -> None:
    """Home Assistant's event entity logs and drops an event whose type it
    was not told about: every type that passes the bridge's checks is listed."""
    entity = CONFIGS["homeassistant/event/hob-1a2b3c/events/config"]
    frame = {"t": "evt", "event_type": event_type, "burner": "left", "reason": "timer", "seq": 3}
    if event_type in protocol.EVENT_TYPES:
        assert edge.event_problem(frame, HELLO) is None
    event = event_payload(frame, HELLO["device"], NOW)
    assert event["event_type"] in entity["event_types"]


def test_an_event_type_the_entity_does_not_know_is_refused_at_the_edge() -> None:
    entity = CONFIGS["homeassistant/event/hob-1a2b3c/events/config"]
    frame = {"t": "evt", "event_type": "teleported", "seq": 3}
    assert "teleported" not in entity["event_types"]
    assert edge.event_problem(frame, HELLO) is not None
