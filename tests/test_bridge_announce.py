"""Re-announcing (discovery, availability, states) is coalesced and off the
command path (issue 9, item 5): a flood of `homeassistant/status` messages
costs a few runs of the announcer and a flag, not a queue, and a cut that
arrives in the middle of it goes to the device at once."""

from __future__ import annotations

import threading
import time

import pytest
from hobguard.bridge.announce import Announcer
from hobguard.testing import FakeMessage, FakeMqtt, bridge_on_fake_mqtt, serve_fake_device, wait_for

DEVICE = "hob-flood"
HELLO = {"device": DEVICE, "burners": ["left", "right"], "timer_max_min": 720, "proto": 1, "heartbeat_s": 10,
         "fw": "0.1.0", "warn_before_s": 60}  # fmt: skip


@pytest.fixture
def rig(tmp_path):
    bridge = bridge_on_fake_mqtt(bridge_id="flood", base_topic="flood/hobguard",
                                 discovery_prefix="flood/homeassistant", state_file=tmp_path / "state.json")  # fmt: skip
    broker = FakeMqtt(delay_s=0.001)  # a broker that takes 1 ms per message
    bridge.mqtt = broker  # type: ignore[assignment]
    view = serve_fake_device(bridge, HELLO)
    view.retained[view.topics.state] = "{}"
    bridge.announcer.start()
    yield bridge, broker, view.link
    bridge.announcer.stop()


def test_a_status_flood_is_coalesced_and_a_cut_does_not_wait_behind_it(rig) -> None:
    bridge, broker, link = rig
    status = "flood/homeassistant/status"
    valve = f"flood/homeassistant/valve/{DEVICE}/left_gas/config"
    started = time.monotonic()
    for n in range(2000):
        bridge._on_message(FakeMessage(status, b"online"))
        if n == 1000:
            bridge._on_message(FakeMessage(f"flood/hobguard/{DEVICE}/left/gas/set", b"CLOSE"))
            # The cut went to the device in the same call, whatever the announcer is doing.
            assert link.requests == [("cut", {"burner": "left"})]
    handled = time.monotonic() - started
    # Nothing was published from the thread that handles MQTT messages (paho's):
    # every re-announcement runs on the announcer's thread.
    assert threading.current_thread().name not in broker.threads
    wait_for(lambda: bridge.announcer.idle(), 30, what="the announcer done")
    # 2000 requests, a handful of runs; each run sends every config once.
    assert bridge.announcer.requests == 2000
    assert 1 <= bridge.announcer.runs <= 4, bridge.announcer.runs
    assert 1 <= broker.count(valve) <= 4
    # (Not a timing assertion, a sanity one: 2000 messages handled without
    # publishing ~40 messages each, at 1 ms apiece, which would take 80 s.)
    assert handled < 20


def test_requests_while_a_run_is_under_way_make_exactly_one_more_run() -> None:
    release = threading.Event()
    running = threading.Event()
    runs: list[tuple[bool, set[str]]] = []

    def publish(full: bool, devices: set[str]) -> None:
        runs.append((full, set(devices)))
        running.set()
        release.wait(5)

    announcer = Announcer(publish, debounce_s=0.01, min_interval_s=0.0)
    announcer.start()
    try:
        announcer.request("first")
        assert running.wait(5)
        for n in range(500):
            announcer.request("again")
            announcer.request("hello", device=f"hob-{n % 3}")
        release.set()
        wait_for(announcer.idle, 5, what="idle")
        assert runs == [(True, set()), (True, {"hob-0", "hob-1", "hob-2"})]
        assert len(announcer._reasons) == 0 and len(announcer._devices) == 0
    finally:
        release.set()
        announcer.stop()


def test_a_device_hello_announces_only_that_device(rig) -> None:
    bridge, broker, link = rig
    bridge.announcer.request("hello", device=DEVICE)
    wait_for(lambda: bridge.announcer.runs >= 1 and bridge.announcer.idle(), 10, what="one run")
    topics = [p.topic for p in broker.published]
    assert f"flood/homeassistant/valve/{DEVICE}/left_gas/config" in topics
    assert f"flood/hobguard/{DEVICE}/availability" not in topics  # not a full run
