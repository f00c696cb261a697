"""Home Assistant blueprints and the dashboard card (homeassistant/).

Each blueprint: the YAML parses; its `blueprint:` block has the keys and
forms Home Assistant's blueprint schema demands (components/blueprint/
schemas.py: name, domain, input with name/description/default/selector,
min_version as major.minor.patch); every `!input` it uses is declared
and every input declared is used; its automation keys are an automation's.
Then it runs (tests/ha_runtime.py: its templates rendered with Jinja the
way Home Assistant renders them) against events and states as the bridge
publishes them (hobguard.bridge.state, with the discovery table's own
templates turning burner states into entity states), and must yield the
expected service calls: the notification's title and message are exactly
hobguard.words.notification's, the presence message is the contract's
topic and payload, the range hood follows the flames.

The card names only entities the discovery table makes.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO
from ha_runtime import Hass, Input, declared_inputs, inputs_used, load, mqtt_matches, substitute
from hobguard import words
from hobguard.bridge import discovery
from hobguard.bridge.commands import Command, parse_command
from hobguard.bridge.state import burner_states, dumps, event_payload
from hobguard_fw import protocol

BLUEPRINTS = REPO / "homeassistant" / "blueprints" / "automation" / "hobguard"
CARD = REPO / "homeassistant" / "dashboards" / "hob_card.yaml"
NOW = datetime(2026, 11, 24, 18, 30, tzinfo=timezone(timedelta(hours=1)))
DEVICE = "hob-1a2b3c"
HELLO = {"proto": 1, "fw": "0.1.0", "device": DEVICE, "burners": ["left", "right"], "timer_max_min": 720,
         "warn_before_s": 60, "heartbeat_s": 10, "unattended_min": 15, "flame_loss_cut": True}  # fmt: skip
HOB_DEVICE = "d0b0e0c0hob"  # Home Assistant's device id of the hob (a registry id)

# -- Home Assistant's blueprint schema (components/blueprint/schemas.py) ------------------------

SELECTORS = {
    "action", "area", "boolean", "color_rgb", "color_temp", "condition", "date", "datetime", "device", "duration",
    "entity", "floor", "icon", "label", "number", "object", "select", "state", "target", "template", "text", "time",
    "trigger",
}  # fmt: skip
BLUEPRINT_KEYS = {"name", "description", "domain", "source_url", "author", "homeassistant", "input"}
INPUT_KEYS = {"name", "description", "default", "selector"}
AUTOMATION_KEYS = {
    "id", "alias", "description", "triggers", "conditions", "actions", "mode", "max", "max_exceeded",
    "variables", "trigger_variables", "initial_state", "trace",
}  # fmt: skip
MODES = {"single", "restart", "queued", "parallel"}


def schema_problems(doc: Any) -> list[str]:
    problems = []
    if not isinstance(doc, dict) or not isinstance(doc.get("blueprint"), dict):
        return ["no blueprint: block"]
    meta = doc["blueprint"]
    problems += [f"blueprint: unknown key {k!r}" for k in set(meta) - BLUEPRINT_KEYS]
    for key in ("name", "domain"):
        if not isinstance(meta.get(key), str) or not meta[key]:
            problems.append(f"blueprint: {key} is required text")
    if meta.get("domain") != "automation":
        problems.append("blueprint: domain must be automation here")
    version = (meta.get("homeassistant") or {}).get("min_version")
    if version is not None and not (isinstance(version, str) and re.fullmatch(r"\d+\.\d+\.\d+", version)):
        problems.append(f"blueprint: min_version {version!r} is not major.minor.patch text")
    for name, spec in declared_inputs(doc).items():
        if not isinstance(spec, dict):
            problems.append(f"input {name}: not a mapping")
            continue
        problems += [f"input {name}: unknown key {k!r}" for k in set(spec) - INPUT_KEYS]
        for key in ("name", "description"):
            if key in spec and not isinstance(spec[key], str):
                problems.append(f"input {name}: {key} must be text")
        selector = spec.get("selector")
        if not isinstance(selector, dict) or len(selector) != 1 or next(iter(selector)) not in SELECTORS:
            problems.append(f"input {name}: selector must be one of Home Assistant's selectors")
    used, declared = inputs_used(doc), set(declared_inputs(doc))
    problems += [f"!input {n} is not declared" for n in sorted(used - declared)]
    problems += [f"input {n} is never used" for n in sorted(declared - used)]
    problems += [f"automation: unknown key {k!r}" for k in set(doc) - AUTOMATION_KEYS - {"blueprint"}]
    if not doc.get("triggers") or not doc.get("actions"):
        problems.append("automation: triggers and actions are required")
    if doc.get("mode", "single") not in MODES:
        problems.append(f"automation: mode {doc.get('mode')!r}")
    return problems


PATHS = sorted(BLUEPRINTS.glob("*.yaml"))


def test_the_three_blueprints_are_there() -> None:
    assert {p.stem for p in PATHS} == {"presence", "notify", "range_hood"}


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_each_blueprint_has_the_schema_home_assistant_requires(path: Path) -> None:
    assert schema_problems(load(path)) == []


def test_the_schema_check_can_fail() -> None:
    doc = load(BLUEPRINTS / "presence.yaml")
    doc["blueprint"]["homeassistant"]["min_version"] = "2024.10"
    doc["blueprint"]["input"]["sensors"]["selector"] = {"sensor": {}}
    doc["blueprint"]["input"]["spare"] = {"name": "x", "selector": {"text": {}}}
    doc["actions"].append({"action": "mqtt.publish", "data": {"topic": Input("nowhere")}})
    doc["blueprint"].pop("name")
    problems = schema_problems(doc)
    for words_ in ("min_version", "sensors: selector", "!input nowhere", "spare is never used", "name is required"):
        assert any(words_ in p for p in problems), (words_, problems)


def test_the_blueprints_words_are_generated_from_the_renderer() -> None:
    """tools/blueprint_words.py --check: the copy of hobguard.words in the
    notification blueprint is what the tool writes from the tables now."""
    run = subprocess.run([sys.executable, str(REPO / "tools" / "blueprint_words.py"), "--check"],
                         capture_output=True, text=True)  # fmt: skip
    assert run.returncode == 0, run.stderr
    doc = load(BLUEPRINTS / "notify.yaml")
    assert doc["variables"]["cut_words"] == words.CUT_REASON_WORDS
    assert doc["variables"]["warning_words"] == words.WARNING_WORDS
    assert doc["variables"]["fault_words"] == words.FAULT_WORDS
    assert doc["variables"]["sign_words"] == words.SIGN_WORDS


def test_a_stale_copy_of_the_words_is_caught(tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO / "tools"))
    try:
        import blueprint_words
    finally:
        sys.path.remove(str(REPO / "tools"))
    text = (BLUEPRINTS / "notify.yaml").read_text()
    assert blueprint_words.updated(text) == text
    stale = text.replace('"the timer ran out"', '"time is up"')
    assert blueprint_words.updated(stale) == text


# -- events as the bridge publishes them ------------------------------------------------------


def sample_events() -> list[dict[str, Any]]:
    """Every event type with every reason the vocabulary has for it, and the
    fields the device adds (docs/protocol.md), through the bridge's own
    event_payload(); plus the bridge's own events."""
    frames: list[dict[str, Any]] = []
    for reason in protocol.CUT_REASONS:
        frame = {"event_type": "cut", "burner": "left", "reason": reason, "flame": True}
        if reason == "flame_lost":
            frame["detail"] = words.FLAME_LOST_DETAIL
        frames.append(frame)
    frames.append({"event_type": "cut", "burner": "back_left", "reason": "flame_lost"})  # no detail (older device)
    for reason in ("timer", "left_on", "unattended", "fault"):
        frames.append({"event_type": "warning", "burner": "right", "reason": reason, "cut_in_s": 60})
    for reason in ("settings_invalid", "secrets_invalid", "network_unavailable", "lock_not_saved"):
        frames.append({"event_type": "warning", "reason": reason, "errors": ["left_on_min: a number, not 'x'"]})
    frames.append({"event_type": "warning", "reason": "settings_invalid"})
    for sign in ("presence", "button", "lit", "turned", "timer", "wink"):
        frames.append({"event_type": "warning_cancelled", "burner": "left", "reason": "unattended", "sign": sign})
    for sign in ("button", "turned"):  # review F2/F10: a left-on warning taken back at the hob
        frames.append({"event_type": "warning_cancelled", "burner": "left", "reason": "left_on", "sign": sign})
    # review F1: the readings came back before the fault cut (no sign: no person)
    frames.append({"event_type": "warning_cancelled", "burner": "left", "reason": "fault",
                   "detail": "the thermocouple reads again"})  # fmt: skip
    for code in protocol.FAULT_CODES:
        frames.append({"event_type": "fault", "burner": "left", "reason": code, "detail": "flame still on after 30 s"})
    frames.append({"event_type": "fault", "reason": "crash"})
    frames.append({"event_type": "cut", "burner": "left", "reason": "gremlin"})  # a newer device's word
    for kind in protocol.EVENT_TYPES:
        if kind not in ("cut", "warning", "warning_cancelled", "fault"):
            frames.append({"event_type": kind, "burner": "left", "reason": None})
    out = []
    for seq, frame in enumerate(frames, 1):
        out.append(event_payload(dict(frame, t="evt", seq=seq), DEVICE, NOW))
    out.append({"event_type": "rejected", "burner": None, "reason": "retained", "source": "bridge",
                "device": DEVICE, "time": NOW.isoformat()})  # fmt: skip
    return out


def notify_automation(**inputs: Any) -> dict[str, Any]:
    return substitute(load(BLUEPRINTS / "notify.yaml"), {"notify_action": "notify.mobile_app_phone", **inputs})


def publish(hass: Hass, automation: dict[str, Any], event: dict[str, Any], base: str = "hobguard"):
    topic = f"{base}/{event.get('device')}/event"
    return hass.fire(automation, {"trigger": "mqtt", "topic": topic, "payload": dumps(event)})


def test_the_notification_says_what_the_renderer_says_for_every_event() -> None:
    hass = Hass()
    automation = notify_automation()
    said = set()
    for event in sample_events():
        run = publish(hass, automation, event)
        assert run.triggered, event
        expected = words.notification(event)
        if expected is None:
            assert run.calls == [], (event, run.calls)
            continue
        assert [c.action for c in run.calls] == ["notify.mobile_app_phone"], event
        data = run.calls[0].data
        assert data == {"title": expected["title"], "message": expected["message"]}, event
        assert run.variables["level"] == expected["level"], event
        said.add(event["event_type"])
    assert said == {"cut", "warning", "warning_cancelled", "fault"}


def test_the_words_a_person_reads() -> None:
    """A few notifications in full: the reason in words, a calm flame-loss
    cut, advice where there is something to do."""
    by = {
        (e["event_type"], e.get("reason"), e.get("sign")): e for e in sample_events() if e.get("burner") != "back_left"
    }
    hass = Hass()
    automation = notify_automation()

    def said(key: tuple) -> dict[str, Any]:
        return publish(hass, automation, by[key]).calls[0].data

    assert said(("cut", "unattended", None)) == {
        "title": f"Hob {DEVICE}: left gas cut",
        "message": "Left: gas cut: nobody was at the hob.",
    }
    calm = said(("cut", "flame_lost", None))
    assert calm["title"] == f"Hob {DEVICE}: left flame out, gas cut"
    assert calm["message"].startswith(
        "Left: the flame went out; gas cut to be sure. Nothing to do if you turned it off"
    )
    assert "FAULT" not in calm["title"] and "!" not in calm["message"]
    assert said(("warning", "unattended", None)) == {
        "title": f"Hob {DEVICE}: right gas cut in 60 s",
        "message": "Right: nobody seen at the hob. Press the hob's button, or say you are here, to keep cooking.",
    }
    assert said(("warning_cancelled", "unattended", "presence"))["message"] == (
        "Left: no cut, someone was seen at the hob."
    )
    assert said(("fault", "cut_failed", None))["message"] == (
        "Left: a cut did not put the flame out (flame still on after 30 s). Gas may still be flowing: turn the knob"
        " off by hand and have the hob checked."
    )


def test_each_kind_of_notification_can_be_turned_off() -> None:
    hass = Hass()
    events = sample_events()
    for switch, picks in (
        ("cuts", lambda e: e["event_type"] == "cut" and e["reason"] != "flame_lost"),
        ("flame_lost", lambda e: e["event_type"] == "cut" and e["reason"] == "flame_lost"),
        ("warnings", lambda e: e["event_type"] == "warning"),
        ("taken_back", lambda e: e["event_type"] == "warning_cancelled"),
        ("faults", lambda e: e["event_type"] == "fault"),
    ):
        automation = notify_automation(**{switch: False})
        for event in events:
            run = publish(hass, automation, event)
            told = bool(run.calls)
            assert told == (words.notification(event) is not None and not picks(event)), (switch, event)


def test_notifications_only_for_the_hobs_chosen() -> None:
    hass = Hass()
    hass.devices = {HOB_DEVICE: {"serial_number": DEVICE}, "other": {"serial_number": "hob-999999"}}
    cut = next(e for e in sample_events() if e["event_type"] == "cut")
    assert publish(hass, notify_automation(hobs=[HOB_DEVICE]), cut).calls
    assert not publish(hass, notify_automation(hobs=["other"]), cut).calls
    assert publish(hass, notify_automation(hobs=["other", HOB_DEVICE]), cut).calls


def test_the_notification_listens_on_the_contracts_event_topic() -> None:
    automation = notify_automation(base_topic="kitchen/hobguard")
    hass = Hass()
    cut = next(e for e in sample_events() if e["event_type"] == "cut")
    assert publish(hass, automation, cut, base="kitchen/hobguard").calls
    # Not the bridge's own topic (<base>/bridge/<bridge>/event), not another base.
    bridge_topic = discovery.bridge_event_topic("kitchen/hobguard", "kitchen-pi")
    assert not hass.fire(automation, {"trigger": "mqtt", "topic": bridge_topic, "payload": dumps(cut)}).triggered
    assert not publish(hass, automation, cut, base="hobguard").triggered
    topics = discovery.Topics("kitchen/hobguard", DEVICE, "kitchen-pi")
    assert mqtt_matches("kitchen/hobguard/+/event", topics.event)


# -- presence from motion and occupancy --------------------------------------------------------


def presence_automation(**inputs: Any) -> dict[str, Any]:
    values = {"hob": HOB_DEVICE, "sensors": ["binary_sensor.kitchen_motion", "binary_sensor.kitchen_occupancy"]}
    return substitute(load(BLUEPRINTS / "presence.yaml"), {**values, **inputs})


def presence_hass() -> Hass:
    hass = Hass()
    hass.devices = {HOB_DEVICE: {"serial_number": DEVICE, "manufacturer": "hobguard"}, "lamp": {}}
    hass.set("binary_sensor.kitchen_motion", "off")
    hass.set("binary_sensor.kitchen_occupancy", "off")
    return hass


def test_motion_sends_presence_at_once_on_the_contracts_topic() -> None:
    hass = presence_hass()
    run = hass.fire_state(presence_automation(), "binary_sensor.kitchen_motion", "on",
                          on_delay=lambda s: hass.set("binary_sensor.kitchen_motion", "off"))  # fmt: skip
    assert [c.action for c in run.calls] == ["mqtt.publish"]
    data = run.calls[0].data
    assert data == {"topic": f"hobguard/{DEVICE}/presence/set", "payload": "ON", "qos": 1, "retain": False}
    # What the bridge makes of it: the device's presence command.
    rest = data["topic"].split("/")[2:]
    command = parse_command(rest, data["payload"].encode(), data["retain"], HELLO["burners"], 720)
    assert isinstance(command, Command) and command.device_cmd == "presence"


def test_while_someone_stays_presence_is_said_again_every_few_minutes() -> None:
    hass = presence_hass()
    waited: list[float] = []

    def time_passes(seconds: float) -> None:
        waited.append(seconds)
        if len(waited) == 4:  # the cook leaves after four rounds
            hass.set("binary_sensor.kitchen_occupancy", "off")

    run = hass.fire_state(presence_automation(every_min=3), "binary_sensor.kitchen_occupancy", "on",
                          on_delay=time_passes)  # fmt: skip
    assert len(run.calls) == 4 and all(c.data["topic"].endswith("/presence/set") for c in run.calls)
    assert waited == [180.0] * 4
    kinds = [kind for kind, _ in run.steps]
    assert kinds == ["call", "delay"] * 4, "said at once, then every 3 minutes"


def test_after_a_restart_presence_resumes_only_if_someone_is_there() -> None:
    hass = presence_hass()
    automation = presence_automation()
    run = hass.fire(automation, {"trigger": "homeassistant", "event": "start"})
    assert run.passed and run.calls == []
    hass.set("binary_sensor.kitchen_occupancy", "on")
    run = hass.fire(automation, {"trigger": "homeassistant", "event": "start"},
                    on_delay=lambda s: hass.set("binary_sensor.kitchen_occupancy", "off"))  # fmt: skip
    assert len(run.calls) == 1


def test_presence_needs_a_hobguard_hob_and_follows_the_base_topic() -> None:
    hass = presence_hass()
    run = hass.fire_state(presence_automation(hob="lamp"), "binary_sensor.kitchen_motion", "on")
    assert run.triggered and not run.passed and run.calls == []
    hass.set("binary_sensor.kitchen_motion", "off")
    run = hass.fire_state(presence_automation(base_topic="kitchen/hobguard"), "binary_sensor.kitchen_motion", "on",
                          on_delay=lambda s: hass.set("binary_sensor.kitchen_motion", "off"))  # fmt: skip
    assert run.calls[0].data["topic"] == f"kitchen/hobguard/{DEVICE}/presence/set"


def test_presence_ignores_sensors_turning_off() -> None:
    hass = presence_hass()
    hass.set("binary_sensor.kitchen_motion", "on")
    run = hass.fire_state(presence_automation(), "binary_sensor.kitchen_motion", "off")
    assert not run.triggered


# -- the range hood follows the flames ---------------------------------------------------------


def slugify(text: str) -> str:
    """Home Assistant's entity id from a name (util.slugify, for these names)."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def entity_ids(device_name: str = "Kitchen hob", hello: dict[str, Any] | None = None) -> dict[str, dict]:
    """entity id → discovery config, as Home Assistant names the entities
    of a hob whose device is called `device_name`."""
    topics = discovery.Topics("hobguard", DEVICE, "kitchen")
    out = {}
    for topic, config in discovery.configs(topics, hello or HELLO, "homeassistant", discovery.FEATURES).items():
        component = topic.split("/")[1]
        out[f"{component}.{slugify(device_name + ' ' + config['name'])}"] = config
    return out


ENTITIES = entity_ids()
FLAMES = ["binary_sensor.kitchen_hob_left_flame", "binary_sensor.kitchen_hob_right_flame"]
HOOD = "fan.range_hood"


def flame_states(frame_burners: dict[str, str]) -> dict[str, str]:
    """Each flame entity's state from burner states as the bridge publishes
    them, through the discovery table's own template."""
    import jinja2

    frame = {
        "t": "state", "device": DEVICE, "locked": False, "fault": None, "uptime_s": 60,
        "burners": [{"id": b, "gas": "open" if f == "on" else "closed", "relay": "closed", "flame": f,
                     "tc_mv": 11.0 if f == "on" else 0.3, "timer_remaining_s": None, "left_on_cut_in_s": None,
                     "last_cut_reason": None, "cutting": False, "fault": None} for b, f in frame_burners.items()],
    }  # fmt: skip
    out = {}
    for burner, state in burner_states(frame, NOW).items():
        config = ENTITIES[f"binary_sensor.kitchen_hob_{burner}_flame"]
        value = json.loads(dumps(state))
        rendered = jinja2.Environment().from_string(config["value_template"]).render(value_json=value).strip()
        out[f"binary_sensor.kitchen_hob_{burner}_flame"] = {"ON": "on", "OFF": "off"}.get(rendered, "unknown")
    return out


def hood_automation(**inputs: Any) -> dict[str, Any]:
    return substitute(load(BLUEPRINTS / "range_hood.yaml"), {"flames": FLAMES, "hood": HOOD, **inputs})


def test_the_flame_entities_the_hood_watches_exist() -> None:
    assert all(e in ENTITIES for e in FLAMES)
    assert flame_states({"left": "on", "right": "off"}) == {FLAMES[0]: "on", FLAMES[1]: "off"}
    assert flame_states({"left": "unknown", "right": "off"})[FLAMES[0]] == "unknown"


def test_the_hood_follows_the_flames() -> None:
    hass = Hass()
    automation = hood_automation()
    hass.set(HOOD, "off")
    for entity, state in flame_states({"left": "off", "right": "off"}).items():
        hass.set(entity, state)
    # The left burner lights: the hood starts at once.
    lit = flame_states({"left": "on", "right": "off"})
    run = hass.fire_state(automation, FLAMES[0], lit[FLAMES[0]])
    assert [(c.action, c.target) for c in run.calls] == [("homeassistant.turn_on", {"entity_id": HOOD})]
    assert run.delays == []
    hass.set(HOOD, "on")
    # The right one too: already running, nothing to do.
    run = hass.fire_state(automation, FLAMES[1], "on")
    assert run.triggered and run.calls == []
    # Left out, right still burning: the hood keeps running.
    run = hass.fire_state(automation, FLAMES[0], "off")
    assert run.calls == [] and run.delays == []
    # Every flame out: it runs on for 10 minutes, then stops.
    run = hass.fire_state(automation, FLAMES[1], "off")
    assert run.steps == [("delay", 600.0), ("call", run.calls[0])]
    assert (run.calls[0].action, run.calls[0].target) == ("homeassistant.turn_off", {"entity_id": HOOD})


def test_the_hood_keeps_running_while_a_flame_is_unknown() -> None:
    """The hob or its bridge offline: a flame unavailable is not a flame out."""
    hass = Hass()
    automation = hood_automation(run_on_min=5)
    hass.set(HOOD, "on")
    hass.set(FLAMES[0], "unavailable")
    run = hass.fire_state(automation, FLAMES[1], "off")
    assert run.triggered and run.calls == [] and run.delays == []
    run = hass.fire_state(automation, FLAMES[0], "off")
    assert run.delays == [300.0] and run.calls[0].action == "homeassistant.turn_off"


# -- the dashboard card --------------------------------------------------------------------------


def card_entities(node: Any) -> list[str]:
    """Every entity id a card names (entity rows, targets of actions)."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("entity", "entity_id") and isinstance(value, str):
                found.append(value)
            elif key in ("entity", "entity_id") and isinstance(value, list):
                found += value
            else:
                found += card_entities(value)
    elif isinstance(node, list):
        for item in node:
            found += [item] if isinstance(item, str) and "." in item and " " not in item else card_entities(item)
    return found


def test_the_card_names_only_entities_the_bridge_announces() -> None:
    import yaml

    card = yaml.safe_load(CARD.read_text())
    named = card_entities(card)
    assert len(named) >= 20
    missing = [e for e in named if e not in ENTITIES]
    assert missing == [], f"not in the discovery table (as 'Kitchen hob'): {missing}"
    # Each burner's flame, countdown and cut button.
    for burner in ("left", "right"):
        assert f"binary_sensor.kitchen_hob_{burner}_flame" in named
        assert f"sensor.kitchen_hob_{burner}_timer_ends" in named
        assert f"valve.kitchen_hob_{burner}_gas" in named
    actions = [n for n in _walk(card) if isinstance(n, dict) and "perform_action" in n]
    assert actions and all(a["perform_action"] == "valve.close_valve" for a in actions)
    assert "open_valve" not in CARD.read_text()


def test_the_card_check_can_fail() -> None:
    named = card_entities({"entities": [{"entity": "sensor.kitchen_hob_left_temperature"}, "switch.kitchen_hob_x"]})
    assert named == ["sensor.kitchen_hob_left_temperature", "switch.kitchen_hob_x"]
    assert not any(e in ENTITIES for e in named)


def _walk(node: Any):
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def test_the_home_assistant_page_names_only_entities_that_exist() -> None:
    """The examples in docs/home-assistant.md: every `<domain>.kitchen_hob_…`
    entity they name is one the bridge announces (as 'Kitchen hob')."""
    text = (REPO / "docs" / "home-assistant.md").read_text()
    named = set(re.findall(r"\b([a-z_]+\.kitchen_hob_[a-z0-9_]+)", text))
    assert len(named) >= 10
    assert sorted(n for n in named if n not in ENTITIES) == []


def test_every_sign_the_firmware_gives_has_words() -> None:
    """The signs of a person the control core names in `warning_cancelled`
    (its calls of `_person(now, SIGN)`) are all said in words."""
    core = (REPO / "firmware" / "hobguard_fw" / "core.py").read_text()
    signs = set(re.findall(r'_(?:person|left_on_sign)\((?:burner, )?now, "([a-z_]+)"\)', core))
    # (a timer command is no sign of a person: review F2)
    assert signs == {"presence", "button", "lit", "turned"}
    assert signs <= set(words.SIGN_WORDS)


def test_the_card_in_the_docs_is_the_card_in_the_repository() -> None:
    import yaml

    text = (REPO / "docs" / "home-assistant.md").read_text()
    section = text[text.index("## A dashboard card") :]
    block = section[section.index("```yaml\n") + 8 : section.index("```", section.index("```yaml\n") + 8)]
    assert yaml.safe_load(block) == yaml.safe_load(CARD.read_text())
