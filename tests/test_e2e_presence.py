"""End to end, the unattended-cooking guard through MQTT: a throwaway
Mosquitto, the bridge, and `hobguard sim device` (the real firmware, real
time scaled by --speed) with a short `unattended_min` in its settings.

The presence message is the one Home Assistant's presence blueprint sends
(rendered by tests/ha_runtime.py from homeassistant/blueprints/…/
presence.yaml), published on the broker; during the warning it takes the
warning back (`warning_cancelled` on MQTT). During the next warning a
retained or malformed one is refused and changes nothing. Without presence, the cut comes with reason
`unattended`, a full warning after the warning. The notification blueprint
then says every one of these real events in hobguard's words.
"""

from __future__ import annotations

import pytest
from conftest import REPO, SIM_DEVICE_ID
from ha_runtime import Hass, load, substitute
from hobguard import words

pytestmark = pytest.mark.e2e

DEV = SIM_DEVICE_ID
SPEED = 10.0
UNATTENDED_MIN = 1
WARN_S = 30
BLUEPRINTS = REPO / "homeassistant" / "blueprints" / "automation" / "hobguard"
HOB = "hob-device-id-in-home-assistant"


def presence_from_the_blueprint(base: str) -> tuple[str, str, bool]:
    """What the presence blueprint publishes when the kitchen's motion sensor sees someone."""
    hass = Hass()
    hass.devices = {HOB: {"serial_number": DEV, "manufacturer": "hobguard"}}
    automation = substitute(
        load(BLUEPRINTS / "presence.yaml"),
        {"hob": HOB, "sensors": ["binary_sensor.kitchen_motion"], "base_topic": base},
    )
    run = hass.fire_state(automation, "binary_sensor.kitchen_motion", "on",
                          on_delay=lambda s: hass.set("binary_sensor.kitchen_motion", "off"))  # fmt: skip
    (call,) = run.calls
    assert call.action == "mqtt.publish"
    return call.data["topic"], call.data["payload"], call.data["retain"]


def test_presence_over_mqtt_takes_the_warning_back_and_without_it_the_guard_cuts(
    mosquitto, sim_device_factory, rig_factory, topic_prefix
) -> None:
    sim = sim_device_factory(speed=SPEED, settings={"unattended_min": UNATTENDED_MIN, "warn_before_s": WARN_S})
    rig = rig_factory(mosquitto.url, [str(sim.link)], topic_prefix, offline_after_s=3.0)
    rec = rig.recorder
    rig.wait_online(DEV)
    rig.wait_burner(DEV, "left", lambda s: s["relay"] == "closed" and s["flame"] == "off")
    device_state = rec.wait(lambda m: m.topic == rig.topic(DEV, "state"), what="device state").json()
    # The guards' settings, as the device said hello, for Home Assistant's diagnostics.
    assert device_state["unattended_min"] == UNATTENDED_MIN and device_state["flame_loss_cut"] is True
    assert device_state["unattended_cut_in_s"] is None and device_state["unattended_cut_at"] is None

    mark = rec.mark()
    sim.act("ignite left")
    rig.wait_burner(DEV, "left", lambda s: s["flame"] == "on", since=mark)
    counting = rec.wait(
        lambda m: m.topic == rig.topic(DEV, "state") and m.json()["unattended_cut_in_s"] is not None,
        since=mark,
        what="the unattended countdown",
    ).json()
    assert 0 < counting["unattended_cut_in_s"] <= UNATTENDED_MIN * 60 and counting["unattended_cut_at"]

    # -- the first warning, taken back by Home Assistant's presence ------------------------------
    warned = rig.wait_event(DEV, lambda e: e["event_type"] == "warning", since=mark, timeout=20)
    assert (warned["burner"], warned["reason"], warned["cut_in_s"]) == ("left", "unattended", WARN_S)
    topic, payload, retain = presence_from_the_blueprint(rig.base)
    assert topic == rig.topic(DEV, "presence", "set") and payload == "ON" and retain is False
    sent = rec.mark()
    rec.publish(topic, payload, retain=retain)
    cancelled = rig.wait_event(DEV, lambda e: e["event_type"] == "warning_cancelled", since=sent)
    assert (cancelled["burner"], cancelled["reason"], cancelled["sign"]) == ("left", "unattended", "presence")
    # The count starts again from the presence (the reply's state, published at once).
    again = rec.wait(
        lambda m: m.topic == rig.topic(DEV, "state") and (m.json()["unattended_cut_in_s"] or 0) > WARN_S,
        since=sent,
        what="the countdown started again",
    ).json()
    assert again["unattended_cut_in_s"] <= UNATTENDED_MIN * 60

    # -- nobody comes again: warned, then cut with reason unattended ---------------------------
    second = rec.wait(
        lambda m: m.topic == rig.topic(DEV, "event") and m.json()["event_type"] == "warning",
        since=sent,
        timeout=20,
        what="the second warning",
    )
    # During it, a retained presence and a wrong payload are refused and change nothing.
    refused = rig.send(DEV, "presence/set", "ON", retain=True)
    assert rig.wait_event(DEV, lambda e: e["event_type"] == "rejected", since=refused)["reason"] == "retained"
    refused = rig.send(DEV, "presence/set", "OFF")
    bad = rig.wait_event(DEV, lambda e: e["event_type"] == "rejected", since=refused)
    assert bad["reason"] == "bad_payload" and "no OFF" in bad["detail"]
    cut = rec.wait(
        lambda m: m.topic == rig.topic(DEV, "event") and m.json()["event_type"] == "cut",
        since=sent,
        timeout=20,
        what="the unattended cut",
    )
    assert (cut.json()["burner"], cut.json()["reason"]) == ("left", "unattended")
    # A full warning after the warning (30 s of the device's time, 3 s here).
    gap_s = (cut.at - second.at) * SPEED
    assert WARN_S - 8 <= gap_s <= WARN_S + 12, gap_s
    cuts = [e for e in rig.events(DEV, mark) if e["event_type"] == "cut"]
    assert len(cuts) == 1, "no cut during the warning that presence took back"
    taken_back = [e for e in rig.events(DEV, mark) if e["event_type"] == "warning_cancelled"]
    assert len(taken_back) == 1, "the retained and the wrong presence took nothing back"
    state = rig.wait_burner(DEV, "left", lambda s: s["last_cut_reason"] == "unattended", since=sent).json()
    assert state["relay"] == "open" or state["gas"] == "closed"

    # -- Home Assistant's notification says each of these real events in hobguard's words -------
    hass = Hass()
    notify = substitute(load(BLUEPRINTS / "notify.yaml"), {"notify_action": "notify.notify", "base_topic": rig.base})
    told = []
    for seen in rec.on(rig.topic(DEV, "event"), mark):
        event = seen.json()
        run = hass.fire(notify, {"trigger": "mqtt", "topic": seen.topic, "payload": seen.payload.decode()})
        expected = words.notification(event)
        assert [c.data for c in run.calls] == ([] if expected is None else [
            {"title": expected["title"], "message": expected["message"]}
        ]), event  # fmt: skip
        if run.calls:
            told.append((event["event_type"], event.get("reason")))
    assert ("warning", "unattended") in told and ("warning_cancelled", "unattended") in told
    assert ("cut", "unattended") in told
