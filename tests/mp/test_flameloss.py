# Flame-loss detector tests. Plain functions and asserts, so the very same
# file runs under CPython (pytest) and inside real MicroPython (the
# WebAssembly port, tests/test_micropython_port.py).
#
# The signal is a thermocouple reading with the loop closed, made here by a
# small first-order model (the simulator's physics is CPython only): the EMF
# heads for a target with a time constant, re-anchored at each event, plus a
# little noise and the ADS1115's 7.8125 uV steps.
import math

from hobguard_fw import flameloss

LSB = 0.0078125
HOT = 13.0  # mV, full flame, loop closed (25 mV x 65/125)
MASK = (1 << 30) - 1


class Tip:
    """events: [(t_s, target_mV, tau_s)], applied in order from a steady start."""

    def __init__(self, start_mv, events, noise_mv=0.01, seed=1):
        self.v0 = start_mv
        self.t0 = 0.0
        self.target = start_mv
        self.tau = 5.0
        self.events = sorted(events)
        self.i = 0
        self.noise = noise_mv
        self.state = seed

    def _rand(self):  # uniform in [-1, 1): a tiny LCG, the same in both Pythons
        self.state = (self.state * 1103515245 + 12345) & 0x7FFFFFFF
        return self.state / 1073741824.0 - 1.0

    def emf(self, t):
        return self.target + (self.v0 - self.target) * math.exp(-(t - self.t0) / self.tau)

    def read(self, t):
        while self.i < len(self.events) and self.events[self.i][0] <= t:
            te, target, tau = self.events[self.i]
            self.v0 = self.emf(te)
            self.t0 = te
            self.target = target
            self.tau = tau
            self.i += 1
        v = self.emf(t) + self.noise * 1.7 * self._rand()  # ~noise_mv rms
        return round(v / LSB) * LSB


def run(tip, end_s, det=None, start_ticks=0, idle_ms=1000):
    """Sample as the device would (as often as the detector asks); return the
    detector and the times (s) at which it said the flame was lost."""
    det = det or flameloss.FlameLossDetector()
    fired = []
    t_ms = 0
    while t_ms <= end_s * 1000:
        t = t_ms / 1000.0
        if det.feed((start_ticks + t_ms) & MASK, tip.read(t), True):
            fired.append(t)
        t_ms += det.period_ms() or idle_ms
    return det, fired


def ramp(t0, seconds, frm, to, tau, steps=20):
    """A knob turned evenly over `seconds`: the target moves in steps."""
    out = []
    for k in range(1, steps + 1):
        out.append((t0 + seconds * k / steps, frm + (to - frm) * k / steps, tau))
    return out


def test_blow_out_at_full_flame_is_judged_within_the_bound():
    for tau_cool in (6.0, 9.0, 12.0):
        for phase in (0.0, 0.13, 0.37, 0.61, 0.89):
            out = 30.0 + phase
            _, fired = run(Tip(HOT, [(out, 0.0, tau_cool)]), 45.0)
            assert len(fired) == 1, (tau_cool, phase, fired)
            delay = fired[0] - out
            # Not before a draught under 3 s could have ended; the valve shuts
            # ~55 ms after the verdict, within 5 s of the flame going out.
            assert 3.0 < delay <= 4.9, (tau_cool, phase, delay)


def test_blow_out_at_simmer_is_judged_within_the_bound():
    simmer = HOT * 0.6  # the weakest simmer in range, and an aged thermocouple's level too
    for tau_cool in (6.0, 12.0):
        out = 60.3
        events = [(20.0, simmer, 5.0), (out, 0.0, tau_cool)]
        _, fired = run(Tip(HOT, events, noise_mv=0.02), 75.0)
        assert len(fired) == 1 and 3.0 < fired[0] - out <= 4.9, (tau_cool, fired)


def test_a_boil_over_wetting_the_tip_is_judged_sooner():
    out = 30.2
    _, fired = run(Tip(HOT, [(out, 0.0, 2.5)]), 45.0)
    assert len(fired) == 1 and 3.0 < fired[0] - out <= 4.0, fired


def test_turning_down_to_the_lowest_level_never_fires():
    # (ratio of the simmer EMF to the starting one, the tip's time constant in
    # the small flame): the default burner, the steepest turn-down the physics
    # allows next to a blow-out (a 6 s cooling tip, simmer ratio 0.6), a slow tip.
    for ratio, tau in ((0.75, 7.1), (0.6, 5.1), (0.6, 10.0), (0.9, 3.0)):
        for seconds in (0.0, 0.5, 2.0, 3.5, 6.0, 12.0):
            low = HOT * ratio
            events = [(30.0, low, tau)] if seconds == 0.0 else ramp(30.0, seconds, HOT, low, tau)
            events.append((90.0, HOT, 5.0))  # and back up
            det, fired = run(Tip(HOT, events, noise_mv=0.02), 130.0)
            assert fired == [], (ratio, tau, seconds, fired)
            assert det.armed


def test_draughts_under_3_s_never_fire_and_longer_ones_may():
    for tau_cool in (6.0, 9.0):
        for seconds in (0.5, 1.5, 2.5, 2.9, 2.99):
            start = 30.37
            events = [(start, 0.0, tau_cool), (start + seconds, HOT, 5.0)]
            _, fired = run(Tip(HOT, events), 60.0)
            assert fired == [], (tau_cool, seconds, fired)
    # A flame bent off the tip for 6 s looks like a dead one after ~3.5 s.
    _, fired = run(Tip(HOT, [(30.0, 0.0, 6.0), (36.0, HOT, 5.0)]), 60.0)
    assert len(fired) == 1 and 33.0 < fired[0] < 35.0, fired


def test_a_draught_right_after_a_turn_down_does_not_add_up():
    low = HOT * 0.6
    for gap in (0.5, 1.0, 2.0):
        events = [(30.0, low, 5.1), (30.0 + gap, 0.0, 6.0), (30.0 + gap + 2.9, low, 5.1)]
        _, fired = run(Tip(HOT, events), 70.0)
        assert fired == [], (gap, fired)


def test_flicker_on_a_steady_flame_never_fires():
    # Slow wander of +-0.3 mV (2 % of the reading) every couple of seconds.
    events = []
    for k in range(200):
        events.append((10.0 + 2.0 * k, HOT + (0.3 if k % 2 else -0.3), 2.0))
    det, fired = run(Tip(HOT, events, noise_mv=0.03), 410.0)
    assert fired == [] and det.armed


def test_nothing_to_lose_without_a_flame():
    # A thermocouple still warm at boot, cooling: it never looked like a
    # burning flame, so it is not watched (and the caller may sample seldom).
    det, fired = run(Tip(HOT, [(0.0, 0.0, 9.0)]), 60.0)
    assert fired == [] and not det.armed and det.period_ms() is None
    # Cold: nothing either.
    det, fired = run(Tip(0.05, []), 30.0)
    assert fired == [] and not det.armed


def test_sampling_period_it_asks_for():
    det = flameloss.FlameLossDetector()
    tip = Tip(HOT, [(30.0, 0.0, 9.0)])
    periods = []
    t_ms = 0
    while t_ms <= 40000:
        det.feed(t_ms, tip.read(t_ms / 1000.0), True)
        periods.append((t_ms, det.period_ms()))
        t_ms += det.period_ms() or 1000
    assert [p for t, p in periods if t < 2000] == [None, None]  # not armed yet
    assert all(p == flameloss.WATCH_MS for t, p in periods if 10000 < t < 30000)
    assert any(p == flameloss.FAST_MS for t, p in periods if 30000 < t < 35000)
    assert periods[-1][1] is None  # judged lost: nothing more to watch


def test_judged_once_and_watched_again_after_a_relight():
    events = [(30.0, 0.0, 9.0), (50.0, HOT, 5.0), (90.0, 0.0, 9.0)]
    det, fired = run(Tip(HOT, events), 110.0)
    assert len(fired) == 2, fired
    assert 33.0 < fired[0] < 35.0 and 93.0 < fired[1] < 95.0


def test_relay_movements_and_bad_readings_start_over():
    det = flameloss.FlameLossDetector()
    tip = Tip(HOT, [(30.0, 0.0, 9.0)])
    t_ms = 0
    while t_ms < 30000:
        det.feed(t_ms, tip.read(t_ms / 1000.0), True)
        t_ms += 500
    assert det.armed
    # The relay opened (a cut pulse): the reading means something else now.
    assert not det.feed(t_ms, 25.0, False)
    assert not det.armed and det.period_ms() is None
    # A failed conversion or NaN: the same.
    det2, _ = run(Tip(HOT, []), 20.0)
    assert det2.armed
    assert not det2.feed(20500, None, True) and not det2.armed
    det3, _ = run(Tip(HOT, []), 20.0)
    assert not det3.feed(20500, float("nan"), True) and not det3.armed
    # A repeated or older tick is ignored.
    det4, _ = run(Tip(HOT, []), 20.0)
    assert not det4.feed(20000, 1.0, True) and det4.armed


def test_sparse_sampling_never_breaks_it():
    # A caller that ignores period_ms() and reads every 2.5 s, then every 0.7 s:
    # slower verdicts, but no error and no false one.
    for period in (2500, 700):
        for events in ([(30.0, 0.0, 9.0)], [(30.0, HOT * 0.6, 5.1), (31.0, 0.0, 6.0), (33.9, HOT * 0.6, 5.1)]):
            det = flameloss.FlameLossDetector()
            tip = Tip(HOT, events)
            fired = []
            t_ms = 0
            while t_ms <= 60000:
                if det.feed(t_ms, tip.read(t_ms / 1000.0), True):
                    fired.append(t_ms)
                t_ms += period
            assert len(fired) == (1 if len(events) == 1 else 0), (period, events, fired)


def test_works_across_the_tick_wrap():
    start = (1 << 30) - 35000  # the blow-out happens right after the wrap
    _, fired = run(Tip(HOT, [(36.0, 0.0, 9.0)]), 50.0, start_ticks=start)
    assert len(fired) == 1 and 3.0 < fired[0] - 36.0 <= 4.9


def test_no_memory_kept_per_sample():
    det = flameloss.FlameLossDetector()
    ring_t, ring_y, size = det._t, det._y, len(det._t)
    tip = Tip(HOT, [(30.0, 0.0, 9.0), (50.0, HOT, 5.0)] + ramp(80.0, 5.0, HOT, HOT * 0.75, 7.0))
    readings = [tip.read(k * 0.25) for k in range(480)]
    for k in range(40):  # warm up: armed, ring full
        det.feed(k * 250, readings[k], True)
    try:
        import tracemalloc  # CPython: count what stays allocated
    except ImportError:
        tracemalloc = None  # MicroPython: gc.collect() does not give floats back in the
        # WebAssembly port, so only the structure is checked there
    if tracemalloc is not None:
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
    for k in range(40, 480):
        det.feed(k * 250, readings[k], True)
    if tracemalloc is not None:
        kept = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        assert kept < 1024, kept
    # The ring was allocated once and never grows.
    assert det._t is ring_t and det._y is ring_y and len(det._t) == size == len(det._y)
