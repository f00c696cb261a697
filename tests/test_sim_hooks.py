"""SimDevice's observer hooks: each is called with what happened, when it
happened, and nothing is patched (the scenario recorder, the benchmarks and
the property tests watch a device only through them)."""

from __future__ import annotations

from typing import Any

from hobguard_fw import protocol
from hobguard_sim import actions, device
from hobguard_sim.device import HobPhysics, Hooks, SimDevice
from hobguard_sim.scenario import Recorder


class Log:
    """Every hook of a device, recorded as (hook, args...)."""

    def __init__(self, dev: SimDevice) -> None:
        self.calls: list[tuple[Any, ...]] = []
        for name in Hooks.__slots__:
            getattr(dev.hooks, name).append(lambda *args, name=name: self.calls.append((name, *args)))

    def of(self, name: str) -> list[tuple[Any, ...]]:
        return [c[1:] for c in self.calls if c[0] == name]


def test_every_hook_is_called_with_what_happened():
    dev = SimDevice(seed=2, virtual_wifi=True)
    log = Log(dev)
    dev.run_for(5_000)
    closed = log.of("coil")  # the relays close once the app has started
    assert [(i, on) for _, i, on in closed] == [(0, True), (1, True)] and 0 < closed[0][0] == closed[1][0] < 5_000
    assert log.of("step") and all(isinstance(t, int) for (t,) in log.of("step"))
    adc = log.of("adc")
    assert adc and {index for _, index, _ in adc} == {0, 1} and all(isinstance(mv, float) for _, _, mv in adc)

    t = dev.clock.ms
    actions.act(dev, "ignite left")
    assert log.of("knob") == [(t, 0)]
    rid = dev.command("timer_set", burner="left", minutes=5)
    assert log.of("command") == [(t, rid, "timer_set", {"burner": "left", "minutes": 5})]
    assert protocol.parse_request(log.of("received")[-1][1])[:2] == (rid, "timer_set")
    dev.run_for(100)
    replies = [f for t, f, heard in log.of("frame") if f.get("id") == rid]
    assert replies and replies[0]["t"] == "ok" and all(heard for _, _, heard in log.of("frame"))
    assert any(f'"id": {rid}' in text for _, text, heard in log.of("output") if heard)

    t = dev.clock.ms
    actions.act(dev, "link lost")
    assert log.of("link") == [(t, False, "serial")]
    actions.act(dev, "wifi off")  # a second cause: no new edge
    assert len(log.of("link")) == 1
    dev.run_for(15_000)  # a heartbeat state frame, said to nobody
    assert any(not heard for _, _, heard in log.of("frame")) and any(not heard for _, _, heard in log.of("output"))
    t = dev.clock.ms
    actions.act(dev, "link ok")
    actions.act(dev, "wifi on")
    assert log.of("link")[-1] == (t, True, "wifi")

    actions.act(dev, "power_loss 2s")
    assert log.of("power") == [(t, 2000)]
    dev.run_for(5_000)
    assert log.of("boot")[-1] == (t + 2000 + device.BOOT_MS, "power_on")
    actions.act(dev, "hang")
    dev.run_for(20_000)
    assert [cause for _, cause in log.of("reset")] == ["watchdog"]
    assert log.of("boot")[-1][1] == "watchdog"


def test_a_removed_observer_is_not_called_and_others_are():
    dev = SimDevice(seed=1)
    seen: list[int] = []
    other: list[int] = []
    watch = seen.append
    dev.hooks.step.append(lambda t: watch(t))
    dev.hooks.step.append(other.append)
    dev.run_for(1_000)
    dev.hooks.step.pop(0)
    n = len(seen)
    dev.run_for(1_000)
    assert n and len(seen) == n and len(other) > n


def test_every_new_device_can_be_watched():
    made: list[SimDevice] = []
    device.ON_NEW_DEVICE.append(made.append)
    try:
        dev = SimDevice(seed=1)
    finally:
        device.ON_NEW_DEVICE.remove(made.append)
    assert made == [dev]


def test_the_scenario_recorder_watches_without_patching():
    dev = SimDevice(seed=1)
    methods = {
        name: getattr(type(obj), name)
        for obj, names in ((dev, ("_step", "send_line", "command")), (dev.physics, ("set_coil", "adc_mv")))
        for name in names
    }
    Recorder(dev, dev.settings)
    dev.run_for(10_000)
    for obj in (dev, dev.physics, dev.link):
        patched = [k for k, v in vars(obj).items() if callable(v) and k in methods]
        assert not patched, patched
    assert dev.physics.set_coil.__func__ is HobPhysics.set_coil


def test_hooks_cost_nothing_when_nobody_watches():
    """No observer: no frame is decoded for anyone (the speed benchmark's case)."""
    dev = SimDevice(seed=1)
    dev.keep_frames = False
    decoded: list[str] = []
    original = protocol.decode

    def counting(line, *a):  # a spy, undone below
        decoded.append(line)
        return original(line, *a)

    protocol.decode = counting
    try:
        dev.run_for(30_000)
    finally:
        protocol.decode = original
    assert decoded == []
