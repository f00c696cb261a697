"""The left-on and unattended guards against the network (review F2).

The rule (docs/guards.md): the left-on guard is the last resort, absolute on
flame time. It counts from the flame's lighting or the last sign of a person
AT THE HOB (the button, the burner's knob turned), and nothing that arrives
over a link (timer set / extend / cancel, presence) restarts it, holds it
idle or takes its warning back. A running timer may cut earlier, never
later. For the unattended guard a timer command is no sign of a person.

Driven through the real control core (firmware/hobguard_fw/core.py) with
the simple hob of test_core_properties (a flame reads hot, an open relay
puts it out).
"""

from __future__ import annotations

from hobguard_fw import core
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from test_core_properties import HOUR, JITTER_MS, MINUTE, SECOND, Hob, unwarned_cuts


def _lit(hob: Hob, i: int = 0) -> int:
    """Light burner i; return when the core saw it (its `ignited`)."""
    hob.flames[i] = True
    hob.run(5 * SECOND)
    seen = [t for t, e in hob.events if e["event_type"] == "ignited" and e["burner"] == ("left", "right")[i]]
    assert seen, hob.events
    return seen[-1]


def _command(hob: Hob, cmd: str, **args) -> None:
    try:
        hob.core.handle(cmd, args, hob.now)
    except core.HobError as err:
        assert err.code in ("refused", "bad_arg"), err.message
    hob.core.tick(hob.now)
    hob.collect()


def _cuts(hob: Hob, burner: str = "left") -> list[tuple[int, str]]:
    return [(t, e["reason"]) for t, e in hob.events if e["event_type"] == "cut" and e.get("burner") == burner]


def _warnings(hob: Hob, reason: str) -> list[int]:
    return [t for t, e in hob.events if e["event_type"] == "warning" and e.get("reason") == reason]


def test_a_timer_set_every_9_minutes_does_not_hold_off_the_left_on_guard():
    """The reviewer's reproduction: left_on_min 120, timer_set 10 every 9
    minutes for 8 hours. Before the fix: no warning and no cut at all."""
    hob = Hob(12345, {"left_on_min": 120})
    hob.run(5 * SECOND)
    lit = _lit(hob)
    while hob.elapsed < lit + 8 * HOUR and not _cuts(hob):
        _command(hob, "timer_set", burner="left", minutes=10)
        hob.run(9 * MINUTE)
    assert _cuts(hob) == [(_cuts(hob)[0][0], "left_on")], _cuts(hob)
    cut_at = _cuts(hob)[0][0]
    assert lit + 120 * MINUTE <= cut_at <= lit + 120 * MINUTE + JITTER_MS + SECOND
    warned = _warnings(hob, "left_on")
    assert len(warned) == 1 and cut_at - warned[0] >= 60 * SECOND
    assert not [e for t, e in hob.events if e["event_type"] == "warning_cancelled"]
    assert unwarned_cuts(hob.events, 60 * SECOND) == []
    assert hob.flames == [False, False]


def test_presence_every_few_minutes_does_not_hold_off_the_left_on_guard():
    hob = Hob(7, {"left_on_min": 120, "unattended_min": 10})
    hob.run(5 * SECOND)
    lit = _lit(hob)
    while hob.elapsed < lit + 4 * HOUR and not _cuts(hob):
        _command(hob, "presence")
        hob.run(4 * MINUTE)
    cuts = _cuts(hob)
    assert [r for t, r in cuts] == ["left_on"], cuts
    assert lit + 120 * MINUTE <= cuts[0][0] <= lit + 120 * MINUTE + JITTER_MS + SECOND
    assert _warnings(hob, "unattended") == []  # presence kept that guard quiet, as it should
    assert unwarned_cuts(hob.events, 60 * SECOND, 10 * MINUTE) == []


def test_a_timer_command_is_no_sign_of_a_person_for_the_unattended_guard():
    """The reviewer's snippet had unattended_min 30: timer commands every 9
    minutes held it off too. Now it warns at 29 and cuts at 30 minutes."""
    hob = Hob(99, {"left_on_min": 120, "unattended_min": 30})
    hob.run(5 * SECOND)
    lit = _lit(hob)
    while hob.elapsed < lit + 2 * HOUR and not _cuts(hob):
        _command(hob, "timer_set", burner="left", minutes=10)
        hob.run(9 * MINUTE)
    cuts = _cuts(hob)
    assert [r for t, r in cuts] == ["unattended"], cuts
    assert lit + 30 * MINUTE <= cuts[0][0] <= lit + 30 * MINUTE + JITTER_MS + SECOND
    assert unwarned_cuts(hob.events, 60 * SECOND, 30 * MINUTE) == []


def test_the_button_is_how_a_cook_cooks_longer_and_takes_a_left_on_warning_back():
    hob = Hob(0, {"left_on_min": 120, "button_timer_min": 10})
    hob.run(5 * SECOND)
    lit = _lit(hob)
    hob.run(lit + 119 * MINUTE + 30 * SECOND - hob.elapsed)
    assert len(_warnings(hob, "left_on")) == 1 and _cuts(hob) == []
    pressed = hob.elapsed
    hob.core.press("short", hob.now)
    hob.collect()
    cancelled = [e for t, e in hob.events if e["event_type"] == "warning_cancelled"]
    assert cancelled == [dict(cancelled[0], reason="left_on", sign="button", burner="left")]
    # the press only took the warning back: it set no timer
    assert hob.core.burners[0].timer_deadline is None
    hob.run(119 * MINUTE)
    assert _cuts(hob) == []
    hob.run(2 * MINUTE)
    cuts = _cuts(hob)
    assert [r for t, r in cuts] == ["left_on"]
    assert pressed + 120 * MINUTE <= cuts[0][0] <= pressed + 120 * MINUTE + JITTER_MS + SECOND
    assert unwarned_cuts(hob.events, 60 * SECOND) == []


def test_cancelling_a_timer_after_left_on_min_does_not_cut_at_once():
    """Issue 9 item 2 still holds: the left-on warning came, in full, at its
    own time while the timer ran; cancelling the timer changes nothing."""
    hob = Hob(5, {"left_on_min": 60})
    hob.run(5 * SECOND)
    lit = _lit(hob)
    _command(hob, "timer_set", burner="left", minutes=180)
    hob.run(lit + 59 * MINUTE + 30 * SECOND - hob.elapsed)
    warned = _warnings(hob, "left_on")
    assert len(warned) == 1 and _cuts(hob) == []
    _command(hob, "timer_cancel", burner="left")
    assert _cuts(hob) == []
    hob.run(2 * MINUTE)
    cuts = _cuts(hob)
    assert [r for t, r in cuts] == ["left_on"] and cuts[0][0] - warned[0] >= 60 * SECOND


NETWORK = st.one_of(
    st.tuples(st.just("timer_set"), st.sampled_from([0, 1, 2, 5, 10, 60, 200, 720])),
    st.tuples(st.just("timer_extend"), st.sampled_from([1, 2, 10, 60])),
    st.tuples(st.just("timer_cancel")),
    st.tuples(st.just("presence")),
    st.tuples(st.just("status")),
    st.tuples(st.just("clear_fault")),
)


@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    start=st.integers(0, core.TICKS_PERIOD - 1),
    left_on_min=st.sampled_from([2, 3, 10]),
    warn_s=st.sampled_from([5, 20, 60]),
    unattended_min=st.sampled_from([0, 0, 1.5, 5]),
    commands=st.lists(st.tuples(st.integers(0, 4 * MINUTE), NETWORK), max_size=40),
    lateness=st.randoms(use_true_random=False),
)
def test_no_network_command_sequence_postpones_the_left_on_cut(
    start, left_on_min, warn_s, unattended_min, commands, lateness
):
    """Any interleaving of what a link can send, on either burner, at any
    times: the burner lit (no physical sign since) is cut at the latest
    left_on_min of flame time after it was seen lit, every automatic cut
    with its full warning (timers here are never shorter than the warning)."""
    hob = Hob(start, {"left_on_min": left_on_min, "warn_before_s": warn_s, "unattended_min": unattended_min})
    jitter = lambda: lateness.randint(0, JITTER_MS)  # noqa: E731
    hob.run(5 * SECOND, jitter)
    lit = _lit(hob)
    bound = lit + left_on_min * MINUTE + JITTER_MS
    for gap, (cmd, *value) in commands:
        if _cuts(hob) or hob.elapsed >= bound:
            break
        hob.run(min(gap, bound - hob.elapsed), jitter)
        burner = lateness.choice(["left", "right"])
        if cmd in ("timer_set", "timer_extend"):
            _command(hob, cmd, burner=burner, minutes=value[0])
        elif cmd in ("timer_cancel", "clear_fault"):
            _command(hob, cmd, burner=burner)
        else:
            _command(hob, cmd)
    if hob.elapsed < bound:
        hob.run(bound - hob.elapsed, jitter)
    hob.run(2 * SECOND, jitter)  # (the burner is read once a second: the cut has shown at most one read later)
    cuts = _cuts(hob)
    assert cuts, hob.events[-10:]
    assert cuts[0][0] <= bound, (cuts, lit, hob.events[-10:])
    assert cuts[0][1] in ("left_on", "timer", "unattended"), cuts
    assert hob.flames[0] is False
    unattended_ms = int(unattended_min * MINUTE)
    assert unwarned_cuts(hob.events, warn_s * SECOND, unattended_ms) == []


# ---------------------------------------------------------------- review F1


class FlakyHob(Hob):
    """The simple hob with a thermocouple input that drops out: no reading
    (an I2C glitch, a loose ADS1115 wire, the igniter's noise) while the
    elapsed time lies in one of `dropouts` ((start, end) ms, per burner 0)."""

    def __init__(self, start: int, overrides: dict) -> None:
        super().__init__(start, overrides)
        self.dropouts: list[tuple[int, int]] = []

    def reading(self, i: int):  # type: ignore[override]
        if i == 0 and any(a <= self.elapsed < b for a, b in self.dropouts):
            return None
        return super().reading(i)


def _of(hob: Hob, event_type: str, reason: str | None = None) -> list[tuple[int, dict]]:
    return [
        (t, e) for t, e in hob.events if e["event_type"] == event_type and (reason is None or e.get("reason") == reason)
    ]


def test_a_dropout_every_100_minutes_does_not_restart_the_left_on_count():
    """The reviewer's reproduction: 1.5 s without readings (3 samples at the
    500 ms a burning flame is read at) every 100 minutes. Before the fix
    each recovery restarted the flame's age: no left-on cut in 8.3 hours."""
    hob = FlakyHob(4242, {"left_on_min": 120})
    hob.run(5 * SECOND, period=500)
    lit = _lit(hob)
    hob.dropouts = [(lit + n * 100 * MINUTE, lit + n * 100 * MINUTE + 1500) for n in range(1, 6)]
    hob.run(lit + 125 * MINUTE - hob.elapsed, period=500)
    assert [e["reason"] for t, e in _of(hob, "fault")] == ["sensor"]  # the dropout happened
    assert len(_of(hob, "fault_cleared")) == 1
    assert len(_of(hob, "ignited")) == 1  # the recovery is no new flame
    cuts = _cuts(hob)
    assert [r for t, r in cuts] == ["left_on"], cuts
    assert lit + 120 * MINUTE <= cuts[0][0] <= lit + 120 * MINUTE + SECOND
    assert cuts[0][0] - _warnings(hob, "left_on")[0] >= 60 * SECOND
    assert unwarned_cuts(hob.events, 60 * SECOND) == []


def test_a_dropout_inside_the_left_on_warning_keeps_the_warning_and_its_cut():
    hob = FlakyHob(77, {"left_on_min": 120})
    hob.run(5 * SECOND, period=500)
    lit = _lit(hob)
    hob.dropouts = [(lit + 119 * MINUTE + 20 * SECOND, lit + 119 * MINUTE + 23 * SECOND)]
    hob.run(lit + 122 * MINUTE - hob.elapsed, period=500)
    assert [e["reason"] for t, e in _of(hob, "fault")] == ["sensor"]
    assert _of(hob, "warning_cancelled") == []  # nothing withdrawn, silently or not
    assert len(_warnings(hob, "left_on")) == 1
    cuts = _cuts(hob)
    assert [r for t, r in cuts] == ["left_on"] and cuts[0][0] - _warnings(hob, "left_on")[0] == 60 * SECOND
    # and the same when the readings are still missing at the cut
    hob = FlakyHob(78, {"left_on_min": 120})
    hob.run(5 * SECOND, period=500)
    lit = _lit(hob)
    hob.dropouts = [(lit + 119 * MINUTE + 20 * SECOND, lit + 121 * MINUTE)]
    hob.run(lit + 122 * MINUTE - hob.elapsed, period=500)
    cuts = _cuts(hob)
    assert [r for t, r in cuts] == ["left_on"] and cuts[0][0] - _warnings(hob, "left_on")[0] == 60 * SECOND
    assert cuts[0][0] <= lit + 120 * MINUTE + SECOND
    assert hob.flames[0] is False


def test_a_dropout_inside_the_unattended_warning_keeps_it():
    hob = FlakyHob(5, {"unattended_min": 5})
    hob.run(5 * SECOND, period=500)
    lit = _lit(hob)
    hob.dropouts = [(lit + 4 * MINUTE + 20 * SECOND, lit + 4 * MINUTE + 23 * SECOND)]
    hob.run(lit + 6 * MINUTE - hob.elapsed, period=500)
    assert [e["reason"] for t, e in _of(hob, "fault")] == ["sensor"]
    assert _of(hob, "warning_cancelled") == []
    cuts = _cuts(hob)
    assert [r for t, r in cuts] == ["unattended"], hob.events
    assert cuts[0][0] - _warnings(hob, "unattended")[0] == 60 * SECOND
    assert unwarned_cuts(hob.events, 60 * SECOND, 5 * MINUTE) == []


def test_a_lasting_sensor_fault_on_a_lit_burner_is_cut_after_its_warning():
    """A controller that cannot see a flame leaves its gas shut: a burner
    last seen lit whose sensor stays in fault for core.SENSOR_FAULT_CUT_MS
    is warned (reason fault) and cut a full warning later (reason fault)."""
    hob = FlakyHob(9, {"warn_before_s": 30})
    hob.run(5 * SECOND, period=500)
    _lit(hob)
    dead = hob.elapsed
    hob.dropouts = [(dead, dead + 10 * HOUR)]
    hob.run(3 * MINUTE, period=500)
    ((faulted, _),) = _of(hob, "fault", "sensor")
    ((warned, warning),) = _of(hob, "warning", "fault")
    assert warned - faulted == core.SENSOR_FAULT_CUT_MS and warning["cut_in_s"] == 30
    cuts = _cuts(hob)
    assert cuts == [(warned + 30 * SECOND, "fault")], hob.events
    assert hob.flames[0] is False  # the cut put it out
    assert unwarned_cuts(hob.events, 30 * SECOND) == []
    # once cut, the fault is not cut again and again while it lasts
    hob.run(HOUR, period=500)
    assert len(_cuts(hob)) == 1
    # the right burner, never lit, was never touched
    assert _cuts(hob, "right") == []


def test_a_sensor_that_reads_again_takes_the_fault_warning_back_and_says_so():
    hob = FlakyHob(11, {})
    hob.run(5 * SECOND, period=500)
    lit = _lit(hob)
    hob.dropouts = [(lit + MINUTE, lit + 2 * MINUTE + 20 * SECOND)]
    hob.run(4 * MINUTE, period=500)
    assert len(_of(hob, "warning", "fault")) == 1
    ((t, cancelled),) = _of(hob, "warning_cancelled")
    assert cancelled["reason"] == "fault" and cancelled["burner"] == "left" and cancelled.get("detail")
    assert _cuts(hob) == [] and hob.flames[0] is True
    assert len(_of(hob, "ignited")) == 1


def test_a_sensor_fault_on_a_burner_that_was_off_is_not_cut():
    hob = FlakyHob(13, {})
    hob.run(5 * SECOND, period=500)
    hob.dropouts = [(hob.elapsed, hob.elapsed + 10 * HOUR)]
    hob.run(10 * MINUTE, period=500)
    assert [e["reason"] for t, e in _of(hob, "fault")] == ["sensor"]
    assert _of(hob, "warning") == [] and _cuts(hob) == []


# ---------------------------------------------------------------- review F10


def test_a_left_on_warning_taken_back_says_so_with_its_sign():
    """A left-on warning is taken back only by a sign at the hob, and always
    with `warning_cancelled` (reason left_on, the sign): here the burner's
    knob turned down during the warning (seen once the flame holds its new
    level), which also restarts that burner's count, not the other's."""
    hob = Hob(31, {"left_on_min": 5, "warn_before_s": 60})
    hob.run(5 * SECOND)
    lit = _lit(hob)
    _lit(hob, 1)
    hob.run(lit + 4 * MINUTE + 10 * SECOND - hob.elapsed)
    assert len(_warnings(hob, "left_on")) == 2 and _cuts(hob) == []
    hob.levels[0] = 0.75  # the lowest simmer: 25 % less EMF
    turned = hob.elapsed
    hob.run(30 * SECOND)
    ((seen, cancelled),) = _of(hob, "warning_cancelled")
    assert (cancelled["burner"], cancelled["reason"], cancelled["sign"]) == ("left", "left_on", "turned")
    assert seen - turned <= 25 * SECOND
    hob.run(lit + 6 * MINUTE - hob.elapsed)
    assert _cuts(hob, "left") == []  # the turn gave the left burner a fresh count
    assert [r for t, r in _cuts(hob, "right")] == ["left_on"]  # the other burner's knob was not touched
    hob.run(seen + 5 * MINUTE + SECOND - hob.elapsed)
    cuts = _cuts(hob, "left")
    assert [r for t, r in cuts] == ["left_on"] and seen + 5 * MINUTE <= cuts[0][0]
    assert unwarned_cuts(hob.events, 60 * SECOND) == []


# ---------------------------------------------------------------- review F8


def test_a_timer_shorter_than_the_warning_is_warned_at_once_and_cut_when_asked():
    """docs/guards.md: the one exception to the full warning. A timer set or
    extended to less than warn_before_s warns at once with the time it has
    left, and cuts at the time asked for (never later)."""
    hob = Hob(3, {"warn_before_s": 60})
    hob.run(5 * SECOND)
    _lit(hob)
    set_at = hob.elapsed
    _command(hob, "timer_set", burner="left", minutes=0.5)
    ((warned, warning),) = _of(hob, "warning", "timer")
    assert warned == set_at and warning["cut_in_s"] == 30
    hob.run(31 * SECOND)
    assert _cuts(hob) == [(set_at + 30 * SECOND, "timer")]
    # extended during its warning to less than a warning: warned again at once
    hob = Hob(4, {"warn_before_s": 60})
    hob.run(5 * SECOND)
    _lit(hob)
    _command(hob, "timer_set", burner="left", minutes=2)
    set_at = hob.elapsed
    hob.run(90 * SECOND)  # 30 s left, warned at 60 s
    assert len(_of(hob, "warning", "timer")) == 1
    _command(hob, "timer_extend", burner="left", minutes=0.25)
    extended = _of(hob, "warning", "timer")
    assert len(extended) == 2 and extended[1][0] == set_at + 90 * SECOND and extended[1][1]["cut_in_s"] == 45
    hob.run(46 * SECOND)
    assert _cuts(hob) == [(set_at + 135 * SECOND, "timer")]
