"""Soak: a week of random kitchen life in the simulator, with the real
firmware in the loop (`make soak`; not part of `make test`).

Seven simulated days: meals at random times with one or two burners, timers
set, extended and cancelled, remote cuts, boil-overs, burners left on, the
child lock overnight, and now and then trouble: the serial link lost for a
while, a power cut, a hung firmware the watchdog resets, garbage on the
line, the ADC dropping out. The device's tick counter starts three days
before it wraps (2**30 ms), so the week crosses the wrap-around.

Checked throughout: every property of tests/test_reliability_properties.py
(commands answered, no cut without a cause, no gas past a deadline or in a
locked hob, resets cut, bounded queues, no crash). Checked at the end of
each day: no stuck timer (every timer the core holds lies in the future),
the core's event queue empty between steps, and the firmware's own objects
(the App and everything it owns, minus the fakes of machine/time/link) no
bigger than on the first day. Optionally (when Node.js and the MicroPython
WebAssembly port are installed): the real MicroPython heap over four
simulated days of use does not grow day after day.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest
from hobguard_fw import core as fw_core
from test_reliability_properties import BURNERS, Harness

pytestmark = pytest.mark.soak

DAY = 24 * 3600 * 1000
H = 3600 * 1000
M = 60 * 1000
DAYS = 7
REPO = Path(__file__).resolve().parent.parent


def deep_size(root: object, skip: set[int]) -> int:
    """Bytes held by an object graph (sys.getsizeof of every object reachable
    through attributes and containers), not counting `skip` and code."""
    seen = set(skip)
    total = 0
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, (types.ModuleType, types.FunctionType, type, types.MethodType)):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            stack.extend(obj)
        elif hasattr(obj, "__dict__"):
            stack.append(vars(obj))
    return total


def week(rng: random.Random) -> list[tuple[int, str]]:
    """(time ms, action) for seven days of random use."""
    plan: list[tuple[int, str]] = []
    locked_night = False
    for day in range(DAYS):
        base = day * DAY
        if locked_night:  # locked last night: unlocked in the morning
            plan.append((base + rng.randrange(5 * H, 6 * H), "lock off"))
        locked_night = rng.random() < 0.5
        for start_h, end_h in ((6, 9), (11, 14), (17, 21)):
            if rng.random() < 0.15:
                continue  # skipped a meal
            t = base + rng.randrange(start_h * H, end_h * H)
            burners = rng.sample(BURNERS, rng.choice([1, 1, 2]))
            for burner in burners:
                t += rng.randrange(10_000, 5 * M)
                plan.append((t, f"ignite {burner}"))
                cook = rng.randrange(3 * M, 70 * M)
                if rng.random() < 0.6:
                    minutes = rng.choice([5, 10, 12, 20, 25, 45])
                    at = t + rng.randrange(20_000, 2 * M)
                    plan.append((at, f"timer {burner} {minutes:g}"))
                    if rng.random() < 0.3:
                        plan.append((t + 4 * M, f"extend {burner} 5"))
                    if rng.random() < 0.2:
                        plan.append((t + 3 * M, f"cancel {burner}"))
                if rng.random() < 0.1:
                    plan.append((t + cook // 2, f"blowout {burner}"))
                    plan.append((t + cook // 2 + 40_000, f"ignite {burner}"))
                if rng.random() < 0.1:
                    plan.append((t + cook // 3, f"cut {burner}"))
                if rng.random() < 0.9:  # sometimes left on: the guard cuts it
                    plan.append((t + cook, f"off {burner}"))
        for _ in range(rng.randrange(0, 4)):
            plan.append((base + rng.randrange(DAY), rng.choice(["status", "ping"])))
        if locked_night:
            plan.append((base + rng.randrange(22 * H, 23 * H), "lock on"))
        # trouble
        if rng.random() < 0.3:
            t = base + rng.randrange(DAY - H)
            plan.append((t, "link lost"))
            plan.append((t + rng.randrange(M, 40 * M), "link ok"))
        if rng.random() < 0.15:
            plan.append((base + rng.randrange(DAY - H), f"power_loss {rng.choice([300, 5_000, 60_000])}ms"))
        if rng.random() < 0.1:
            plan.append((base + rng.randrange(DAY - H), "hang"))
        if rng.random() < 0.4:
            plan.append((base + rng.randrange(DAY), f"garbage {rng.choice([30, 200])}"))
        if rng.random() < 0.05:
            t = base + rng.randrange(DAY - H)
            plan.append((t, "adc dead"))
            plan.append((t + rng.randrange(10_000, 10 * M), "adc ok"))
    plan.sort(key=lambda item: item[0])
    return plan


@pytest.mark.parametrize("seed", [1, 2])
def test_a_week_of_random_use_stays_sane(seed):
    h = Harness(seed=seed, ticks_offset=(1 << 30) - 3 * DAY - 5 * H)
    rng = random.Random(seed)
    plan = week(rng)
    sizes: list[int] = []
    wrapped = False
    day_end = DAY
    for at, action in plan + [(DAYS * DAY, "end")]:
        while day_end <= at:
            h.run_until(day_end)
            sizes.append(_day_checks(h))
            wrapped = wrapped or h.device.time.ticks_ms() < day_end
            day_end += DAY
        if action == "end":
            break
        h.run_until(at)
        h.act(action)
        h.check()
    h.check()
    assert len(sizes) == DAYS
    assert wrapped, "the week did not cross the tick wrap-around"
    # The firmware's objects do not grow from day to day (a reset makes them
    # anew; a timer or a fault held at midnight adds a little).
    assert max(sizes[1:]) <= sizes[0] * 1.10 + 2048, f"firmware objects by day (bytes): {sizes}"
    # The week really happened.
    for what in ("ok:timer_set", "evt:cut", "evt:ignited", "check:deadline"):
        assert h.counts.get(what, 0) > DAYS, f"{what}: {h.counts.get(what)} in a week: {h.counts}"


def _day_checks(h: Harness) -> int:
    device = h.device
    app = device.app
    h.check()
    if app is None:  # midnight in the middle of a reset: look again a moment later
        h.run_until(h.now + 70_000)
        app = device.app
    assert app is not None, "the firmware is not running"
    now = device.time.ticks_ms()
    for burner in app.hob.burners:
        for name in ("timer_deadline", "guard_deadline", "cut_until", "verify_deadline"):
            deadline = getattr(burner, name)
            assert deadline is None or fw_core.ticks_diff(deadline, now) > -2_000, (
                f"{burner.name}.{name} is {-fw_core.ticks_diff(deadline, now)} ms in the past: a stuck timer"
            )
    assert app.hob.events == [] and app.hob.events_dropped == 0
    skip = {id(device.board), id(device.time), id(device.link), id(device.clock), id(app.machine), id(app.link)}
    return deep_size(app, skip)


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js")
def test_micropython_heap_does_not_grow_from_day_to_day():
    script = REPO / "tools" / "mpy-wasm" / "heap.mjs"
    port = REPO / "tools" / "mpy-wasm" / "node_modules" / "@micropython"
    if not port.exists():
        pytest.skip("the MicroPython WebAssembly port is not installed (make setup)")
    proc = subprocess.run(
        ["node", str(script), str(REPO), "--hours", "96"], capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    stages = report["stages"]
    days = [stages[f"after {24 * d} h"] for d in range(1, 5)]
    growth = [b - a for a, b in zip(days, days[1:], strict=False)]
    # A leak adds about the same every day; a one-off step (a dict resized, a
    # pointer the conservative collector still sees) does not repeat. So at
    # least one whole day of the last three must show no growth at all.
    assert min(growth) <= 64, f"heap grows every day: {days} (bytes at 24, 48, 72, 96 h)"
    assert report["max_after_start"] <= stages["app started"] + 4096, stages
