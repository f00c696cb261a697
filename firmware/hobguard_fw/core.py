# The control core: pure logic for every burner of one hob.
#
# No hardware, no clock: every call takes `now`, a millisecond tick count
# that wraps like MicroPython's time.ticks_ms() (period 2**30), compared only
# through ticks_diff(). Inputs: thermocouple readings, commands, button
# presses. Outputs: the wanted relay state per burner (`relay_closed`), the
# indicator pattern, and events (dicts) queued in `events` for the caller.
#
# Safety: the only relay action the core ever chooses on its own is to open
# a relay (cut). Closing it again only makes the burner relightable by hand;
# nothing here can make gas flow.
from hobguard_fw.flameloss import FlameLossDetector
from hobguard_fw.protocol import CUT_REASONS, timer_too_short

try:
    from micropython import const
except ImportError:  # CPython (host, simulator)
    const = lambda x: x  # noqa: E731


TICKS_PERIOD = const(1 << 30)
_TICKS_MASK = const((1 << 30) - 1)
_TICKS_HALF = const(1 << 29)

MAX_EVENTS = const(24)
# Consecutive unreadable samples before a burner's sensor is in fault.
SENSOR_FAULT_AFTER = const(3)
# A burner last seen lit whose sensor stays in fault this long is warned
# (reason `fault`) and cut a full warn_before_s later (reason `fault`): a
# controller that cannot see a flame leaves its gas shut (review F1). Long
# enough that an I2C glitch, a loose wire touched or the igniter's noise
# (a few seconds) never warns; short against every guard it stands in for.
SENSOR_FAULT_CUT_MS = const(60000)
# Below this a thermocouple is cold (no flame nearby, none just out).
COLD_MV = 1.0
# During a cut pulse the relay is open and the reading is the thermocouple's
# open-circuit EMF. If it falls this much below its peak, the flame has gone
# out (the thermocouple cools with a ~9 s time constant) and the cut is
# verified at once, before anyone could relight the burner.
COOLING_DROP = 0.12
# Samples taken this soon after a relay switched are discarded.
RELAY_SETTLE_MS = const(100)
# After a verified cut the burner reads "off" while its thermocouple cools.
# A reading this far above the lowest one since then is the thermocouple
# heating again: someone relit the burner (a cooling junction only falls;
# ADC noise is ~0.01 mV, a relight adds ~0.5 mV in its first second).
RELIGHT_RISE_MV = 0.3
# ... and a reading that has set no new low for this long (or two sample
# periods, if longer) while still above the flame-off threshold is no
# cooling curve: ordinary flame detection takes over again. Measured in
# time, not samples, so it holds at any sample_ms: a junction cooling with
# a 6-12 s time constant loses a quarter or more of its excess in 3 s, far
# beyond any noise.
COOLING_STALL_MS = const(3000)
# Verification by cooling must not be fooled by a relay that did not open
# (welded) while the flame was turned down, or bent off the thermocouple by
# a draught, during the pulse: either drops the reading by 12 % or more
# while the gas still flows. What only an open loop can do is the jump at
# the start of the pulse: the reading goes from the loaded voltage to the
# open-circuit EMF, a factor 1 + r_thermocouple / (r_coil + r_wiring +
# r_switch) = 1.5 to 2.8 for the parts docs/hardware.md recommends (1.9
# with the defaults; a bad 100 mOhm relay 1.28), less at most 10 % of
# cooling in the quarter second to the first reading. A welded contact
# shows no jump: a turn-up raises the EMF by a few per cent in that time,
# flicker by at most 4 %, and a turn-down or a draught lowers it. So the
# first settled reading of the pulse must be OPEN_JUMP x the last one
# before the cut, or the cut is not verified by cooling (it is verified
# when the reading falls below the flame threshold, or raises cut_failed).
OPEN_JUMP = 1.25
# Signs of a person for the unattended guard, read from the thermocouple:
# turning a lit burner's knob moves the reading to a new steady level. A
# level is steady while the readings stay within TURN_BAND of each other
# for TURN_STEADY_MS; a steady level TURN_FRACTION away from the previous
# steady level is a turn. Draughts under 3 s and flicker return to the level
# they left (no turn); a slow drift moves the level step by step, each step
# within TURN_TRACK, which the reference follows (no turn); a level between
# the two may be a pause on the way of a slow turn and moves nothing until
# it has held for TURN_ADOPT_MS (the first reference after lighting too);
# a flame that never holds steady (flicker of 1 mV) shows no turns at all,
# which only makes the guard warn sooner. Full flame to the lowest simmer
# moves the EMF by 5-40 % (25 % on the default burner, docs/physics.md): a
# turn between them is seen on most hobs, a small turn is not.
TURN_BAND = 0.08
TURN_STEADY_MS = const(8000)
TURN_FRACTION = 0.12
TURN_TRACK = 0.06
TURN_ADOPT_MS = const(30000)

# Stored tick stamps (issue 9, item 1). ticks_diff() is right only for two
# stamps less than 2**29 ms (6.2 days) apart: an older stamp reads as if it
# lay in the future (or much younger), and every decision made from it is
# wrong. So no stamp the core keeps is allowed to grow older than
# STAMP_AGE_CAP:
# - a stamp needed only briefly (the relay-settle time) is dropped (None)
#   once it has served;
# - a stamp whose age is compared with a threshold (the left-on count, the
#   flame filter) is moved forward by tick() to exactly STAMP_AGE_CAP old
#   when it gets older: the cap lies far above every threshold it meets
#   (left_on_min <= 1 day, flame_filter_ms <= 30 s, the cooling stall
#   time <= 10 s), so the clamp changes no decision;
# - deadlines lie at most timer_max_min (<= 1 day) ahead and are cleared by
#   the tick() that reaches them;
# - the uptime is a counter that tick() advances, not a boot stamp.
# The contract for the caller: call tick() at least once every
# STAMP_AGE_CAP ms (3.1 days). The app calls it every step, at the latest
# every watchdog_ms / 2. Should it ever be broken anyway: a stamp never
# lies in the future, so a negative age can only be a stamp more than
# 2**29 ms old, and it is taken as old (settled, clamped, not counted).
STAMP_AGE_CAP = const(1 << 28)

# The cut reasons are part of the protocol's vocabulary (protocol.py).
REASONS = CUT_REASONS


# (flameloss.py keeps its own copy of ticks_diff: it cannot import this
# module, which imports it; a shared module of its own measured about 0.1 KB
# of .mpy and 0.2 KB of heap more, with the .mpy total at its 40 KB target.)
def ticks_add(ticks, delta):
    return (ticks + delta) & _TICKS_MASK


def ticks_diff(end, start):
    """Signed end - start, correct across the wrap (like time.ticks_diff)."""
    return ((end - start + _TICKS_HALF) & _TICKS_MASK) - _TICKS_HALF


class HobError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


class Burner:
    def __init__(self, name, index):
        self.name = name
        self.index = index
        self.tc_mv = None  # last valid reading
        self.flame = None  # True / False / None (not known yet or sensor fault)
        self.flame_candidate = None
        self.candidate_since = 0  # (age clamped, see STAMP_AGE_CAP)
        # When the left-on count started: the flame lit, the last sign of a
        # person at the hob for it (button, its knob turned) or the last
        # cut (age clamped). Nothing from a link moves it.
        self.guard_since = 0
        self.lit_order = 0  # larger = lit more recently
        self.bad_samples = 0
        self.sensor_fault = None  # type: str | None
        # The flame as last read before the sensor fault under way (True /
        # False, None: unknown or cut since); restored when readings come
        # back, so a dropout restarts no count (review F1).
        self.fault_flame = None  # type: bool | None
        # While a sensor fault lasts on a burner last seen lit: when its
        # `fault` warning is due, then when its `fault` cut is (deadlines).
        self.fault_warn_at = None
        self.fault_deadline = None
        self.relay_changed_at = None  # ticks of a relay switch until it settled, then None
        # Lowest reading since a verified cut while the thermocouple still
        # cools (the burner reads "off" meanwhile), else None; and when it
        # was read (age clamped).
        self.cooled_to_mv = None  # type: float | None
        self.cooled_at = 0
        self.timer_deadline = None  # ticks, or None
        self.timer_warned = False
        self.guard_deadline = None  # left-on cut time once warned, else None
        self.cut_until = None  # ticks when the cut pulse ends, or None
        self.verify_deadline = None  # ticks by which the flame must be out
        self.pulse_peak_mv = None  # highest open-circuit reading in this cut pulse
        self.pre_cut_mv = None  # the last loaded reading before the cut being verified
        self.pulse_opened = False  # the reading jumped: the loop really opened (OPEN_JUMP)
        self.pulse_cooled = False  # cooled in the pulse; the loop's opening still to be shown
        self.loss = FlameLossDetector()
        # The unattended guard warned this burner; its cut is due at the
        # hob's unattended_deadline.
        self.unattended_warned = False
        # Turn watch: the steady level (mV) last seen, the lowest and highest
        # reading since the current candidate level began, and when (a
        # stamp kept at most TURN_STEADY_MS old, None while not watching).
        self.level_mv = None  # type: float | None
        self.level_lo = 0.0
        self.level_hi = 0.0
        self.level_since = None
        self.last_cut_reason = None  # type: str | None
        self.cut_fault = None  # type: str | None  # "cut_failed" once a cut did not shut the gas


class Hob:
    def __init__(self, settings, now, locked=False, reset_cause="power_on"):
        self.settings = settings
        self.burners = [Burner(b["id"], i) for i, b in enumerate(settings["burners"])]
        self.names = [b.name for b in self.burners]
        self.locked = bool(locked)
        self.events = []
        self.events_dropped = 0
        self.event_seq = 0
        self.lock_dirty = False  # the caller should persist self.locked
        # Uptime: a counter advanced by tick(), never a boot stamp (which
        # would turn meaningless after 6.2 days). Seconds plus a millisecond
        # remainder, so both stay small ints on the board.
        self._uptime_s = 0
        self._uptime_ms = 0
        self._last_tick = now
        self.reset_cause = reset_cause
        self.boot_pending = True
        self._lit_counter = 0
        self._cut_pulse = int(settings["cut_pulse_s"] * 1000)
        self._warn = int(settings["warn_before_s"] * 1000)
        self._verify = int(settings["verify_s"] * 1000)
        self._left_on = int(settings["left_on_min"] * 60000)
        self._unattended = int(settings["unattended_min"] * 60000)
        self._flame_loss = settings["flame_loss_cut"]
        # The last sign of a person at the hob (age clamped), and the time
        # of the unattended cut once the guard has warned, else None.
        self.person_since = now
        self.unattended_deadline = None
        self._filter = settings["flame_filter_ms"]
        self._stall = max(COOLING_STALL_MS, 2 * settings["sample_ms"])
        # At boot every relay is held open for one cut pulse: a reset has
        # just dropped every magnet anyway, so the cut is made definite.
        for burner in self.burners:
            burner.cut_until = ticks_add(now, self._cut_pulse)
            burner.relay_changed_at = now
            burner.guard_since = now
            burner.candidate_since = now
            burner.cooled_at = now
        self.relay_closed = [False] * len(self.burners)

    # -- queries -----------------------------------------------------------

    def burner(self, name):
        for burner in self.burners:
            if burner.name == name:
                return burner
        raise HobError("no_burner", "no burner %r on this hob (have %s)" % (name, ", ".join(self.names)))

    def _wants_closed(self, burner):
        return not (self.locked or burner.cut_until is not None or burner.cut_fault)

    def fault(self):
        """The device-level fault: the most serious burner fault, or None."""
        for burner in self.burners:
            if burner.cut_fault:
                return burner.cut_fault
        for burner in self.burners:
            if burner.sensor_fault:
                return burner.sensor_fault
        return None

    def indicator(self):
        """The pattern the LED/buzzer should show, most urgent first."""
        if self.fault():
            return "fault"
        for burner in self.burners:
            if burner.timer_warned or burner.guard_deadline is not None or burner.unattended_warned:
                return "warning"
        if self.locked:
            return "locked"
        for burner in self.burners:
            if burner.cut_until is not None:
                return "cut"
        for burner in self.burners:
            if burner.timer_deadline is not None:
                return "timer"
        return "idle"

    def remaining_ms(self, burner, now):
        if burner.timer_deadline is None:
            return None
        return max(0, ticks_diff(burner.timer_deadline, now))

    def snapshot(self, now):
        burners = []
        for i, burner in enumerate(self.burners):
            remaining = self.remaining_ms(burner, now)
            if burner.flame is None:
                gas = "unknown"
            else:
                gas = "open" if burner.flame else "closed"
            guard = None
            if burner.guard_deadline is not None:
                guard = max(0, ticks_diff(burner.guard_deadline, now)) // 1000
            burners.append(
                {
                    "id": burner.name,
                    "gas": gas,
                    "relay": "closed" if self.relay_closed[i] else "open",
                    "flame": "unknown" if burner.flame is None else ("on" if burner.flame else "off"),
                    "tc_mv": None if burner.tc_mv is None else int(burner.tc_mv * 100) / 100,
                    "timer_remaining_s": None if remaining is None else (remaining + 999) // 1000,
                    "left_on_cut_in_s": guard,
                    "last_cut_reason": burner.last_cut_reason,
                    "cutting": burner.cut_until is not None,
                    "fault": burner.cut_fault or burner.sensor_fault,
                }
            )
        return {
            "locked": self.locked,
            "fault": self.fault(),
            "unattended_cut_in_s": self.unattended_cut_in_s(now),
            "uptime_s": self.uptime_s(now),
            "reset_cause": self.reset_cause,
            "events_dropped": self.events_dropped,
            "burners": burners,
        }

    def _lit(self, burner):
        """Seen burning, or last seen burning before a sensor fault under
        way (unknown counts as burning for the guards: review F1)."""
        return burner.flame or (burner.flame is None and burner.sensor_fault is not None and burner.fault_flame)

    def _burning(self, burner):
        """A flame the guards watch: seen burning, no cut under way."""
        return self._lit(burner) and burner.cut_until is None and not burner.cut_fault

    def unattended_cut_in_s(self, now):
        """Seconds until the unattended guard cuts, while it is on and a
        burner burns; else None."""
        if not self._unattended:
            return None
        for burner in self.burners:
            if self._burning(burner):
                due = self.unattended_deadline
                if due is None:
                    due = ticks_add(self.person_since, self._unattended)
                return (max(0, ticks_diff(due, now)) + 999) // 1000
        return None

    def uptime_s(self, now):
        """Whole seconds since boot; never negative, never going back."""
        since = ticks_diff(now, self._last_tick)
        if since < 0:
            since = 0
        return self._uptime_s + (self._uptime_ms + since) // 1000

    def _uptime_ms_total(self):
        return self._uptime_s * 1000 + self._uptime_ms

    def quiet(self):
        """True when nothing is burning, warm, timed or pending: the caller
        may sample seldom."""
        if self.boot_pending:
            return False
        for burner in self.burners:
            if (
                burner.flame is not False
                or burner.tc_mv is None
                or burner.tc_mv >= COLD_MV
                or burner.flame_candidate is not None
                or burner.timer_deadline is not None
                or burner.cut_until is not None
                or burner.verify_deadline is not None
            ):
                return False
        return True

    def next_wake_ms(self, now, longest):
        """Milliseconds until the core next has something to do on its own
        (a warning, a cut, a pulse end, a verification bound), at most
        `longest`. Sampling cadence is the caller's business."""
        wait = longest
        for burner in self.burners:
            for deadline in (
                burner.cut_until,
                burner.verify_deadline,
                burner.guard_deadline,
                burner.fault_warn_at,
                burner.fault_deadline,
            ):
                if deadline is not None:
                    wait = min(wait, ticks_diff(deadline, now))
            if burner.timer_deadline is not None:
                at = burner.timer_deadline
                if not burner.timer_warned:
                    at = ticks_add(at, -self._warn)
                wait = min(wait, ticks_diff(at, now))
            if self._lit(burner) and self._left_on and burner.guard_deadline is None and burner.cut_until is None:
                at = ticks_add(burner.guard_since, self._left_on - self._warn)
                wait = min(wait, ticks_diff(at, now))
        if self._unattended:
            at = self.unattended_deadline
            if at is None:
                at = ticks_add(self.person_since, self._unattended - self._warn)
            for burner in self.burners:
                if self._burning(burner):
                    wait = min(wait, ticks_diff(at, now))
                    break
        return max(0, wait)

    def sample_period_ms(self, longest):
        """The sampling period the flame-loss detectors need now (faster
        while a flame burns and while a fall is watched), at most
        `longest`."""
        period = longest
        if self._flame_loss:
            for burner in self.burners:
                need = burner.loss.period_ms()
                if need is not None and need < period:
                    period = need
        return period

    # -- events ------------------------------------------------------------

    def emit(self, event_type, burner=None, **fields):
        event = {"event_type": event_type}
        if burner is not None:
            event["burner"] = burner.name
        for key in fields:
            event[key] = fields[key]
        self.event_seq += 1
        event["seq"] = self.event_seq
        if len(self.events) >= MAX_EVENTS:
            self.events.pop(0)
            self.events_dropped += 1
        self.events.append(event)

    def take_events(self):
        events = self.events
        self.events = []
        return events

    # -- cutting -----------------------------------------------------------

    def _cut(self, burner, reason, now, detail=None):
        if burner.cut_until is None or ticks_diff(ticks_add(now, self._cut_pulse), burner.cut_until) > 0:
            burner.cut_until = ticks_add(now, self._cut_pulse)
        burner.last_cut_reason = reason
        # The left-on guard counts from the last cut, so a flame that the cut
        # has not yet been seen to put out is not cut again and again.
        burner.guard_since = now
        burner.timer_deadline = None
        burner.timer_warned = False
        burner.guard_deadline = None
        burner.unattended_warned = False
        burner.fault_warn_at = None
        burner.fault_deadline = None
        if burner.sensor_fault is not None:
            burner.fault_flame = None  # unknown since the cut: read afresh when readings return
        # Verify whenever gas may be flowing: a burning or unknown flame.
        if burner.flame is not False and burner.verify_deadline is None:
            burner.verify_deadline = ticks_add(now, self._verify)
            burner.pulse_peak_mv = None
            burner.pulse_opened = False
            burner.pulse_cooled = False
            # The jump that proves the loop opened is measured from the last
            # reading taken with the loop closed and settled (OPEN_JUMP).
            burner.pre_cut_mv = None
            if self.relay_closed[burner.index] and burner.relay_changed_at is None:
                burner.pre_cut_mv = burner.tc_mv
        if detail is None:
            self.emit("cut", burner, reason=reason, flame=burner.flame)
        else:
            self.emit("cut", burner, reason=reason, flame=burner.flame, detail=detail)

    def cut(self, name, reason, now):
        """Cut one burner (name) or every burner (name None)."""
        if reason not in REASONS:
            raise HobError("bad_arg", "unknown cut reason %r" % reason)
        targets = self.burners if name is None else [self.burner(name)]
        for burner in targets:
            self._cut(burner, reason, now)
        self._apply(now)

    # -- timers ------------------------------------------------------------

    def _minutes_to_ms(self, minutes, allow_zero):
        if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or minutes != minutes:
            raise HobError("bad_arg", "minutes must be a number")
        limit = self.settings["timer_max_min"]
        if minutes == 0 and allow_zero and isinstance(minutes, int):
            return 0  # only an exact 0 cancels: a float 0.0 may be 1e-50 read in 32 bits
        if not 0 <= minutes <= limit:
            raise HobError("bad_arg", "minutes must be more than 0 and at most %s" % limit)
        if timer_too_short(minutes):
            raise HobError(
                "bad_arg", "minutes must be at least 1/60 (one second)%s" % (", or 0 to cancel" if allow_zero else "")
            )
        return max(1000, int(minutes * 60000))

    def set_timer(self, name, minutes, now):
        burner = self.burner(name)
        duration = self._minutes_to_ms(minutes, True)
        if duration == 0:
            self.cancel_timer(name, now)
            return
        if self.locked:
            raise HobError("refused", "the hob is locked: every burner is already cut")
        burner.timer_deadline = ticks_add(now, duration)
        burner.timer_warned = False
        self.emit("timer_set", burner, minutes=minutes)

    def extend_timer(self, name, minutes, now):
        burner = self.burner(name)
        duration = self._minutes_to_ms(minutes, False)
        if self.locked:
            raise HobError("refused", "the hob is locked: every burner is already cut")
        remaining = self.remaining_ms(burner, now) or 0
        if remaining + duration > self.settings["timer_max_min"] * 60000:
            raise HobError("bad_arg", "the timer would run longer than %s minutes" % self.settings["timer_max_min"])
        burner.timer_deadline = ticks_add(now, remaining + duration)
        burner.timer_warned = False
        self.emit("timer_set", burner, minutes=(remaining + duration) / 60000)

    def cancel_timer(self, name, now):
        burner = self.burner(name)
        if burner.timer_deadline is not None:
            burner.timer_deadline = None
            burner.timer_warned = False
            self.emit("timer_cancelled", burner)

    # What the left-on guard counts (issue 9, item 2; issue 12; review F2).
    # It is the last resort, so it counts flame time on the device alone:
    # from the flame's lighting, or from the last sign of a person AT THE
    # HOB (a press of the button for every burning burner, a turn of this
    # burner's knob), or the last cut of it. Nothing that arrives over a
    # link restarts it, holds it idle or takes its warning back: timer
    # commands and presence messages do not. A running timer is a cut of
    # its own, which may come earlier, never later: the guard keeps
    # counting while it runs, so cancelling a timer cannot cut at once
    # either (the left-on warning, if due, has come in full at its own
    # time). (Before, a running timer held the guard idle and setting one
    # took a left-on warning back: a timer re-set every few minutes held
    # the guard off for ever.)

    def _left_on_sign(self, burner, now, sign):
        """A sign of a person at the hob for this burner: its left-on count
        starts again, and a left-on warning under way is taken back (the
        person is there; the cook presses the button to cook on). Returns
        True when it took a warning back."""
        burner.guard_since = now
        if burner.guard_deadline is None:
            return False
        burner.guard_deadline = None
        self.emit("warning_cancelled", burner, reason="left_on", sign=sign)
        return True

    # -- signs of a person (the unattended-cooking guard) ------------------

    def presence(self, now):
        """A person is at the hob now (protocol command `presence`)."""
        self._person(now, "presence")

    def _person(self, now, sign):
        """A sign of a person: the unattended count starts again, and an
        unattended warning under way is taken back ("don't fight the
        cook"). Returns True when it took a warning back."""
        self.person_since = now
        if self.unattended_deadline is None:
            return False
        self.unattended_deadline = None
        for burner in self.burners:
            if burner.unattended_warned:
                burner.unattended_warned = False
                self.emit("warning_cancelled", burner, reason="unattended", sign=sign)
        return True

    def _guard_unattended(self, now):
        """While a burner burns: warn warn_before_s before unattended_min
        without a sign of a person, then cut every burner warned that still
        burns."""
        burning = False
        for burner in self.burners:
            if self._burning(burner):
                burning = True
        if not burning:
            # Nothing left to cut: a warning under way is moot.
            self.unattended_deadline = None
            for burner in self.burners:
                burner.unattended_warned = False
            return
        if self.unattended_deadline is None:
            if ticks_diff(now, self.person_since) < self._unattended - self._warn:
                return
            # As the left-on guard: the cut comes a full warning after the
            # warning, even when this tick is late.
            self.unattended_deadline = ticks_add(now, self._warn)
            for burner in self.burners:
                if self._burning(burner):
                    burner.unattended_warned = True
                    self.emit("warning", burner, reason="unattended", cut_in_s=(self._warn + 999) // 1000)
        if ticks_diff(now, self.unattended_deadline) < 0:
            return
        self.unattended_deadline = None
        self.person_since = now  # a burner not warned (none should be) gets its own full round
        for burner in self.burners:
            if burner.unattended_warned:
                burner.unattended_warned = False
                if self._burning(burner):
                    self._cut(burner, "unattended", now)

    # -- lock, faults, button ----------------------------------------------

    def set_lock(self, on, now):
        on = bool(on)
        if on == self.locked:
            return
        self.locked = on
        self.lock_dirty = True
        self.emit("lock", None, locked=on)
        if on:
            for burner in self.burners:
                self._cut(burner, "lock", now)
        self._apply(now)

    def clear_fault(self, name, now):
        targets = self.burners if name is None else [self.burner(name)]
        for burner in targets:
            if burner.cut_fault:
                burner.cut_fault = None
                self.emit("fault_cleared", burner)
        self._apply(now)

    def press(self, kind, now):
        """A button press: 'short' starts or extends a timer on the burner
        lit most recently; 'long' cuts every burner. Any press is a sign
        of a person at the hob: the unattended count and the left-on count
        of every burning burner start again. A short press during an
        unattended or left-on warning only takes that warning back (the
        cook says "I am here", not "+10 minutes")."""
        acknowledged = self._person(now, "button")
        for burner in self.burners:
            if self._lit(burner) and self._left_on_sign(burner, now, "button"):
                acknowledged = True
        if kind == "long":
            self.cut(None, "button", now)
            return True
        if acknowledged:
            return True
        lit = None
        for burner in self.burners:
            if burner.flame and (lit is None or burner.lit_order > lit.lit_order):
                lit = burner
        if self.locked:
            self.emit("rejected", None, reason="button: the hob is locked")
            return False
        if lit is None:
            self.emit("rejected", None, reason="button: no burner is lit")
            return False
        step = self.settings["button_timer_min"]
        remaining = self.remaining_ms(lit, now) or 0
        if remaining + step * 60000 > self.settings["timer_max_min"] * 60000:
            self.emit("rejected", lit, reason="button: timer at its maximum")
            return False
        if remaining:
            self.extend_timer(lit.name, step, now)
        else:
            self.set_timer(lit.name, step, now)
        return True

    # -- sensing -----------------------------------------------------------

    def sample(self, index, millivolts, now):
        """Feed one thermocouple reading (mV) for burner `index`, or None
        when the ADC did not answer."""
        burner = self.burners[index]
        settings = self.settings
        if millivolts is not None and not (-settings["tc_max_mv"] < millivolts < settings["tc_max_mv"]):
            millivolts = None  # impossible: an open thermocouple or a broken input
        if millivolts is None:
            # No reading is never a flame lost: the detector starts again.
            burner.loss.reset()
            burner.level_since = None
            burner.bad_samples += 1
            if burner.bad_samples >= SENSOR_FAULT_AFTER and burner.sensor_fault is None:
                burner.sensor_fault = "sensor"
                # The flame is unknown from here, but what was last read is
                # kept: the guards treat a flame last seen lit as burning
                # (its left-on count and any warning go on), and a lasting
                # fault on it is cut (SENSOR_FAULT_CUT_MS). Review F1.
                burner.fault_flame = burner.flame
                burner.flame = None
                if burner.fault_flame and burner.cut_until is None:
                    burner.fault_warn_at = ticks_add(now, SENSOR_FAULT_CUT_MS)
                burner.flame_candidate = None
                burner.cooled_to_mv = None
                burner.tc_mv = None
                self.emit("fault", burner, reason="sensor", detail="thermocouple reading missing or impossible")
            return
        if burner.sensor_fault is not None:
            burner.sensor_fault = None
            if burner.fault_flame is not None:
                # Readings are back: the flame is what it was before the
                # dropout until the readings show a change through the
                # ordinary filter. Only a real off -> on restarts the
                # left-on count (review F1).
                burner.flame = burner.fault_flame
            burner.fault_flame = None
            burner.fault_warn_at = None
            self.emit("fault_cleared", burner, reason="sensor")
            if burner.fault_deadline is not None:
                burner.fault_deadline = None
                self.emit("warning_cancelled", burner, reason="fault", detail="the thermocouple reads again")
        burner.bad_samples = 0
        if burner.relay_changed_at is not None:
            if 0 <= ticks_diff(now, burner.relay_changed_at) < RELAY_SETTLE_MS:
                burner.loss.reset()
                return
            burner.relay_changed_at = None  # settled: the stamp has served
        previous = burner.tc_mv
        burner.tc_mv = millivolts
        closed = self.relay_closed[index]
        # The flame-loss detector and the turn watch read the loaded voltage
        # of a loop that can hold the valve: relay closed and settled, no
        # cut, no lock, no fault (sensor faults never get here).
        watched = closed and burner.cut_until is None and not burner.cut_fault and not self.locked
        if self._flame_loss:
            if burner.loss.feed(now, millivolts, watched) and watched:
                # The gas may still flow unburnt: cut at once, no warning.
                # A knob turned off looks the same and the cut is harmless.
                self._cut(burner, "flame_lost", now, "the flame went out; gas cut to be sure")
                self._apply(now)
                return
        if self._unattended or self._left_on:
            if watched and burner.flame:
                self._watch_level(burner, millivolts, now)
            else:
                burner.level_since = None
                if not burner.flame:
                    burner.level_mv = None
        if burner.verify_deadline is not None:
            if not closed and burner.cut_until is not None:
                if self._check_cooling(burner, millivolts, now):
                    return  # verified: the burner reads "off" from this reading on
            elif closed and burner.pulse_cooled:
                # The first settled reading after a pulse that cooled: the
                # loop was open if the reading drops by the loop's divider
                # now that it is loaded again (OPEN_JUMP, the other way).
                burner.pulse_cooled = False
                if previous is not None and millivolts * OPEN_JUMP <= previous:
                    self._cooled(burner, millivolts, now)
                    return
        if closed:
            on_mv, off_mv = settings["flame_on_mv"], settings["flame_off_mv"]
        else:
            on_mv, off_mv = settings["flame_open_on_mv"], settings["flame_open_off_mv"]
        seen = None
        if burner.cooled_to_mv is not None:
            seen = self._still_cooling(burner, millivolts, off_mv, now)
        if seen is None:
            if millivolts >= on_mv:
                seen = True
            elif millivolts < off_mv:
                seen = False
            else:
                seen = burner.flame  # between the thresholds: no change
        if seen is None:
            seen = False
        if seen == burner.flame:
            burner.flame_candidate = None
            return
        if burner.flame_candidate != seen:
            burner.flame_candidate = seen
            burner.candidate_since = now
        if burner.flame is not None and ticks_diff(now, burner.candidate_since) < self._filter:
            return
        self._flame_changed(burner, seen, now)

    def _watch_level(self, burner, millivolts, now):
        """Turn watch (TURN_*): a new steady level far from the last one is
        a person turning the knob."""
        since = burner.level_since
        if since is None or not (
            millivolts <= burner.level_lo * (1 + TURN_BAND) and burner.level_hi <= millivolts * (1 + TURN_BAND)
        ):
            # A new candidate level starts at this reading.
            burner.level_lo = burner.level_hi = millivolts
            burner.level_since = now
            return
        if millivolts < burner.level_lo:
            burner.level_lo = millivolts
        elif millivolts > burner.level_hi:
            burner.level_hi = millivolts
        age = ticks_diff(now, since)
        if age < TURN_STEADY_MS:
            return
        if age >= TURN_ADOPT_MS:
            age = TURN_ADOPT_MS
            burner.level_since = ticks_add(now, -TURN_ADOPT_MS)  # (age capped: it has served)
        level = (burner.level_lo + burner.level_hi) * 0.5
        last = burner.level_mv
        if last is None:
            if age >= TURN_ADOPT_MS:
                burner.level_mv = level  # the first reference: a level held, not one passed
        elif last * (1 - TURN_TRACK) < level < last * (1 + TURN_TRACK):
            burner.level_mv = level  # a drift: follow it
        elif not last * (1 - TURN_FRACTION) < level < last * (1 + TURN_FRACTION):
            burner.level_mv = level
            self._left_on_sign(burner, now, "turned")
            self._person(now, "turned")
        elif age >= TURN_ADOPT_MS:
            burner.level_mv = level  # held this long: where the flame is now
        # (else: maybe a pause on the way to a new level; the level it left
        # stays the reference)

    def _check_cooling(self, burner, millivolts, now):
        """During a cut pulse: True when this reading proves the flame out."""
        peak = burner.pulse_peak_mv
        if peak is None:
            # The first settled reading of the pulse: did the loop open?
            before = burner.pre_cut_mv
            burner.pulse_opened = before is not None and before > 0 and millivolts >= before * OPEN_JUMP
            burner.pulse_peak_mv = millivolts
        elif millivolts > peak:
            burner.pulse_peak_mv = millivolts
        elif peak >= self.settings["flame_open_on_mv"] and millivolts < peak * (1 - COOLING_DROP):
            if not burner.pulse_opened:
                # Cooling, but no loaded reading before the pulse showed the
                # loop open (a cut at boot): the drop when the relay closes
                # again must show it.
                burner.pulse_cooled = True
                return False
            self._cooled(burner, millivolts, now)
            return True
        return False

    def _cooled(self, burner, millivolts, now):
        """The cut is verified by the thermocouple cooling."""
        burner.verify_deadline = None
        # What the device has just proven shows at once (issue 9, item
        # 6): the flame is out and the gas is shut, although the
        # thermocouple still reads above the flame threshold for another
        # 10-15 s. From here the burner reads "off" while the reading
        # keeps falling (_still_cooling).
        burner.flame = False
        burner.flame_candidate = None
        burner.guard_deadline = None
        burner.cooled_to_mv = millivolts
        burner.cooled_at = now
        self.emit("cut_verified", burner, reason=burner.last_cut_reason, by="cooling")

    def _still_cooling(self, burner, millivolts, off_mv, now):
        """After a verified cut: False while the reading falls as a cooling
        thermocouple's does, True when it rises again (a relight), None
        once the reading is cold or has stopped falling (ordinary flame
        detection from then on)."""
        floor = burner.cooled_to_mv
        if millivolts < off_mv:
            burner.cooled_to_mv = None  # cold: nothing left to tell apart
            return None
        if millivolts >= floor + RELIGHT_RISE_MV:
            return True  # heating again: relit (still through the flame filter)
        if millivolts < floor:
            burner.cooled_to_mv = millivolts
            burner.cooled_at = now
            return False
        if ticks_diff(now, burner.cooled_at) >= self._stall:
            # Not a cooling curve (a cooling junction keeps setting new
            # lows): trust the ordinary thresholds again.
            burner.cooled_to_mv = None
            return None
        return False

    def cutting(self):
        """True while a cut pulse runs (the caller samples faster then)."""
        for burner in self.burners:
            if burner.cut_until is not None:
                return True
        return False

    def _flame_changed(self, burner, lit, now):
        first = burner.flame is None
        burner.flame = lit
        burner.flame_candidate = None
        burner.cooled_to_mv = None
        if lit:
            burner.guard_since = now
            self._lit_counter += 1
            burner.lit_order = self._lit_counter
            if not first:
                self.emit("ignited", burner, tc_mv=burner.tc_mv)
                self._person(now, "lit")
        else:
            burner.guard_deadline = None
            if burner.verify_deadline is not None:
                burner.verify_deadline = None
                self.emit("cut_verified", burner, reason=burner.last_cut_reason, by="flame_out")
            elif not first:
                self.emit("flame_out", burner, tc_mv=burner.tc_mv)

    # -- time --------------------------------------------------------------

    def tick(self, now):
        """Advance timers, guards, pulses and verifications to `now`.
        Call at least once every STAMP_AGE_CAP ms."""
        elapsed = ticks_diff(now, self._last_tick)
        if elapsed > 0 or elapsed < -STAMP_AGE_CAP:
            # (Far negative: more than 2**29 ms since the last tick, a broken
            # contract; counting starts again from here.)
            self._last_tick = now
        if elapsed > 0:
            elapsed += self._uptime_ms
            self._uptime_s += elapsed // 1000
            self._uptime_ms = elapsed % 1000
        if self.boot_pending:
            self._boot(now)
        for burner in self.burners:
            self._age_stamps(burner, now)
            if burner.timer_deadline is not None:
                left = ticks_diff(burner.timer_deadline, now)
                if left <= 0:
                    self._cut(burner, "timer", now)
                elif left <= self._warn and not burner.timer_warned:
                    burner.timer_warned = True
                    self.emit("warning", burner, reason="timer", cut_in_s=(left + 999) // 1000)
            if self._lit(burner) and self._left_on and burner.cut_until is None:
                if burner.guard_deadline is None:
                    on_for = ticks_diff(now, burner.guard_since)
                    if on_for >= self._left_on - self._warn:
                        # The cut comes a full warning after the warning,
                        # even when this tick is late or left_on_min is
                        # shorter than the warning.
                        burner.guard_deadline = ticks_add(now, self._warn)
                        self.emit("warning", burner, reason="left_on", cut_in_s=(self._warn + 999) // 1000)
                if burner.guard_deadline is not None and ticks_diff(now, burner.guard_deadline) >= 0:
                    self._cut(burner, "left_on", now)
            if burner.fault_warn_at is not None and ticks_diff(now, burner.fault_warn_at) >= 0:
                # The sensor fault has lasted SENSOR_FAULT_CUT_MS on a burner
                # last seen lit: warn, and cut a full warning later.
                burner.fault_warn_at = None
                if burner.cut_until is None and burner.fault_deadline is None:
                    burner.fault_deadline = ticks_add(now, self._warn)
                    self.emit("warning", burner, reason="fault", cut_in_s=(self._warn + 999) // 1000)
            if burner.fault_deadline is not None and ticks_diff(now, burner.fault_deadline) >= 0:
                self._cut(burner, "fault", now, "thermocouple unreadable while the burner may burn")
            if burner.verify_deadline is not None and ticks_diff(now, burner.verify_deadline) >= 0:
                burner.verify_deadline = None
                if burner.flame:
                    burner.cut_fault = "cut_failed"
                    self.emit(
                        "fault",
                        burner,
                        reason="cut_failed",
                        detail="flame still burning %ds after the cut: welded relay or stuck valve"
                        % (self._verify // 1000),
                    )
                elif burner.flame is None:
                    self.emit("cut_unverified", burner, reason="no flame reading")
            if burner.cut_until is not None and ticks_diff(now, burner.cut_until) >= 0:
                burner.cut_until = None
        if self._unattended:
            self._guard_unattended(now)
        self._apply(now)

    def _age_stamps(self, burner, now):
        # See STAMP_AGE_CAP: no stamp may age into ticks_diff's blind half.
        # (The hob's person_since is aged with the first burner's; the turn
        # watch's level_since is kept at most TURN_STEADY_MS old by the
        # readings, and dropped whenever readings stop.)
        if burner.index == 0 and not 0 <= ticks_diff(now, self.person_since) <= STAMP_AGE_CAP:
            self.person_since = ticks_add(now, -STAMP_AGE_CAP)
        if burner.relay_changed_at is not None and not 0 <= ticks_diff(now, burner.relay_changed_at) < RELAY_SETTLE_MS:
            burner.relay_changed_at = None
        if not 0 <= ticks_diff(now, burner.guard_since) <= STAMP_AGE_CAP:
            burner.guard_since = ticks_add(now, -STAMP_AGE_CAP)
        if not 0 <= ticks_diff(now, burner.candidate_since) <= STAMP_AGE_CAP:
            burner.candidate_since = ticks_add(now, -STAMP_AGE_CAP)
        if not 0 <= ticks_diff(now, burner.cooled_at) <= STAMP_AGE_CAP:
            burner.cooled_at = ticks_add(now, -STAMP_AGE_CAP)

    def _boot(self, now):
        # Wait for one reading of every working sensor, at most one pulse.
        waited = self._uptime_ms_total()
        for burner in self.burners:
            if burner.flame is None and burner.sensor_fault is None and waited < self._cut_pulse:
                return
        self.boot_pending = False
        hot = [b.name for b in self.burners if b.flame]
        self.emit("boot", None, reset_cause=self.reset_cause, hot_burners=hot, locked=self.locked)
        for burner in self.burners:
            if burner.flame:
                burner.last_cut_reason = "reset"
                burner.verify_deadline = ticks_add(now, self._verify - waited)
                burner.pulse_peak_mv = None
                burner.pulse_opened = False  # no loaded reading before: shown at the pulse's end
                burner.pulse_cooled = False
                self.emit("cut", burner, reason="reset", flame=True)
        if self.locked:
            for burner in self.burners:
                burner.last_cut_reason = burner.last_cut_reason or "lock"

    def _apply(self, now):
        for i, burner in enumerate(self.burners):
            closed = self._wants_closed(burner)
            if closed != self.relay_closed[i]:
                self.relay_closed[i] = closed
                burner.relay_changed_at = now
                # A reading across the switch means something else now.
                burner.flame_candidate = None
                burner.loss.reset()
                burner.level_since = None
                if burner.cooled_to_mv is not None:
                    # Loaded and open-circuit readings differ by half: the
                    # first reading after the switch is the new low.
                    burner.cooled_to_mv = self.settings["tc_max_mv"]
                    burner.cooled_at = now

    # -- commands ----------------------------------------------------------

    def handle(self, cmd, args, now):
        """Run one validated protocol command; return the reply fields.
        Raises HobError for a command that is valid but cannot be done."""
        burner = args.get("burner")
        if cmd == "cut":
            self.cut(burner, "remote", now)
        elif cmd == "timer_set":
            self.set_timer(burner, args["minutes"], now)
        elif cmd == "timer_extend":
            self.extend_timer(burner, args["minutes"], now)
        elif cmd == "timer_cancel":
            self.cancel_timer(burner, now)
        elif cmd == "lock":
            self.set_lock(args["on"], now)
        elif cmd == "clear_fault":
            self.clear_fault(burner, now)
        elif cmd == "presence":
            self.presence(now)
        elif cmd not in ("status", "ping", "hello"):
            raise HobError("unknown_cmd", "unknown command %r" % cmd)
        self._apply(now)
        return self.snapshot(now)
