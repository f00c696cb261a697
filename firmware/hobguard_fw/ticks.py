# Wrap-safe millisecond ticks, defined once for the pure modules (core,
# flameloss), which take time as an argument and never import `time`.
# The same arithmetic as MicroPython's time.ticks_add/ticks_diff on the
# ESP32: ticks wrap at 2**30, and a difference is right only for stamps
# less than 2**29 ms (6.2 days) apart (see core.STAMP_AGE_CAP).
try:
    from micropython import const
except ImportError:  # CPython (host, simulator)
    const = lambda x: x  # noqa: E731

TICKS_PERIOD = const(1 << 30)
_TICKS_MASK = const((1 << 30) - 1)
_TICKS_HALF = const(1 << 29)


def ticks_add(ticks, delta):
    return (ticks + delta) & _TICKS_MASK


def ticks_diff(end, start):
    """Signed end - start, correct across the wrap (like time.ticks_diff)."""
    return ((end - start + _TICKS_HALF) & _TICKS_MASK) - _TICKS_HALF
