"""Simulator speed: 24 simulated hours of a realistic day with the real
firmware in the loop, in simulated seconds per wall second.

The day: breakfast, lunch, dinner and a late tea on a two-burner hob, with
timers set, extended and cancelled from the host, a remote cut, a flame
blown out by a boil-over, burners turned off by hand, and long quiet hours
in between. Every person action and command is a word of the simulator's
action language (hobguard_sim.actions), scheduled on the device and done
exactly as a scenario step would be; the firmware's App.step() runs at
every wake-up it asks for.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import time

from hobguard_sim import actions
from hobguard_sim.device import SimDevice

from .common import Figure, bench_command, median

DAY_MS = 24 * 3600 * 1000
H = 3600 * 1000
M = 60 * 1000

# (time, action): breakfast, lunch, dinner and a late tea.
DAY_PLAN: list[tuple[int, str]] = [
    # Breakfast: porridge on the left with a 12-minute timer (cut by the
    # timer), coffee on the right turned off by hand.
    (7 * H + 30 * M, "ignite left"),
    (7 * H + 31 * M, "timer left 12"),
    (7 * H + 35 * M, "ignite right"),
    (7 * H + 41 * M, "off right"),
    (7 * H + 50 * M, "off left"),  # after the timer cut: knob back to off
    # Lunch: soup with a 25-minute timer, extended by 5; pasta on the
    # left, cut remotely from the phone.
    (12 * H + 30 * M, "ignite right"),
    (12 * H + 31 * M, "timer right 25"),
    (12 * H + 40 * M, "ignite left"),
    (12 * H + 50 * M, "extend right 5"),
    (12 * H + 52 * M, "cut left"),
    (12 * H + 53 * M, "off left"),
    (13 * H + 5 * M, "off right"),
    (14 * H, "status"),
    # Dinner: a stew for 45 minutes on the left, rice on the right boils
    # over (flame blown out, the flame-failure device closes), relit,
    # its timer cancelled and the burner turned off by hand.
    (18 * H + 45 * M, "ignite left"),
    (18 * H + 46 * M, "timer left 45"),
    (19 * H, "ignite right"),
    (19 * H + 1 * M, "timer right 20"),
    (19 * H + 5 * M, "blowout right"),
    (19 * H + 6 * M, "off right"),
    (19 * H + 6 * M + 5000, "ignite right"),
    (19 * H + 10 * M, "cancel right"),
    (19 * H + 25 * M, "off right"),
    (19 * H + 40 * M, "off left"),
    # Night: child lock on and off again in the morning is tomorrow;
    # a late tea first.
    (21 * H, "ignite left"),
    (21 * H + 6 * M, "off left"),
    (22 * H, "lock on"),
    (23 * H + 59 * M, "lock off"),
]


def day_schedule(device: SimDevice) -> int:
    """Schedule a realistic day on `device`; returns the number of actions."""
    for at, text in DAY_PLAN:
        action = actions.parse(text, device.names, settings=device.settings)
        device.schedule(at, lambda a=action: a.apply(device), "day")
    return len(DAY_PLAN)


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

    def step(t_ms: int) -> None:
        counts["steps"] += 1

    def output(t_ms: int, text: str, heard: bool) -> None:
        counts["frames"] += text.count("\n")

    device.hooks.step.append(step)
    device.hooks.output.append(output)
    day_schedule(device)
    device.run_for(DAY_MS)
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
