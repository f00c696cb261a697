# Control-core tests. Plain functions and asserts, so the very same file runs
# under CPython (pytest) and inside real MicroPython (tests/test_micropython_port.py).
from hobguard_fw import core, settings

HOT_LOADED = 11.0  # mV across the terminals, flame on, loop closed
HOT_OPEN = 25.0  # open-circuit EMF, flame on, relay open
COLD = 0.2
SECOND = 1000
MINUTE = 60000
HOUR = 60 * MINUTE
DAY = 24 * HOUR


class Kitchen:
    """A hob core with a clock and a simple flame per burner, sampled once a
    second the way the app does."""

    def __init__(self, start=0, overrides=None, locked=False):
        config = settings.defaults()
        if overrides:
            for key in overrides:
                config[key] = overrides[key]
        checked, errors = settings.validate(config)
        assert not errors, errors
        self.now = start
        self.hob = core.Hob(checked, start, locked=locked)
        self.flames = [False] * len(self.hob.burners)
        self.welded = [False] * len(self.hob.burners)
        self.dead_adc = [False] * len(self.hob.burners)
        self.events = []
        self.run(3 * SECOND)  # boot: the relays hold open for one pulse
        self.events = []

    def reading(self, i):
        if self.dead_adc[i]:
            return None
        if not self.flames[i]:
            return COLD
        return HOT_LOADED if self.hob.relay_closed[i] else HOT_OPEN

    def run(self, ms):
        end = core.ticks_add(self.now, ms)
        while core.ticks_diff(end, self.now) > 0:
            self.now = core.ticks_add(self.now, min(SECOND, core.ticks_diff(end, self.now)))
            for i in range(len(self.flames)):
                self.hob.sample(i, self.reading(i), self.now)
            self.hob.tick(self.now)
            # Whatever was due has been done: nothing is left overdue, which
            # would make the app's loop spin.
            assert self.hob.next_wake_ms(self.now, 1000) > 0, self.hob.snapshot(self.now)
            # Physics in brief: an open relay drops the magnet, the gas stops
            # and the flame goes out -- unless the relay contact is welded.
            for i in range(len(self.flames)):
                if not self.hob.relay_closed[i] and not self.welded[i]:
                    self.flames[i] = False
            self.events.extend(self.hob.take_events())

    def idle(self, ms, every=HOUR):
        """A quiet stretch: cold readings and a tick only every `every` ms
        (the core's contract allows up to core.STAMP_AGE_CAP between ticks)."""
        while ms > 0:  # counted down: a stretch may be longer than the wrap
            step = min(every, ms)
            ms -= step
            self.now = core.ticks_add(self.now, step)
            for i in range(len(self.flames)):
                self.hob.sample(i, self.reading(i), self.now)
            self.hob.tick(self.now)
            self.events.extend(self.hob.take_events())

    def light(self, i=0):
        self.flames[i] = True
        self.run(4 * SECOND)

    def of(self, event_type):
        return [e for e in self.events if e["event_type"] == event_type]

    def state(self, i=0):
        return self.hob.snapshot(self.now)["burners"][i]


def test_ticks_diff_is_wrap_safe():
    near_end = core.TICKS_PERIOD - 10
    later = core.ticks_add(near_end, 25)
    assert later == 15
    assert core.ticks_diff(later, near_end) == 25
    assert core.ticks_diff(near_end, later) == -25


def test_ignite_is_reported_once():
    k = Kitchen()
    k.light(0)
    assert len(k.of("ignited")) == 1
    assert k.of("ignited")[0]["burner"] == "left"
    assert k.state(0)["flame"] == "on"
    assert k.state(0)["gas"] == "open"
    assert k.state(1)["flame"] == "off"


def test_simmer_with_timer_cuts_on_time_with_warning_first():
    k = Kitchen()
    k.light(0)
    k.hob.set_timer("left", 20, k.now)
    k.run(19 * MINUTE - SECOND)
    assert k.of("warning") == []
    assert k.hob.relay_closed[0]
    k.run(30 * SECOND)
    warnings = k.of("warning")
    assert len(warnings) == 1 and warnings[0]["reason"] == "timer"
    assert k.hob.relay_closed[0]
    assert k.of("cut") == []
    k.run(31 * SECOND)
    cuts = k.of("cut")
    assert len(cuts) == 1 and cuts[0]["reason"] == "timer" and cuts[0]["burner"] == "left"
    assert k.state(0)["last_cut_reason"] == "timer"
    assert k.state(0)["timer_remaining_s"] is None


def test_cut_releases_relay_after_pulse_so_burner_can_be_relit():
    k = Kitchen()
    k.light(0)
    k.hob.cut("left", "remote", k.now)
    assert not k.hob.relay_closed[0]
    k.run(2 * SECOND)
    assert not k.hob.relay_closed[0]
    k.run(2 * SECOND)
    assert k.hob.relay_closed[0]
    k.light(0)
    assert k.state(0)["flame"] == "on"


def test_cut_is_verified_when_flame_goes_out():
    k = Kitchen()
    k.light(0)
    k.hob.cut("left", "remote", k.now)
    k.run(30 * SECOND)
    verified = k.of("cut_verified")
    assert len(verified) == 1 and verified[0]["reason"] == "remote"
    assert k.of("fault") == []
    assert k.state(0)["fault"] is None


def test_welded_relay_raises_cut_failed_and_keeps_relay_open():
    k = Kitchen()
    k.light(0)
    k.welded[0] = True
    k.hob.cut("left", "remote", k.now)
    k.run(29 * SECOND)
    assert k.of("fault") == []
    k.run(2 * SECOND)
    faults = k.of("fault")
    assert len(faults) == 1 and faults[0]["reason"] == "cut_failed"
    assert k.state(0)["fault"] == "cut_failed"
    assert k.hob.snapshot(k.now)["fault"] == "cut_failed"
    k.run(5 * MINUTE)
    assert not k.hob.relay_closed[0]  # kept open while the fault stands
    assert k.hob.indicator() == "fault"
    k.hob.clear_fault("left", k.now)
    assert k.hob.relay_closed[0]


def test_cut_of_unlit_burner_needs_no_verification():
    k = Kitchen()
    k.hob.cut("right", "remote", k.now)
    k.run(60 * SECOND)
    assert k.of("fault") == []
    assert k.of("cut_verified") == []
    assert k.hob.relay_closed[1]


def test_cut_all_cuts_every_burner():
    k = Kitchen()
    k.light(0)
    k.light(1)
    k.hob.cut(None, "remote", k.now)
    assert k.hob.relay_closed == [False, False]
    k.run(SECOND)
    assert sorted(e["burner"] for e in k.of("cut")) == ["left", "right"]


def test_timer_limits_and_bad_numbers_change_nothing():
    k = Kitchen()
    for bad in (-1, 721, float("nan"), float("inf"), True, "10", None):
        try:
            k.hob.set_timer("left", bad, k.now)
            assert False, "accepted %r" % (bad,)
        except core.HobError as err:
            assert err.code == "bad_arg"
    assert k.state(0)["timer_remaining_s"] is None
    try:
        k.hob.set_timer("oven", 10, k.now)
        assert False
    except core.HobError as err:
        assert err.code == "no_burner"
    k.hob.set_timer("left", 720, k.now)
    assert k.state(0)["timer_remaining_s"] == 720 * 60


def test_a_timer_under_one_second_is_refused_and_only_an_exact_0_cancels():
    # Review F11: on the board floats are 32 bits and json.loads("1e-50")
    # is 0.0; that must not cancel the running timer. Under one second is
    # refused (bad_arg), 0.0 too; the exact integer 0 cancels.
    import json

    k = Kitchen()
    k.hob.set_timer("left", 10, k.now)
    for tiny in (json.loads("1e-50"), 1e-50, 0.0, -0.0, 0.0166, 1e-6):
        for cmd in ("timer_set", "timer_extend"):
            try:
                k.hob.handle(cmd, {"burner": "left", "minutes": tiny}, k.now)
                assert False, "accepted %r" % (tiny,)
            except core.HobError as err:
                assert err.code == "bad_arg" and "one second" in err.message, err.message
    assert k.state(0)["timer_remaining_s"] == 10 * 60  # unchanged
    k.hob.handle("timer_set", {"burner": "left", "minutes": 1 / 60}, k.now)
    assert k.state(0)["timer_remaining_s"] == 1
    k.hob.handle("timer_set", {"burner": "left", "minutes": 0}, k.now)
    assert k.state(0)["timer_remaining_s"] is None


def test_timer_zero_cancels_and_extend_adds():
    k = Kitchen()
    k.hob.set_timer("left", 10, k.now)
    k.hob.extend_timer("left", 5, k.now)
    assert k.state(0)["timer_remaining_s"] == 15 * 60
    k.hob.set_timer("left", 0, k.now)
    assert k.state(0)["timer_remaining_s"] is None
    k.hob.extend_timer("left", 5, k.now)  # no timer: extend starts one
    assert k.state(0)["timer_remaining_s"] == 5 * 60
    try:
        k.hob.extend_timer("left", 716, k.now)
        assert False
    except core.HobError as err:
        assert err.code == "bad_arg"
    assert k.state(0)["timer_remaining_s"] == 5 * 60


def test_timer_fires_across_tick_wraparound():
    start = core.TICKS_PERIOD - 5 * MINUTE
    k = Kitchen(start=start)
    k.light(0)
    k.hob.set_timer("left", 10, k.now)
    k.run(9 * MINUTE + 58 * SECOND)
    assert k.now < start  # the counter has wrapped
    assert k.of("cut") == []
    k.run(3 * SECOND)
    assert [e["reason"] for e in k.of("cut")] == ["timer"]


def test_left_on_guard_warns_then_cuts():
    k = Kitchen()
    k.light(0)
    k.run(118 * MINUTE)
    assert k.of("warning") == []
    k.run(90 * SECOND)
    warnings = k.of("warning")
    assert len(warnings) == 1 and warnings[0]["reason"] == "left_on"
    k.run(60 * SECOND)
    cuts = k.of("cut")
    assert len(cuts) == 1 and cuts[0]["reason"] == "left_on"


def test_left_on_guard_counts_while_a_timer_runs_and_can_be_off():
    # review F2: a running timer may cut earlier than the left-on guard,
    # never later; the guard keeps counting the flame's time while it runs
    k = Kitchen()
    k.light(0)
    k.hob.set_timer("left", 180, k.now)
    k.run(118 * MINUTE)
    assert k.of("warning") == [] and k.of("cut") == []
    k.run(90 * SECOND)
    assert [e["reason"] for e in k.of("warning")] == ["left_on"]
    k.run(60 * SECOND)
    assert [e["reason"] for e in k.of("cut")] == ["left_on"]
    k = Kitchen(overrides={"left_on_min": 0})
    k.light(0)
    k.run(300 * MINUTE)
    assert k.of("cut") == []


def test_child_lock_keeps_every_relay_open_and_persists():
    k = Kitchen()
    k.light(0)
    k.hob.set_lock(True, k.now)
    assert k.hob.lock_dirty
    k.run(10 * MINUTE)
    assert k.hob.relay_closed == [False, False]
    assert [e["reason"] for e in k.of("cut")] == ["lock", "lock"]
    try:
        k.hob.set_timer("left", 5, k.now)
        assert False
    except core.HobError as err:
        assert err.code == "refused"
    k.hob.set_lock(False, k.now)
    k.run(4 * SECOND)
    assert k.hob.relay_closed == [True, True]
    # after a reboot the lock is restored from flash
    k2 = Kitchen(locked=True)
    assert k2.hob.relay_closed == [False, False]
    assert k2.hob.snapshot(k2.now)["locked"] is True


def test_flame_detection_with_relay_open_uses_open_circuit_thresholds():
    k = Kitchen()
    k.hob.set_lock(True, k.now)
    k.run(SECOND)
    # a person holds the knob: gas and flame while the loop stays open
    k.flames[0] = True
    k.welded[0] = True  # keep the simple physics from blowing it out
    k.run(4 * SECOND)
    assert k.state(0)["flame"] == "on"
    assert not k.hob.relay_closed[0]
    t = k.now
    # 8 mV lies between the open-circuit thresholds (6 and 10): no change
    for n in range(1, 5):
        k.hob.sample(0, 8.0, core.ticks_add(t, n * 1000))
    assert k.hob.burners[0].flame is True
    # 5 mV open-circuit is a cooling thermocouple: out once the filter passes
    for n in range(5, 9):
        k.hob.sample(0, 5.0, core.ticks_add(t, n * 1000))
    assert k.hob.burners[0].flame is False


def test_flame_detection_with_relay_closed_uses_loaded_thresholds():
    k = Kitchen()
    t = k.now
    # 8 mV loaded across a closed loop is a hot thermocouple: a flame
    for n in range(1, 5):
        k.hob.sample(0, 8.0, core.ticks_add(t, n * 1000))
    assert k.hob.relay_closed[0]
    assert k.hob.burners[0].flame is True


def test_flame_filter_ignores_a_single_spike():
    k = Kitchen()
    k.hob.sample(0, 40.0, core.ticks_add(k.now, 500))
    k.hob.sample(0, COLD, core.ticks_add(k.now, 1000))
    k.hob.sample(0, COLD, core.ticks_add(k.now, 4000))
    assert k.hob.burners[0].flame is False
    assert k.hob.take_events() == []


def test_flame_out_is_reported():
    k = Kitchen(overrides={"flame_loss_cut": False})
    k.light(0)
    k.flames[0] = False  # blown out
    k.run(5 * SECOND)
    assert len(k.of("flame_out")) == 1
    assert k.of("cut") == []
    assert k.state(0)["gas"] == "closed"


def test_a_flame_gone_out_is_cut_at_once_with_calm_words():
    k = Kitchen()
    k.light(0)
    k.run(5 * SECOND)  # the detector arms on a steady flame
    k.flames[0] = False  # blown out, or the knob turned off: the same here
    k.run(SECOND)
    cuts = k.of("cut")
    assert [(e["burner"], e["reason"]) for e in cuts] == [("left", "flame_lost")]
    assert cuts[0]["detail"] == "the flame went out; gas cut to be sure"
    assert k.of("warning") == []  # no warning: the gas is already escaping
    assert not k.hob.relay_closed[0]
    k.run(10 * SECOND)
    verified = k.of("cut_verified")
    assert len(verified) == 1 and verified[0]["reason"] == "flame_lost"
    assert k.state(0)["gas"] == "closed" and k.state(0)["last_cut_reason"] == "flame_lost"
    assert k.of("fault") == [] and k.hob.relay_closed[0]
    # a cold burner is not cut again, however long it stays cold
    k.run(10 * MINUTE)
    assert len(k.of("cut")) == 1
    # and it is watched again once relit
    k.light(0)
    k.run(5 * SECOND)
    k.flames[0] = False
    k.run(SECOND)
    assert [e["reason"] for e in k.of("cut")] == ["flame_lost", "flame_lost"]


def test_no_flame_loss_cut_while_locked_cutting_in_fault_or_switched_off():
    # locked: every relay is open, nothing to watch
    k = Kitchen(locked=True)
    k.flames[0] = True
    k.run(10 * SECOND)
    k.flames[0] = False
    k.run(10 * SECOND)
    assert [e["reason"] for e in k.of("cut")] == []
    # a sensor fault: the reading vanishes, which is no flame lost
    k = Kitchen()
    k.light(0)
    k.run(5 * SECOND)
    k.dead_adc[0] = True
    k.run(10 * SECOND)
    assert [e["reason"] for e in k.of("fault")] == ["sensor"]
    assert k.of("cut") == []
    # during a cut's pulse: the cut it already is, no second one
    k = Kitchen()
    k.light(0)
    k.run(5 * SECOND)
    k.hob.cut("left", "remote", k.now)
    k.run(10 * SECOND)
    assert [e["reason"] for e in k.of("cut")] == ["remote"]
    # the setting off
    k = Kitchen(overrides={"flame_loss_cut": False})
    k.light(0)
    k.run(5 * SECOND)
    k.flames[0] = False
    k.run(10 * SECOND)
    assert k.of("cut") == [] and len(k.of("flame_out")) == 1


def test_dead_adc_is_a_sensor_fault_and_timers_still_cut():
    k = Kitchen()
    k.light(0)
    k.hob.set_timer("left", 2, k.now)
    k.dead_adc[0] = True
    k.run(5 * SECOND)
    faults = k.of("fault")
    assert len(faults) == 1 and faults[0]["reason"] == "sensor"
    assert k.state(0)["flame"] == "unknown"
    assert k.state(0)["gas"] == "unknown"
    k.run(2 * MINUTE)
    assert [e["reason"] for e in k.of("cut")] == ["timer"]
    k.run(40 * SECOND)
    assert len(k.of("cut_unverified")) == 1
    k.dead_adc[0] = False
    k.run(3 * SECOND)
    assert k.state(0)["fault"] is None


def test_impossible_reading_counts_as_sensor_fault():
    k = Kitchen()
    for n in range(3):
        k.hob.sample(0, 255.99, core.ticks_add(k.now, n * 1000))
    assert k.hob.burners[0].sensor_fault == "sensor"


def test_button_short_press_starts_then_extends_timer_on_lit_burner():
    k = Kitchen()
    assert k.hob.press("short", k.now) is False
    assert k.of("rejected") == [] and k.hob.take_events()[0]["event_type"] == "rejected"
    k.light(1)
    assert k.hob.press("short", k.now) is True
    assert k.state(1)["timer_remaining_s"] == 10 * 60
    k.hob.press("short", k.now)
    assert k.state(1)["timer_remaining_s"] == 20 * 60
    assert k.state(0)["timer_remaining_s"] is None


def test_button_long_press_cuts_all_with_reason_button():
    k = Kitchen()
    k.light(0)
    k.hob.press("long", k.now)
    k.run(SECOND)
    assert [e["reason"] for e in k.of("cut")] == ["button", "button"]


def test_every_cut_carries_a_known_reason():
    k = Kitchen()
    k.light(0)
    k.hob.set_timer("left", 1, k.now)
    k.run(2 * MINUTE)
    k.hob.press("long", k.now)
    k.hob.set_lock(True, k.now)
    k.run(SECOND)
    for event in k.of("cut"):
        assert event["reason"] in core.REASONS
    try:
        k.hob.cut("left", "because", k.now)
        assert False
    except core.HobError:
        pass


def test_reset_with_a_hot_burner_reports_reset_cut():
    hob = core.Hob(settings.defaults(), 0, reset_cause="watchdog")
    now = 0
    for _ in range(5):
        now += 1000
        hob.sample(0, HOT_OPEN, now)
        hob.sample(1, COLD, now)
        hob.tick(now)
    events = hob.take_events()
    boot = [e for e in events if e["event_type"] == "boot"]
    assert len(boot) == 1
    assert boot[0]["reset_cause"] == "watchdog"
    assert boot[0]["hot_burners"] == ["left"]
    cuts = [e for e in events if e["event_type"] == "cut"]
    assert len(cuts) == 1 and cuts[0]["reason"] == "reset" and cuts[0]["burner"] == "left"
    assert hob.snapshot(now)["burners"][0]["last_cut_reason"] == "reset"


def test_events_queue_is_bounded():
    k = Kitchen()
    for _ in range(100):
        k.hob.set_timer("left", 5, k.now)
    assert len(k.hob.events) <= core.MAX_EVENTS
    assert k.hob.events_dropped > 0


def test_next_wake_points_at_the_warning():
    k = Kitchen()
    k.light(0)
    k.hob.set_timer("left", 5, k.now)
    assert k.hob.next_wake_ms(k.now, 10 * MINUTE) == 4 * MINUTE
    assert k.hob.next_wake_ms(k.now, 500) == 500


def test_handle_runs_protocol_commands():
    k = Kitchen()
    state = k.hob.handle("timer_set", {"burner": "left", "minutes": 3}, k.now)
    assert state["burners"][0]["timer_remaining_s"] == 180
    state = k.hob.handle("cut", {}, k.now)
    assert state["burners"][0]["relay"] == "open" and state["burners"][1]["relay"] == "open"
    state = k.hob.handle("lock", {"on": True}, k.now)
    assert state["locked"] is True


def test_left_on_guard_cuts_once_even_while_the_flame_is_still_seen():
    k = Kitchen()
    k.light(0)
    k.welded[0] = True  # the flame survives the cut: the guard must not re-fire
    k.run(125 * MINUTE)
    cuts = [e for e in k.of("cut") if e["reason"] == "left_on"]
    assert len(cuts) == 1
    assert len([e for e in k.of("warning") if e["reason"] == "left_on"]) == 1


def _cut_and_read_open_emf(k, emf_at):
    """Cut the left burner and feed open-circuit readings emf_at(ms since the
    cut) every 250 ms through the pulse, as the app does."""
    start = k.now
    k.hob.cut("left", "remote", start)
    for n in range(1, 12):
        t = core.ticks_add(start, n * 250)
        k.hob.sample(0, emf_at(n * 250), t)
        k.hob.tick(t)
    k.now = core.ticks_add(start, 3000)
    k.events.extend(k.hob.take_events())


def test_cut_is_verified_by_the_thermocouple_cooling_during_the_pulse():
    import math

    k = Kitchen()
    k.light(0)
    _cut_and_read_open_emf(k, lambda ms: 25.0 * math.exp(-ms / 9000.0))
    verified = k.of("cut_verified")
    assert len(verified) == 1 and verified[0]["by"] == "cooling"
    # the cook relights at once: no false alarm, the relay stays usable
    k.flames[0] = True
    k.run(60 * SECOND)
    assert k.of("fault") == []
    assert k.hob.relay_closed[0]


def test_a_flame_that_keeps_burning_through_the_pulse_is_not_verified():
    k = Kitchen()
    k.light(0)
    k.welded[0] = True  # keeps the simple physics' flame burning
    _cut_and_read_open_emf(k, lambda ms: 25.0 + (0.05 if ms % 500 else -0.05))
    assert k.of("cut_verified") == []
    k.run(30 * SECOND)
    assert [e["reason"] for e in k.of("fault")] == ["cut_failed"]


# -- issue 9, item 1: stored tick stamps of any age ---------------------------


def test_flame_is_seen_after_the_relays_stood_still_for_a_week():
    # ticks_diff() of a stamp 6.2-12.4 days old is negative: the relay-settle
    # check used to throw every reading away from then on.
    k = Kitchen()
    k.idle(7 * DAY)
    k.light(0)
    assert [e["burner"] for e in k.of("ignited")] == ["left"]
    assert k.state(0)["flame"] == "on" and k.state(0)["gas"] == "open"
    assert k.state(0)["tc_mv"] == HOT_LOADED


def test_guard_timer_and_verification_work_at_any_age_of_the_last_relay_switch():
    k = Kitchen(start=core.TICKS_PERIOD - DAY, overrides={"left_on_min": 5, "warn_before_s": 30})
    elapsed = 3 * SECOND  # Kitchen() ran the boot pulse
    ages = (HOUR, 6 * DAY + 8 * HOUR, 9 * DAY, 12 * DAY + 10 * HOUR, 19 * DAY)
    for n, age in enumerate(ages):
        k.idle(age)
        elapsed += age
        k.events = []
        k.light(n % 2)
        burner = k.hob.burners[n % 2].name
        assert [e["burner"] for e in k.of("ignited")] == [burner], (age, k.events)
        if n % 3 == 2:
            k.hob.set_timer(burner, 2, k.now)
            k.run(2 * MINUTE + 2 * SECOND)
            reason = "timer"
        else:
            k.run(5 * MINUTE + 2 * SECOND)
            reason = "left_on"
        elapsed += 4 * SECOND + (2 if reason == "timer" else 5) * MINUTE + 2 * SECOND
        assert [(e["reason"], e["burner"]) for e in k.of("warning")] == [(reason, burner)], (age, k.events)
        assert [(e["reason"], e["burner"]) for e in k.of("cut")] == [(reason, burner)], (age, k.events)
        k.run(30 * SECOND)
        elapsed += 30 * SECOND
        assert [e["burner"] for e in k.of("cut_verified")] == [burner], (age, k.events)
        assert k.hob.snapshot(k.now)["uptime_s"] == elapsed // 1000


def test_uptime_is_a_counter_that_never_goes_back_across_weeks():
    hob = core.Hob(settings.defaults(), core.TICKS_PERIOD - HOUR)
    now = core.TICKS_PERIOD - HOUR
    last = 0
    for n in range(1, 6 * 7 * 4 + 1):  # six weeks, a tick every 6 hours
        now = core.ticks_add(now, 6 * HOUR + 7)
        hob.tick(now)
        uptime = hob.snapshot(now)["uptime_s"]
        assert uptime == n * (6 * HOUR + 7) // 1000, (n, uptime)
        assert uptime >= last
        last = uptime
    # a snapshot between ticks counts on from the last tick; an out-of-date
    # `now` never makes it go back
    assert hob.snapshot(core.ticks_add(now, 1500))["uptime_s"] == (last * 1000 + 1500 + (6 * 168 * 7) % 1000) // 1000
    assert hob.snapshot(core.ticks_add(now, -5000))["uptime_s"] == last


def test_a_flame_candidate_or_guard_count_older_than_the_wrap_is_clamped():
    # guard off: the flame may burn for weeks; flame_out is what is watched
    k = Kitchen(overrides={"left_on_min": 0, "flame_loss_cut": False})
    k.light(0)
    k.idle(20 * DAY, every=DAY)
    k.flames[0] = False
    k.run(4 * SECOND)
    assert len(k.of("flame_out")) == 1
    burner = k.hob.burners[0]
    assert 0 < core.ticks_diff(k.now, burner.guard_since) <= core.STAMP_AGE_CAP
    assert 0 <= core.ticks_diff(k.now, burner.candidate_since) <= core.STAMP_AGE_CAP
    assert burner.relay_changed_at is None


# -- issue 9, item 2: every automatic cut comes after its full warning --------


def _cut_warnings(k, burner="left"):
    return [
        (e["event_type"], e.get("reason"))
        for e in k.events
        if e.get("burner") == burner and e["event_type"] in ("warning", "cut")
    ]


def test_cancelling_a_long_timer_does_not_cut_at_once():
    # The left-on guard counts the flame's time while a timer runs (review
    # F2): its warning has come, in full, at its own time; cancelling the
    # timer then changes nothing, and never cuts at once.
    k = Kitchen(overrides={"left_on_min": 5, "warn_before_s": 30})
    k.light(0)
    k.hob.set_timer("left", 10, k.now)
    k.run(4 * MINUTE + 35 * SECOND)
    assert _cut_warnings(k) == [("warning", "left_on")]
    assert [e["cut_in_s"] for e in k.of("warning")] == [30]
    k.hob.cancel_timer("left", k.now)
    assert k.of("cut") == [] and k.hob.relay_closed[0]  # never at once
    k.run(30 * SECOND)  # a full warning after the warning
    assert _cut_warnings(k) == [("warning", "left_on"), ("cut", "left_on")]


def test_timer_commands_do_not_restart_the_left_on_count():
    # An automation that sets and cancels timers now and then used to hold
    # the guard off for ever: each command restarted the count.
    k = Kitchen(overrides={"left_on_min": 5, "warn_before_s": 30})
    k.light(0)
    for _ in range(4):
        k.run(MINUTE)
        k.hob.set_timer("left", 10, k.now)
        k.hob.cancel_timer("left", k.now)
    k.run(30 * SECOND)  # 4.5 min of flame: the warning
    assert _cut_warnings(k) == [("warning", "left_on")]
    k.run(30 * SECOND)
    assert _cut_warnings(k) == [("warning", "left_on"), ("cut", "left_on")]


def test_timer_zero_on_a_long_burning_burner_does_not_cut_at_once():
    k = Kitchen(overrides={"left_on_min": 5, "warn_before_s": 30})
    k.light(0)
    k.hob.set_timer("left", 20, k.now)
    k.run(4 * MINUTE + 35 * SECOND)
    assert _cut_warnings(k) == [("warning", "left_on")]
    k.hob.handle("timer_set", {"burner": "left", "minutes": 0}, k.now)
    assert k.of("cut") == [] and k.hob.relay_closed[0]
    k.run(15 * SECOND)
    assert _cut_warnings(k) == [("warning", "left_on")] and k.hob.relay_closed[0]
    k.run(15 * SECOND)
    assert _cut_warnings(k) == [("warning", "left_on"), ("cut", "left_on")]


def test_a_timer_command_takes_no_left_on_warning_back_the_button_does():
    # Review F2: nothing from the network takes a left-on warning back (a
    # timer may only cut sooner); a press of the hob's button does, and
    # says so (review F10), and gives the flame a fresh left_on_min.
    k = Kitchen(overrides={"left_on_min": 5, "warn_before_s": 30})
    k.light(0)
    k.run(4 * MINUTE + 40 * SECOND)
    assert _cut_warnings(k) == [("warning", "left_on")]
    k.hob.set_timer("left", 3, k.now)
    k.hob.presence(k.now)
    assert k.state(0)["left_on_cut_in_s"] is not None
    k.run(25 * SECOND)
    assert _cut_warnings(k) == [("warning", "left_on"), ("cut", "left_on")]
    assert k.of("warning_cancelled") == []
    k = Kitchen(overrides={"left_on_min": 5, "warn_before_s": 30})
    k.light(0)
    k.run(4 * MINUTE + 40 * SECOND)
    assert _cut_warnings(k) == [("warning", "left_on")]
    assert k.hob.press("short", k.now)
    k.events.extend(k.hob.take_events())
    taken_back = k.of("warning_cancelled")
    assert [(e["burner"], e["reason"], e["sign"]) for e in taken_back] == [("left", "left_on", "button")]
    assert k.state(0)["left_on_cut_in_s"] is None
    assert k.of("timer_set") == []  # the press only took the warning back
    k.run(4 * MINUTE + 25 * SECOND)
    assert _cut_warnings(k) == [("warning", "left_on")]
    k.run(10 * SECOND)  # 4.5 minutes after the press: warned again
    assert _cut_warnings(k) == [("warning", "left_on"), ("warning", "left_on")]
    k.run(30 * SECOND)
    assert _cut_warnings(k) == [("warning", "left_on"), ("warning", "left_on"), ("cut", "left_on")]


def test_a_guard_shorter_than_its_warning_is_refused_by_the_settings():
    for key in ("left_on_min", "unattended_min"):
        config = settings.defaults()
        config[key] = 1
        config["warn_before_s"] = 60
        errors = settings.validate(config)[1]
        assert len(errors) == 1 and errors[0].startswith("warn_before_s: shorter than " + key), errors
        config[key] = 0  # the guard off: any warning will do
        assert settings.validate(config)[1] == []
        config[key] = 1.5
        assert settings.validate(config)[1] == []


def test_left_on_warning_is_full_even_when_a_tick_comes_late():
    k = Kitchen(overrides={"left_on_min": 1, "warn_before_s": 50})
    k.light(0)
    late = core.ticks_add(k.now, 3 * MINUTE)  # the board was busy for minutes
    k.hob.sample(0, HOT_LOADED, late)
    k.hob.tick(late)
    k.now = late
    k.events.extend(k.hob.take_events())
    warned = k.of("warning")
    assert len(warned) == 1 and warned[0]["cut_in_s"] == 50 and k.of("cut") == []
    k.run(49 * SECOND)
    assert k.of("cut") == []
    k.run(SECOND)
    assert [e["reason"] for e in k.of("cut")] == ["left_on"]


def test_a_timer_shorter_than_the_warning_warns_at_once():
    # A person who asks for 30 s is told at once; the cut keeps their time.
    k = Kitchen(overrides={"warn_before_s": 60})
    k.light(0)
    k.hob.set_timer("left", 0.5, k.now)
    k.run(SECOND)
    warned = k.of("warning")
    assert len(warned) == 1 and warned[0]["cut_in_s"] == 29
    k.run(29 * SECOND)
    assert [e["reason"] for e in k.of("cut")] == ["timer"]


# -- issue 9, item 6: what a verified cut has proven shows at once ------------


def _pulse_then_cooling(k, emf_at, relit_at=None, every=250, noise_mv=0.0):
    """Cut the left burner; feed what its thermocouple reads: open-circuit
    EMF emf_at(ms) during the pulse, the loaded voltage (about 0.45 of it)
    after, every `every` ms for 60 s (every 250 ms at most during the cut
    pulse), ticking as the app does, plus a
    pseudo-random noise of +-noise_mv. A relight at `relit_at` ms heats it
    again toward a burning flame (5 s time constant). Returns the snapshots
    after each step, with their time."""
    import math

    k.events = []
    start = k.now
    k.hob.cut("left", "remote", start)
    states = []
    hot = HOT_OPEN
    seed = 12345
    ms = 0
    while ms < 60000:
        ms += min(every, 250) if k.hob.cutting() else every
        t = core.ticks_add(start, ms)
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF  # an LCG: MicroPython has no reliable random
        noise = noise_mv * (2.0 * seed / 0x7FFFFFFF - 1.0)
        emf = emf_at(ms)
        if relit_at is not None and ms > relit_at:
            base = emf_at(relit_at)
            emf = hot - (hot - base) * math.exp(-(ms - relit_at) / 5000.0)
        reading = (emf if not k.hob.relay_closed[0] else emf * 0.45) + noise
        k.hob.sample(0, reading, t)
        k.hob.sample(1, COLD, t)
        k.hob.tick(t)
        k.events.extend(k.hob.take_events())
        states.append((ms, k.hob.snapshot(t)["burners"][0]))
    k.now = core.ticks_add(start, 60000)
    return states


def _cooling(ms):
    import math

    return HOT_OPEN * math.exp(-ms / 9000.0)


def test_after_a_verified_cut_the_state_says_off_and_closed_at_once_and_stays_so():
    k = Kitchen()
    k.light(0)
    states = _pulse_then_cooling(k, _cooling)
    verified = k.of("cut_verified")
    assert len(verified) == 1 and verified[0]["by"] == "cooling"
    # verified in the pulse, by the step at 1.5 s (12 % below the peak);
    # the thermocouple then still reads twice the flame threshold
    at = [ms for ms, s in states if s["flame"] == "off"][0]
    assert at == 1500, states[:8]
    assert [s for ms, s in states if ms == at][0]["tc_mv"] > 20
    for ms, state in states:
        if ms < at:
            assert state["flame"] == "on" and state["gas"] == "open", (ms, state)
        else:
            assert state["flame"] == "off" and state["gas"] == "closed", (ms, state)
    # still above the loaded flame-on threshold when the relay closes again
    assert [s for ms, s in states if ms == 3500][0]["tc_mv"] > 5
    assert k.of("ignited") == [] and k.of("flame_out") == []
    assert k.hob.relay_closed[0]


def test_a_cooling_thermocouple_reads_off_at_any_sample_rate_and_with_noise():
    # Sampled 10 times a second with 0.3 mV of noise, a cooling curve falls
    # by less than the noise from one reading to the next: what tells it
    # from a stalled reading is the fall over seconds, not per sample.
    for every, noise in ((100, 0.3), (250, 0.2), (1000, 0.1), (5000, 0.0)):
        k = Kitchen(overrides={"sample_ms": every, "idle_sample_ms": max(4000, every), "watchdog_ms": 10000})
        k.light(0)
        states = _pulse_then_cooling(k, _cooling, every=every, noise_mv=noise)
        assert len(k.of("cut_verified")) == 1, (every, k.events)
        off = [ms for ms, s in states if s["flame"] == "off"]
        assert off and off[0] <= 3000 + every, (every, off[:3])
        assert all(s["flame"] == "off" for ms, s in states if ms >= off[0]), every
        assert k.of("ignited") == [], (every, k.events)


def test_a_relight_soon_after_a_verified_cut_is_seen():
    k = Kitchen()
    k.light(0)
    states = _pulse_then_cooling(k, _cooling, relit_at=8000)
    assert len(k.of("cut_verified")) == 1
    ignited = k.of("ignited")
    assert [e["burner"] for e in ignited] == ["left"]
    assert [ms for ms, s in states if s["flame"] == "off"][0] == 1500  # verified
    on = [ms for ms, s in states if s["flame"] == "on" and ms > 1500]
    assert on and 8000 < on[0] <= 8000 + 5000, on[:3]
    assert all(s["flame"] == "on" for ms, s in states if ms >= on[0])
    assert k.of("fault") == []


def test_a_reading_that_stops_falling_after_a_verified_cut_is_a_flame_again():
    # A cooling junction falls at every sample; a reading that stays put
    # above the flame threshold is not one, whatever the pulse suggested.
    k = Kitchen()
    k.light(0)
    states = _pulse_then_cooling(k, lambda ms: _cooling(ms) if ms < 3000 else _cooling(3000))
    assert len(k.of("cut_verified")) == 1
    assert [e["burner"] for e in k.of("ignited")] == ["left"]
    assert states[-1][1]["flame"] == "on"


# -- issue 9, item 14: the button on a locked hob ------------------------------


def test_a_short_press_on_a_locked_hob_says_it_is_locked():
    k = Kitchen(locked=True)
    k.flames[0] = True
    k.welded[0] = True  # a burner burning although locked (welded relay)
    k.run(4 * SECOND)
    assert k.hob.press("short", k.now) is False
    rejected = [e for e in k.hob.take_events() if e["event_type"] == "rejected"]
    assert [e["reason"] for e in rejected] == ["button: the hob is locked"]
    k2 = Kitchen(locked=True)
    assert k2.hob.press("short", k2.now) is False
    assert [e["reason"] for e in k2.hob.take_events()] == ["button: the hob is locked"]
