# Control-core tests. Plain functions and asserts, so the very same file runs
# under CPython (pytest) and inside real MicroPython (tests/test_micropython_port.py).
from hobguard_fw import core, settings

HOT_LOADED = 11.0  # mV across the terminals, flame on, loop closed
HOT_OPEN = 25.0  # open-circuit EMF, flame on, relay open
COLD = 0.2
SECOND = 1000
MINUTE = 60000


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


def test_left_on_guard_does_not_apply_with_timer_and_can_be_off():
    k = Kitchen()
    k.light(0)
    k.hob.set_timer("left", 180, k.now)
    k.run(150 * MINUTE)
    assert k.of("cut") == []
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
    k = Kitchen()
    k.light(0)
    k.flames[0] = False  # blown out
    k.run(5 * SECOND)
    assert len(k.of("flame_out")) == 1
    assert k.state(0)["gas"] == "closed"


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
