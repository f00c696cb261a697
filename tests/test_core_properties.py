"""Properties of the control core over random time and command orders
(hypothesis), for issue 9 items 1 and 2.

1. Stamps of any age. The core keeps tick stamps (the last relay switch,
   the start of the left-on count, a flame candidate) and compares them with
   ticks_diff(), which is right only for stamps less than 2**29 ms (6.2
   days) old. Here the hob idles through quiet stretches of random length
   (up to months), ticked at random intervals up to the longest the core's
   contract allows (LONGEST_TICK_GAP), from a random start of the tick
   counter; then a person lights a burner: the flame must be seen, and the
   left-on guard, a timer, a remote cut and the verification of each cut
   must work as on the first day; the uptime must equal the time that
   passed. Before the fix, any stretch that left the last relay switch
   6.2-12.4 days (mod 12.4) old made the core discard every reading.

2. Every automatic cut is preceded by its full warning. Random orders of a
   person (light, turn off) and of commands (timer set / extend / cancel /
   0, cut, lock, the button) at random times. Every cut with reason
   `timer` or `left_on` must follow a `warning` for that burner with the
   same reason, given after the last command that changed that burner's
   timer (and, for `left_on`, after the flame last lit), at least
   warn_before_s earlier. Timers are drawn no shorter than the warning (a
   timer shorter than the warning warns at once: the person who set it is
   at the hob; tests/mp/test_core.py shows that case).

   Sampling granularity: the core decides at its ticks. The driver below
   wakes the core the way the app does, at the earlier of the next sample
   and the core's own next_wake_ms() (which points at the warning time and
   at the cut time), and each wake-up is late by a random 0..JITTER_MS,
   as a board's step is (the ADC reads take a few ms). A timer's warning
   is emitted at the first tick at or after deadline - warn_before_s and
   its cut at the first tick at or after the deadline, so the warning may
   be short by up to one lateness: JITTER_MS is allowed for `timer`. The
   left-on guard schedules its cut a full warning after the tick that
   warned, so no allowance is made for `left_on`.

   And the guard still guards: after the random part, a quiet stretch of
   left_on_min + warn_before_s (and any timer) later, no flame burns.
"""

from __future__ import annotations

from hobguard_fw import core, settings
from hypothesis import HealthCheck, assume, given
from hypothesis import event as note_event
from hypothesis import settings as hsettings
from hypothesis import strategies as st

SECOND = 1000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
HOT_LOADED = 11.0
HOT_OPEN = 25.0
COLD = 0.2
JITTER_MS = 40
# The core's contract: tick() at least every STAMP_AGE_CAP ms (3.1 days).
# Spelled out here so this file also runs against a core without the name.
LONGEST_TICK_GAP = 1 << 28
BURNERS = ("left", "right")


class Hob:
    """The core with a simple hob: a flame reads hot (loaded or open-circuit
    by the relay), an open relay puts the flame out at once."""

    def __init__(self, start: int, overrides: dict) -> None:
        config = settings.defaults()
        config.update(overrides)
        checked, errors = settings.validate(config)
        assert not errors, errors
        self.settings = checked
        self.now = start
        self.elapsed = 0  # ms since the core was created
        self.core = core.Hob(checked, start)
        self.flames = [False, False]
        self.levels = [1.0, 1.0]  # flame level: 1 full, LOW the lowest simmer
        self.events: list[tuple[int, dict]] = []  # (elapsed ms, event)

    def reading(self, i: int) -> float:
        if not self.flames[i]:
            return COLD
        return (HOT_LOADED if self.core.relay_closed[i] else HOT_OPEN) * self.levels[i]

    def sign(self, what: str) -> None:
        """Note a sign of a person the core is told of (not an event of its own)."""
        self.events.append((self.elapsed, {"event_type": "_sign", "sign": what}))

    def advance(self, ms: int) -> None:
        self.now = core.ticks_add(self.now, ms)
        self.elapsed += ms

    def step(self) -> None:
        """One app step at self.now: read every thermocouple, tick."""
        for i in range(2):
            self.core.sample(i, self.reading(i), self.now)
        self.core.tick(self.now)
        self.collect()
        for i in range(2):
            if not self.core.relay_closed[i]:
                self.flames[i] = False
                self.levels[i] = 1.0  # lighting is at full flame

    def collect(self) -> None:
        for event in self.core.take_events():
            self.events.append((self.elapsed, event))

    def run(self, ms: int, jitter=None, period: int = SECOND) -> None:
        """Wake as the app does for `ms`: at the next sample or at the
        core's next_wake_ms, whichever is first, plus a lateness."""
        end = self.elapsed + ms
        while self.elapsed < end:
            wait = max(1, self.core.next_wake_ms(self.now, period))
            if jitter is not None:
                wait += jitter()
            self.advance(min(wait, end - self.elapsed))
            self.step()

    def of(self, event_type: str, since: int = 0) -> list[dict]:
        return [e for t, e in self.events if t >= since and e["event_type"] == event_type]


# ---------------------------------------------------------------- 1. stamps


def test_the_contract_allows_the_gaps_drawn_here():
    assert core.STAMP_AGE_CAP >= LONGEST_TICK_GAP
    assert 2 * LONGEST_TICK_GAP <= core.TICKS_PERIOD // 2


# A quiet stretch: the intervals between its ticks, each within the core's
# contract (at most STAMP_AGE_CAP apart).
stretch = st.lists(st.integers(1, LONGEST_TICK_GAP), min_size=0, max_size=24)


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    start=st.integers(0, core.TICKS_PERIOD - 1),
    sessions=st.lists(
        st.tuples(stretch, st.sampled_from(BURNERS), st.sampled_from(["left_on", "timer", "remote", "off"])),
        min_size=1,
        max_size=4,
    ),
)
def test_stamps_of_any_age_change_nothing(start, sessions):
    hob = Hob(start, {"left_on_min": 2, "warn_before_s": 20})
    hob.run(5 * SECOND)  # the boot pulse
    assert hob.of("boot")
    for gaps, name, ending in sessions:
        for gap in gaps:
            hob.advance(gap)
            hob.step()
        assert hob.core.snapshot(hob.now)["uptime_s"] == hob.elapsed // 1000
        since = hob.elapsed
        i = BURNERS.index(name)
        hob.flames[i] = True
        hob.run(4 * SECOND)
        assert [e["burner"] for e in hob.of("ignited", since)] == [name], (gaps, hob.events[-5:])
        state = hob.core.snapshot(hob.now)["burners"][i]
        assert state["flame"] == "on" and state["gas"] == "open" and state["tc_mv"] == HOT_LOADED
        if ending == "left_on":
            hob.run(2 * MINUTE)
            cut_reason = "left_on"
        elif ending == "timer":
            hob.core.set_timer(name, 1, hob.now)
            hob.collect()
            hob.run(MINUTE + 2 * SECOND)
            cut_reason = "timer"
        elif ending == "remote":
            hob.core.cut(name, "remote", hob.now)
            hob.collect()
            cut_reason = "remote"
        else:
            # The flame goes out (blown out, or the knob turned off): the
            # flame-loss detector, watching since the lighting, cuts it.
            hob.flames[i] = False
            hob.run(4 * SECOND)
            cut_reason = "flame_lost"
        if cut_reason is not None:
            if cut_reason not in ("remote", "flame_lost"):
                warned = [e for e in hob.of("warning", since) if e["burner"] == name]
                assert [e["reason"] for e in warned] == [cut_reason]
            cuts = [e for e in hob.of("cut", since) if e["burner"] == name]
            assert [e["reason"] for e in cuts] == [cut_reason], hob.events[-6:]
            hob.run(5 * SECOND)
            assert [e["burner"] for e in hob.of("cut_verified", since)] == [name]
            assert hob.core.relay_closed[i]  # the pulse is over: relightable
        assert hob.of("fault") == []
        assert hob.core.snapshot(hob.now)["uptime_s"] == hob.elapsed // 1000


@hsettings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    start=st.integers(0, core.TICKS_PERIOD - 1),
    gaps=st.lists(st.integers(DAY // 2, LONGEST_TICK_GAP), min_size=15, max_size=30),  # 7.5 days or more
)
def test_a_flame_burning_for_weeks_without_the_guard_is_still_watched(start, gaps):
    """left_on_min = 0 (guard off): a flame may burn for weeks; its flame
    candidate and left-on stamps age all that time."""
    hob = Hob(start, {"left_on_min": 0})
    hob.run(5 * SECOND)
    hob.flames[0] = True
    hob.run(4 * SECOND)
    for gap in gaps:
        hob.advance(gap)
        hob.step()
    since = hob.elapsed
    hob.flames[0] = False
    hob.run(4 * SECOND)
    assert [(e["burner"], e["reason"]) for e in hob.of("cut", since)] == [("left", "flame_lost")]
    hob.run(4 * SECOND)
    assert [e["burner"] for e in hob.of("cut_verified", since)] == ["left"]
    hob.flames[0] = True
    hob.run(4 * SECOND)
    assert [e["burner"] for e in hob.of("ignited", since)] == ["left"]
    hob.core.set_timer("left", 1, hob.now)
    hob.run(MINUTE + 5 * SECOND)
    assert [e["reason"] for e in hob.of("cut", since)] == ["flame_lost", "timer"]
    assert [e["burner"] for e in hob.of("cut_verified", since)] == ["left", "left"]
    assert hob.core.snapshot(hob.now)["uptime_s"] == hob.elapsed // 1000


# ------------------------------------------------- 2. warnings before cuts

burner = st.sampled_from(BURNERS)
WARN_S = (5, 20, 60)
TIMER_MIN = (1, 1.5, 2, 3)  # never shorter than the longest warning drawn
LOW = 0.75  # the lowest simmer of the default burner: 75 % of full flame's EMF

action = st.one_of(
    st.tuples(st.just("light"), burner),
    st.tuples(st.just("light"), burner),
    st.tuples(st.just("off"), burner),
    st.tuples(st.just("turn"), burner, st.sampled_from([LOW, 1.0, 0.97])),
    st.tuples(st.just("timer"), burner, st.sampled_from(TIMER_MIN)),
    st.tuples(st.just("timer"), burner, st.sampled_from(TIMER_MIN)),
    st.tuples(st.just("timer"), burner, st.just(0)),
    st.tuples(st.just("extend"), burner, st.sampled_from(TIMER_MIN)),
    st.tuples(st.just("cancel"), burner),
    st.tuples(st.just("cancel"), burner),
    st.tuples(st.just("cut"), burner),
    st.tuples(st.just("lock"), st.booleans()),
    st.tuples(st.just("press"), st.sampled_from(["short", "short", "long"])),
    st.tuples(st.just("presence")),
    st.tuples(st.just("presence")),
)
schedule = st.lists(st.tuples(st.integers(0, 200 * SECOND), action), min_size=1, max_size=20)


def _do(hob: Hob, act: tuple) -> None:
    kind = act[0]
    c = hob.core
    try:
        if kind == "light":
            hob.flames[BURNERS.index(act[1])] = True
        elif kind == "off":
            hob.flames[BURNERS.index(act[1])] = False
        elif kind == "turn":
            hob.levels[BURNERS.index(act[1])] = act[2]
        elif kind == "timer":
            c.handle("timer_set", {"burner": act[1], "minutes": act[2]}, hob.now)
        elif kind == "extend":
            c.handle("timer_extend", {"burner": act[1], "minutes": act[2]}, hob.now)
        elif kind == "cancel":
            c.handle("timer_cancel", {"burner": act[1]}, hob.now)
        elif kind == "cut":
            c.handle("cut", {"burner": act[1]}, hob.now)
        elif kind == "lock":
            c.handle("lock", {"on": act[1]}, hob.now)
        elif kind == "press":
            hob.sign("button")
            c.press(act[1], hob.now)
        elif kind == "presence":
            hob.sign("presence")
            c.handle("presence", {}, hob.now)
    except core.HobError as err:
        assert err.code in ("refused", "bad_arg"), err.message
    # The app ticks in the step that handled the command.
    hob.core.tick(hob.now)
    hob.collect()


# What takes a warning back, per reason: after one of these, a cut needs a
# new warning.
# (A warning_cancelled takes back only a warning of its own reason.) Timer
# commands take back nothing but a timer's own warning (review F2: nothing
# from the network delays the left-on or the unattended guard).
TAKES_BACK = {
    "timer": ("timer_set", "timer_cancelled", "cut"),
    "left_on": ("warning_cancelled", "cut", "ignited"),
    "unattended": ("warning_cancelled", "cut", "ignited"),
}
# Signs of a person the checker can see (a turn is seen by the core only once
# the flame holds its new level, so it is left out: it can only delay a cut).
# A timer command is none (review F2).
SIGNS = ("_sign", "ignited")


def unwarned_cuts(events: list[tuple[int, dict]], warn_ms: int, unattended_ms: int = 0) -> list[str]:
    """Every timer / left_on / unattended cut that lacks its full warning,
    and every unattended cut less than unattended_ms after a sign of a
    person (any sign restarts the count, and takes a warning back)."""
    problems = []
    for n, (t, event) in enumerate(events):
        if event["event_type"] != "cut" or event["reason"] not in TAKES_BACK:
            continue
        name, reason = event["burner"], event["reason"]
        warned_at = None
        for t0, e in reversed(events[:n]):
            if e.get("burner") != name:
                continue
            kind = e["event_type"]
            if kind == "warning" and e["reason"] == reason:
                warned_at = t0
                break
            if kind in TAKES_BACK[reason] and (kind != "warning_cancelled" or e.get("reason") == reason):
                break
        allowance = JITTER_MS if reason == "timer" else 0
        if warned_at is None:
            problems.append(f"{reason} cut of {name} at {t} ms with no warning since the last change")
        elif t - warned_at < warn_ms - allowance:
            problems.append(f"{reason} cut of {name} at {t} ms only {t - warned_at} ms after its warning")
        if reason == "unattended":
            signs = [t0 for t0, e in events[:n] if e["event_type"] in SIGNS]
            if signs and t - signs[-1] < unattended_ms:
                problems.append(f"unattended cut of {name} at {t} ms only {t - signs[-1]} ms after a sign of a person")
            if not unattended_ms:
                problems.append(f"unattended cut of {name} at {t} ms with the guard off")
    return problems


@hsettings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    start=st.integers(0, core.TICKS_PERIOD - 1),
    warn_s=st.sampled_from(WARN_S),
    left_on_min=st.sampled_from([0, 1, 2, 3]),
    unattended_min=st.sampled_from([0, 0, 1, 1.5, 2]),
    steps=schedule,
    lateness=st.randoms(use_true_random=False),
)
def test_every_automatic_cut_follows_its_full_warning(start, warn_s, left_on_min, unattended_min, steps, lateness):
    """Timer, left-on and unattended cuts, whatever the order of a person
    lighting, turning and putting out flames, presence messages, button
    presses and commands; flame_lost cuts (a flame put out here goes cold at
    once) are the one reason without a warning."""
    assume(not left_on_min or warn_s < left_on_min * 60)
    assume(not unattended_min or warn_s < unattended_min * 60)
    assume(left_on_min or unattended_min)
    overrides = {
        "left_on_min": left_on_min,
        "unattended_min": unattended_min,
        "warn_before_s": warn_s,
        "button_timer_min": 2,
    }
    hob = Hob(start, overrides)
    jitter = lambda: lateness.randint(0, JITTER_MS)  # noqa: E731
    hob.run(5 * SECOND, jitter)
    for gap, act in steps:
        hob.run(gap, jitter)
        _do(hob, act)
    unattended_ms = int(unattended_min * MINUTE)
    problems = unwarned_cuts(hob.events, warn_s * 1000, unattended_ms)
    assert not problems, "\n".join(problems + [f"{t} {e}" for t, e in hob.events])
    # The guards still guard: left alone long enough (the unattended guard
    # and a warning; else any timer run out, then left_on_min and a
    # warning), nothing burns on.
    if unattended_min:
        quiet = unattended_ms + warn_s * SECOND
    else:
        timers = [hob.core.remaining_ms(b, hob.now) or 0 for b in hob.core.burners]
        quiet = max(timers) + (left_on_min * 60 + warn_s) * SECOND
    hob.run(quiet + 10 * SECOND, jitter)
    assert hob.flames == [False, False], hob.events[-6:]
    problems = unwarned_cuts(hob.events, warn_s * 1000, unattended_ms)
    assert not problems, "\n".join(problems)
    reasons = {e["reason"] for t, e in hob.events if e["event_type"] == "cut"}
    for reason in sorted(reasons):
        note_event("cut " + reason)
    if any(e["event_type"] == "warning_cancelled" for t, e in hob.events):
        note_event("unattended warning taken back")
    assert reasons <= {"timer", "left_on", "unattended", "flame_lost", "remote", "lock", "button"}, reasons


def test_the_warning_check_catches_a_cut_without_its_warning():
    """The checker itself: a cancelled timer followed by an instant left_on
    cut (the defect of issue 9, item 2) and a short warning are caught."""
    warn = 30 * SECOND
    events = [
        (0, {"event_type": "timer_set", "burner": "left"}),
        (1000, {"event_type": "timer_cancelled", "burner": "left"}),
        (1000, {"event_type": "warning", "burner": "left", "reason": "left_on"}),
        (1000, {"event_type": "cut", "burner": "left", "reason": "left_on"}),
    ]
    assert len(unwarned_cuts(events, warn)) == 1
    events = [
        (0, {"event_type": "warning", "burner": "left", "reason": "left_on"}),
        (5000, {"event_type": "warning_cancelled", "burner": "left", "reason": "left_on", "sign": "button"}),
        (31000, {"event_type": "cut", "burner": "left", "reason": "left_on"}),
    ]
    assert "no warning" in unwarned_cuts(events, warn)[0]
    # a timer command takes no left-on warning back (review F2), and an
    # unattended warning taken back is not a left-on one
    events = [
        (0, {"event_type": "warning", "burner": "left", "reason": "left_on"}),
        (5000, {"event_type": "timer_set", "burner": "left"}),
        (9000, {"event_type": "warning_cancelled", "burner": "left", "reason": "unattended"}),
        (31000, {"event_type": "cut", "burner": "left", "reason": "left_on"}),
    ]
    assert unwarned_cuts(events, warn) == []
    events = [
        (0, {"event_type": "warning", "burner": "right", "reason": "timer"}),
        (warn - JITTER_MS, {"event_type": "cut", "burner": "right", "reason": "timer"}),
        (warn, {"event_type": "warning", "burner": "left", "reason": "left_on"}),
        (2 * warn - 1, {"event_type": "cut", "burner": "left", "reason": "left_on"}),
    ]
    assert unwarned_cuts(events, warn) == [
        f"left_on cut of left at {2 * warn - 1} ms only {warn - 1} ms after its warning"
    ]
    # unattended: a warning taken back by a sign needs a new one; a cut
    # sooner than unattended_min after a sign is caught too
    events = [
        (0, {"event_type": "warning", "burner": "left", "reason": "unattended"}),
        (5000, {"event_type": "warning_cancelled", "burner": "left", "reason": "unattended"}),
        (warn, {"event_type": "cut", "burner": "left", "reason": "unattended"}),
    ]
    assert "no warning" in unwarned_cuts(events, warn, 10 * warn)[0]
    events = [
        (0, {"event_type": "_sign", "sign": "presence"}),
        (8 * warn, {"event_type": "warning", "burner": "left", "reason": "unattended"}),
        (10 * warn - 1, {"event_type": "cut", "burner": "left", "reason": "unattended"}),
    ]
    assert unwarned_cuts(events, warn, 10 * warn) == [
        f"unattended cut of left at {10 * warn - 1} ms only {10 * warn - 1} ms after a sign of a person"
    ]
    assert unwarned_cuts(events, warn, 0)[-1].endswith("with the guard off")
