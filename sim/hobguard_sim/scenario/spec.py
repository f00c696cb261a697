"""A scenario file, read and checked: its settings, physics, steps (actions,
in the action language of ``hobguard_sim.actions``) and expectations.
Every mistake is a :class:`ScenarioError` naming the file, the step or
expectation, and what is allowed (format: ``sim/README.md``)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hobguard_fw import protocol
from hobguard_fw import settings as fw_settings

from .. import actions
from ..actions import Action
from ..physics import BurnerParams
from ..times import TIME_HELP, TimeError, fmt_short
from ..times import parse_time as _parse_time

_PACKAGE = Path(__file__).resolve().parent.parent
#: The scenario library shipped with the project: hobguard_sim/library/ in an
#: installed package (pyproject.toml ships sim/scenarios there), else the
#: checkout's sim/scenarios/.
SCENARIO_DIR = _PACKAGE / "library" if (_PACKAGE / "library").is_dir() else _PACKAGE.parent / "scenarios"

TICKS_PERIOD = 1 << 30

#: Events a scenario may expect: the device's (defined once, in protocol.py).
EVENT_TYPES = protocol.EVENT_TYPES
RESET_CAUSES = ("watchdog", "hard_reset", "power_on", "soft_reset")

#: The actions a step's ``do`` may hold, for error messages.
ACTION_HELP = actions.usage()


class ScenarioError(ValueError):
    """A scenario file is not valid; the message says where and why."""


def parse_time(value: Any, where: str = "time") -> int:
    """A scenario time or duration -> integer milliseconds (>= 0); numbers are seconds."""
    try:
        return _parse_time(value, where)
    except TimeError as err:
        raise ScenarioError(str(err)) from None


def parse_action(text: Any, names: list[str], where: str, settings: dict[str, Any] | None = None) -> Action:
    """A step's ``do`` string against the hob's burner names."""
    try:
        return actions.parse(text, names, settings=settings)
    except actions.ActionError as err:
        raise ScenarioError(f"{where}: {err}") from None


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
#: Physical states an expectation can name: subject -> (the true word, the false word).
STATE_WORDS = {"valve": ("open", "closed"), "flame": ("on", "off"), "relay": ("closed", "open")}


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
        win = f" between {fmt_short(self.within[0])} and {fmt_short(self.within[1])}" if self.within else ""
        extra = "".join(f", {key}={val!r}" for key, val in self.match.items())
        if self.heard is not None:
            extra += ", heard by the host" if self.heard else ", not heard by the host"
        n = f" {self.count}x" if self.count is not None else ""
        r = f" ({self.reason})" if self.reason else ""
        if k == "event":
            return f"event '{v}'{r}{on}{n}{win}{extra}"
        if k == "no_event":
            return f"no event '{v}'{r}{on}{win}{extra}"
        if k == "fault":
            return f"fault '{v}' reported{on}{n}{win}{extra}"
        if k in STATE_WORDS:
            assert self.by_ms is not None and self.until_ms is not None
            if self.by_ms == self.until_ms:
                return f"{k}{on} {v} at {fmt_short(self.by_ms)}"
            return f"{k}{on} {v} by {fmt_short(self.by_ms)} and until {fmt_short(self.until_ms)}"
        if k == "gas_never_after":
            return f"no gas flows{on or ' to any burner'} after {fmt_short(v)}"
        if k == "reported":
            fields_ = ", ".join(f"{key}={val!r}" for key, val in v.items())
            at = fmt_short(self.by_ms) if self.by_ms is not None else "the end"
            return f"device reported{on} {fields_} (last state heard by {at})"
        if k == "reset":
            return f"device reset ({v}){n}{win}"
        if k == "error":
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


def _unknown_keys(raw: dict[str, Any], valid: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(raw) - set(valid))
    if unknown:
        raise ScenarioError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; valid: {', '.join(valid)}")


def from_dict(data: dict[str, Any], name: str = "scenario", path: Path | None = None) -> ScenarioSpec:
    """Validate a scenario given as a dict (the parsed TOML)."""
    where = name
    if not isinstance(data, dict):
        raise ScenarioError(f"{where}: a scenario is a table")
    _unknown_keys(data, _TOP_KEYS, where)
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
    physics: dict[str, dict[str, Any]] = {}
    for burner, params in _table(data.get("physics", {}), f"{where}: [physics]").items():
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
        _unknown_keys(raw, ("at", "do", "note"), w)
        if "at" not in raw:
            raise ScenarioError(f"{w}: 'at' is required ({TIME_HELP})")
        at = parse_time(raw["at"], f"{w}: at")
        if at > duration:
            raise ScenarioError(f"{w}: at {fmt_short(at)} is after the end of the scenario ({fmt_short(duration)})")
        note = raw.get("note", "")
        if not isinstance(note, str):
            raise ScenarioError(f"{w}: 'note' must be a string")
        if "do" not in raw and not note:
            raise ScenarioError(f"{w}: needs 'do' (an action) or 'note' (narration)")
        action = parse_action(raw["do"], names, w, checked) if "do" in raw else None
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
            raise ScenarioError(f"{w}: {key} {fmt_short(ms)} is after the end of the scenario ({fmt_short(duration)})")
        return ms

    def typed(key: str, kind: type, what: str) -> Any:
        if not isinstance(raw[key], kind) or (kind is int and isinstance(raw[key], bool)):
            raise ScenarioError(f"{w}: {key} must be {what}")
        return raw[key]

    if "burner" in raw:
        if raw["burner"] not in names:
            raise ScenarioError(f"{w}: unknown burner {raw['burner']!r}; this hob has {', '.join(names)}")
        e.burner = raw["burner"]
    if "reason" in raw:
        e.reason = typed("reason", str, "a string")
        if e.value == "cut" and e.reason not in protocol.CUT_REASONS:
            raise ScenarioError(f"{w}: a cut's reason is one of {', '.join(protocol.CUT_REASONS)}")
    if "within" in raw:
        win = raw["within"]
        if not isinstance(win, list) or len(win) != 2:
            raise ScenarioError(f'{w}: within must be a list of two times, e.g. ["19m59s", "20m05s"]')
        a, b = parse_time(win[0], f"{w}: within[0]"), parse_time(win[1], f"{w}: within[1]")
        if a > b:
            raise ScenarioError(f"{w}: within starts ({fmt_short(a)}) after it ends ({fmt_short(b)})")
        e.within = (a, b)
    if "count" in raw:
        count = typed("count", int, "an integer >= 0")
        if count < 0:
            raise ScenarioError(f"{w}: count must be an integer >= 0")
        e.count = count
    if "match" in raw:
        e.match = dict(_table(raw["match"], f"{w}: match"))
    if "heard" in raw:
        e.heard = typed("heard", bool, "true or false")
    if "why" in raw:
        e.why = typed("why", str, "a string")

    if kind in ("event", "no_event"):
        if e.value not in EVENT_TYPES:
            raise ScenarioError(f"{w}: unknown event {e.value!r}; events: {', '.join(EVENT_TYPES)}")
    elif kind == "fault":
        if not isinstance(e.value, str) or not e.value:
            raise ScenarioError(f'{w}: fault must be a fault code, e.g. "cut_failed" or "sensor"')
    elif kind in STATE_WORDS:
        if e.value not in STATE_WORDS[kind]:
            raise ScenarioError(f"{w}: {kind} must be {' or '.join(map(repr, STATE_WORDS[kind]))}")
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
                raise ScenarioError(f"{w}: until ({fmt_short(e.until_ms)}) is before by ({fmt_short(e.by_ms)})")
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
