# Flame-loss detector: tells from one burner's thermocouple readings that
# its flame has gone out while gas may still flow, seconds before the hob's
# own flame-failure device lets go (~14.5 s).
#
# Pure and small: no hardware, no clock (every call takes `now`, ms ticks
# that wrap like time.ticks_ms()), a ring of a few samples allocated once.
# One instance per burner. The physics behind it and the choice of the
# numbers: docs/physics.md and bench/flame_loss.py.
#
# Why the shape and not a threshold. With the loop closed the reading is
# v = EMF x (a loop ratio the device does not know), and the EMF moves
# first-order toward the level the flame holds the tip at, T, with the tip's
# time constant tau. Its log-rate k = -d(ln v)/dt = (1 - T/v) / tau tells
# where it is heading:
#   flame out (blown out, boiled over, knob turned off): T = 0 and k stays
#       at 1/tau_cool (at least 1/12 s for a dry tip);
#   turned down, even to the lowest simmer, at any speed: T > 0, so k starts
#       below a blow-out's and falls as v nears T;
#   a draught bending the flame off the tip: like a blow-out while it
#       lasts, then v rises again.
# So it fires when k has stayed at least K_MIN for HOLD_MS and has not
# slowed down (the last window's k >= DECEL x the fall's average): the EMF
# heads for zero, for longer than a draught under 3 s can last. A fall that
# began slower than it goes on (a draught or a blow-out right after a
# turn-down) is timed from where the present rate set in (ONSET).
import math
from array import array

try:
    from micropython import const
except ImportError:  # CPython (host, simulator)
    const = lambda x: x  # noqa: E731

_TICKS_MASK = const((1 << 30) - 1)
_TICKS_HALF = const(1 << 29)

# Defaults, chosen by bench/flame_loss.py (see docs/physics.md).
K_MIN = 0.07  # 1/s: a dry tip in a dead flame cools at >= 1/12 s
HOLD_MS = 3250  # a fall must last this long: draughts under 3 s end sooner
WINDOW_MS = 1000  # the log-rate is measured over this span
DECEL = 0.8  # "not slowing down": the last window's k >= DECEL x the average
ARM_MV = 1.0  # below this no flame is burning (weakest simmer: ~3.8 mV)
ARM_MS = 2000  # a flame must look steady or rising this long to be watched
WATCH_MS = 500  # sampling period it needs while a flame burns
FAST_MS = 250  # and while a fall is being watched
ONSET = 0.85  # a fall whose first window is slower than ONSET x the rest began later


def _ticks_diff(end, start):
    # The same wrap-safe difference as core.ticks_diff (period 2**30).
    return ((end - start + _TICKS_HALF) & _TICKS_MASK) - _TICKS_HALF


class FlameLossDetector:
    """feed() every reading of one burner; it returns True once, at the
    sample where the flame is judged lost. period_ms() is the sampling
    period it needs now (None: nothing to watch)."""

    def __init__(
        self,
        k_min=K_MIN,
        hold_ms=HOLD_MS,
        window_ms=WINDOW_MS,
        decel=DECEL,
        onset=ONSET,
        arm_mv=ARM_MV,
        arm_ms=ARM_MS,
        watch_ms=WATCH_MS,
        fast_ms=FAST_MS,
    ):
        self.k_min = k_min
        self.hold_ms = hold_ms
        self.window_ms = window_ms
        self.decel = decel
        self.onset = onset
        self.arm_mv = arm_mv
        self.arm_ms = arm_ms
        self.watch_ms = watch_ms
        self.fast_ms = fast_ms
        # Ring of the latest samples (ticks, ln mV), allocated once: a hold
        # and two windows back at the fast period.
        self._size = (hold_ms + 2 * window_ms) // max(1, fast_ms) + 4
        self._t = array("i", [0] * self._size)
        self._y = array("f", [0.0] * self._size)
        self._ln_floor = math.log(arm_mv * 0.25)
        self.reset()

    def reset(self):
        """Forget everything: after a cut, a relay movement, a sensor fault."""
        self._n = 0  # samples in the ring
        self._head = 0  # index of the newest
        self.armed = False  # a flame has been seen: watching for its loss
        self.fired = False  # judged lost; until reset() or a relight
        self._steady_since = None  # ticks since the flame looks steady or rising
        self._fall_since = None  # ticks of the first sample of the current fall
        self._fall_y = 0.0  # and its ln(mV)
        self._suspect = False  # the last step fell: look closer
        self.k = 0.0  # last log-rate measured (1/s), for diagnostics

    def _after(self, since):
        """Index of the oldest sample in the ring taken after `since`."""
        i = self._head
        for _ in range(self._n - 1):
            j = (i - 1) % self._size
            if _ticks_diff(self._t[j], since) <= 0:
                break
            i = j
        return i

    def period_ms(self):
        """Sampling period needed now: fast while a fall is watched, watch_ms
        while a flame burns, None when there is nothing to watch."""
        if not self.armed or self.fired:
            return None
        if self._fall_since is not None or self._suspect:
            return self.fast_ms
        return self.watch_ms

    def feed(self, now, mv, settled):
        """One reading: `mv` across the thermocouple with the relay closed,
        None when the ADC failed; `settled` False while the relay is open or
        has just moved (the reading then means something else). Returns True
        at the one sample where the flame is judged lost."""
        if not settled or mv is None or mv != mv:
            if self._n or self.armed:
                self.reset()
            return False
        y = math.log(mv) if mv > self.arm_mv * 0.25 else self._ln_floor
        k = None  # log-rate over at least one window
        k_half = None  # and over at least half a window: quicker to see a rise
        step = 0.0  # log-rate over the last step
        n = self._n
        if n:
            i = self._head
            span = _ticks_diff(now, self._t[i])
            if span <= 0:
                return False  # not a new sample
            step = (self._y[i] - y) * 1000.0 / span
            for _ in range(n):  # the newest samples half and one window old
                if k_half is None and 2 * span >= self.window_ms:
                    k_half = (self._y[i] - y) * 1000.0 / span
                if span >= self.window_ms:
                    k = (self._y[i] - y) * 1000.0 / span
                    break
                i = (i - 1) % self._size
                span = _ticks_diff(now, self._t[i])
        self._head = (self._head + 1) % self._size
        self._t[self._head] = now
        self._y[self._head] = y
        if n < self._size:
            self._n = n + 1
        k_min = self.k_min
        self._suspect = step >= k_min * 0.3
        if k is None:
            return False
        self.k = k
        if not self.armed or self.fired:
            # (Re-)arm on a flame that looks steady or rising for arm_ms: a
            # first lighting, or a relight after a loss. A cooling tip never does.
            if mv < self.arm_mv or k > k_min * 0.5:
                self._steady_since = None
            elif self._steady_since is None:
                self._steady_since = now
            elif _ticks_diff(now, self._steady_since) >= self.arm_ms:
                self.armed = True
                self.fired = False
                self._fall_since = None
            return False
        if mv < self.arm_mv:
            # Fell from a flame to below any flame's level: the tip is cold.
            self.fired = True
            return True
        # A fall starts when k reaches k_min and ends when k drops well below
        # it (a rise, a flattening).
        if self._fall_since is None:
            if k >= k_min:
                self._fall_since = now
                self._fall_y = y
            return False
        if k < k_min * 0.6:
            self._fall_since = None
            return False
        age = _ticks_diff(now, self._fall_since)
        if age < self.window_ms:
            return False
        # Where the steep part began: a fall whose first window is slower than
        # the rest began as something else -- a turn-down, a draught right
        # after one, a blow-out during a turn-down -- so its start moves on,
        # one sample at a time, to where the present rate set in.
        while age >= 2 * self.window_ms:
            i = self._after(self._fall_since)
            j = i
            for _ in range(self._n):  # the first sample one window into the fall
                if _ticks_diff(self._t[j], self._fall_since) >= self.window_ms:
                    break
                j = (j + 1) % self._size
            first = _ticks_diff(self._t[j], self._fall_since)
            rest = _ticks_diff(now, self._t[j])
            if first <= 0 or rest <= 0:
                break
            k_first = (self._fall_y - self._y[j]) * 1000.0 / first
            k_rest = (self._y[j] - y) * 1000.0 / rest
            if k_first >= self.onset * k_rest:
                break
            self._fall_since = self._t[i]
            self._fall_y = self._y[i]
            age = _ticks_diff(now, self._fall_since)
        # A dead flame cools at one rate; a turn-down slows down as the tip
        # nears its new level, and the end of a draught turns the fall into a
        # rise: the last half window's rate < DECEL x the fall's average.
        k_all = (self._fall_y - y) * 1000.0 / age
        if age >= self.hold_ms and k >= k_min and k_half >= self.decel * k_all:
            self.fired = True
            return True
        return False
