"""End to end: a real Mosquitto, the bridge, and `hobguard sim device` (the
real firmware on a simulated hob) over its pty. Every command topic, the
state and event payloads, discovery, retained and bad commands."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta

import pytest
from conftest import SIM_DEVICE_ID
from hobguard.bridge import discovery
from hobguard.testing import wait_for

pytestmark = pytest.mark.e2e

DEV = SIM_DEVICE_ID


def ignite(rig, sim, burner: str) -> None:
    mark = rig.recorder.mark()
    sim.act(f"ignite {burner}")
    rig.wait_burner(DEV, burner, lambda s: s["flame"] == "on" and s["gas"] == "open", since=mark)


# -- what appears ------------------------------------------------------------------


def test_discovery_state_and_availability_are_published(hob) -> None:
    rig, sim, dev = hob
    rec = rig.recorder
    # Bridge and device availability, retained.
    assert rec.wait(lambda m: m.topic == f"{rig.base}/bridge/e2e/availability").payload == b"online"
    assert rec.last(rig.topic(dev, "availability")).payload == b"online"
    # Discovery: one retained config per entity of the table, for this device.
    hello = rig.bridge.devices[dev].hello
    expected = discovery.configs(discovery.Topics(rig.base, dev, "e2e"), hello, rig.discovery_prefix)
    wait_for(lambda: all(rec.last(t) for t in expected), what="every discovery config")
    for topic, config in expected.items():
        assert rec.last(topic).json() == config
    valve = rec.last(f"{rig.discovery_prefix}/valve/{dev}/left_gas/config").json()
    assert valve["payload_open"] is None and valve["command_topic"] == rig.topic(dev, "left", "gas", "set")
    # Device state and burner states.
    state = rec.last(rig.topic(dev, "state")).json()
    assert state["locked"] is False and state["fault"] is None
    assert state["burners"] == ["left", "right"] and state["fw"]
    for burner in ("left", "right"):
        s = rig.burner(dev, burner)
        assert s["gas"] == "closed" and s["relay"] == "closed" and s["flame"] == "off"
        assert s["timer_remaining_s"] is None and s["timer_deadline"] is None
        assert isinstance(s["tc_mv"], (int, float))
    # A new subscriber gets them retained (what Home Assistant sees on start).
    late = type(rec)(rec_url(rig), [f"{rig.base}/#"])
    try:
        late.wait(lambda m: m.topic == rig.topic(dev, "left", "state") and m.retain, 5)
        late.wait(lambda m: m.topic == rig.topic(dev, "availability") and m.retain and m.payload == b"online", 5)
    finally:
        late.close()


def rec_url(rig) -> str:
    m = rig.config.mqtt
    return f"mqtt://{m.host}:{m.port}"


def test_ignition_is_an_event_and_a_state(hob) -> None:
    rig, sim, dev = hob
    mark = rig.recorder.mark()
    sim.act("ignite right")
    event = rig.wait_event(dev, lambda e: e["event_type"] == "ignited", since=mark)
    assert event["burner"] == "right" and event["device"] == dev and "reason" in event
    state = rig.wait_burner(dev, "right", lambda s: s["flame"] == "on", since=mark).json()
    assert state["gas"] == "open" and state["tc_mv"] > 3


# -- every command topic ---------------------------------------------------------------


def test_burner_gas_close_cuts_that_burner(hob) -> None:
    rig, sim, dev = hob
    ignite(rig, sim, "left")
    ignite(rig, sim, "right")
    mark = rig.send(dev, "left/gas/set", "CLOSE")
    cut = rig.wait_event(dev, lambda e: e["event_type"] == "cut", since=mark)
    assert cut["burner"] == "left" and cut["reason"] == "remote"
    state = rig.wait_burner(dev, "left", lambda s: s["relay"] == "open", since=mark).json()
    assert state["last_cut_reason"] == "remote"
    verified = rig.wait_event(dev, lambda e: e["event_type"] == "cut_verified", since=mark)
    assert verified["burner"] == "left" and verified["reason"] == "remote"
    rig.wait_burner(dev, "left", lambda s: s["gas"] == "closed" and s["flame"] == "off", since=mark)
    # The other burner still burns.
    assert rig.burner(dev, "right")["flame"] == "on"
    assert not [e for e in rig.events(dev, mark) if e["event_type"] == "cut" and e["burner"] == "right"]


def test_device_gas_close_cuts_every_burner(hob) -> None:
    rig, sim, dev = hob
    ignite(rig, sim, "left")
    ignite(rig, sim, "right")
    mark = rig.send(dev, "gas/set", "CLOSE")
    for burner in ("left", "right"):
        rig.wait_event(dev, lambda e, b=burner: e["event_type"] == "cut_verified" and e["burner"] == b, since=mark)
        rig.wait_burner(dev, burner, lambda s: s["gas"] == "closed", since=mark)
    cuts = [e for e in rig.events(dev, mark) if e["event_type"] == "cut"]
    assert sorted(e["burner"] for e in cuts) == ["left", "right"]
    assert all(e["reason"] == "remote" for e in cuts)


def test_timer_set_extend_cancel_and_zero(hob) -> None:
    rig, sim, dev = hob
    ignite(rig, sim, "left")
    mark = rig.send(dev, "left/timer/set", "20")
    state = rig.wait_burner(dev, "left", lambda s: s["timer_remaining_s"] is not None, since=mark).json()
    assert 19 * 60 <= state["timer_remaining_s"] <= 20 * 60
    deadline = datetime.fromisoformat(state["timer_deadline"])
    assert deadline.utcoffset() is not None
    # The deadline is host time + remaining (the simulator runs fast, so
    # allow for the time the message took).
    assert abs((deadline - datetime.now().astimezone()) - timedelta(seconds=state["timer_remaining_s"])) < timedelta(
        seconds=5
    )
    assert rig.wait_event(dev, lambda e: e["event_type"] == "timer_set", since=mark)["minutes"] == 20

    mark = rig.send(dev, "left/timer/extend", "10")
    state = rig.wait_burner(dev, "left", lambda s: (s["timer_remaining_s"] or 0) > 20 * 60, since=mark).json()
    assert state["timer_remaining_s"] <= 30 * 60

    mark = rig.send(dev, "left/timer/cancel", "CANCEL")
    rig.wait_event(dev, lambda e: e["event_type"] == "timer_cancelled" and e["burner"] == "left", since=mark)
    state = rig.wait_burner(dev, "left", lambda s: s["timer_remaining_s"] is None, since=mark).json()
    assert state["timer_deadline"] is None

    rig.send(dev, "left/timer/set", "5")
    mark = rig.send(dev, "left/timer/set", "0")  # 0 cancels
    rig.wait_event(dev, lambda e: e["event_type"] == "timer_cancelled", since=mark)
    rig.wait_burner(dev, "left", lambda s: s["timer_remaining_s"] is None, since=mark)
    assert rig.burner(dev, "left")["flame"] == "on", "no command here cuts"


def test_timer_runs_out_warning_then_cut_then_verified(
    mosquitto, sim_device_factory, rig_factory, topic_prefix
) -> None:
    sim = sim_device_factory(speed=60)
    rig = rig_factory(mosquitto.url, [str(sim.link)], topic_prefix, offline_after_s=3.0)
    rig.wait_booted(DEV)
    ignite(rig, sim, "left")
    mark = rig.send(DEV, "left/timer/set", "2")
    warning = rig.wait_event(DEV, lambda e: e["event_type"] == "warning", since=mark, timeout=20)
    assert warning["burner"] == "left" and warning["reason"] == "timer"
    cut = rig.wait_event(DEV, lambda e: e["event_type"] == "cut", since=mark, timeout=20)
    assert cut["burner"] == "left" and cut["reason"] == "timer"
    rig.wait_event(DEV, lambda e: e["event_type"] == "cut_verified" and e["burner"] == "left", since=mark, timeout=20)
    state = rig.wait_burner(DEV, "left", lambda s: s["gas"] == "closed", since=mark).json()
    assert state["last_cut_reason"] == "timer" and state["timer_remaining_s"] is None
    order = [e["event_type"] for e in rig.events(DEV, mark) if e.get("burner") == "left"]
    assert order.index("warning") < order.index("cut") < order.index("cut_verified")


def test_child_lock_on_off_and_refusal_while_locked(hob) -> None:
    rig, sim, dev = hob
    ignite(rig, sim, "right")
    mark = rig.send(dev, "lock/set", "ON")
    rig.recorder.wait(
        lambda m: m.topic == rig.topic(dev, "state") and m.json()["locked"] is True, since=mark, what="locked"
    )
    rig.wait_event(
        dev, lambda e: e["event_type"] == "cut" and e["burner"] == "right" and e["reason"] == "lock", since=mark
    )
    rig.wait_burner(dev, "right", lambda s: s["relay"] == "open", since=mark)
    # A timer while locked: the device refuses; the bridge says so.
    mark = rig.send(dev, "left/timer/set", "5")
    rejected = rig.wait_event(dev, lambda e: e["event_type"] == "rejected", since=mark)
    assert rejected["source"] == "device" and rejected["code"] == "refused" and rejected["message"]
    assert rejected["reason"] == "refused" and rejected["burner"] == "left" and rejected["command"] == "timer_set"
    # Relays stay open while locked.
    assert rig.burner(dev, "left")["relay"] == "open"
    mark = rig.send(dev, "lock/set", "OFF")
    rig.recorder.wait(
        lambda m: m.topic == rig.topic(dev, "state") and m.json()["locked"] is False, since=mark, what="unlocked"
    )
    rig.wait_burner(dev, "left", lambda s: s["relay"] == "closed", since=mark)


def test_fault_clear_after_a_welded_relay(hob) -> None:
    rig, sim, dev = hob
    sim.act("weld left")
    ignite(rig, sim, "left")
    mark = rig.send(dev, "left/gas/set", "CLOSE")
    fault = rig.wait_event(dev, lambda e: e["event_type"] == "fault", since=mark, timeout=20)
    assert fault["burner"] == "left" and fault["reason"] == "cut_failed"
    rig.recorder.wait(
        lambda m: m.topic == rig.topic(dev, "state") and m.json()["fault"] == "cut_failed", since=mark, what="fault"
    )
    assert rig.wait_burner(dev, "left", lambda s: s["fault"] == "cut_failed", since=mark)
    sim.act("off left")
    sim.act("unweld left")
    mark = rig.send(dev, "left/fault/clear", "CLEAR")
    rig.wait_event(dev, lambda e: e["event_type"] == "fault_cleared" and e["burner"] == "left", since=mark)
    rig.recorder.wait(
        lambda m: m.topic == rig.topic(dev, "state") and m.json()["fault"] is None, since=mark, what="no fault"
    )
    # The device-level clear is accepted too (nothing left to clear).
    handled = rig.bridge.commands_handled
    mark = rig.send(dev, "fault/clear", "")
    wait_for(lambda: rig.bridge.commands_handled > handled, what="the device-level clear answered")
    assert not [e for e in rig.events(dev, mark) if e["event_type"] == "rejected"]


# -- what must change nothing -------------------------------------------------------------

BAD = [
    ("left/gas/set", b"OPEN", "open_refused"),
    ("left/gas/set", b"close", "bad_payload"),
    ("left/gas/set", b"", "empty"),
    ("left/gas/set", b" CLOSE", "whitespace"),
    ("left/gas/set", b"\xff\xfeCLOSE", "not_utf8"),
    ("left/gas/set", b"CLOSE" * 20, "too_long"),
    ("gas/set", b"ON", "bad_payload"),
    ("gas/set", b'{"gas":"CLOSE"}', "bad_payload"),
    ("lock/set", b"on", "bad_payload"),
    ("lock/set", b"", "empty"),
    ("left/timer/set", b"nan", "not_finite"),
    ("left/timer/set", b"inf", "not_finite"),
    ("left/timer/set", b"1e999", "not_finite"),
    ("left/timer/set", b"99999999999", "out_of_range"),
    ("left/timer/set", b"-5", "out_of_range"),
    ("left/timer/set", b'{"minutes": 5}', "not_a_number"),
    ("left/timer/set", b"5 ", "whitespace"),
    ("left/timer/set", b"", "empty"),
    ("left/timer/extend", b"0", "out_of_range"),
    ("left/timer/extend", b"[10]", "not_a_number"),
    ("left/timer/cancel", b"\x80", "not_utf8"),
    ("left/fault/clear", b"x" * 65, "too_long"),
    ("oven/gas/set", b"CLOSE", "unknown_burner"),
    ("oven/timer/set", b"5", "unknown_burner"),
]


def test_every_kind_of_bad_payload_is_rejected_and_changes_nothing(hob) -> None:
    rig, sim, dev = hob
    ignite(rig, sim, "left")
    link = rig.bridge.links[0]
    sent_before = link.stats.commands_sent
    before = {b: rig.burner(dev, b) for b in ("left", "right")}
    mark = rig.recorder.mark()
    for suffix, payload, _ in BAD:
        rig.send(dev, suffix, payload)
    wait_for(
        lambda: len([e for e in rig.events(dev, mark) if e["event_type"] == "rejected"]) >= len(BAD),
        what="one rejected event per bad command",
    )
    rejected = [e for e in rig.events(dev, mark) if e["event_type"] == "rejected"]
    assert [e["reason"] for e in rejected] == [reason for _, _, reason in BAD]
    for event, (suffix, _, _) in zip(rejected, BAD, strict=True):
        assert event["source"] == "bridge" and event["detail"] and event["topic"] == rig.topic(dev, *suffix.split("/"))
    # Nothing reached the device, nothing changed.
    assert link.stats.commands_sent == sent_before
    assert not [e for e in rig.events(dev, mark) if e["event_type"] in ("cut", "timer_set", "lock", "timer_cancelled")]
    after = {b: rig.burner(dev, b) for b in ("left", "right")}
    for b in before:
        for key in ("relay", "flame", "gas", "timer_remaining_s", "last_cut_reason"):
            assert after[b][key] == before[b][key], (b, key)
    assert rig.recorder.last(rig.topic(dev, "state")).json()["locked"] is False


def test_retained_command_is_ignored(
    mosquitto, sim_device_factory, rig_factory, recorder_factory, topic_prefix
) -> None:
    """A retained CLOSE left on the broker must not cut the gas whenever the
    bridge (re)subscribes: it arrives flagged retained and is rejected."""
    sim = sim_device_factory(speed=20)
    base = f"{topic_prefix}/hobguard"
    publisher = recorder_factory(mosquitto.url, [f"{base}/#"])
    publisher.publish(f"{base}/{DEV}/gas/set", "CLOSE", retain=True)
    publisher.publish(f"{base}/{DEV}/lock/set", "ON", retain=True)
    try:
        rig = rig_factory(mosquitto.url, [str(sim.link)], topic_prefix, recorder=publisher)
        rig.wait_online(DEV)
        rig.recorder.wait(lambda m: m.topic == rig.topic(DEV, "state"), what="device state")
        wait_for(
            lambda: len([e for e in rig.events(DEV) if e["event_type"] == "rejected"]) >= 2,
            what="two rejected events",
        )
        events = rig.events(DEV)
        rejected = [e for e in events if e["event_type"] == "rejected"]
        assert {e["reason"] for e in rejected} == {"retained"}
        assert {e["topic"] for e in rejected} == {f"{base}/{DEV}/gas/set", f"{base}/{DEV}/lock/set"}
        assert rig.bridge.links[0].stats.commands_sent == 0
        assert not [e for e in events if e["event_type"] in ("cut", "lock")]
        assert rig.recorder.last(rig.topic(DEV, "state")).json()["locked"] is False
        # Removed from the broker once the device is served: they cannot come back.
        fresh = type(publisher)(mosquitto.url, [f"{base}/{DEV}/gas/set", f"{base}/{DEV}/lock/set"])
        try:
            time.sleep(0.5)
            assert fresh.messages == [], "a retained command is still on the broker"
        finally:
            fresh.close()
    finally:
        publisher.publish(f"{base}/{DEV}/gas/set", "", retain=True)
        publisher.publish(f"{base}/{DEV}/lock/set", "", retain=True)


def test_device_that_does_not_answer_gives_a_timeout(mosquitto, sim_device_factory, rig_factory, topic_prefix) -> None:
    sim = sim_device_factory(speed=20)
    rig = rig_factory(mosquitto.url, [str(sim.link)], topic_prefix, request_timeout_s=0.5, offline_after_s=2.0)
    # Past the boot: a boot event after the line is cut would leave the link
    # asking hello, refusing commands at once (device_offline), not timing out.
    rig.wait_booted(DEV)
    mark = rig.recorder.mark()
    sim.act("link off")  # the line goes dead both ways, the port stays open
    # Silence: after offline_after_s the device is offline...
    rig.recorder.wait(
        lambda m: m.topic == rig.topic(DEV, "availability") and m.payload == b"offline", 10, since=mark, what="offline"
    )
    # ...and a command now gets no answer: a timeout, reported.
    mark = rig.send(DEV, "left/gas/set", "CLOSE")
    rejected = rig.wait_event(DEV, lambda e: e["event_type"] == "rejected", since=mark)
    assert rejected["reason"] == "timeout" and rejected["burner"] == "left" and rejected["command"] == "cut"
    assert not [e for e in rig.events(DEV, mark) if e["event_type"] == "cut"]
    # The line comes back: online again.
    mark = rig.recorder.mark()
    sim.act("link on")
    rig.wait_online(DEV, since=mark)


# -- Home Assistant comes and goes; a burner goes away ----------------------------------------


def test_home_assistant_online_gets_discovery_and_states_again(hob) -> None:
    rig, sim, dev = hob
    rec = rig.recorder
    valve_topic = f"{rig.discovery_prefix}/valve/{dev}/left_gas/config"
    rec.wait(lambda m: m.topic == valve_topic)
    mark = rec.mark()
    rec.publish(f"{rig.discovery_prefix}/status", "online")
    rec.wait(lambda m: m.topic == valve_topic, since=mark, what="discovery re-sent")
    rec.wait(lambda m: m.topic == rig.topic(dev, "left", "state"), since=mark, what="state re-sent")
    rec.wait(lambda m: m.topic == rig.topic(dev, "availability"), since=mark, what="availability re-sent")
    # "offline" from Home Assistant changes nothing.
    mark = rec.mark()
    rec.publish(f"{rig.discovery_prefix}/status", "offline")
    rec.publish(rig.topic(dev, "left", "gas", "set"), "marker")  # handled after it, in order
    rig.wait_event(dev, lambda e: e["event_type"] == "rejected" and e.get("payload") == "marker", since=mark)
    assert not rec.on(valve_topic, mark)


THREE_BURNERS = {
    "device_id": "hob-stale",
    "burners": [
        {"id": "left", "relay_pin": 26, "adc_address": 72, "adc_pair": 0},
        {"id": "right", "relay_pin": 27, "adc_address": 72, "adc_pair": 1},
        {"id": "wok", "relay_pin": 25, "adc_address": 73, "adc_pair": 0},
    ],
}


def test_entities_of_a_removed_burner_are_cleared(
    mosquitto, sim_device_factory, rig_factory, topic_prefix, tmp_path
) -> None:
    state_file = tmp_path / "bridge-state.json"
    sim = sim_device_factory(speed=20, settings=THREE_BURNERS)
    rig = rig_factory(mosquitto.url, [str(sim.link)], topic_prefix, state_file=state_file)
    rig.wait_online("hob-stale")
    wok_topic = f"{rig.discovery_prefix}/valve/hob-stale/wok_gas/config"
    rig.recorder.wait(lambda m: m.topic == wok_topic and m.payload, what="wok valve discovery")
    wait_for(lambda: "wok_gas" in state_file.read_text() if state_file.exists() else False, what="state file")
    rig.stop()
    sim.stop()
    # The same device comes back with two burners (settings changed).
    two = dict(THREE_BURNERS, burners=THREE_BURNERS["burners"][:2])
    sim2 = sim_device_factory(speed=20, settings=two)
    rig2 = rig_factory(mosquitto.url, [str(sim2.link)], topic_prefix, state_file=state_file)
    rig2.wait_online("hob-stale")
    cleared = rig2.recorder.wait(lambda m: m.topic == wok_topic and m.payload == b"", what="wok discovery cleared")
    assert cleared.payload == b""
    remembered = json.loads(state_file.read_text())["discovery"]["hob-stale"]
    assert not [t for t in remembered if "/wok_" in t]
    assert f"{rig2.discovery_prefix}/valve/hob-stale/left_gas/config" in remembered


# -- retained commands, mistyped topics, unknown devices (issue 9, items 7 and 9) -------------------


def test_a_retained_command_published_while_the_bridge_listens_is_refused_and_removed(hob, recorder_factory) -> None:
    """Under MQTT 3.1.1 a retained message published while the bridge is
    subscribed arrives looking live, and was carried out. With MQTT 5's
    retain-as-published the bridge sees the flag, refuses it, and removes it
    from the broker so it cannot come back at the next (re)connect."""
    rig, sim, dev = hob
    ignite(rig, sim, "left")
    topic = rig.topic(dev, "left", "gas", "set")
    mark = rig.send(dev, "left/gas/set", "CLOSE", retain=True)
    rejected = rig.wait_event(dev, lambda e: e["event_type"] == "rejected", since=mark)
    assert rejected["reason"] == "retained" and rejected["topic"] == topic and rejected["burner"] == "left"
    marker = rig.send(dev, "left/gas/set", "marker")  # answered after anything the retained one caused
    rig.wait_event(dev, lambda e: e.get("payload") == "marker", since=marker)
    assert not [e for e in rig.events(dev, mark) if e["event_type"] == "cut"], "a retained command cut the gas"
    assert rig.burner(dev, "left")["flame"] == "on"
    # Gone from the broker: a new subscriber gets nothing retained there.
    fresh = recorder_factory(rec_url(rig), [topic])
    time.sleep(0.5)
    assert fresh.on(topic) == [], "the retained command is still on the broker"


def test_mistyped_command_topics_and_unknown_devices_get_an_answer(hob) -> None:
    rig, sim, dev = hob
    bridge_events = f"{rig.base}/bridge/e2e/event"
    mark = rig.send(dev, "left/timer", "5")
    rig.send(dev, "lock", "ON")
    rig.send(dev, "gas", "CLOSE")
    for wrong, right in (("left/timer", "left/timer/set"), ("lock", "lock/set"), ("gas", "gas/set")):
        event = rig.wait_event(dev, lambda e, w=wrong: e["event_type"] == "rejected" and e["topic"].endswith(w),
                               since=mark)  # fmt: skip
        assert event["reason"] == "unknown_command" and right in event["detail"], event
    rig.send("hob-nobody", "left/gas/set", "CLOSE")
    unknown = rig.recorder.wait(lambda m: m.topic == bridge_events, since=mark, what="bridge event").json()
    assert unknown["event_type"] == "rejected" and unknown["reason"] == "unknown_device"
    assert unknown["device"] == "hob-nobody" and unknown["topic"] == rig.topic("hob-nobody", "left", "gas", "set")
    # Nothing was done, and nothing echoes: exactly one answer each.
    time.sleep(0.5)
    assert len([e for e in rig.events(dev, mark) if e["event_type"] == "rejected"]) == 3
    assert len(rig.recorder.on(bridge_events, mark)) == 1
    assert not [e for e in rig.events(dev, mark) if e["event_type"] in ("timer_set", "lock", "cut")]
