"""Scenarios: timed person actions, host commands and faults, played against
the real firmware on the simulated hob in virtual time, with expectations
checked against the physical truth and against what the device reported.

A scenario is a TOML file (format: ``sim/README.md``)::

    title = "Simmer with a 20-minute timer"
    duration = "25m"

    [[step]]
    at = "1m"
    do = "ignite left"

    [[step]]
    at = "1m10s"
    do = "timer left 20"

    [[expect]]
    valve = "closed"
    burner = "left"
    by = "21m11s"

The runner (:func:`run`) drives :class:`~hobguard_sim.device.SimDevice`. It
records the physics only when something changes: after every scenario step,
at every relay movement and every internal physics event (knob released,
magnet drop-out, ...) at its own millisecond, and once a simulated second
while a thermocouple is still heating or cooling. A quiet hob costs nothing,
so a simulated day runs in about as long as the firmware itself needs.

Public API (used by ``hobguard sim``): :func:`library`, :func:`find`,
:func:`load`, :func:`from_dict`, :func:`run`, :func:`format_timeline`.
"""

from __future__ import annotations

import json
import math
import re
import time as _walltime
import tomllib
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from hobguard_fw import core as fw_core
from hobguard_fw import protocol
from hobguard_fw import settings as fw_settings

from .device import BOOT_MS, SimDevice
from .physics import LEVEL_MIN, BurnerParams

__all__ = [
    "SCENARIO_DIR",
    "ScenarioError",
    "ScenarioSpec",
    "Step",
    "Expect",
    "Check",
    "ScenarioResult",
    "library",
    "find",
    "load",
    "loads",
    "from_dict",
    "run",
    "format_timeline",
    "parse_time",
    "fmt_time",
]

#: The scenario library shipped with the project.
SCENARIO_DIR = Path(__file__).resolve().parent.parent / "scenarios"

TICKS_PERIOD = 1 << 30


class ScenarioError(ValueError):
    """A scenario file is not valid; the message says where and why."""


# ---------------------------------------------------------------- time


_UNIT_RE = re.compile(
    r"^(?:(?P<h>\d+(?:\.\d+)?)h)?(?:(?P<m>\d+(?:\.\d+)?)m(?!s))?(?:(?P<s>\d+(?:\.\d+)?)s)?(?:(?P<ms>\d+)ms)?$"
)
_COLON_RE = re.compile(r"^(?:(?P<h>\d+):)?(?P<m>\d+):(?P<s>\d+(?:\.\d+)?)$")

TIME_HELP = "a time: seconds (90, 1.5), '1m30s', '20m02s', '2h', '500ms', '20:02' or '1:20:02'"


def parse_time(value: Any, where: str = "time") -> int:
    """A scenario time or duration -> integer milliseconds (>= 0).

    Numbers are seconds; strings are ``1h2m3s``/``500ms`` style or
    ``mm:ss`` / ``h:mm:ss``."""
    if isinstance(value, bool):
        raise ScenarioError(f"{where}: {value!r} is not {TIME_HELP}")
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or value < 0:
            raise ScenarioError(f"{where}: {value!r} must be a finite number of seconds >= 0")
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
                    raise ScenarioError(f"{where}: {value!r} has more than 59 minutes or seconds in a field")
                return int(round(h * 3_600_000 + mins * 60_000 + secs * 1000))
    raise ScenarioError(f"{where}: {value!r} is not {TIME_HELP}")


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


def _fmt_short(ms: int) -> str:
    """Compact human time for check descriptions: '20:02', '1:00:00', '14.5 s'."""
    if ms < 60_000:
        return f"{ms / 1000:g} s"
    if ms % 1000:
        return fmt_time(ms, decimals=3).rstrip("0")
    return fmt_time(ms, decimals=0)


# ---------------------------------------------------------------- actions


@dataclass(frozen=True)
class Action:
    """One parsed ``do`` string."""

    verb: str
    who: str  # person / host / physics / fault
    text: str  # the original words
    burner: str | None = None
    value: Any = None  # minutes, ohms, duration ms, "on"/"off", ...
    extra: Any = None
    inner: "Action | None" = None  # the command a 'corrupt' step garbles


_BURNER_VERBS_PERSON = {"ignite", "off", "blowout"}
_BURNER_VERBS_FAULT = {"weld", "unweld", "stuck_open", "unstick", "open_tc", "tc_ok"}
_NEEDS_BURNER = _BURNER_VERBS_PERSON | _BURNER_VERBS_FAULT | {
    "hold",
    "turn",
    "draught",
    "contact",
    "set",
    "timer",
    "extend",
    "cancel",
}
_HOST_COMMANDS = {"timer", "extend", "cancel", "cut", "lock", "clear_fault", "status", "ping", "hello"}

ACTION_HELP = (
    "person: 'ignite B', 'hold B 20s', 'off B', 'turn B LEVEL [OVER]' (LEVEL 0.2-1 of full flame, e.g. "
    "'turn B 0.2 3s'), 'press short|long|2.5s'; physics: 'blowout B', 'draught B 2s [SEVERITY]', "
    "'contact B 0.1' (relay contact ohms), 'set B PARAM VALUE'; host: 'timer B MIN', 'extend B MIN', "
    "'cancel B', 'cut B', 'cut all', 'lock on|off', 'clear_fault [B]', 'status', 'ping', 'hello', "
    "'corrupt <host command>'; faults: 'weld B', 'unweld B', 'stuck_open B', 'unstick B', 'open_tc B', "
    "'tc_ok B', 'adc dead|ok [B]', 'power_loss 30s', 'hang', 'link lost|ok', 'garbage [BYTES]'"
)


def parse_action(text: Any, names: list[str], where: str) -> Action:
    """Parse a step's ``do`` string against the hob's burner names."""
    if not isinstance(text, str) or not text.strip():
        raise ScenarioError(f"{where}: 'do' must be a non-empty string; actions: {ACTION_HELP}")
    words = text.split()
    verb, args = words[0].lower(), words[1:]

    def fail(why: str) -> ScenarioError:
        return ScenarioError(f"{where}: {text!r}: {why}")

    def burner(i: int = 0, optional: bool = False) -> str | None:
        if len(args) <= i:
            if optional:
                return None
            raise fail(f"needs a burner ({', '.join(names)})")
        name = args[i]
        if name not in names:
            raise fail(f"unknown burner {name!r}; this hob has {', '.join(names)}")
        return name

    def number(i: int, what: str, lo: float = 0.0, hi: float = math.inf) -> float:
        if len(args) <= i:
            raise fail(f"needs {what}")
        try:
            v = float(args[i])
        except ValueError:
            raise fail(f"{args[i]!r} is not a number ({what})") from None
        if not (math.isfinite(v) and lo <= v <= hi):
            raise fail(f"{what} must be in {lo:g}..{hi:g}")
        return v

    def count(n_min: int, n_max: int) -> None:
        if not args and n_min and verb in _NEEDS_BURNER:
            raise fail(f"needs a burner ({', '.join(names)})")
        if not n_min <= len(args) <= n_max:
            want = str(n_min) if n_min == n_max else f"{n_min} to {n_max}"
            raise fail(f"takes {want} word(s) after {verb!r}, got {len(args)}")

    if verb in _BURNER_VERBS_PERSON:
        count(1, 1)
        who = "physics" if verb == "blowout" else "person"
        return Action(verb, who, text, burner())
    if verb == "hold":
        count(2, 2)
        return Action(verb, "person", text, burner(), parse_time(args[1], f"{where}: {text!r}: hold time"))
    if verb == "turn":
        count(2, 3)
        name = burner()
        level = number(1, "the flame level (fraction of full flame)", LEVEL_MIN, 1.0)
        ramp = parse_time(args[2], f"{where}: {text!r}: turning time") if len(args) > 2 else 0
        return Action(verb, "person", text, name, level, ramp)
    if verb == "draught":
        count(2, 3)
        name = burner()
        ms = parse_time(args[1], f"{where}: {text!r}: draught length")
        if not 0 < ms <= 600_000:
            raise fail("the draught must last more than 0 s and at most 10 minutes")
        severity = number(2, "the severity (0-1]", 0.0, 1.0) if len(args) > 2 else 1.0
        if severity <= 0.0:
            raise fail("the severity must be more than 0 (1: the tip loses all of the flame's heat)")
        return Action(verb, "physics", text, name, ms, severity)
    if verb == "press":
        count(1, 1)
        kind = args[0].lower()
        if kind in ("short", "long"):
            return Action(verb, "person", text, None, kind)
        return Action(verb, "person", text, None, parse_time(args[0], f"{where}: {text!r}: press length"))
    if verb in _BURNER_VERBS_FAULT:
        count(1, 1)
        return Action(verb, "fault", text, burner())
    if verb == "contact":
        count(2, 2)
        return Action(verb, "fault", text, burner(), number(1, "the contact resistance in ohms", 0.0, 10.0))
    if verb == "set":
        count(3, 3)
        name = burner()
        param = args[1]
        if param not in BurnerParams.field_names():
            raise fail(f"unknown physics parameter {param!r}; valid: {', '.join(BurnerParams.field_names())}")
        value = number(2, param, -math.inf, math.inf)
        try:
            BurnerParams.from_dict({param: value})
        except ValueError as err:
            raise fail(str(err)) from None
        return Action(verb, "physics", text, name, value, param)
    if verb == "adc":
        count(1, 2)
        state = args[0].lower()
        if state not in ("dead", "ok"):
            raise fail("write 'adc dead', 'adc ok', or with a burner 'adc dead left'")
        return Action(verb, "fault", text, burner(1, optional=True), state == "dead")
    if verb == "power_loss":
        count(1, 1)
        ms = parse_time(args[0], f"{where}: {text!r}: duration")
        if ms <= 0:
            raise fail("the power loss must last more than 0 s")
        return Action(verb, "fault", text, None, ms)
    if verb == "hang":
        count(0, 0)
        return Action(verb, "fault", text)
    if verb == "link":
        count(1, 1)
        state = args[0].lower()
        if state not in ("lost", "ok"):
            raise fail("write 'link lost' or 'link ok'")
        return Action(verb, "fault", text, None, state == "ok")
    if verb == "garbage":
        count(0, 1)
        n = int(number(0, "a byte count", 1, 10000)) if args else 200
        return Action(verb, "fault", text, None, n)
    if verb == "corrupt":
        if not args:
            raise fail("needs a host command to garble, e.g. 'corrupt cut left'")
        inner = parse_action(" ".join(args), names, where)
        if inner.who != "host":
            raise fail("only host commands can be corrupted")
        return Action(verb, "fault", text, inner.burner, inner=inner)
    if verb in _HOST_COMMANDS:
        if verb in ("timer", "extend"):
            count(2, 2)
            return Action(verb, "host", text, burner(), number(1, "minutes", 0.0, 1e9))
        if verb == "cancel":
            count(1, 1)
            return Action(verb, "host", text, burner())
        if verb == "cut":
            count(0, 1)
            if args and args[0] == "all":
                return Action(verb, "host", text, None)
            return Action(verb, "host", text, burner(optional=True))
        if verb == "lock":
            count(1, 1)
            state = args[0].lower()
            if state not in ("on", "off"):
                raise fail("write 'lock on' or 'lock off'")
            return Action(verb, "host", text, None, state == "on")
        if verb == "clear_fault":
            count(0, 1)
            return Action(verb, "host", text, burner(optional=True))
        count(0, 0)
        return Action(verb, "host", text)
    raise fail(f"unknown action {verb!r}; actions: {ACTION_HELP}")


def _host_command(action: Action) -> tuple[str, dict[str, Any]]:
    """A host Action -> (protocol command, arguments)."""
    v, b = action.verb, action.burner
    if v == "timer":
        minutes = action.value
        return "timer_set", {"burner": b, "minutes": int(minutes) if float(minutes).is_integer() else minutes}
    if v == "extend":
        minutes = action.value
        return "timer_extend", {"burner": b, "minutes": int(minutes) if float(minutes).is_integer() else minutes}
    if v == "cancel":
        return "timer_cancel", {"burner": b}
    if v == "cut":
        return "cut", ({"burner": b} if b else {})
    if v == "lock":
        return "lock", {"on": bool(action.value)}
    if v == "clear_fault":
        return "clear_fault", ({"burner": b} if b else {})
    return v, {}


def _describe_action(a: Action, settings: dict[str, Any]) -> str:
    """Plain words for a step."""
    v, b = a.verb, a.burner
    if v == "ignite":
        return f"presses and holds the {b} knob; the spark lights it"
    if v == "hold":
        return f"presses the {b} knob and holds it for {_fmt_short(a.value)}"
    if v == "off":
        return f"turns the {b} knob off"
    if v == "blowout":
        return f"a draught blows the {b} flame out (gas still flowing)"
    if v == "turn":
        over = f" over {_fmt_short(a.extra)}" if a.extra else ""
        return f"turns the {b} knob to {a.value:g} of full flame{over}"
    if v == "draught":
        how = "" if a.extra == 1.0 else f" ({a.extra:g} of its heat)"
        return f"a draught bends the {b} flame off the thermocouple for {_fmt_short(a.value)}{how}; it keeps burning"
    if v == "press":
        if a.value == "short":
            return "presses the hobguard button briefly (timer +%g min)" % settings["button_timer_min"]
        if a.value == "long":
            return "holds the hobguard button down (cut every burner)"
        return f"presses the hobguard button for {_fmt_short(a.value)}"
    if v == "timer":
        return f"command: timer on {b}, {a.value:g} min"
    if v == "extend":
        return f"command: extend the {b} timer by {a.value:g} min"
    if v == "cancel":
        return f"command: cancel the {b} timer"
    if v == "cut":
        return f"command: cut {b}" if b else "command: cut every burner"
    if v == "lock":
        return "command: child lock " + ("on" if a.value else "off")
    if v == "clear_fault":
        return f"command: clear the fault on {b}" if b else "command: clear every fault"
    if v in ("status", "ping", "hello"):
        return f"command: {v}"
    if v == "corrupt":
        return f"sends '{a.inner.text}' with a corrupted checksum" if a.inner else "sends a corrupted command"
    if v == "weld":
        return f"the {b} relay contact welds shut"
    if v == "unweld":
        return f"the {b} relay contact is free again"
    if v == "stuck_open":
        return f"the {b} relay contact sticks open (never closes)"
    if v == "unstick":
        return f"the {b} relay contact works again"
    if v == "contact":
        return f"the {b} relay contact resistance becomes {a.value * 1000:g} mΩ"
    if v == "set":
        return f"{b}: {a.extra} = {a.value:g}"
    if v == "open_tc":
        return f"the {b} thermocouple lead breaks (open circuit)"
    if v == "tc_ok":
        return f"the {b} thermocouple lead is repaired"
    if v == "adc":
        target = f"the {b} ADC input" if b else "the ADC (ADS1115)"
        return f"{target} stops answering" if a.value else f"{target} answers again"
    if v == "power_loss":
        return f"power cut for {_fmt_short(a.value)}"
    if v == "hang":
        return "the firmware hangs (an endless loop): only the watchdog can help"
    if v == "link":
        return "the serial link is back" if a.value else "the serial link is lost (USB cable pulled)"
    if v == "garbage":
        return f"{a.value} bytes of line noise arrive on the serial line"
    return a.text


# ---------------------------------------------------------------- spec


@dataclass
class Step:
    at_ms: int
    action: Action | None  # None: a narration-only step
    note: str = ""
    index: int = 0


# subject key -> allowed modifier keys
_EXPECT_KEYS: dict[str, set[str]] = {
    "event": {"burner", "reason", "within", "count", "match", "heard", "why"},
    "no_event": {"burner", "reason", "within", "match", "heard", "why"},
    "fault": {"burner", "within", "count", "heard", "why"},
    "valve": {"burner", "by", "at", "until", "why"},
    "flame": {"burner", "by", "at", "until", "why"},
    "relay": {"burner", "by", "at", "until", "why"},
    "gas_never_after": {"burner", "why"},
    "reported": {"burner", "at", "why"},
    "reset": {"within", "count", "why"},
    "error": {"within", "count", "why"},
}
_STATE_VALUES = {"valve": ("open", "closed"), "flame": ("on", "off"), "relay": ("open", "closed")}
EVENT_TYPES = protocol.EVENT_TYPES
RESET_CAUSES = ("watchdog", "hard_reset", "power_on", "soft_reset")


@dataclass
class Expect:
    kind: str  # a key of _EXPECT_KEYS
    value: Any
    burner: str | None = None
    reason: str | None = None
    within: tuple[int, int] | None = None
    count: int | None = None
    match: dict[str, Any] = field(default_factory=dict)
    heard: bool | None = None
    by_ms: int | None = None
    until_ms: int | None = None
    why: str = ""
    index: int = 0

    def describe(self) -> str:
        k, v, b = self.kind, self.value, self.burner
        on = f" on {b}" if b else ""
        win = ""
        if self.within:
            win = f" between {_fmt_short(self.within[0])} and {_fmt_short(self.within[1])}"
        extra = "".join(f", {key}={val!r}" for key, val in self.match.items())
        if self.heard is not None:
            extra += ", heard by the host" if self.heard else ", not heard by the host"
        if k == "event":
            n = f" {self.count}x" if self.count is not None else ""
            r = f" ({self.reason})" if self.reason else ""
            return f"event '{v}'{r}{on}{n}{win}{extra}"
        if k == "no_event":
            r = f" ({self.reason})" if self.reason else ""
            return f"no event '{v}'{r}{on}{win}{extra}"
        if k == "fault":
            n = f" {self.count}x" if self.count is not None else ""
            return f"fault '{v}' reported{on}{n}{win}{extra}"
        if k in _STATE_VALUES:
            assert self.by_ms is not None and self.until_ms is not None
            if self.by_ms == self.until_ms:
                return f"{k}{on} {v} at {_fmt_short(self.by_ms)}"
            return f"{k}{on} {v} by {_fmt_short(self.by_ms)} and until {_fmt_short(self.until_ms)}"
        if k == "gas_never_after":
            return f"no gas flows{on or ' to any burner'} after {_fmt_short(v)}"
        if k == "reported":
            fields_ = ", ".join(f"{key}={val!r}" for key, val in v.items())
            at = _fmt_short(self.by_ms) if self.by_ms is not None else "the end"
            return f"device reported{on} {fields_} (last state heard by {at})"
        if k == "reset":
            n = f" {self.count}x" if self.count is not None else ""
            return f"device reset ({v}){n}{win}"
        if k == "error":
            n = f" {self.count}x" if self.count is not None else ""
            what = "an error" if v == "any" else f"error '{v}'"
            return f"device answered {what}{n}{win}"
        return f"{k}={v!r}"


@dataclass
class ScenarioSpec:
    name: str
    title: str
    description: str
    duration_ms: int
    seed: int
    settings: dict[str, Any]  # overrides (as written)
    physics: dict[str, dict[str, Any]]
    steps: list[Step]
    expects: list[Expect]
    ticks_offset: int = 0
    path: Path | None = None
    burners: list[str] = field(default_factory=list)
    device_settings: dict[str, Any] = field(default_factory=dict)  # complete, validated


_TOP_KEYS = ("title", "description", "duration", "seed", "ticks_wrap_at", "settings", "physics", "step", "expect")


def library() -> list[Path]:
    """The scenario files shipped in ``sim/scenarios``, sorted by name."""
    return sorted(SCENARIO_DIR.glob("*.toml"))


def find(name_or_path: str | Path) -> Path:
    """A scenario file by path, or by name in the library (with or without .toml)."""
    p = Path(name_or_path)
    if p.suffix == ".toml" and p.is_file():
        return p
    if p.is_file():
        return p
    stem = p.name[:-5] if p.name.endswith(".toml") else p.name
    candidate = SCENARIO_DIR / f"{stem}.toml"
    if len(p.parts) == 1 and candidate.is_file():
        return candidate
    names = ", ".join(q.stem for q in library())
    raise FileNotFoundError(f"no scenario {str(name_or_path)!r} (not a file, not in {SCENARIO_DIR}); library: {names}")


def load(path: str | Path) -> ScenarioSpec:
    """Read and validate a scenario file (ScenarioError, a ValueError, on any mistake)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise FileNotFoundError(f"cannot read scenario {path}: {err.strerror or err}") from None
    return loads(text, name=path.stem, path=path)


def loads(text: str, name: str = "scenario", path: Path | None = None) -> ScenarioSpec:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ScenarioError(f"{name}: not valid TOML: {err}") from None
    return from_dict(data, name=name, path=path)


def _table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ScenarioError(f"{where} must be a table ([...] section or {{...}})")
    return value


def _list_of_tables(value: Any, where: str, example: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ScenarioError(f"{where} must be a list of tables: write [[{example}]] sections")
    return value


def from_dict(data: dict[str, Any], name: str = "scenario", path: Path | None = None) -> ScenarioSpec:
    """Validate a scenario given as a dict (the parsed TOML)."""
    where = name
    if not isinstance(data, dict):
        raise ScenarioError(f"{where}: a scenario is a table")
    unknown = sorted(set(data) - set(_TOP_KEYS))
    if unknown:
        raise ScenarioError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; valid: {', '.join(_TOP_KEYS)}")
    title = data.get("title")
    if not isinstance(title, str) or not title.strip():
        raise ScenarioError(f"{where}: 'title' (a non-empty string) is required")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise ScenarioError(f"{where}: 'description' must be a string")
    if "duration" not in data:
        raise ScenarioError(f"{where}: 'duration' is required ({TIME_HELP})")
    duration = parse_time(data["duration"], f"{where}: duration")
    if duration <= 0:
        raise ScenarioError(f"{where}: duration must be more than 0")
    seed = data.get("seed", 1)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ScenarioError(f"{where}: seed must be an integer")
    ticks_offset = 0
    if "ticks_wrap_at" in data:
        wrap = parse_time(data["ticks_wrap_at"], f"{where}: ticks_wrap_at")
        if wrap > TICKS_PERIOD // 2:
            raise ScenarioError(f"{where}: ticks_wrap_at must be within the first {TICKS_PERIOD // 2 // 3600000} h")
        ticks_offset = (TICKS_PERIOD - wrap) % TICKS_PERIOD

    # device settings
    settings = dict(_table(data.get("settings", {}), f"{where}: [settings]"))
    candidate = fw_settings.defaults()
    candidate.update(settings)
    checked, errors = fw_settings.validate(candidate)
    if errors:
        raise ScenarioError(f"{where}: [settings]: " + "; ".join(errors))
    names = [b["id"] for b in checked["burners"]]

    # physics
    physics_raw = _table(data.get("physics", {}), f"{where}: [physics]")
    physics: dict[str, dict[str, Any]] = {}
    for burner, params in physics_raw.items():
        w = f"{where}: [physics.{burner}]"
        if burner not in names:
            raise ScenarioError(f"{w}: unknown burner {burner!r}; this hob has {', '.join(names)}")
        params = dict(_table(params, w))
        try:
            BurnerParams.from_dict(params)
        except ValueError as err:
            raise ScenarioError(f"{w}: {err}") from None
        physics[burner] = params

    # steps
    steps: list[Step] = []
    for i, raw in enumerate(_list_of_tables(data.get("step", []), f"{where}: step", "step"), start=1):
        w = f"{where}: step {i}"
        bad = sorted(set(raw) - {"at", "do", "note"})
        if bad:
            raise ScenarioError(f"{w}: unknown key(s) {', '.join(map(repr, bad))}; valid: at, do, note")
        if "at" not in raw:
            raise ScenarioError(f"{w}: 'at' is required ({TIME_HELP})")
        at = parse_time(raw["at"], f"{w}: at")
        if at > duration:
            raise ScenarioError(f"{w}: at {_fmt_short(at)} is after the end of the scenario ({_fmt_short(duration)})")
        note = raw.get("note", "")
        if not isinstance(note, str):
            raise ScenarioError(f"{w}: 'note' must be a string")
        if "do" not in raw and not note:
            raise ScenarioError(f"{w}: needs 'do' (an action) or 'note' (narration)")
        action = parse_action(raw["do"], names, w) if "do" in raw else None
        if action is not None and action.verb == "press" and checked["button_pin"] < 0:
            raise ScenarioError(f"{w}: this device has no button (settings.button_pin = -1)")
        steps.append(Step(at, action, note, i))
    steps.sort(key=lambda s: (s.at_ms, s.index))

    # expectations
    expects: list[Expect] = []
    for i, raw in enumerate(_list_of_tables(data.get("expect", []), f"{where}: expect", "expect"), start=1):
        expects.append(_parse_expect(raw, f"{where}: expect {i}", i, names, duration))

    return ScenarioSpec(
        name=name,
        title=title.strip(),
        description=description.strip(),
        duration_ms=duration,
        seed=seed,
        settings=settings,
        physics=physics,
        steps=steps,
        expects=expects,
        ticks_offset=ticks_offset,
        path=path,
        burners=names,
        device_settings=checked,
    )


def _parse_expect(raw: dict[str, Any], w: str, index: int, names: list[str], duration: int) -> Expect:
    subjects = [k for k in raw if k in _EXPECT_KEYS]
    if len(subjects) != 1:
        what = f"has {', '.join(subjects)}" if subjects else "has none"
        raise ScenarioError(f"{w}: needs exactly one of {', '.join(_EXPECT_KEYS)} ({what})")
    kind = subjects[0]
    allowed = _EXPECT_KEYS[kind]
    bad = sorted(set(raw) - allowed - {kind})
    if bad:
        raise ScenarioError(
            f"{w}: key(s) {', '.join(map(repr, bad))} do not go with {kind!r}; valid: {', '.join(sorted(allowed))}"
        )
    e = Expect(kind=kind, value=raw[kind], index=index)

    def t(key: str) -> int:
        ms = parse_time(raw[key], f"{w}: {key}")
        if ms > duration:
            raise ScenarioError(
                f"{w}: {key} {_fmt_short(ms)} is after the end of the scenario ({_fmt_short(duration)})"
            )
        return ms

    if "burner" in raw:
        if raw["burner"] not in names:
            raise ScenarioError(f"{w}: unknown burner {raw['burner']!r}; this hob has {', '.join(names)}")
        e.burner = raw["burner"]
    if "reason" in raw:
        if not isinstance(raw["reason"], str):
            raise ScenarioError(f"{w}: reason must be a string")
        e.reason = raw["reason"]
        if e.value == "cut" and e.reason not in fw_core.REASONS:
            raise ScenarioError(f"{w}: a cut's reason is one of {', '.join(fw_core.REASONS)}")
    if "within" in raw:
        win = raw["within"]
        if not isinstance(win, list) or len(win) != 2:
            raise ScenarioError(f'{w}: within must be a list of two times, e.g. ["19m59s", "20m05s"]')
        a, b = parse_time(win[0], f"{w}: within[0]"), parse_time(win[1], f"{w}: within[1]")
        if a > b:
            raise ScenarioError(f"{w}: within starts ({_fmt_short(a)}) after it ends ({_fmt_short(b)})")
        e.within = (a, b)
    if "count" in raw:
        c = raw["count"]
        if isinstance(c, bool) or not isinstance(c, int) or c < 0:
            raise ScenarioError(f"{w}: count must be an integer >= 0")
        e.count = c
    if "match" in raw:
        e.match = dict(_table(raw["match"], f"{w}: match"))
    if "heard" in raw:
        if not isinstance(raw["heard"], bool):
            raise ScenarioError(f"{w}: heard must be true or false")
        e.heard = raw["heard"]
    if "why" in raw:
        if not isinstance(raw["why"], str):
            raise ScenarioError(f"{w}: why must be a string")
        e.why = raw["why"]

    if kind in ("event", "no_event"):
        if e.value not in EVENT_TYPES:
            raise ScenarioError(f"{w}: unknown event {e.value!r}; events: {', '.join(EVENT_TYPES)}")
    elif kind == "fault":
        if not isinstance(e.value, str) or not e.value:
            raise ScenarioError(f'{w}: fault must be a fault code, e.g. "cut_failed" or "sensor"')
    elif kind in _STATE_VALUES:
        if e.value not in _STATE_VALUES[kind]:
            raise ScenarioError(f"{w}: {kind} must be {' or '.join(map(repr, _STATE_VALUES[kind]))}")
        if e.burner is None:
            raise ScenarioError(f"{w}: {kind} needs a burner")
        if "at" in raw and ("by" in raw or "until" in raw):
            raise ScenarioError(f"{w}: use either 'at' (one instant) or 'by' (and 'until'), not both")
        if "at" in raw:
            e.by_ms = e.until_ms = t("at")
        elif "by" in raw:
            e.by_ms = t("by")
            e.until_ms = t("until") if "until" in raw else duration
            if e.until_ms < e.by_ms:
                raise ScenarioError(f"{w}: until ({_fmt_short(e.until_ms)}) is before by ({_fmt_short(e.by_ms)})")
        else:
            raise ScenarioError(f"{w}: {kind} needs 'by' (and optionally 'until') or 'at'")
    elif kind == "gas_never_after":
        e.value = t("gas_never_after")
    elif kind == "reported":
        e.value = dict(_table(e.value, f"{w}: reported"))
        if not e.value:
            raise ScenarioError(f'{w}: reported needs at least one field, e.g. {{ last_cut_reason = "timer" }}')
        if "at" in raw:
            e.by_ms = t("at")
    elif kind == "error":
        if not isinstance(e.value, str) or not e.value:
            raise ScenarioError(f'{w}: error must be an error code (bad_frame, bad_crc, refused, ...) or "any"')
    elif kind == "reset":
        if e.value not in RESET_CAUSES:
            raise ScenarioError(f"{w}: reset must be one of {', '.join(RESET_CAUSES)}")
    return e


# ---------------------------------------------------------------- results


@dataclass
class Check:
    kind: str  # "expect" or "invariant"
    text: str
    passed: bool
    detail: str = ""
    why: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "text": self.text, "passed": self.passed, "detail": self.detail, "why": self.why}


_ROW_ORDER = {"note": 0, "person": 1, "host": 1, "fault": 1, "device": 2, "physics": 3}


@dataclass
class Row:
    t_ms: int
    who: str
    what: str
    order: int = -1  # within one millisecond: narration, actions, the device, then physical effects

    def __post_init__(self) -> None:
        if self.order < 0:
            self.order = _ROW_ORDER.get(self.who, 3)

    def to_dict(self) -> dict[str, Any]:
        return {"t": self.t_ms / 1000, "time": fmt_time(self.t_ms), "who": self.who, "what": self.what}


# Sample tuple layout (one per burner per recorded instant).
S_T, S_KNOB, S_VALVE, S_GAS, S_FLAME, S_RELAY, S_TC, S_EMF, S_COIL, S_CMD = range(10)
SAMPLE_FIELDS = ("t", "knob", "valve", "gas_flow", "flame", "relay", "tc_mv", "emf_mv", "coil_ma", "relay_coil")


@dataclass
class Message:
    """Something the device wrote: an event, a reply or a state frame."""

    t_ms: int
    frame: dict[str, Any]
    heard: bool  # False: written while the serial link was down


@dataclass
class ScenarioResult:
    spec: ScenarioSpec
    seed: int
    checks: list[Check]
    timeline: list[Row]
    #: burner -> list of sample tuples (see SAMPLE_FIELDS; t in ms, booleans for valve/gas/flame/relay-closed)
    samples: dict[str, list[tuple]]
    #: burner -> list of (t_ms, mV) as the firmware read it through the ADC (downsampled)
    readings: dict[str, list[tuple[int, float]]]
    #: burner -> list of (t_ms, remaining_s or None) from the device's state frames
    timers: dict[str, list[tuple[int, float | None]]]
    messages: list[Message]  # events and replies (not state frames)
    states: list[tuple[int, dict[str, Any]]]  # state snapshots heard by the host
    steps_done: list[tuple[int, Step]]
    resets: list[tuple[int, str]]
    downtime: list[tuple[int, int, str]]  # (from, to, why): device off or booting
    link_down: list[tuple[int, int]]
    presses: dict[str, list[int]]  # burner -> knob press times (ms)
    wall_s: float
    firmware_steps: int = 0
    #: request id -> (t_ms sent, protocol command, arguments) for every host command
    requests: dict[int, tuple[int, str, dict[str, Any]]] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def duration_ms(self) -> int:
        return self.spec.duration_ms

    @property
    def speed(self) -> float:
        return (self.spec.duration_ms / 1000) / self.wall_s if self.wall_s > 0 else math.inf

    def events(self, event_type: str | None = None, burner: str | None = None, heard: bool | None = None) -> list[dict]:
        """Device events (each a dict with '_t_ms' and '_heard')."""
        out = []
        for m in self.messages:
            f = m.frame
            if f.get("t") != "evt":
                continue
            if event_type is not None and f.get("event_type") != event_type:
                continue
            if burner is not None and f.get("burner") != burner:
                continue
            if heard is not None and m.heard != heard:
                continue
            out.append(dict(f, _t_ms=m.t_ms, _heard=m.heard))
        return out

    def state_at(self, burner: str, t_ms: int) -> tuple | None:
        """The burner's physical state sample in force at t_ms (after every change at t_ms)."""
        s = self.samples[burner]
        i = bisect_right(s, t_ms, key=lambda x: x[S_T])
        return s[i - 1] if i else None

    def sample_dicts(self, burner: str) -> list[dict[str, Any]]:
        return [_sample_dict(burner, s) for s in self.samples[burner]]

    def to_dict(self) -> dict[str, Any]:
        spec = self.spec
        return {
            "scenario": spec.name,
            "title": spec.title,
            "description": spec.description,
            "path": str(spec.path) if spec.path else None,
            "seed": self.seed,
            "duration_s": spec.duration_ms / 1000,
            "burners": spec.burners,
            "passed": self.passed,
            "wall_s": round(self.wall_s, 4),
            "sim_seconds_per_wall_second": round(self.speed, 1) if math.isfinite(self.speed) else None,
            "checks": [c.to_dict() for c in self.checks],
            "timeline": [r.to_dict() for r in self.timeline],
            "events": [
                dict({k: v for k, v in m.frame.items() if not k.startswith("_")}, t_s=m.t_ms / 1000, heard=m.heard)
                for m in self.messages
            ],
            "resets": [{"t_s": t / 1000, "cause": c} for t, c in self.resets],
            "trace": {b: self.sample_dicts(b) for b in spec.burners},
            "readings": {b: [{"t": t / 1000, "tc_mv": round(v, 4)} for t, v in r] for b, r in self.readings.items()},
            "timers": {b: [{"t": t / 1000, "remaining_s": v} for t, v in r] for b, r in self.timers.items()},
        }


def _sample_dict(burner: str, s: tuple) -> dict[str, Any]:
    return {
        "t": s[S_T] / 1000,
        "burner": burner,
        "knob": s[S_KNOB],
        "valve": "open" if s[S_VALVE] else "closed",
        "gas_flow": s[S_GAS],
        "flame": s[S_FLAME],
        "relay": "closed" if s[S_RELAY] else "open",
        "tc_mv": round(s[S_TC], 4),
        "emf_mv": round(s[S_EMF], 4),
        "coil_ma": round(s[S_COIL], 2),
        "relay_coil": "energised" if s[S_CMD] else "off",
    }


# ---------------------------------------------------------------- the runner

#: While a thermocouple is still heating or cooling, record at least this often.
RECORD_EVERY_MS = 1000
#: A continuous change smaller than this (mV) since the last sample is not recorded.
RECORD_MIN_DELTA_MV = 0.05
#: A firmware reading is kept if it moved this much (mV) or this long passed.
READING_MIN_DELTA_MV = 0.2
READING_MAX_GAP_MS = 60_000

_REASON_WORDS = {
    "timer": "the timer ran out",
    "remote": "remote command",
    "button": "the button (long press)",
    "left_on": "burner left on too long",
    "lock": "child lock",
    "fault": "fault",
    "reset": "still hot after a reset",
}


class _Runner:
    def __init__(self, spec: ScenarioSpec, seed: int) -> None:
        self.spec = spec
        self.seed = seed
        self.names = spec.burners
        dev = SimDevice(
            settings=spec.settings or None,
            burner_params=spec.physics or None,
            seed=seed,
            ticks_offset=spec.ticks_offset,
        )
        self.dev = dev
        self.models = dev.physics.models
        self.rows: list[Row] = []
        self.samples: dict[str, list[tuple]] = {n: [] for n in self.names}
        self.readings: dict[str, list[tuple[int, float]]] = {n: [] for n in self.names}
        self.timers: dict[str, list[tuple[int, float | None]]] = {n: [] for n in self.names}
        self.messages: list[Message] = []
        self.states: list[tuple[int, dict[str, Any]]] = []
        self.steps_done: list[tuple[int, Step]] = []
        self.presses: dict[str, list[int]] = {n: [] for n in self.names}
        self.downtime: list[tuple[int, int, str]] = []
        self.link_down: list[tuple[int, int]] = []
        self._link_lost_at: int | None = None
        self._requests: dict[int, str] = {}
        self.requests: dict[int, tuple[int, str, dict[str, Any]]] = {}
        self._pending: set[int] = set()
        self._resets_seen = 0
        self._last_reading: list[tuple[int, float] | None] = [None] * len(self.names)
        self._steps = 0
        # Hooks. Instance attributes only: nothing in device.py or fakes.py changes.
        physics = dev.physics
        self._orig_set_coil = physics.set_coil
        self._orig_adc_mv = physics.adc_mv
        physics.set_coil = self._set_coil  # type: ignore[method-assign]
        physics.adc_mv = self._adc_mv  # type: ignore[method-assign]
        link = dev.link
        self._orig_write = link.write
        link.write = self._link_write  # type: ignore[method-assign]
        dev.on_frame = self._on_frame
        self._orig_step = dev._step
        dev._step = self._count_step  # type: ignore[method-assign]
        self._record()

    # -- hooks ---------------------------------------------------------------

    def _count_step(self) -> None:
        self._steps += 1
        self._orig_step()

    def _set_coil(self, index: int, energised: bool, t: float) -> None:
        self._orig_set_coil(index, energised, t)
        dev = self.dev
        if len(dev.resets) > self._resets_seen:
            for t_ms, cause in dev.resets[self._resets_seen :]:
                self.rows.append(Row(t_ms, "device", _reset_words(cause)))
                self.downtime.append((t_ms, t_ms + BOOT_MS, "reset: " + cause))
            self._resets_seen = len(dev.resets)
        self._record()

    def _adc_mv(self, index: int, t: float) -> float | None:
        mv = self._orig_adc_mv(index, t)
        if mv is not None:
            t_ms = int(round(t * 1000))
            last = self._last_reading[index]
            if last is None or abs(mv - last[1]) >= READING_MIN_DELTA_MV or t_ms - last[0] >= READING_MAX_GAP_MS:
                self._last_reading[index] = (t_ms, mv)
                self.readings[self.names[index]].append((t_ms, mv))
        return mv

    def _link_write(self, text: str) -> None:
        if not self.dev.link.connected:
            t_ms = self.dev.clock.ms
            for line in text.splitlines():
                try:
                    frame = protocol.decode(line)
                except protocol.ProtocolError:
                    continue
                self._message(t_ms, frame, heard=False)
        self._orig_write(text)

    def _on_frame(self, frame: dict[str, Any]) -> None:
        self._message(frame["_t_ms"], frame, heard=True)

    def _message(self, t_ms: int, frame: dict[str, Any], heard: bool) -> None:
        kind = frame.get("t")
        state = None
        if kind == "state":
            state = frame
        elif kind == "ok" and isinstance(frame.get("state"), dict):
            state = frame["state"]
        if state is not None:
            if heard:
                self.states.append((t_ms, state))
            for b in state.get("burners", ()):
                name = b.get("id")
                series = self.timers.get(name)
                if series is None:
                    continue
                rem = b.get("timer_remaining_s")
                if rem is not None or (series and series[-1][1] is not None):
                    series.append((t_ms, rem))
        if kind == "state":
            return
        what = self._describe_frame(frame)
        if kind == "ok" and "state" in frame:
            frame = {k: v for k, v in frame.items() if k != "state"}
        self.messages.append(Message(t_ms, frame, heard))
        if what:
            self.rows.append(Row(t_ms, "device", what if heard else what + "  [not heard: link down]"))

    def _describe_frame(self, f: dict[str, Any]) -> str | None:
        kind = f.get("t")
        if kind == "err":
            label = self._requests.get(f.get("id"), None) if f.get("id") is not None else None
            target = f"'{label}'" if label else "a line"
            return f"refuses {target}: {f.get('code')} ({f.get('msg')})"
        if kind == "ok":
            label = self._requests.get(f.get("id"))
            if label in ("status", "hello", "ping"):
                return f"answers '{label}': " + _summarise_ok(f)
            return None
        if kind != "evt":
            return None
        e = f.get("event_type")
        b = f.get("burner")
        if e == "boot":
            hot = f.get("hot_burners") or []
            text = f"boots (reset cause: {f.get('reset_cause')})"
            if hot:
                text += f"; still hot: {', '.join(hot)}"
            if f.get("locked"):
                text += "; child lock on"
            return text
        if e == "cut":
            flame = f.get("flame")
            state = {True: "flame on", False: "no flame", None: "flame unknown"}.get(flame, "")
            return f"CUT {b}: {_REASON_WORDS.get(f.get('reason'), f.get('reason'))} ({state})"
        if e == "warning":
            if b is None:
                return f"warning: {f.get('reason')} {f.get('errors', '')}".rstrip()
            why = "timer" if f.get("reason") == "timer" else "burning too long"
            return f"WARNING {b}: cut in {f.get('cut_in_s')} s ({why})"
        if e == "cut_verified":
            return f"{b}: cut verified, the flame is out"
        if e == "fault":
            where = f" {b}" if b else ""
            return f"FAULT{where}: {f.get('reason')} — {f.get('detail', '')}".rstrip(" —")
        if e == "fault_cleared":
            return f"{b}: fault cleared" + (f" ({f.get('reason')})" if f.get("reason") else "")
        if e == "cut_unverified":
            return f"{b}: cut not verified ({f.get('reason')})"
        if e == "ignited":
            mv = f.get("tc_mv")
            return f"{b}: flame detected" + (f" ({mv:.1f} mV)" if isinstance(mv, (int, float)) else "")
        if e == "flame_out":
            return f"{b}: flame out detected"
        if e == "timer_set":
            minutes = f.get("minutes")
            return f"{b}: timer set, {minutes:.4g} min" if isinstance(minutes, (int, float)) else f"{b}: timer set"
        if e == "timer_cancelled":
            return f"{b}: timer cancelled"
        if e == "lock":
            return "child lock " + ("ON: every burner cut" if f.get("locked") else "off")
        if e == "rejected":
            return "rejected: " + str(f.get("reason"))
        return json.dumps({k: v for k, v in f.items() if not k.startswith("_") and k not in ("t", "seq")})

    # -- recording -------------------------------------------------------------

    def _record(self) -> None:
        """Record every burner whose state changed; schedule the next record."""
        dev = self.dev
        now = dev.clock.ms
        t = now / 1000.0
        want = math.inf
        for i, m in enumerate(self.models):
            if t > m.t:
                m.advance(t)
            emf = m.emf_mv()
            valve = m.valve_open
            flame = m.flame
            relay = m.relay_closed
            knob = m.knob
            cmd = m.coil_energised
            series = self.samples[self.names[i]]
            last = series[-1] if series else None
            discrete = last is None or (
                knob != last[S_KNOB]
                or valve != last[S_VALVE]
                or flame != last[S_FLAME]
                or relay != last[S_RELAY]
                or cmd != last[S_CMD]
            )
            tc = m.tc_mv_true()
            if discrete or abs(tc - last[S_TC]) >= RECORD_MIN_DELTA_MV or abs(emf - last[S_EMF]) >= RECORD_MIN_DELTA_MV:
                coil = m.coil_current_a() * 1000.0
                s = (now, knob, valve, m.gas_flow, flame, relay, tc, emf, coil, cmd)
                series.append(s)
                if discrete and last is not None:
                    self._describe_change(i, last, s, m)
            nxt = m.next_event_time()
            if nxt < math.inf:
                want = min(want, math.ceil(nxt * 1000 - 1e-6))
            if abs(emf - m.target_emf_mv) > RECORD_MIN_DELTA_MV:
                want = min(want, now + RECORD_EVERY_MS)
        if want < math.inf:
            want = max(int(want), now + 1)
            pending = self._pending
            if not pending or min(pending) > want:
                pending.add(want)
                dev.schedule(want, lambda at=want: self._fire(at), "record")

    def _fire(self, at: int) -> None:
        self._pending.discard(at)
        self._record()

    def _describe_change(self, i: int, a: tuple, b: tuple, m: Any) -> None:
        name = self.names[i]
        parts: list[str] = []
        cause = ""
        if a[S_KNOB] == "held" and b[S_KNOB] == "on":
            if b[S_VALVE]:
                parts.append(f"the person lets go of the knob; the magnet holds the valve open ({b[S_COIL]:.0f} mA)")
            else:
                p = m.params
                loop = "" if b[S_RELAY] and not m.tc_open else ", the loop is open"
                parts.append(
                    f"the person lets go of the knob: the magnet does NOT hold ({b[S_COIL]:.0f} mA{loop}; it needs "
                    f"{p.hold_a * 1000:.0f} mA)"
                )
        if a[S_VALVE] != b[S_VALVE]:
            if b[S_VALVE]:
                parts.append("valve open")
            else:
                if b[S_KNOB] == "off":
                    cause = " (knob turned off)"
                elif a[S_KNOB] == "held":
                    cause = ""
                elif not b[S_RELAY]:
                    cause = " — the magnet let go: the relay opened the thermocouple loop"
                elif m.tc_open:
                    cause = " — the magnet let go: the thermocouple circuit is broken"
                elif a[S_FLAME]:
                    cause = (
                        f" — the magnet let go: {b[S_COIL]:.0f} mA in the coil is below its"
                        f" {m.params.drop_out_a * 1000:.0f} mA drop-out current"
                    )
                else:
                    cause = (
                        f" — the magnet let go: the thermocouple cooled, the coil current fell below"
                        f" {m.params.drop_out_a * 1000:.0f} mA"
                    )
                parts.append("valve closed, gas off" + cause)
        if a[S_FLAME] != b[S_FLAME]:
            if b[S_FLAME]:
                parts.append("flame lit")
            elif b[S_GAS]:
                parts.append("flame out — gas still flowing unburnt")
            else:
                parts.append("flame out")
        if a[S_RELAY] != b[S_RELAY]:
            parts.append("relay closed (loop closed)" if b[S_RELAY] else "relay open (loop open)")
        elif a[S_CMD] != b[S_CMD] and (m.welded or m.stuck_open):
            stays = "closed: the contact is welded" if m.welded else "open: the contact is stuck"
            what = "energises" if b[S_CMD] else "releases"
            parts.append(f"the firmware {what} the relay coil but the loop stays {stays}")
        if parts:
            self.rows.append(Row(b[S_T], "physics", f"{name}: " + "; ".join(parts)))

    # -- actions ----------------------------------------------------------------

    def _do(self, step: Step) -> None:
        dev = self.dev
        now = dev.clock.ms
        t = now / 1000.0
        if step.note:
            self.rows.append(Row(now, "note", step.note))
        a = step.action
        if a is None:
            return
        self.rows.append(Row(now, a.who, _describe_action(a, self.spec.device_settings), order=1))
        v = a.verb
        idx = dev.burner_index(a.burner) if a.burner else None
        physics = dev.physics
        if v == "ignite":
            self.presses[a.burner].append(now)
            physics.ignite(idx, t)
        elif v == "hold":
            self.presses[a.burner].append(now)
            model = self.models[idx]
            model.press_knob(max(t, model.t), hold_s=a.value / 1000.0)
        elif v == "off":
            physics.turn_off(idx, t)
        elif v == "blowout":
            physics.blow_out(idx, t)
        elif v == "turn":
            model = self.models[idx]
            model.turn(max(t, model.t), a.value, ramp_s=a.extra / 1000.0)
        elif v == "draught":
            model = self.models[idx]
            model.draught(max(t, model.t), a.value / 1000.0, severity=a.extra)
        elif v == "press":
            if a.value == "short":
                ms = 200
            elif a.value == "long":
                ms = self.spec.device_settings["long_press_ms"] + 1000
            else:
                ms = int(a.value)
            dev.press_button(ms)
        elif v in ("weld", "unweld"):
            physics.set_fault(idx, "welded", v == "weld", t)
        elif v in ("stuck_open", "unstick"):
            physics.set_fault(idx, "stuck_open", v == "stuck_open", t)
        elif v in ("open_tc", "tc_ok"):
            physics.set_fault(idx, "open_thermocouple", v == "open_tc", t)
        elif v == "contact":
            physics.set_param(idx, "r_switch_ohm", a.value, t)
        elif v == "set":
            physics.set_param(idx, a.extra, a.value, t)
        elif v == "adc":
            if idx is None:
                dev.board.adc_dead = bool(a.value)
            else:
                physics.set_fault(idx, "adc_dead", bool(a.value), t)
        elif v == "power_loss":
            self.downtime.append((now, now + a.value + BOOT_MS, "power loss"))
            dev.power_loss(a.value)
        elif v == "hang":
            dev.hang()
        elif v == "link":
            dev.link.connected = bool(a.value)
            if a.value and self._link_lost_at is not None:
                self.link_down.append((self._link_lost_at, now))
                self._link_lost_at = None
            elif not a.value and self._link_lost_at is None:
                self._link_lost_at = now
        elif v == "garbage":
            dev.garbage(a.value)
        elif v == "corrupt":
            assert a.inner is not None
            cmd, args = _host_command(a.inner)
            rid = next(dev._request_ids)
            line = protocol.request(rid, cmd, **args)
            body, crc = line.rstrip("\n").rsplit(" *", 1)
            bad = "%08x" % (int(crc, 16) ^ 0x00010000)
            self._requests[rid] = a.inner.text + " (corrupted)"
            dev.send_line(f"{body} *{bad}\n".encode())
        elif a.who == "host":
            cmd, args = _host_command(a)
            rid = dev.command(cmd, **args)
            self._requests[rid] = a.text
            self.requests[rid] = (now, cmd, args)
        else:  # pragma: no cover - parse_action and this table agree
            raise AssertionError(v)

    def go(self) -> None:
        dev = self.dev
        for step in self.spec.steps:
            dev.run_until(step.at_ms)
            self._do(step)
            self.steps_done.append((dev.clock.ms, step))
            self._record()
        dev.run_until(self.spec.duration_ms)
        self._record()
        if self._link_lost_at is not None:
            self.link_down.append((self._link_lost_at, self.spec.duration_ms))
        # resets whose relays were already open still count
        for t_ms, cause in dev.resets[self._resets_seen :]:
            self.rows.append(Row(t_ms, "device", _reset_words(cause)))
            self.downtime.append((t_ms, t_ms + BOOT_MS, "reset: " + cause))
        self._resets_seen = len(dev.resets)


def _summarise_ok(f: dict[str, Any]) -> str:
    state = f.get("state")
    if not isinstance(state, dict):
        extra = {k: v for k, v in f.items() if k not in ("t", "id", "_t_ms")}
        return json.dumps(extra) if extra else "ok"
    parts = []
    for b in state.get("burners", ()):
        bits = [f"gas {b.get('gas')}", f"relay {b.get('relay')}"]
        if b.get("timer_remaining_s") is not None:
            bits.append(f"timer {fmt_time(b['timer_remaining_s'] * 1000, decimals=0)} left")
        if b.get("fault"):
            bits.append(f"fault {b['fault']}")
        parts.append(f"{b.get('id')}: " + ", ".join(bits))
    if state.get("locked"):
        parts.append("locked")
    return "; ".join(parts)


def _reset_words(cause: str) -> str:
    if cause == "watchdog":
        return "RESET by the watchdog: every relay drops open; the firmware restarts"
    if cause == "hard_reset":
        return "RESET after a firmware error: every relay drops open; the firmware restarts"
    return f"reset ({cause}): every relay drops open"


def run(spec: ScenarioSpec, seed: int | None = None) -> ScenarioResult:
    """Play a scenario in virtual time; check its expectations and the safety invariants."""
    seed = spec.seed if seed is None else seed
    wall0 = _walltime.perf_counter()
    runner = _Runner(spec, seed)
    runner.go()
    wall = _walltime.perf_counter() - wall0
    rows = sorted(runner.rows, key=lambda r: (r.t_ms, r.order))  # stable within a kind
    result = ScenarioResult(
        spec=spec,
        seed=seed,
        checks=[],
        timeline=rows,
        samples=runner.samples,
        readings=runner.readings,
        timers=runner.timers,
        messages=runner.messages,
        states=runner.states,
        steps_done=runner.steps_done,
        resets=list(runner.dev.resets),
        downtime=runner.downtime,
        link_down=runner.link_down,
        presses=runner.presses,
        wall_s=wall,
        firmware_steps=runner._steps,
        requests=runner.requests,
    )
    result.checks = [_check(e, result) for e in spec.expects] + invariant_checks(result)
    return result


# ---------------------------------------------------------------- checks


def _check(e: Expect, r: ScenarioResult) -> Check:
    text = e.describe()
    try:
        ok, detail = _CHECKERS[e.kind](e, r)
    except Exception as err:  # a checker bug must not hide as a pass
        ok, detail = False, f"could not check: {err!r}"
    return Check("expect", text, ok, detail, e.why)


def _matching_events(e: Expect, r: ScenarioResult, event_type: str, reason: str | None) -> list[dict]:
    out = []
    for ev in r.events(event_type, e.burner, e.heard):
        if reason is not None and ev.get("reason") != reason:
            continue
        if any(ev.get(k) != v for k, v in e.match.items()):
            continue
        if e.within and not e.within[0] <= ev["_t_ms"] <= e.within[1]:
            continue
        out.append(ev)
    return out


def _ev_list(events: list[dict], limit: int = 4) -> str:
    parts = [
        f"{ev.get('event_type')}{'/' + ev['reason'] if ev.get('reason') else ''} at {fmt_time(ev['_t_ms'])}"
        for ev in events[:limit]
    ]
    if len(events) > limit:
        parts.append(f"... {len(events) - limit} more")
    return ", ".join(parts)


def _near_misses(e: Expect, r: ScenarioResult, event_type: str) -> str:
    near = r.events(event_type, e.burner)
    return (
        f"; '{event_type}' events{' on ' + e.burner if e.burner else ''}: {_ev_list(near)}"
        if near
        else f"; no '{event_type}' event at all"
    )


def _check_event(e: Expect, r: ScenarioResult) -> tuple[bool, str]:
    found = _matching_events(e, r, e.value, e.reason)
    if e.count is not None:
        ok = len(found) == e.count
        detail = f"{len(found)} found" + (f": {_ev_list(found)}" if found else "")
        return ok, detail if ok else detail + _near_misses(e, r, e.value)
    if found:
        return True, _ev_list(found)
    return False, "not found" + _near_misses(e, r, e.value)


def _check_no_event(e: Expect, r: ScenarioResult) -> tuple[bool, str]:
    found = _matching_events(e, r, e.value, e.reason)
    return (not found), ("none" if not found else "found " + _ev_list(found))


def _check_fault(e: Expect, r: ScenarioResult) -> tuple[bool, str]:
    found = _matching_events(e, r, "fault", e.value)
    if e.count is not None:
        return len(found) == e.count, f"{len(found)} found" + (f": {_ev_list(found)}" if found else "")
    return (bool(found), _ev_list(found) if found else "not reported" + _near_misses(e, r, "fault"))


_STATE_INDEX = {"valve": S_VALVE, "flame": S_FLAME, "relay": S_RELAY}


def _state_word(kind: str, v: bool) -> str:
    if kind == "valve":
        return "open" if v else "closed"
    if kind == "flame":
        return "on" if v else "off"
    return "closed" if v else "open"


def _check_state(e: Expect, r: ScenarioResult) -> tuple[bool, str]:
    assert e.burner is not None and e.by_ms is not None and e.until_ms is not None
    idx = _STATE_INDEX[e.kind]
    want = {"valve": "open", "flame": "on", "relay": "closed"}[e.kind] == e.value
    s = r.samples[e.burner]
    at = r.state_at(e.burner, e.by_ms)
    if at is None:
        return False, "no record at that time"
    if at[idx] != want:
        # When did it get there, if ever?
        later = next((x for x in s if x[S_T] > e.by_ms and x[idx] == want), None)
        when = f"; became {e.value} only at {fmt_time(later[S_T], decimals=3)}" if later else f"; never {e.value}"
        return False, f"{e.kind} was {_state_word(e.kind, at[idx])} at {fmt_time(e.by_ms, decimals=3)}{when}"
    for x in s:
        if e.by_ms < x[S_T] < e.until_ms and x[idx] != want:
            return False, f"{e.kind} became {_state_word(e.kind, x[idx])} at {fmt_time(x[S_T], decimals=3)}"
    # when did it reach the wanted state (for the reader)
    start = None
    for x in s:
        if x[S_T] > e.by_ms:
            break
        if x[idx] == want and (start is None or start[idx] != want):
            start = x
        elif x[idx] != want:
            start = None
    since = f"{e.value} since {fmt_time(start[S_T], decimals=3)}" if start is not None else "ok"
    return True, since


def _check_gas_never_after(e: Expect, r: ScenarioResult) -> tuple[bool, str]:
    t0 = e.value
    burners = [e.burner] if e.burner else r.spec.burners
    for b in burners:
        at = r.state_at(b, t0)
        if at is not None and at[S_GAS]:
            off = next((x for x in r.samples[b] if x[S_T] > t0 and not x[S_GAS]), None)
            when = f" (stopped at {fmt_time(off[S_T], decimals=3)})" if off else " (never stopped)"
            return False, f"gas still flowing to {b} at {fmt_time(t0, decimals=3)}{when}"
        for x in r.samples[b]:
            if x[S_T] > t0 and x[S_GAS]:
                return False, f"gas flowed to {b} at {fmt_time(x[S_T], decimals=3)}"
    last_off = []
    for b in burners:
        stops = [x[S_T] for i, x in enumerate(r.samples[b]) if not x[S_GAS] and i and r.samples[b][i - 1][S_GAS]]
        stops = [t for t in stops if t <= t0]
        if stops:
            last_off.append(f"{b} off since {fmt_time(stops[-1], decimals=3)}")
    return True, "; ".join(last_off) or "no gas"


def _check_reported(e: Expect, r: ScenarioResult) -> tuple[bool, str]:
    limit = e.by_ms if e.by_ms is not None else r.spec.duration_ms
    state = None
    t_state = None
    for t, st in r.states:
        if t > limit:
            break
        state, t_state = st, t
    if state is None:
        return False, "the host heard no state from the device"
    target: dict[str, Any] | None = state
    if e.burner:
        target = next((b for b in state.get("burners", ()) if b.get("id") == e.burner), None)
        if target is None:
            return False, f"no burner {e.burner} in the state"
    want = {k: (None if v == "none" else v) for k, v in e.value.items()}
    wrong = [f"{k}={target.get(k)!r} (want {v!r})" for k, v in want.items() if target.get(k) != v]
    where = f"state heard at {fmt_time(t_state)}"
    return (not wrong), (where + ": " + ", ".join(wrong)) if wrong else where


def _check_reset(e: Expect, r: ScenarioResult) -> tuple[bool, str]:
    found = [(t, c) for t, c in r.resets if c == e.value and (not e.within or e.within[0] <= t <= e.within[1])]
    listed = ", ".join(f"{c} at {fmt_time(t)}" for t, c in r.resets) or "none"
    if e.count is not None:
        return len(found) == e.count, f"{len(found)} found; resets: {listed}"
    return bool(found), f"resets: {listed}"


def _check_error(e: Expect, r: ScenarioResult) -> tuple[bool, str]:
    found = [
        m
        for m in r.messages
        if m.frame.get("t") == "err"
        and (e.value == "any" or m.frame.get("code") == e.value)
        and (not e.within or e.within[0] <= m.t_ms <= e.within[1])
    ]
    listed = ", ".join(f"{m.frame.get('code')} at {fmt_time(m.t_ms)}" for m in found[:4])
    if len(found) > 4:
        listed += f" ... {len(found) - 4} more"
    if e.count is not None:
        return len(found) == e.count, f"{len(found)} found" + (f": {listed}" if found else "")
    return bool(found), listed or "no such error"


_CHECKERS: dict[str, Callable[[Expect, ScenarioResult], tuple[bool, str]]] = {
    "event": _check_event,
    "no_event": _check_no_event,
    "fault": _check_fault,
    "valve": _check_state,
    "flame": _check_state,
    "relay": _check_state,
    "gas_never_after": _check_gas_never_after,
    "reported": _check_reported,
    "reset": _check_reset,
    "error": _check_error,
}


def invariant_checks(r: ScenarioResult) -> list[Check]:
    """Safety invariants every scenario must keep, whatever its expectations."""
    checks: list[Check] = []
    # 1. Only a person opens a valve: every closed->open transition happens with the
    #    knob held, at the very millisecond a person pressed it.
    bad: list[str] = []
    for b in r.spec.burners:
        presses = set(r.presses[b])
        s = r.samples[b]
        for prev, cur in zip(s, s[1:], strict=False):
            if cur[S_VALVE] and not prev[S_VALVE]:
                if cur[S_KNOB] != "held" or cur[S_T] not in presses:
                    bad.append(f"{b} at {fmt_time(cur[S_T], decimals=3)} (knob {cur[S_KNOB]})")
    checks.append(
        Check(
            "invariant",
            "a valve only opens when a person presses its knob",
            not bad,
            ("opened without a press: " + ", ".join(bad[:5])) if bad else "",
        )
    )
    # 2. Every cut has a known reason.
    cuts = r.events("cut")
    unknown = [ev for ev in cuts if ev.get("reason") not in fw_core.REASONS]
    checks.append(
        Check(
            "invariant",
            "every cut has a known reason",
            not unknown,
            ("unknown: " + _ev_list(unknown)) if unknown else f"{len(cuts)} cut(s)",
        )
    )
    # 3. The firmware never crashed.
    crashes = [ev for ev in r.events("fault") if ev.get("reason") == "crash"]
    hard = [t for t, c in r.resets if c == "hard_reset"]
    checks.append(
        Check(
            "invariant",
            "the firmware never crashed",
            not crashes and not hard,
            "; ".join(str(ev.get("detail")) for ev in crashes[:3]) if crashes else "",
        )
    )
    return checks


# ---------------------------------------------------------------- timeline


def format_timeline(result: ScenarioResult, width: int = 100) -> str:
    """The scenario as a readable story: who did what when, what happened
    physically, what the device said, and whether every expectation held."""
    import textwrap

    spec = result.spec
    long = spec.duration_ms >= 3_600_000
    lines = [f"{spec.title}  [{spec.name}]"]
    if spec.description:
        for para in spec.description.split("\n\n"):
            lines.extend(textwrap.wrap(" ".join(para.split()), width))
    facts = [
        f"burners: {', '.join(spec.burners)}",
        f"duration {fmt_time(spec.duration_ms, long, 0)}",
        f"seed {result.seed}",
    ]
    for b, params in spec.physics.items():
        facts.append(f"{b}: " + ", ".join(f"{k}={v}" for k, v in params.items()))
    if spec.settings:
        facts.append("settings: " + ", ".join(f"{k}={v}" for k, v in spec.settings.items()))
    lines.extend(textwrap.wrap("; ".join(facts), width))
    lines.append("")
    tw = len(fmt_time(spec.duration_ms, long))
    indent = " " * (tw + 2 + 9)
    for row in result.timeline:
        head = f"{fmt_time(row.t_ms, long):>{tw}}  {row.who:<8} "
        wrapped = textwrap.wrap(row.what, max(30, width - len(head))) or [""]
        lines.append(head + wrapped[0])
        lines.extend(indent + w for w in wrapped[1:])
    lines.append(f"{fmt_time(spec.duration_ms, long):>{tw}}  end")
    lines.append("")
    lines.append("Checks:")
    for c in result.checks:
        mark = "PASS" if c.passed else "FAIL"
        head = f"  {mark}  {c.text}"
        if c.detail:
            head += f"  — {c.detail}"
        lines.extend(textwrap.wrap(head, width, subsequent_indent="        "))
        if c.why and not c.passed:
            lines.extend(textwrap.wrap(c.why, width, initial_indent="        (", subsequent_indent="         "))
            lines[-1] += ")"
    n_fail = sum(not c.passed for c in result.checks)
    verdict = "PASSED" if result.passed else f"FAILED ({n_fail} of {len(result.checks)} checks)"
    speed = f"{result.speed:,.0f}x real time" if math.isfinite(result.speed) else ""
    lines.append("")
    lines.append(
        f"{verdict}: {len(result.checks)} checks; simulated {fmt_time(spec.duration_ms, long, 0)} in "
        f"{result.wall_s:.2f} s wall ({speed}, {result.firmware_steps} firmware steps)"
    )
    return "\n".join(lines)
