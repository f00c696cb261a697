"""End to end (real Mosquitto, the bridge, protocol-level fake devices behind
ptys): a device is known by what it says, never by the port it is on, and
a device that says something wrong cannot take the bridge, or any other
hob, off MQTT."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fakedevice import FakeDevice
from hobguard.testing import wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def fakes(tmp_path: Path):
    made: list[FakeDevice] = []

    def make(name: str, device_id: str, tc_mv: float, burners: tuple[str, ...] = ("left", "right")) -> FakeDevice:
        device = FakeDevice(tmp_path / name, device_id=device_id, burners=burners)
        device.tc_mv = tc_mv
        made.append(device)
        return device

    yield make
    for device in made:
        device.close()


def states_of(rig, device_id: str, since: int = 0) -> list[dict]:
    return [m.json() for m in rig.recorder.on(rig.topic(device_id, "left", "state"), since)]


def test_usb_ports_renumbered_each_hob_keeps_its_own_name_and_commands(
    mosquitto, fakes, rig_factory, topic_prefix
) -> None:
    """Two hobs on /dev/ttyUSB0 and /dev/ttyUSB1; both are re-plugged and
    come back on each other's port. Each hob's state is still published
    under its own id (told apart by its thermocouple reading), and a cut for
    hob A reaches hob A, on whichever port it now is."""
    usb0 = fakes("ttyUSB0", "hob-a", tc_mv=11.0)
    usb1 = fakes("ttyUSB1", "hob-b", tc_mv=22.0)
    rig = rig_factory(mosquitto.url, [str(usb0.link_path), str(usb1.link_path)], topic_prefix, offline_after_s=30)
    rig.wait_online("hob-a")
    rig.wait_online("hob-b")
    rig.wait_burner("hob-a", "left", lambda s: s["tc_mv"] == 11.0)
    # Re-plugged: the hob that was on USB0 is on USB1 now, and the other way round.
    for device in (usb0, usb1):
        device.unplug()
    mark = rig.recorder.mark()
    # The physical hob B, now behind USB0, and hob A behind USB1; each reads
    # a little warmer than before, so its next state is news.
    usb0.device_id, usb0.tc_mv = "hob-b", 22.5
    usb1.device_id, usb1.tc_mv = "hob-a", 11.5
    hob_b_on_usb0, hob_a_on_usb1 = usb0, usb1
    for device in (usb0, usb1):
        device.plug()
        device.send(device.state())  # talking before the bridge asked who it is
    rig.wait_online("hob-a", since=mark)
    rig.wait_online("hob-b", since=mark)
    wait_for(lambda: states_of(rig, "hob-a", mark) and states_of(rig, "hob-b", mark), what="both states again")
    # (A re-announcement may repeat a hob's last state from before: its own.)
    assert {s["tc_mv"] for s in states_of(rig, "hob-a", mark)} <= {11.0, 11.5}, "hob B's state published as hob A's"
    assert {s["tc_mv"] for s in states_of(rig, "hob-b", mark)} <= {22.0, 22.5}, "hob A's state published as hob B's"
    wait_for(lambda: states_of(rig, "hob-a", mark)[-1]["tc_mv"] == 11.5, what="hob A's new state")
    device_state = rig.recorder.last(rig.topic("hob-a", "state")).json()
    assert device_state["port"] == str(hob_a_on_usb1.link_path)
    # A cut for hob A reaches the hob that says it is hob A.
    mark = rig.send("hob-a", "left/gas/set", "CLOSE")
    wait_for(lambda: hob_a_on_usb1.commands("cut"), what="the cut at hob A")
    assert hob_a_on_usb1.commands("cut") == [{"burner": "left"}]
    assert hob_b_on_usb0.commands("cut") == [], "hob A's cut reached hob B"


def test_a_device_that_lies_about_itself_cannot_take_the_bridge_or_other_hobs_off_mqtt(
    mosquitto, fakes, rig_factory, topic_prefix, caplog
) -> None:
    """One port holds a device whose id would inject MQTT topics; another a
    good hob. The bad one is quarantined and reported on the bridge's event
    topic; no message goes to a topic it named; the bridge stays connected
    (one connection, no reconnect) and the good hob's cuts still work."""
    good = fakes("good", "hob-good", tc_mv=1.0)
    bad = fakes("bad", "hob-1", tc_mv=2.0)
    bad.hello = {"device": "hob-1\n"}  # passed a regular expression's "$" once
    rig = rig_factory(mosquitto.url, [str(good.link_path), str(bad.link_path)], topic_prefix)
    everything = type(rig.recorder)(f"mqtt://127.0.0.1:{mosquitto.port}", ["#"])
    try:
        rig.wait_online("hob-good")
        event_topic = f"{rig.base}/bridge/e2e/event"
        quarantined = rig.recorder.wait(
            lambda m: m.topic == event_topic and m.json()["event_type"] == "quarantined", what="quarantined"
        ).json()
        assert quarantined["device"] is None and quarantined["port"] == str(bad.link_path)
        assert "device id" in quarantined["detail"]
        # It keeps talking: a state, an event, with injected ids and huge numbers.
        time.sleep(1.0)  # (long enough for a broker to drop a bridge that published to a bad topic)
        bad.send(bad.state())
        bad.send({"t": "evt", "event_type": "cut", "burner": "../../x", "tc_mv": 1e300, "seq": 1})
        rig.send("hob-good", "left/gas/set", "CLOSE")
        wait_for(lambda: good.commands("cut"), what="the good hob's cut")
        assert rig.bridge.mqtt.connections == 1, "the broker dropped the bridge"
        assert bad.commands("cut") == []
        topics = {m.topic for m in everything.messages}
        assert not [t for t in topics if "\n" in t or "../" in t or t.startswith(f"{rig.base}/hob-1")]
        assert "error in a link listener" not in caplog.text and "Traceback" not in caplog.text
    finally:
        everything.close()


def test_two_ports_saying_the_same_device_id_serve_it_once(mosquitto, fakes, rig_factory, topic_prefix) -> None:
    first = fakes("usb0", "hob-twin", tc_mv=1.0)
    rig = rig_factory(mosquitto.url, [str(first.link_path)], topic_prefix)
    rig.wait_online("hob-twin")
    rig.stop()
    second = fakes("usb1", "hob-twin", tc_mv=2.0)
    rig = rig_factory(mosquitto.url, [str(first.link_path), str(second.link_path)], topic_prefix)
    rig.wait_online("hob-twin")
    event_topic = f"{rig.base}/bridge/e2e/event"
    event = rig.recorder.wait(
        lambda m: m.topic == event_topic and m.json()["event_type"] == "quarantined", what="the twin refused"
    ).json()
    # Whichever said hello first is served; the other is not, and the event
    # names both ports.
    serving = rig.bridge.devices["hob-twin"].link
    assert serving is not None
    served, refused = (first, second) if serving.port == str(first.link_path) else (second, first)
    assert event["device"] == "hob-twin" and event["port"] == str(refused.link_path)
    assert "must be unique" in event["detail"] and f"served on {served.link_path}" in event["detail"]
    # The refused one restarts: asked again, refused again while the first serves.
    hellos = len(refused.commands("hello"))
    refused.send({"t": "evt", "event_type": "boot", "seq": 1})
    wait_for(lambda: len(refused.commands("hello")) > hellos, what="the twin asked again")
    wait_for(lambda: [link for link in rig.bridge.links if link.port == str(refused.link_path)][0].quarantined)
    assert rig.bridge.devices["hob-twin"].link is serving
    mark = rig.send("hob-twin", "left/gas/set", "CLOSE")
    wait_for(lambda: served.commands("cut"), what="the cut")
    assert refused.commands("cut") == []
    assert {s["tc_mv"] for s in states_of(rig, "hob-twin", mark)} <= {served.tc_mv}


def test_two_bridges_with_one_bridge_id_do_not_knock_each_other_off(
    mosquitto, fakes, rig_factory, topic_prefix, caplog
) -> None:
    """Two bridges left with the same (default) bridge id: each has its own
    MQTT client id, so neither takes over the other's session; the clash is
    said plainly, and when one stops, the other says it is still online."""
    import logging

    caplog.set_level(logging.INFO)
    one = fakes("usb-one", "hob-one", tc_mv=1.0)
    two = fakes("usb-two", "hob-two", tc_mv=2.0)
    first = rig_factory(mosquitto.url, [str(one.link_path)], topic_prefix, bridge_id="twin")
    first.wait_online("hob-one")
    second = rig_factory(mosquitto.url, [str(two.link_path)], topic_prefix, bridge_id="twin")
    second.wait_online("hob-two")
    wait_for(lambda: "another bridge runs with bridge id 'twin'" in caplog.text, 10, what="the clash said")
    assert "--bridge-id" in caplog.text
    time.sleep(2.0)
    assert first.bridge.mqtt.connections == 1 and second.bridge.mqtt.connections == 1, "a bridge was knocked off"
    assert first.bridge.config.mqtt.client_id != second.bridge.config.mqtt.client_id
    # One stops (saying "offline" for the shared bridge id): the other says online again.
    bridge_topic = f"{first.base}/bridge/twin/availability"
    mark = first.recorder.mark()
    second.stop()
    first.recorder.wait(lambda m: m.topic == bridge_topic and m.payload == b"offline", since=mark, what="offline")
    first.recorder.wait(lambda m: m.topic == bridge_topic and m.payload == b"online", since=mark, what="online again")
    mark = first.send("hob-one", "left/gas/set", "CLOSE")
    wait_for(lambda: one.commands("cut"), what="the first bridge still serves its hob")
