"""Gas-off time in the simulated physics: a remote cut against the
flame-failure device's own closing time after the flame goes out.

Remote cut: a burner burns steadily; the host sends `cut` over the serial
line; the firmware opens the relay, the contact opens (relay release time),
the coil current stops, and the magnet lets go after its drop-out time. The
figure is *command arrives at the device -> valve closed* (the magnet_drop
event of the physics model, at its exact time).

Flame loss: the same burner's flame is blown out (draught, boil-over); gas
keeps flowing through the held valve until the thermocouple has cooled so
far that its current falls below the drop-out current. Figure: *blow-out ->
valve closed*. This is what a hob does on its own, with or without hobguard.

Both are measured for many seeds: with the default (PHYSICS.md) parameters
the moment of the cut relative to the firmware's sampling varies; with
"spread" parameters every burner draws its thermocouple EMF, resistances,
drop-out current, hysteresis, drop-out time and time constants uniformly
from the ranges PHYSICS.md gives (burners that would not light are skipped).
"""

from __future__ import annotations

import random
from typing import Any

from hobguard_sim import actions
from hobguard_sim.device import SimDevice
from hobguard_sim.physics import PARAM_SPECS, BurnerParams

from .common import Figure, bench_command, median, percentile

SPREAD = (
    "emf_hot_mv",
    "r_thermocouple_ohm",
    "r_coil_ohm",
    "drop_out_a",
    "hold_hysteresis",
    "drop_out_time_s",
    "heat_tau_s",
    "cool_tau_s",
)


def spread_params(rng: random.Random) -> dict[str, float]:
    out = {}
    for name in SPREAD:
        spec = PARAM_SPECS[name]
        assert spec.lo is not None and spec.hi is not None
        out[name] = rng.uniform(spec.lo, spec.hi)
    return out


def _valve_closed_at(device: SimDevice, index: int, after_s: float) -> float | None:
    for t, kind in device.physics.models[index].events:
        if kind == "magnet_drop" and t >= after_s:
            return t
    return None


def _lit_device(seed: int, params: dict[str, Any] | None, rng: random.Random) -> SimDevice | None:
    device = SimDevice(seed=seed, burner_params={"left": params} if params else None)
    device.keep_frames = False
    device.run_for(5_000 + rng.randrange(5_000))
    actions.act(device, "ignite left")
    device.run_for(60_000 + rng.randrange(10_000))
    truth = device.truth()[0]
    if not (truth["flame"] and truth["valve"] == "open" and truth["knob"] == "on"):
        return None  # this burner does not light with these parameters
    return device


def one(seed: int, spread: bool) -> dict[str, float] | None:
    rng = random.Random(seed)
    params = spread_params(rng) if spread else None
    if params is not None:
        try:
            BurnerParams.from_dict(params)
        except ValueError:
            return None
    result: dict[str, float] = {}
    # Remote cut.
    device = _lit_device(seed, params, random.Random(seed * 2 + 1))
    if device is None:
        return None
    sent = device.clock.seconds
    actions.act(device, "cut left")
    device.run_for(30_000)
    closed = _valve_closed_at(device, 0, sent)
    if closed is None:
        return None
    result["remote_cut_s"] = closed - sent
    # Flame blown out, no command: the flame-failure device alone.
    device = _lit_device(seed, params, random.Random(seed * 2 + 1))
    assert device is not None
    out = device.clock.seconds
    actions.act(device, "blowout left")
    device.run_for(90_000)
    closed = _valve_closed_at(device, 0, out)
    if closed is None:
        return None
    result["flame_out_s"] = closed - out
    return result


def measure(quick: bool = False) -> list[Figure]:
    seeds = 8 if quick else 30
    figures = []
    for spread in (False, True):
        results = [r for r in (one(seed, spread) for seed in range(1, seeds + 1)) if r is not None]
        cut_ms = [r["remote_cut_s"] * 1000 for r in results]
        ffd_s = [r["flame_out_s"] for r in results]
        label = "PHYSICS.md spread" if spread else "defaults"
        suffix = "_spread" if spread else ""
        figures.append(
            Figure(
                id="gas_off_remote_cut" + suffix,
                name=f"gas off: remote cut -> valve closed, {label}",
                value=median(cut_ms),
                unit="ms",
                command=bench_command("gas_off", quick),
                runs=cut_ms,
                note=f"median of {len(cut_ms)} seeds; min {min(cut_ms):.1f}, max {max(cut_ms):.1f} ms",
                details={"seeds": seeds, "lit": len(results), "p99_ms": percentile(cut_ms, 99)},
            )
        )
        figures.append(
            Figure(
                id="gas_off_flame_loss" + suffix,
                name=f"gas off: flame loss -> valve closed (FFD), {label}",
                value=median(ffd_s),
                unit="s",
                command=bench_command("gas_off", quick),
                runs=ffd_s,
                note=f"median of {len(ffd_s)} seeds; min {min(ffd_s):.2f}, max {max(ffd_s):.2f} s",
                details={"seeds": seeds, "lit": len(results)},
            )
        )
    return figures
