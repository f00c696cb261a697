"""Re-announcing (discovery, availability, states) is coalesced and off the
command path (issue 9, item 5): a flood of `homeassistant/status` messages
costs a few runs of the announcer and a flag, not a queue, and a cut that
arrives in the middle of it goes to the device at once."""

from __future__ import annotations

import argparse
import threading
import time
from dataclasses import dataclass
from typing import Any

import pytest
from conftest import wait_for
from hobguard.bridge import config as config_mod
from hobguard.bridge import discovery
from hobguard.bridge.announce import Announcer
from hobguard.bridge.service import Bridge, DeviceView

DEVICE = "hob-flood"
HELLO = {"device": DEVICE, "burners": ["left", "right"], "timer_max_min": 720, "proto": 1, "heartbeat_s": 10,
         "fw": "0.1.0", "warn_before_s": 60}  # fmt: skip


@dataclass
class Message:
    topic: str
    payload: bytes
    retain: bool = False
    timestamp: float = 0.0


class SlowBroker:
    """The bridge's MQTT side, as a broker that takes 1 ms per message."""

    def __init__(self) -> None:
        self.published: list[tuple[str, str]] = []  # (topic, thread name)
        self.instance = "test"
        self.v5 = True
        self.connected = threading.Event()
        self.connected.set()
        self._lock = threading.Lock()

    def publish(self, topic: str, payload: Any, retain: bool = False, qos: int = 1, instance: bool = False) -> Any:
        time.sleep(0.001)
        with self._lock:
            self.published.append((topic, threading.current_thread().name))
        return None

    def subscribe(self, topics: list[str], qos: int = 1) -> None:
        pass

    def count(self, topic: str) -> int:
        with self._lock:
            return sum(1 for t, _ in self.published if t == topic)


class FakeLink:
    port = "/dev/fake"

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict, float]] = []

    def request(self, cmd: str, on_done: Any, timeout_s: Any = None, *, for_device: Any = None, **args: Any) -> int:
        self.requests.append((cmd, args, time.monotonic()))
        return len(self.requests)


@pytest.fixture
def rig(tmp_path):
    namespace = argparse.Namespace(
        serial=[], broker="mqtt://127.0.0.1:1", bridge_id="flood", base_topic="flood/hobguard",
        discovery_prefix="flood/homeassistant", state_file=str(tmp_path / "state.json"),
    )  # fmt: skip
    bridge = Bridge(config_mod.build(namespace, environ={}))
    broker = SlowBroker()
    bridge.mqtt = broker  # type: ignore[assignment]
    link = FakeLink()
    view = DeviceView(DEVICE, link, discovery.Topics(bridge.base, DEVICE, "flood"), HELLO, online=True)  # type: ignore[arg-type]
    view.retained[view.topics.state] = "{}"
    bridge.devices[DEVICE] = view
    announcer = getattr(bridge, "announcer", None)  # (none before the fix: runs the test on the old code too)
    if announcer is not None:
        announcer.start()
    yield bridge, broker, link
    if announcer is not None:
        announcer.stop()


def test_a_status_flood_is_coalesced_and_a_cut_does_not_wait_behind_it(rig) -> None:
    bridge, broker, link = rig
    status = "flood/homeassistant/status"
    valve = f"flood/homeassistant/valve/{DEVICE}/left_gas/config"
    started = time.monotonic()
    for n in range(2000):
        bridge._on_message(Message(status, b"online"))
        if n == 1000:
            bridge._on_message(Message(f"flood/hobguard/{DEVICE}/left/gas/set", b"CLOSE"))
            # The cut went to the device in the same call, whatever the announcer is doing.
            assert [r[:2] for r in link.requests] == [("cut", {"burner": "left"})]
    handled = time.monotonic() - started
    # Nothing was published from the thread that handles MQTT messages (paho's):
    # every re-announcement runs on the announcer's thread.
    assert not [t for t, thread in broker.published if thread == threading.current_thread().name]
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
    topics = [t for t, _ in broker.published]
    assert f"flood/homeassistant/valve/{DEVICE}/left_gas/config" in topics
    assert f"flood/hobguard/{DEVICE}/availability" not in topics  # not a full run
