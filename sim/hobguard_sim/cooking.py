"""Random cooking sessions at sample level: one burner's physics and the
firmware's flame-loss detector, without the rest of the firmware.

This is the test bed of ``hobguard_fw.flameloss``: fast enough for tens of
thousands of sessions (``tests/test_flameloss_sessions.py``, the study in
``bench/flame_loss.py``).  A session is a list of timed actions on a
:class:`~hobguard_sim.physics.BurnerModel` with its relay closed all along;
the detector reads the ADC the way the device does (every ``slow_ms``, every
``fast_ms`` while the detector asks for it) and its verdict is judged
against the physical truth:

* a *false fire* is a verdict given while the flame burns (whatever the
  thermocouple showed);
* a *loss* is the flame going out for any reason (blow-out, boil-over, the
  knob turned off, the magnet letting go on a turn-down); its *delay* is the
  time from the flame going out to the verdict, and the valve closes
  ``relay_release_s + drop_out_time_s`` after the verdict (the cut) or when
  the flame-failure device lets go by itself, whichever is first.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from hobguard_fw.flameloss import FlameLossDetector

from .physics import INF, LEVEL_MIN, PARAM_SPECS, BurnerModel, BurnerParams

__all__ = [
    "Action",
    "Outcome",
    "TraceSample",
    "Session",
    "random_params",
    "random_session",
    "edge_session",
    "draught_session",
    "EDGE_KINDS",
    "run_session",
    "FULL_FLOW_L_PER_S",
]

#: Gas flow of a 2 kW burner at full flame, litres per second, with natural
#: gas at 10 kWh per m³ (net calorific value; see docs/physics.md):
#: 2 kW / 10 kWh/m³ = 0.2 m³/h = 200 L / 3600 s.
FULL_FLOW_L_PER_S = 2.0 / 10.0 * 1000.0 / 3600.0

TICKS_MASK = (1 << 30) - 1

# Parameters drawn for a random burner, each uniformly over PHYSICS.md's range
# unless narrowed here (the switch: a relay or MOSFET of 0-20 mΩ, the
# project's recommendation; wiring 2-20 mΩ; the ADC noise around the guess).
_RANDOM = {
    "emf_hot_mv": None,
    "tc_aging": (0.72, 1.0),
    "r_thermocouple_ohm": None,
    "r_coil_ohm": None,
    "r_wiring_ohm": (0.002, 0.02),
    "r_switch_ohm": (0.0, 0.02),
    "drop_out_a": None,
    "hold_hysteresis": None,
    "drop_out_time_s": (0.01, 0.1),
    "heat_tau_s": None,
    "cool_tau_s": None,
    "simmer_emf_ratio": None,
    "tip_h_exponent": None,
    "flicker_mv": (0.0, 0.5),
    "flicker_tau_s": None,
    "wet_cool_ratio": None,
    "adc_noise_mv": (0.005, 0.02),
}


def random_params(rng: random.Random, consistent: bool = True, **fixed: Any) -> BurnerParams:
    """A burner drawn over the ranges, one that lights within the 15 s a person
    holds the knob.  ``consistent``: only burners whose time constants and
    simmer ratio fit the lumped tip model (``BurnerParams.lumped_consistent``).
    ``fixed`` pins parameters."""
    for _ in range(10_000):
        d: dict[str, Any] = {}
        for name, span in _RANDOM.items():
            if name in fixed:
                continue
            if span is None:
                spec = PARAM_SPECS[name]
                assert spec.lo is not None and spec.hi is not None
                span = (spec.lo, spec.hi)
            d[name] = rng.uniform(*span)
        d.update(fixed)
        p = BurnerParams.from_dict(d)
        if consistent and not p.lumped_consistent:
            continue
        # Lights: the hot current at full flame reaches the hold current with
        # some margin (a person holds 15 s; 1 - e^-3 of the way after 3 tau).
        if p.hot_current_a * (1.0 - math.exp(-15.0 / p.heat_tau_s)) < p.hold_a * 1.02:
            continue
        return p
    raise RuntimeError(f"no burner found that lights with {fixed}")


class TraceSample(NamedTuple):
    """One reading the detector was fed."""

    t: float  # s
    mv: float  # NaN: no reading
    fast: bool  # the detector was watching closely


@dataclass(frozen=True)
class Action:
    t: float  # seconds
    kind: str  # ignite, turn, draught, blowout, boilover, off
    a: float = 0.0  # turn: level; draught: seconds
    b: float = 0.0  # turn: ramp seconds; draught: severity


@dataclass
class Session:
    params: BurnerParams
    actions: list[Action]
    end: float  # seconds
    seed: int = 0
    ticks0: int = 0  # tick count at t = 0 (exercises the wrap)
    phase_ms: int = 0  # first sample

    @property
    def loss(self) -> Action | None:
        for act in self.actions:
            if act.kind in ("blowout", "boilover", "off"):
                return act
        return None


@dataclass
class Outcome:
    session: Session
    fired_at: float | None = None  # the detector's verdict (s)
    flame_out_at: float | None = None  # the flame went out (s), first time
    false_fire: bool = False  # verdict while the flame burned
    ffd_closed_at: float | None = None  # the flame-failure device let go by itself
    samples: int = 0
    fast_samples: int = 0
    burn_s: float = 0.0  # time with the flame on (s)
    gas_flowing_at_loss: bool = False
    level_at_loss: float = 1.0
    trace: list[TraceSample] = field(default_factory=list)  # when kept

    @property
    def delay(self) -> float | None:
        """Flame out -> verdict (s)."""
        if self.fired_at is None or self.flame_out_at is None or self.false_fire:
            return None
        return self.fired_at - self.flame_out_at

    @property
    def cut_closed_at(self) -> float | None:
        """When the valve closes with hobguard: the cut's relay release and the
        magnet's drop-out after the verdict, or the flame-failure device first."""
        if self.flame_out_at is None:
            return None
        p = self.session.params
        t = INF
        if self.fired_at is not None and not self.false_fire:
            t = self.fired_at + p.relay_release_s + p.drop_out_time_s
        if self.ffd_closed_at is not None:
            t = min(t, self.ffd_closed_at)
        return None if t == INF else t

    def unburnt_s(self, with_detector: bool) -> float | None:
        """Seconds of unburnt gas (at the level of the flame that went out) after the loss."""
        if self.flame_out_at is None or not self.gas_flowing_at_loss:
            return None
        closed = self.cut_closed_at if with_detector else self.ffd_closed_at
        return None if closed is None else closed - self.flame_out_at


def random_session(
    rng: random.Random,
    params: BurnerParams | None = None,
    *,
    events: tuple[int, int] = (1, 6),
    gap_s: tuple[float, float] = (2.0, 30.0),
    loss_weights: tuple[float, float, float, float] = (0.45, 0.1, 0.25, 0.2),
    max_draught_s: float = 2.95,
    consistent: bool = True,
) -> Session:
    """Ignite, then turns (any level, at once or over up to 10 s), draughts
    (up to ``max_draught_s``, severity up to 1) at random gaps that may cut into
    each other's transients, then a blow-out, a boil-over, the knob off, or
    nothing (``loss_weights`` in that order)."""
    p = params or random_params(rng, consistent=consistent)
    t = rng.uniform(0.5, 3.0)
    acts = [Action(t, "ignite")]
    t += 12.0 + rng.uniform(0.0, 10.0)  # lit, let go, settled a little
    for _ in range(rng.randint(*events)):
        if rng.random() < 0.6:
            level = LEVEL_MIN if rng.random() < 0.35 else rng.choice((1.0, rng.uniform(LEVEL_MIN, 1.0)))
            ramp = 0.0 if rng.random() < 0.4 else rng.uniform(0.2, 10.0)
            acts.append(Action(t, "turn", level, ramp))
            busy = ramp
        else:
            d = rng.uniform(0.1, max_draught_s)
            sev = 1.0 if rng.random() < 0.5 else rng.uniform(0.2, 1.0)
            acts.append(Action(t, "draught", d, sev))
            busy = d
        t += busy + rng.uniform(*gap_s)
    kind = rng.choices(("blowout", "boilover", "off", None), weights=loss_weights)[0]
    if kind is not None:
        t -= rng.uniform(0.0, min(gap_s[0], 1.5))  # sometimes during the last transient
        acts.append(Action(t, kind))
    end = t + 25.0
    seed = rng.getrandbits(32)
    ticks0 = rng.choice((0, rng.getrandbits(30), (1 << 30) - rng.randint(1, 120_000)))
    return Session(p, acts, end, seed=seed, ticks0=ticks0, phase_ms=rng.randrange(1000))


#: The kinds of edge session (``edge_session``): the cases that decide the detector's numbers.
EDGE_KINDS = (
    "draught_edge",
    "turndown",
    "turn_then_draught",
    "blowout_full",
    "blowout_simmer",
    "boilover",
)


def edge_session(rng: random.Random, kind: str, params: BurnerParams | None = None, consistent: bool = True) -> Session:
    """A session aimed at one edge of the detector, with the burner drawn
    toward that edge half of the time:

    * ``draught_edge``: a steady flame and 1-3 draughts of 2.5-2.99 s (most at
      severity 1), fast-cooling tips (cool_tau_s 6-7.5 s) half the time; no loss.
    * ``turndown``: full flame turned to the lowest simmer, at once or over up
      to 12 s, and back up, 2-3 times; half the time a fast-cooling tip with a
      weak simmer ratio (cool_tau_s 6-7 s, simmer_emf_ratio 0.6-0.72); no loss.
    * ``turn_then_draught``: a turn-down at once followed 0.5-3 s later by a
      draught of 1.5-2.99 s at severity 1; no loss.
    * ``blowout_full`` / ``blowout_simmer``: a blow-out at full flame (slow
      tips, cool_tau_s 10-12 s, half the time) / at the lowest level, anywhere
      from during the turn-down's transient to long after.
    * ``boilover``: a boil-over at a random level.
    """
    half = rng.random() < 0.5
    fixed: dict[str, float] = {}
    if kind in ("draught_edge", "turn_then_draught") and half:
        fixed["cool_tau_s"] = rng.uniform(6.0, 7.5)
    elif kind == "turndown" and half:
        # The steepest turn-down next to a blow-out: a fast-cooling tip with a
        # weak simmer ratio (the tip's heating time constant follows from them).
        fixed["cool_tau_s"] = rng.uniform(6.0, 7.0)
        fixed["simmer_emf_ratio"] = rng.uniform(0.6, 0.72)
    elif kind in ("blowout_full", "blowout_simmer") and half:
        fixed["cool_tau_s"] = rng.uniform(10.0, 12.0)
    p = params or random_params(rng, consistent=consistent, **fixed)
    t = rng.uniform(0.5, 3.0)
    acts = [Action(t, "ignite")]
    t += 15.0 + rng.uniform(0.0, 10.0)
    if kind == "draught_edge":
        if rng.random() < 0.5:
            acts.append(Action(t, "turn", rng.choice((LEVEL_MIN, rng.uniform(LEVEL_MIN, 1.0))), 0.0))
            t += 30.0
        for _ in range(rng.randint(1, 3)):
            sev = 1.0 if rng.random() < 0.6 else rng.uniform(0.5, 1.0)
            d = rng.uniform(2.5, 2.99)
            acts.append(Action(t, "draught", d, sev))
            t += d + rng.uniform(8.0, 20.0)
    elif kind == "turndown":
        for _ in range(rng.randint(2, 3)):
            ramp = 0.0 if rng.random() < 0.4 else rng.uniform(0.1, 12.0)
            acts.append(Action(t, "turn", LEVEL_MIN, ramp))
            t += ramp + rng.uniform(20.0, 35.0)
            ramp = 0.0 if rng.random() < 0.5 else rng.uniform(0.1, 5.0)
            acts.append(Action(t, "turn", 1.0, ramp))
            t += ramp + rng.uniform(20.0, 30.0)
    elif kind == "turn_then_draught":
        acts.append(Action(t, "turn", LEVEL_MIN, 0.0))
        t += rng.uniform(0.5, 3.0)
        d = rng.uniform(1.5, 2.99)
        acts.append(Action(t, "draught", d, 1.0))
        t += d + 20.0
    elif kind == "blowout_full":
        t += rng.uniform(0.0, 40.0)
        acts.append(Action(t, "blowout"))
    elif kind == "blowout_simmer":
        acts.append(Action(t, "turn", LEVEL_MIN, 0.0 if rng.random() < 0.5 else rng.uniform(0.1, 5.0)))
        t += rng.choice((rng.uniform(1.0, 10.0), rng.uniform(10.0, 60.0)))
        acts.append(Action(t, "blowout"))
    elif kind == "boilover":
        acts.append(Action(t, "turn", rng.uniform(LEVEL_MIN, 1.0), 0.0))
        t += rng.uniform(5.0, 40.0)
        acts.append(Action(t, "boilover"))
    else:
        raise ValueError(f"unknown edge kind {kind!r}; kinds: {', '.join(EDGE_KINDS)}")
    end = t + 25.0
    return Session(p, acts, end, seed=rng.getrandbits(32), ticks0=rng.getrandbits(30), phase_ms=rng.randrange(1000))


def draught_session(rng: random.Random, duration_s: float, params: BurnerParams | None = None) -> Session:
    """A steady flame at a random level and one draught of ``duration_s`` at severity 1; no loss."""
    p = params or random_params(rng)
    t = rng.uniform(0.5, 3.0)
    acts = [Action(t, "ignite")]
    t += 15.0
    acts.append(Action(t, "turn", rng.choice((1.0, LEVEL_MIN, rng.uniform(LEVEL_MIN, 1.0))), 0.0))
    t += 30.0 + rng.uniform(0.0, 5.0)
    acts.append(Action(t, "draught", duration_s, 1.0))
    return Session(p, acts, t + duration_s + 20.0, seed=rng.getrandbits(32), phase_ms=rng.randrange(1000))


def run_session(
    session: Session,
    detector: FlameLossDetector | None = None,
    *,
    idle_ms: int = 1000,
    keep_trace: bool = False,
) -> Outcome:
    """Play a session and feed every reading to the detector (a fresh default one
    if None), sampling as often as it asks (``period_ms``), else every ``idle_ms``."""
    det = detector if detector is not None else FlameLossDetector()
    det.reset()
    m = BurnerModel(session.params, seed=session.seed, coil_energised=True)
    out = Outcome(session)
    acts = sorted(session.actions, key=lambda a: a.t)
    ai = 0
    t_ms = session.phase_ms
    end_ms = int(session.end * 1000)
    fast_ms = det.fast_ms
    flame_was = False
    ticks0 = session.ticks0
    while t_ms <= end_ms:
        t = t_ms / 1000.0
        while ai < len(acts) and acts[ai].t <= t:
            _act(m, acts[ai])
            ai += 1
        m.advance(t)
        # The truth at this sample (the flame can only go out at an action or
        # a magnet drop; find the exact time from the model's events).
        flame = m.flame
        if flame_was and not flame and out.flame_out_at is None:
            out.flame_out_at = _flame_out_time(m, acts, t)
            out.gas_flowing_at_loss = _gas_after(m, acts, out.flame_out_at)
            out.level_at_loss = m.level
        flame_was = flame
        mv = m.adc_mv()
        fast = det.period_ms() == fast_ms
        if det.feed((ticks0 + t_ms) & TICKS_MASK, mv, True) and out.fired_at is None:
            out.fired_at = t
            out.false_fire = flame
        out.samples += 1
        out.fast_samples += fast
        if keep_trace:
            out.trace.append(TraceSample(t, mv if mv is not None else math.nan, fast))
        step = det.period_ms() or idle_ms
        if flame:
            out.burn_s += step / 1000.0
        t_ms += step
    m.advance(session.end)
    if out.flame_out_at is not None:
        for te, kind in m.events:
            if kind == "magnet_drop" and te >= out.flame_out_at:
                out.ffd_closed_at = te
                break
    return out


def _act(m: BurnerModel, a: Action) -> None:
    t = max(a.t, m.t)
    if a.kind == "ignite":
        m.press_knob(t)
    elif a.kind == "turn":
        m.turn(t, a.a, ramp_s=a.b)
    elif a.kind == "draught":
        m.draught(t, a.a, severity=a.b)
    elif a.kind == "blowout":
        m.blow_out(t)
    elif a.kind == "boilover":
        m.boil_over(t)
    elif a.kind == "off":
        m.turn_off(t)
    else:
        raise ValueError(f"unknown action {a.kind!r}")


def _flame_out_time(m: BurnerModel, acts: list[Action], t: float) -> float:
    """The exact time the flame went out, at or before t: the latest action or
    magnet drop that can have put it out."""
    best = -INF
    for a in acts:
        if a.t <= t and a.kind in ("blowout", "boilover", "off"):
            best = max(best, a.t)
    for te, kind in m.events:
        if kind in ("magnet_drop", "knob_release") and te <= t:
            best = max(best, te)
    return best


def _gas_after(m: BurnerModel, acts: list[Action], t_out: float) -> bool:
    """Gas flowed after the flame went out (not the knob turned off, not the valve shut)."""
    for a in acts:
        if a.t == t_out and a.kind == "off":
            return False
    return m.gas_flow or any(te > t_out for te, kind in m.events if kind == "magnet_drop")
