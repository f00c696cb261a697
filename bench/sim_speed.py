"""Simulator speed: 24 simulated hours of a realistic day with the real
firmware in the loop, in simulated seconds per wall second.

The day: breakfast, lunch, dinner and a late tea on a two-burner hob, with
timers set, extended and cancelled from the host, a remote cut, a flame
blown out by a boil-over, burners turned off by hand, and long quiet hours
in between. Every person action and command goes through the simulator
exactly as a scenario would (SimDevice.schedule / SimDevice.command); the
firmware's App.step() runs at every wake-up it asks for.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import time
from typing import Any, Callable

from hobguard_sim.device import SimDevice

from .common import Figure, bench_command, median

DAY_MS = 24 * 3600 * 1000
H = 3600 * 1000
M = 60 * 1000

LEFT, RIGHT = 0, 1


def day_schedule(device: SimDevice) -> int:
    """Schedule a realistic day on `device`; returns the number of actions."""
    phys = device.physics

    def person(kind: str, index: int) -> Callable[[], None]:
        method = {"ignite": phys.ignite, "off": phys.turn_off, "blowout": phys.blow_out}[kind]
        return lambda: method(index, device.clock.seconds)

    def cmd(name: str, **args: Any) -> Callable[[], None]:
        return lambda: device.command(name, **args)

    plan: list[tuple[int, Callable[[], None]]] = [
        # Breakfast: porridge on the left with a 12-minute timer (cut by the
        # timer), coffee on the right turned off by hand.
        (7 * H + 30 * M, person("ignite", LEFT)),
        (7 * H + 31 * M, cmd("timer_set", burner="left", minutes=12)),
        (7 * H + 35 * M, person("ignite", RIGHT)),
        (7 * H + 41 * M, person("off", RIGHT)),
        (7 * H + 50 * M, person("off", LEFT)),  # after the timer cut: knob back to off
        # Lunch: soup with a 25-minute timer, extended by 5; pasta on the
        # left, cut remotely from the phone.
        (12 * H + 30 * M, person("ignite", RIGHT)),
        (12 * H + 31 * M, cmd("timer_set", burner="right", minutes=25)),
        (12 * H + 40 * M, person("ignite", LEFT)),
        (12 * H + 50 * M, cmd("timer_extend", burner="right", minutes=5)),
        (12 * H + 52 * M, cmd("cut", burner="left")),
        (12 * H + 53 * M, person("off", LEFT)),
        (13 * H + 5 * M, person("off", RIGHT)),
        (14 * H, cmd("status")),
        # Dinner: a stew for 45 minutes on the left, rice on the right boils
        # over (flame blown out, the flame-failure device closes), relit,
        # its timer cancelled and the burner turned off by hand.
        (18 * H + 45 * M, person("ignite", LEFT)),
        (18 * H + 46 * M, cmd("timer_set", burner="left", minutes=45)),
        (19 * H, person("ignite", RIGHT)),
        (19 * H + 1 * M, cmd("timer_set", burner="right", minutes=20)),
        (19 * H + 5 * M, person("blowout", RIGHT)),
        (19 * H + 6 * M, person("off", RIGHT)),
        (19 * H + 6 * M + 5000, person("ignite", RIGHT)),
        (19 * H + 10 * M, cmd("timer_cancel", burner="right")),
        (19 * H + 25 * M, person("off", RIGHT)),
        (19 * H + 40 * M, person("off", LEFT)),
        # Night: child lock on and off again in the morning is tomorrow;
        # a late tea first.
        (21 * H, person("ignite", LEFT)),
        (21 * H + 6 * M, person("off", LEFT)),
        (22 * H, cmd("lock", on=True)),
        (23 * H + 59 * M, cmd("lock", on=False)),
    ]
    for at, action in plan:
        device.schedule(at, action, "day")
    return len(plan)


def run_day(keep_frames: bool = False, seed: int = 1, cpu: list[float] | None = None) -> tuple[float, SimDevice]:
    """Wall seconds for one simulated day (device construction excluded);
    the process's CPU seconds are appended to `cpu` when given."""
    device = SimDevice(seed=seed)
    device.keep_frames = keep_frames
    day_schedule(device)
    start, cpu0 = time.perf_counter(), time.process_time()
    device.run_for(DAY_MS)
    if cpu is not None:
        cpu.append(time.process_time() - cpu0)
    return time.perf_counter() - start, device


def profile_day(top: int = 12) -> str:
    device = SimDevice(seed=1)
    device.keep_frames = False
    day_schedule(device)
    profiler = cProfile.Profile()
    profiler.enable()
    device.run_for(DAY_MS)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


def count_steps() -> dict[str, int]:
    """Firmware steps, ADC conversions and frames written in the day."""
    device = SimDevice(seed=1)
    device.keep_frames = False
    counts = {"steps": 0, "frames": 0}
    app_step = type(device.app).step

    def counting_step(self):  # type: ignore[no-untyped-def]
        counts["steps"] += 1
        return app_step(self)

    lines = [0]

    def output(text: str) -> None:
        lines[0] += text.count("\n")

    device.on_output = output
    type(device.app).step = counting_step  # type: ignore[method-assign]
    try:
        day_schedule(device)
        device.run_for(DAY_MS)
    finally:
        type(device.app).step = app_step  # type: ignore[method-assign]
    counts["frames"] = lines[0]
    return counts


def measure(quick: bool = False) -> list[Figure]:
    runs = 3
    walls = []
    cpu: list[float] = []
    for _ in range(runs):
        wall, _device = run_day(keep_frames=False, cpu=cpu)
        walls.append(wall)
    speeds = [DAY_MS / 1000 / w for w in walls]
    # The day really happened: the timer cut, the remote cut, the lock.
    framed_wall, framed = run_day(keep_frames=True)
    reasons = sorted({(e.get("burner"), e.get("reason")) for e in framed.events("cut")}, key=str)
    counts = count_steps()
    figures = [
        Figure(
            id="sim_speed",
            name="sim speed: 24 h day, firmware in the loop",
            value=median(speeds),
            unit="x real time",
            command=bench_command("sim_speed", quick),
            runs=speeds,
            target=">= 100000",
            note="simulated s per wall s; frames written by the firmware but not decoded by a host; "
            "details.speed_by_cpu_time is the same per CPU second (less sensitive to a busy machine)",
            details={
                "wall_s": walls,
                "cpu_s": cpu,
                "speed_by_cpu_time": DAY_MS / 1000 / median(cpu),
                "firmware_steps": counts["steps"],
                "frames_written": counts["frames"],
                "cuts_seen": [list(r) for r in reasons],
            },
        ),
        Figure(
            id="sim_speed_frames",
            name="sim speed: same, every frame decoded",
            value=DAY_MS / 1000 / framed_wall,
            unit="x real time",
            command=bench_command("sim_speed", quick),
            runs=[DAY_MS / 1000 / framed_wall],
            note="as a scenario or test sees it (SimDevice.keep_frames = True); one run",
        ),
    ]
    if median(speeds) < 100_000:
        figures[0].details["profile_top"] = profile_day()
    return figures
