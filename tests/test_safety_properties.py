"""Safety invariants over random schedules (hypothesis).

A schedule mixes what a person does (light, hold, turn off, a draught, the
button), what the host sends (timers, extensions, cancels, cuts, the lock)
and faults (dead ADC, open thermocouple, high contact resistance, a relay
welded shut or stuck open, power loss, a hung firmware, a lost link,
garbage). It runs with the real firmware in the loop, and the physical truth
must keep these invariants:

1. Only a person opens a valve: every closed->open transition of a valve
   happens with its knob held, at the moment a person pressed it. (Also
   checked by every scenario run: `scenario.invariant_checks`.)
2. Every cut has a known reason; the firmware never crashes.
3. Gas never flows to a burner past its timer deadline plus CUT_BOUND, unless
   a person has pressed (or is holding) that knob since the deadline.
   Deadlines come from the device's own `timer_set` events (an upper bound:
   the event is sent at the end of the step that set the timer), and every
   acknowledged timer command must have produced one.
4. Every cut shuts the gas within CUT_BOUND (same person exception).
5. A reset or power loss shuts every valve within the relay release plus
   the magnet's drop-out time; a hung firmware is reset by the watchdog
   within watchdog_ms.
6. A locked hob never keeps a valve open beyond a person holding the knob.
7. With a welded relay the cut cannot work; instead, a cut of a burner whose
   flame keeps burning raises the cut_failed fault within verify_s.

CUT_BOUND, derived (PHYSICS.md defaults; docs in sim/README.md):
  the core schedules its wake-up at the deadline itself, so the cut happens
  in the step at the deadline, after that step's ADC reads (a few ms);
  conservatively we allow one whole sample period (sample_ms, 1 s) for it;
  + relay release time (relay_release_s, 5 ms) until the loop opens
  + magnet drop-out time (drop_out_time_s, 50 ms) until the valve shuts
  + 1 ms rounding to the simulator's millisecond clock
  = 1056 ms. The cut pulse (cut_pulse_s, 3 s) does not add to it: the valve
  shuts during the pulse; the pulse only has to outlast release + drop-out
  (asserted below). The measured worst case is reported by
  test_cut_latency_is_tight (about 60 ms).
"""

from __future__ import annotations

from bisect import bisect_right

import pytest
from hobguard_fw import core as fw_core
from hobguard_sim import scenario
from hobguard_sim.physics import BurnerParams
from hobguard_sim.scenario import Sample, ScenarioResult
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

BURNERS = ("left", "right")
DURATION_S = 15 * 60
P = BurnerParams()
SETTINGS = {"sample_ms": 1000, "watchdog_ms": 8000, "verify_s": 30, "cut_pulse_s": 3}
RELEASE_DROP_MS = int((P.relay_release_s + P.drop_out_time_s) * 1000) + 1
CUT_BOUND_MS = SETTINGS["sample_ms"] + RELEASE_DROP_MS

assert SETTINGS["cut_pulse_s"] * 1000 > RELEASE_DROP_MS, "the cut pulse must outlast relay release + drop-out"

# ---------------------------------------------------------------- schedules

burner = st.sampled_from(BURNERS)
minutes = st.sampled_from([0.5, 1, 2, 3, 5])

person = st.one_of(
    burner.map(lambda b: f"ignite {b}"),
    burner.map(lambda b: f"ignite {b}"),
    burner.map(lambda b: f"off {b}"),
    burner.map(lambda b: f"blowout {b}"),
    st.tuples(burner, st.integers(1, 25)).map(lambda a: f"hold {a[0]} {a[1]}s"),
    st.sampled_from(["press short", "press long"]),
)
host = st.one_of(
    st.tuples(burner, minutes).map(lambda a: f"timer {a[0]} {a[1]:g}"),
    st.tuples(burner, minutes).map(lambda a: f"timer {a[0]} {a[1]:g}"),
    st.tuples(burner, minutes).map(lambda a: f"extend {a[0]} {a[1]:g}"),
    burner.map(lambda b: f"cancel {b}"),
    burner.map(lambda b: f"cut {b}"),
    st.sampled_from(["cut all", "lock on", "lock off", "clear_fault", "status"]),
)
fault = st.one_of(
    st.sampled_from(["adc dead", "adc ok", "link lost", "link ok", "garbage"]),
    st.just("hang"),
    st.sampled_from(["power_loss 2s", "power_loss 20s"]),
    burner.map(lambda b: f"open_tc {b}"),
    burner.map(lambda b: f"tc_ok {b}"),
    burner.map(lambda b: f"adc dead {b}"),
    burner.map(lambda b: f"weld {b}"),
    burner.map(lambda b: f"unweld {b}"),
    burner.map(lambda b: f"stuck_open {b}"),
    burner.map(lambda b: f"unstick {b}"),
    st.tuples(burner, st.sampled_from([0.005, 0.05, 0.1, 0.5])).map(lambda a: f"contact {a[0]} {a[1]}"),
)
step = st.tuples(st.integers(0, DURATION_S - 60), st.one_of(person, person, host, host, fault))


@st.composite
def cooking(draw):
    """A person lights a burner and the host sets a timer on it."""
    t, b = draw(st.integers(0, DURATION_S - 400)), draw(burner)
    return [(t, f"ignite {b}"), (t + draw(st.integers(5, 60)), f"timer {b} {draw(minutes):g}")]


@st.composite
def child(draw):
    """The hob is locked and someone presses a knob."""
    t, b = draw(st.integers(0, DURATION_S - 120)), draw(burner)
    press = draw(st.sampled_from([f"ignite {b}", f"hold {b} 5s", f"hold {b} 20s"]))
    return [(t, "lock on"), (t + draw(st.integers(0, 60)), press)]


@st.composite
def schedules(draw, welded: bool = False):
    # Some burners lit early, so that timers, cuts and faults meet a flame.
    steps = draw(st.lists(st.tuples(st.integers(0, 120), burner.map(lambda b: f"ignite {b}")), max_size=2))
    for session in draw(st.lists(st.one_of(cooking(), cooking(), child()), max_size=2)):
        steps += session
    if welded:
        b = draw(burner)
        steps += [(0, f"weld {b}"), (draw(st.integers(1, 60)), f"ignite {b}")]
    steps += draw(st.lists(step, min_size=3, max_size=16))
    optional = {
        "warn_before_s": st.sampled_from([0, 10, 60]),
        "idle_sample_ms": st.sampled_from([1000, 4000]),
    }
    optional["left_on_min"] = st.sampled_from([0, 3, 8])
    extra = draw(st.fixed_dictionaries({}, optional=optional))
    return steps, extra


def build(steps, extra) -> scenario.ScenarioSpec:
    data = {
        "title": "random schedule",
        "duration": DURATION_S,
        "settings": dict(SETTINGS, **extra),
        "step": [{"at": at, "do": do} for at, do in sorted(steps, key=lambda s: s[0])],
    }
    return scenario.from_dict(data, name="random")


# ---------------------------------------------------------------- helpers


FOREVER = 10**12


class Intervals:
    """Half-open [start, end) intervals of a condition switched on/off by steps."""

    def __init__(self) -> None:
        self.spans: list[list[int]] = []

    def _open(self) -> bool:
        return bool(self.spans) and self.spans[-1][1] == FOREVER

    def on(self, t: int) -> None:
        if not self._open():
            self.spans.append([t, FOREVER])

    def off(self, t: int) -> None:
        if self._open():
            self.spans[-1][1] = t

    def spans_all(self, a: int, b: int) -> bool:
        return any(s <= a and b < e for s, e in self.spans)

    def overlaps(self, a: int, b: int) -> bool:
        return any(s < b and a < e for s, e in self.spans)

    def covers(self, t: int) -> bool:
        return any(s <= t < e for s, e in self.spans)


def state_at(samples: list[Sample], t: int) -> Sample:
    i = bisect_right(samples, t, key=lambda x: x.t)
    return samples[i - 1]


def gas_after(samples: list[Sample], start: int, end: int) -> int | None:
    """First time in [start, end) at which gas flows, or None."""
    if start >= end:
        return None
    if state_at(samples, start).gas_flow:
        return start
    for s in samples:
        if start < s.t < end and s.gas_flow:
            return s.t
    return None


def held_during(samples: list[Sample], a: int, b: int) -> bool:
    if state_at(samples, a).knob == "held":
        return True
    return any(a < s.t <= b and s.knob == "held" for s in samples)


def next_press(result: ScenarioResult, name: str, t: int) -> int:
    later = [p for p in result.presses[name] if p >= t]
    return min(later) if later else result.spec.duration_ms + 1


class Faults:
    """Which faults were in force when, from the executed steps."""

    def __init__(self, result: ScenarioResult) -> None:
        self.welded = {b: Intervals() for b in BURNERS}
        open_tc = {b: Intervals() for b in BURNERS}
        adc_dead = {b: Intervals() for b in BURNERS}
        self.hangs: list[int] = []
        self.power_losses: list[tuple[int, int]] = []
        board_adc = Intervals()
        for t, st_ in result.steps_done:
            a = st_.action
            if a is None:
                continue
            v, b = a.verb, a.burner
            if v == "weld":
                self.welded[b].on(t)
            elif v == "unweld":
                self.welded[b].off(t)
            elif v in ("open_tc", "tc_ok"):
                (open_tc[b].on if v == "open_tc" else open_tc[b].off)(t)
            elif v == "adc" and b:  # a.value: the input works again
                (adc_dead[b].off if a.value else adc_dead[b].on)(t)
            elif v == "adc":
                (board_adc.off if a.value else board_adc.on)(t)
            elif v == "hang":
                # A hang while the device is off or booting changes nothing: no firmware runs.
                if not any(t0 <= t < t1 for t0, t1, _ in result.downtime):
                    self.hangs.append(t)
            elif v == "power_loss":
                self.power_losses.append((t, a.value))
        # Any of these makes the burner's flame reading unknown or impossible.
        self.sensor_bad = {b: Intervals() for b in BURNERS}
        for b in BURNERS:
            self.sensor_bad[b].spans = open_tc[b].spans + adc_dead[b].spans + board_adc.spans


def check_invariants(result: ScenarioResult) -> None:
    spec = result.spec
    s = spec.device_settings
    text = lambda: scenario.format_timeline(result)  # noqa: E731
    faults = Faults(result)
    end = spec.duration_ms

    # 1 + 2: the built-in invariants (valves open only by hand, known cut reasons, no crash)
    for check in result.checks:
        assert check.passed, f"{check.text}: {check.detail}\n{text()}"
    assert all(ev.get("reason") in fw_core.REASONS for ev in result.events("cut"))

    # Interruptions: resets (watchdog) and power losses; the device is down from then until its boot.
    interruptions = [t for t, _ in result.resets] + [t for t, _ in faults.power_losses]

    # 5a. a hang ends in a watchdog reset within watchdog_ms (unless power goes first or the run ends)
    for h in faults.hangs:
        resets = [t for t, c in result.resets if t >= h]
        losses = [t for t, _ in faults.power_losses if t >= h]
        limit = h + s["watchdog_ms"] + 1
        if limit < end and not any(t <= limit for t in losses):
            assert resets and resets[0] <= limit, f"hang at {h} ms: no watchdog reset by {limit} ms\n{text()}"
            event("a hang was reset by the watchdog")

    # 5b. a reset or power loss shuts every (non-welded) valve within release + drop-out
    for t in interruptions:
        for b in BURNERS:
            if faults.welded[b].overlaps(t - 1, t + RELEASE_DROP_MS + 1):
                continue
            if held_during(result.samples[b], t - 1, t + RELEASE_DROP_MS):
                continue  # a person holds the knob: the valve is open by hand
            bad = gas_after(result.samples[b], t + RELEASE_DROP_MS, next_press(result, b, t))
            assert bad is None, f"{b}: gas at {bad} ms after the interruption at {t} ms\n{text()}"

    for b in BURNERS:
        samples = result.samples[b]
        welded = faults.welded[b]

        # 4. every cut shuts the gas within CUT_BOUND
        for ev in result.events("cut", burner=b):
            c = ev["_t_ms"]
            if welded.overlaps(c - CUT_BOUND_MS, c + CUT_BOUND_MS) or held_during(samples, c - 1, c + CUT_BOUND_MS):
                continue
            bad = gas_after(samples, c + CUT_BOUND_MS, next_press(result, b, c))
            assert bad is None, f"{b}: cut ({ev.get('reason')}) at {c} ms but gas at {bad} ms\n{text()}"
            if state_at(samples, c - 1).gas_flow:
                event(f"a {ev.get('reason')} cut shut flowing gas")

        # 3. timer deadlines, from the device's own events
        deadlines: list[int] = []
        deadline = None
        timeline = [(ev["_t_ms"], ev) for ev in result.events(burner=b)]
        timeline += [(t, {"event_type": "_interrupted"}) for t in interruptions]
        for t, ev in sorted(timeline, key=lambda x: x[0]):
            kind = ev.get("event_type")
            if deadline is not None and (t >= deadline or (kind == "cut" and ev.get("reason") == "timer")):
                deadlines.append(deadline)  # the deadline came (the timer cut is its own event)
                deadline = None
            if kind == "timer_set":
                deadline = t + int(round(ev["minutes"] * 60_000))
            elif kind in ("timer_cancelled", "cut", "_interrupted"):
                deadline = None
        if deadline is not None and deadline < end:
            deadlines.append(deadline)
        for d in deadlines:
            if welded.overlaps(d - CUT_BOUND_MS, d + CUT_BOUND_MS) or held_during(samples, d - 1, d + CUT_BOUND_MS):
                continue
            if any(h <= d for h in faults.hangs) and any(
                d - s["watchdog_ms"] - 1 <= t <= d + s["watchdog_ms"] + 1 for t, _ in result.resets
            ):
                continue  # hung at the deadline: the watchdog reset is the cut (checked in 5)
            bad = gas_after(samples, d + CUT_BOUND_MS, next_press(result, b, d))
            assert bad is None, f"{b}: timer deadline {d} ms but gas at {bad} ms\n{text()}"
            event("a timer deadline was checked")
            if state_at(samples, d - 1).gas_flow:
                event("a timer cut gas that was flowing")

        # 7. welded relay: a cut of a burning burner raises cut_failed within verify_s
        verify_ms = int(s["verify_s"] * 1000)
        for ev in result.events("cut", burner=b):
            c = ev["_t_ms"]
            lo, hi = c - 10_000, c + verify_ms + 1_000
            if hi > end or not welded.spans_all(lo, hi):
                continue
            if faults.sensor_bad[b].overlaps(lo - 10_000, hi) or any(lo - 10_000 <= t <= hi for t in interruptions):
                continue
            if any(lo <= h <= hi for h in faults.hangs):
                continue
            burning = state_at(samples, lo).flame and all(x.gas_flow and x.flame for x in samples if lo <= x.t <= hi)
            if not burning:
                continue
            raised = [
                f for f in result.events("fault", burner=b) if f.get("reason") == "cut_failed" and c <= f["_t_ms"] <= hi
            ]
            assert raised, f"{b}: welded, cut at {c} ms, flame burning, no cut_failed by {hi} ms\n{text()}"
            event("welded: a cut_failed alarm was checked")

    # 3'. every acknowledged timer command produced a timer_set event
    acks = {m.frame["id"]: m.t_ms for m in result.messages if m.frame.get("t") == "ok" and "id" in m.frame}
    for rid, (_sent, cmd, args) in result.requests.items():
        if cmd in ("timer_set", "timer_extend") and rid in acks and args.get("minutes"):
            t = acks[rid]
            seen = [e for e in result.events("timer_set", burner=args["burner"]) if abs(e["_t_ms"] - t) <= 50]
            assert seen, f"timer command {rid} acknowledged at {t} ms without a timer_set event\n{text()}"

    # 6. locked: a valve stays open only while a person holds the knob
    locked = Intervals()
    for ev in sorted(result.events("lock") + result.events("boot"), key=lambda e: e["_t_ms"]):
        on = ev.get("locked")
        (locked.on if on else locked.off)(ev["_t_ms"])
    for b in BURNERS:
        for start, stop in locked.spans:
            a = start + CUT_BOUND_MS
            for x in result.samples[b]:
                if a <= x.t < stop and x.valve and x.knob != "held":
                    # a weld (or one that just came free, within the cut bound) holds the loop shut
                    if faults.welded[b].overlaps(x.t - CUT_BOUND_MS, x.t):
                        continue
                    # the person's knob release is instantaneous: allow the magnet's drop-out time
                    if x.t - _last_held(result.samples[b], x.t) <= RELEASE_DROP_MS:
                        continue
                    pytest.fail(
                        f"{b}: locked since {start} ms but the valve is open without a hand at {x.t} ms\n{text()}"
                    )
            if any(start <= p < stop for p in result.presses[b]):
                event("a person pressed a knob on a locked hob")


def _last_held(samples: list[Sample], t: int) -> int:
    last = -(10**12)
    for x in samples:
        if x.t > t:
            break
        if x.knob == "held":
            last = x.t
    return last


# ---------------------------------------------------------------- the tests


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(schedules())
def test_safety_invariants_hold_for_random_schedules(schedule):
    steps, extra = schedule
    result = scenario.run(build(steps, extra))
    check_invariants(result)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(schedules(welded=True))
def test_welded_relay_cuts_raise_cut_failed(schedule):
    """A relay welded from the start on a lit burner: the invariant becomes
    "a cut that leaves the flame burning raises cut_failed within verify_s"."""
    steps, extra = schedule
    result = scenario.run(build(steps, extra))
    check_invariants(result)


def test_invariant_checker_catches_a_cut_that_does_not_shut_the_gas():
    """The checker is not vacuous: a burner whose relay is welded from the
    start, with the welded interval hidden from the checker, fails check 3."""
    spec = build([(10, "weld left"), (20, "ignite left"), (30, "timer left 1")], {})
    result = scenario.run(spec)
    result.steps_done = [(t, s) for t, s in result.steps_done if s.action is None or s.action.verb != "weld"]
    with pytest.raises(AssertionError, match="gas at"):
        check_invariants(result)


def test_cut_latency_is_tight():
    """From deadline to valve shut: the firmware's step at the deadline (ADC
    reads included), relay release and magnet drop-out -- well inside CUT_BOUND."""
    latencies = []
    for minutes_ in (0.5, 1, 2.5, 7):
        spec = build([(5, "ignite left"), (15, f"timer left {minutes_:g}")], {})
        result = scenario.run(spec)
        deadline = 15_000 + int(minutes_ * 60_000)
        shut = next(x.t for x in result.samples["left"] if x.t >= deadline and not x.gas_flow)
        latencies.append(shut - deadline)
    assert max(latencies) <= RELEASE_DROP_MS + 25, latencies
    assert max(latencies) < CUT_BOUND_MS
