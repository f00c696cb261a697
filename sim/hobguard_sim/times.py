"""Times as people write them in scenarios and actions, and as the simulator
prints them. Virtual time is integer milliseconds throughout."""

from __future__ import annotations

import math
import re
from typing import Any

__all__ = ["TimeError", "TIME_HELP", "parse_time", "fmt_time", "fmt_short"]


class TimeError(ValueError):
    """Not a time; the message says where and what is allowed."""


_UNIT_RE = re.compile(
    r"^(?:(?P<h>\d+(?:\.\d+)?)h)?(?:(?P<m>\d+(?:\.\d+)?)m(?!s))?(?:(?P<s>\d+(?:\.\d+)?)s)?(?:(?P<ms>\d+)ms)?$"
)
_COLON_RE = re.compile(r"^(?:(?P<h>\d+):)?(?P<m>\d+):(?P<s>\d+(?:\.\d+)?)$")

TIME_HELP = "a time: seconds (90, 1.5), '1m30s', '20m02s', '2h', '500ms', '20:02' or '1:20:02'"


def parse_time(value: Any, where: str = "time", bare_seconds: bool = False) -> int:
    """A time or duration -> integer milliseconds (>= 0).

    Numbers are seconds; strings are ``1h2m3s``/``500ms`` style or
    ``mm:ss`` / ``h:mm:ss``. ``bare_seconds``: a string that is only a
    number counts as seconds too (a word of an action: ``power_loss 5``)."""
    if isinstance(value, bool):
        raise TimeError(f"{where}: {value!r} is not {TIME_HELP}")
    if isinstance(value, str) and bare_seconds:
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or value < 0:
            raise TimeError(f"{where}: {value!r} must be a finite number of seconds >= 0")
        return int(round(value * 1000))
    if isinstance(value, str):
        text = value.strip().replace(" ", "")
        if text:
            m = _UNIT_RE.match(text)
            if m and any(m.groupdict().values()):
                g = {k: float(v) if v else 0.0 for k, v in m.groupdict().items()}
                return int(round(g["h"] * 3_600_000 + g["m"] * 60_000 + g["s"] * 1000 + g["ms"]))
            m = _COLON_RE.match(text)
            if m:
                h = float(m["h"] or 0)
                mins, secs = float(m["m"]), float(m["s"])
                if secs >= 60 or (m["h"] and mins >= 60):
                    raise TimeError(f"{where}: {value!r} has more than 59 minutes or seconds in a field")
                return int(round(h * 3_600_000 + mins * 60_000 + secs * 1000))
    raise TimeError(f"{where}: {value!r} is not {TIME_HELP}")


def fmt_time(ms: float, long: bool = False, decimals: int = 1) -> str:
    """Milliseconds -> 'mm:ss.s' (or 'h:mm:ss.s' when long or over an hour)."""
    neg = ms < 0
    ms = abs(ms)
    scale = 10**decimals
    total = int(round(ms / 1000 * scale))
    whole, frac = divmod(total, scale)
    h, rest = divmod(whole, 3600)
    m, s = divmod(rest, 60)
    tail = f".{frac:0{decimals}d}" if decimals else ""
    text = f"{h}:{m:02d}:{s:02d}{tail}" if (h or long) else f"{m:02d}:{s:02d}{tail}"
    return ("-" if neg else "") + text


def fmt_short(ms: int) -> str:
    """Compact human time for descriptions: '20:02', '1:00:00', '14.5 s'."""
    if ms < 60_000:
        return f"{ms / 1000:g} s"
    if ms % 1000:
        return fmt_time(ms, decimals=3).rstrip("0")
    return fmt_time(ms, decimals=0)
