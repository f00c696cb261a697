"""Home Assistant discovery: one table, one parametrised check over every
entity it produces (the way Home Assistant's own MQTT tests do it)."""

from __future__ import annotations

import json
import re

import pytest
from hobguard.bridge import discovery
from hobguard.bridge.commands import Command, parse_command
from hobguard.bridge.state import burner_states
from hobguard.testing import bridge_on_fake_mqtt, serve_fake_device
from hobguard_fw import protocol
from hypothesis import given
from hypothesis import strategies as st

HELLO = {
    "proto": 1,
    "fw": "0.1.0",
    "device": "hob-1a2b3c",
    "burners": ["left", "right"],
    "timer_max_min": 240,
    "warn_before_s": 60,
    "heartbeat_s": 10,
}
TOPICS = discovery.Topics("hobguard", "hob-1a2b3c", "kitchen")
# Every entity: a device with every feature (a network link).
CONFIGS = discovery.configs(TOPICS, HELLO, "homeassistant", discovery.FEATURES)
ITEMS = sorted(CONFIGS.items())


def component(topic: str) -> str:
    return topic.split("/")[1]


def test_entity_count_matches_the_table() -> None:
    per_burner = sum(1 for e in discovery.ENTITIES if e.scope == "burner")
    per_device = sum(1 for e in discovery.ENTITIES if e.scope == "device")
    assert len(CONFIGS) == per_burner * 2 + per_device


@pytest.mark.parametrize("topic, config", ITEMS, ids=[t for t, _ in ITEMS])
def test_every_entity(topic: str, config: dict) -> None:
    # Per-entity discovery topic: <prefix>/<component>/<node_id>/<object_id>/config
    parts = topic.split("/")
    assert len(parts) == 5 and parts[0] == "homeassistant" and parts[4] == "config"
    assert parts[1] in {"valve", "binary_sensor", "number", "sensor", "button", "switch", "event", "update"}
    assert parts[2] == "hob-1a2b3c"
    assert re.fullmatch(r"[A-Za-z0-9_-]+", parts[3])
    # unique_id, name
    assert config["unique_id"].startswith("hobguard_hob-1a2b3c_")
    assert config["name"] and "$" not in config["name"]
    # Device block
    device = config["device"]
    assert device["identifiers"] == ["hobguard_hob-1a2b3c"]
    assert device["manufacturer"] == "hobguard"
    assert device["sw_version"] == "0.1.0"
    assert device["name"] and device["model"]
    # Availability: the bridge's last will AND the device's heartbeat (and,
    # for an entity that can have nothing to show, its own template).
    assert config["availability"][:2] == [
        {"topic": "hobguard/bridge/kitchen/availability"},
        {"topic": "hobguard/hob-1a2b3c/availability"},
    ]
    for extra in config["availability"][2:]:
        assert extra["topic"] == config["state_topic"] and "value_template" in extra
    assert config["availability_mode"] == "all"
    # No placeholder left anywhere.
    assert "$" not in json.dumps(config)
    # Every state topic is one the bridge publishes.
    for key in ("state_topic", "json_attributes_topic"):
        if key in config:
            assert config[key] in {
                TOPICS.state,
                TOPICS.event,
                TOPICS.burner_state("left"),
                TOPICS.burner_state("right"),
                f"{TOPICS.root}/firmware",
            }
    # Every command this entity can send is one the bridge accepts.
    if "command_topic" in config:
        rest = config["command_topic"].split("/")[2:]
        assert config["command_topic"].startswith("hobguard/hob-1a2b3c/")
        for key in ("payload_press", "payload_close", "payload_on", "payload_off", "payload_install"):
            if config.get(key) is not None:
                result = parse_command(rest, config[key].encode(), False, HELLO["burners"], HELLO["timer_max_min"])
                assert isinstance(result, Command), (key, result)
        if component(topic) == "number":
            for value in (config["min"], config["max"]):
                result = parse_command(rest, str(value).encode(), False, HELLO["burners"], HELLO["timer_max_min"])
                assert isinstance(result, Command)
    # Diagnostics are marked as such.
    if config.get("entity_category"):
        assert config["entity_category"] in ("diagnostic", "config")
    # The payload is valid, compact JSON.
    assert json.loads(discovery.payload(config)) == config


def test_unique_ids_are_unique() -> None:
    ids = [c["unique_id"] for c in CONFIGS.values()]
    assert len(ids) == len(set(ids))


def test_valve_is_close_only() -> None:
    valves = {t: c for t, c in CONFIGS.items() if component(t) == "valve"}
    assert len(valves) == 2
    for config in valves.values():
        assert "payload_open" in config and config["payload_open"] is None
        assert config["payload_close"] == "CLOSE"
        assert config["payload_stop"] is None
        assert config["device_class"] == "gas"
        assert config["reports_position"] is False
        assert config["state_open"] == "open" and config["state_closed"] == "closed"


def test_timer_number_allows_zero_and_device_maximum() -> None:
    number = CONFIGS["homeassistant/number/hob-1a2b3c/left_timer/config"]
    assert number["min"] == 0  # Home Assistant's default would be 1
    assert number["max"] == 240
    assert number["mode"] == "box"
    assert number["unit_of_measurement"] == "min"
    assert number["command_topic"] == "hobguard/hob-1a2b3c/left/timer/set"


def test_event_entity_lists_every_event_type() -> None:
    event = CONFIGS["homeassistant/event/hob-1a2b3c/events/config"]
    assert event["state_topic"] == "hobguard/hob-1a2b3c/event"
    for needed in ("cut", "warning", "fault", "rejected", "ignited", "flame_out", "boot", "cut_verified"):
        assert needed in event["event_types"]


def test_the_update_entity_installs_over_the_network_link_only() -> None:
    update = CONFIGS["homeassistant/update/hob-1a2b3c/firmware/config"]
    assert update["device_class"] == "firmware" and update["entity_category"] == "config"
    assert update["state_topic"] == "hobguard/hob-1a2b3c/firmware"
    assert update["command_topic"] == "hobguard/hob-1a2b3c/firmware/install"
    assert update["payload_install"] == "install"
    # A device the bridge reaches over USB, even one with a network link, has none.
    assert not [t for t in discovery.configs(TOPICS, HELLO, "homeassistant", frozenset({"network"})) if "/update/" in t]


def test_per_device_entities() -> None:
    lock = CONFIGS["homeassistant/switch/hob-1a2b3c/child_lock/config"]
    assert lock["command_topic"] == "hobguard/hob-1a2b3c/lock/set"
    assert CONFIGS["homeassistant/button/hob-1a2b3c/cut_all/config"]["payload_press"] == "CLOSE"
    assert CONFIGS["homeassistant/binary_sensor/hob-1a2b3c/problem/config"]["device_class"] == "problem"
    assert CONFIGS["homeassistant/sensor/hob-1a2b3c/left_thermocouple/config"]["entity_category"] == "diagnostic"
    assert CONFIGS["homeassistant/binary_sensor/hob-1a2b3c/left_flame/config"]["device_class"] == "heat"
    assert CONFIGS["homeassistant/sensor/hob-1a2b3c/left_timer_end/config"]["device_class"] == "timestamp"
    assert CONFIGS["homeassistant/sensor/hob-1a2b3c/left_time_left/config"]["unit_of_measurement"] == "s"
    assert CONFIGS["homeassistant/button/hob-1a2b3c/left_timer_plus_10/config"]["payload_press"] == "10"


def test_the_network_link_entities_exist_only_for_a_board_that_has_one() -> None:
    usb_only = discovery.configs(TOPICS, HELLO, "homeassistant")
    with_link = discovery.configs(TOPICS, HELLO, "homeassistant", frozenset({"network"}))
    network = {t: c for t, c in with_link.items() if t not in usb_only}
    assert sorted(t.split("/")[3] for t in network) == ["net_auth_failures", "wifi", "wifi_signal"]
    assert all(c["entity_category"] == "diagnostic" for c in network.values())
    signal = network["homeassistant/sensor/hob-1a2b3c/wifi_signal/config"]
    assert signal["device_class"] == "signal_strength" and signal["unit_of_measurement"] == "dBm"
    link = network["homeassistant/sensor/hob-1a2b3c/wifi/config"]
    assert render(link["value_template"], {"wifi": "up"}) == "up"
    assert render(signal["value_template"], {"wifi": "up", "rssi": -61}) == "-61"
    assert render(signal["value_template"], {"wifi": "down", "rssi": None}) == "None"  # unknown


def test_entities_that_depend_on_a_feature_wait_for_the_first_state_frame(tmp_path) -> None:
    """Before the device's first state frame the bridge does not know
    whether it has a network link: its Wi-Fi entities are neither added nor
    cleared (a bridge restart must not remove and re-add them); the first
    state frame decides, and a later change of mind is followed."""
    bridge = bridge_on_fake_mqtt(state_file=tmp_path / "state.json", base_topic="hobguard", bridge_id="kitchen")
    view = serve_fake_device(bridge, HELLO)
    wifi = "homeassistant/sensor/hob-1a2b3c/wifi_signal/config"
    bridge.remembered[view.id] = sorted(CONFIGS)  # an earlier run saw a network link

    def announced() -> dict[str, bytes]:
        said = {p.topic: p.payload for p in bridge.mqtt.published if p.topic.startswith("homeassistant/")}
        bridge.mqtt.clear()
        return said

    bridge._announce(False, {view.id})
    first = announced()
    assert wifi not in first and "homeassistant/valve/hob-1a2b3c/left_gas/config" in first
    assert wifi in bridge.remembered[view.id]
    frame = {**FRAME, "device": view.id, "uptime_s": 5, "reset_cause": "power_on", "events_dropped": 0}
    bridge.on_state(view.link, view.id, {**frame, "wifi": "up", "rssi": -60, "net_clients": 1,
                                         "net_auth_failures": 0, "net_frames_refused": 0})  # fmt: skip
    assert view.id in bridge.announcer._devices  # asked for, on the announcer's thread
    bridge._announce(False, {view.id})
    assert json.loads(announced()[wifi])["device_class"] == "signal_strength"
    bridge.on_state(view.link, view.id, frame)  # the board lost its secrets file
    bridge._announce(False, {view.id})
    assert announced()[wifi] == b""  # cleared: Home Assistant removes the entity
    assert wifi not in bridge.remembered[view.id]


def test_one_burner_hob_has_fewer_entities() -> None:
    one = discovery.configs(TOPICS, {**HELLO, "burners": ["main"]})
    assert not any("/left_" in t or "/right_" in t for t in one)
    assert "homeassistant/valve/hob-1a2b3c/main_gas/config" in one


@given(st.from_regex(r"[a-z0-9][a-z0-9_-]{0,31}", fullmatch=True))
def test_a_device_id_is_its_own_node_id(device_id: str) -> None:
    """protocol.is_device_id admits only what a node id may hold, so two
    device ids never share a node id (and with it each other's entities)."""
    assert protocol.is_device_id(device_id)
    assert discovery.node_id(device_id) == device_id
    configs = discovery.configs(discovery.Topics("hobguard", device_id, "b"), HELLO)
    assert all(t.split("/")[2] == device_id for t in configs)


def test_an_id_that_is_no_device_id_still_gives_a_safe_node_id() -> None:
    assert discovery.node_id("hob.kitchen/x+#") == "hob_kitchen_x__"


# -- what the templates read is what the bridge publishes --------------------------


def render(template: str, value_json: dict) -> str:
    """Enough Jinja for the table's templates, via jinja2 when available."""
    jinja2 = pytest.importorskip("jinja2")
    env = jinja2.Environment()
    env.filters.setdefault("tojson", json.dumps)
    return env.from_string(template).render(value_json=value_json)


FRAME = {
    "t": "state",
    "locked": False,
    "fault": None,
    "burners": [
        {
            "id": "left",
            "gas": "open",
            "relay": "closed",
            "flame": "on",
            "tc_mv": 12.3,
            "timer_remaining_s": 61,
            "left_on_cut_in_s": None,
            "last_cut_reason": None,
            "cutting": False,
            "fault": None,
        },
        {
            "id": "right",
            "gas": "unknown",
            "relay": "open",
            "flame": "unknown",
            "tc_mv": None,
            "timer_remaining_s": None,
            "left_on_cut_in_s": None,
            "last_cut_reason": "remote",
            "cutting": True,
            "fault": "cut_failed",
        },
    ],
}


def test_burner_templates_render_what_home_assistant_expects() -> None:
    from datetime import datetime, timezone

    states = burner_states(FRAME, datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc))
    left, right = states["left"], states["right"]

    assert render(CONFIGS["homeassistant/valve/hob-1a2b3c/left_gas/config"]["value_template"], left) == "open"
    assert render(CONFIGS["homeassistant/valve/hob-1a2b3c/right_gas/config"]["value_template"], right) == "None"
    assert render(CONFIGS["homeassistant/binary_sensor/hob-1a2b3c/left_flame/config"]["value_template"], left) == "ON"
    assert (
        render(CONFIGS["homeassistant/binary_sensor/hob-1a2b3c/right_flame/config"]["value_template"], right) == "None"
    )
    assert render(CONFIGS["homeassistant/number/hob-1a2b3c/left_timer/config"]["value_template"], left) == "2"
    assert render(CONFIGS["homeassistant/number/hob-1a2b3c/right_timer/config"]["value_template"], right) == "0"
    assert render(CONFIGS["homeassistant/sensor/hob-1a2b3c/left_timer_end/config"]["value_template"], left) == (
        "2026-01-01T12:01:01+00:00"
    )
    right_end = CONFIGS["homeassistant/sensor/hob-1a2b3c/right_timer_end/config"]
    assert render(right_end["availability"][2]["value_template"], right) == "offline"  # no timer: nothing to show
    assert render(right_end["value_template"], right) == discovery.NO_TIME  # a timestamp all the same
    assert render(CONFIGS["homeassistant/binary_sensor/hob-1a2b3c/right_fault/config"]["value_template"], right) == "ON"
    assert render(CONFIGS["homeassistant/sensor/hob-1a2b3c/right_last_cut/config"]["value_template"], right) == "remote"
