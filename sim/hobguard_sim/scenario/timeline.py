"""The scenario as a story in words: what the device said (events through
the one renderer, ``hobguard.words``), what changed physically and why, and
the printed timeline with its checks."""

from __future__ import annotations

import json
import math
import textwrap
from typing import Any

from hobguard import words

from ..physics import BurnerModel
from ..times import fmt_time
from .result import Sample, ScenarioResult

#: Replies whose content the timeline shows (the others only when refused).
_SHOWN_REPLIES = ("status", "hello", "ping")


def frame_words(frame: dict[str, Any], request: str | None) -> str | None:
    """What the device said, in words, or None for what the timeline leaves
    out (state frames, plain acknowledgements). ``request``: the action that
    sent the command a reply answers."""
    kind = frame.get("t")
    if kind == "err":
        target = f"'{request}'" if request else "a line"
        return f"refuses {target}: {frame.get('code')} ({frame.get('msg')})"
    if kind == "ok":
        if request in _SHOWN_REPLIES:
            return f"answers '{request}': " + _summarise_ok(frame)
        return None
    if kind == "evt":
        return words.event(frame)
    return None


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


def reset_words(cause: str) -> str:
    if cause == "watchdog":
        return "RESET by the watchdog: every relay drops open; the firmware restarts"
    if cause == "hard_reset":
        return "RESET after a firmware error: every relay drops open; the firmware restarts"
    return f"reset ({cause}): every relay drops open"


def physics_change(name: str, a: Sample, b: Sample, m: BurnerModel) -> str | None:
    """A burner's discrete change from sample a to sample b, and its cause,
    in words (m: the burner's model, as it is at b)."""
    parts: list[str] = []
    if a.knob == "held" and b.knob == "on":
        if b.valve:
            parts.append(f"the person lets go of the knob; the magnet holds the valve open ({b.coil_ma:.0f} mA)")
        else:
            loop = "" if b.relay and not m.tc_open else ", the loop is open"
            parts.append(
                f"the person lets go of the knob: the magnet does NOT hold ({b.coil_ma:.0f} mA{loop}; it needs "
                f"{m.params.hold_a * 1000:.0f} mA)"
            )
    if a.valve != b.valve:
        parts.append("valve open" if b.valve else "valve closed, gas off" + _why_closed(a, b, m))
    if a.flame != b.flame:
        if b.flame:
            parts.append("flame lit")
        else:
            parts.append("flame out — gas still flowing unburnt" if b.gas_flow else "flame out")
    if a.relay != b.relay:
        parts.append("relay closed (loop closed)" if b.relay else "relay open (loop open)")
    elif a.relay_coil != b.relay_coil and (m.welded or m.stuck_open):
        stays = "closed: the contact is welded" if m.welded else "open: the contact is stuck"
        what = "energises" if b.relay_coil else "releases"
        parts.append(f"the firmware {what} the relay coil but the loop stays {stays}")
    return f"{name}: " + "; ".join(parts) if parts else None


def _why_closed(a: Sample, b: Sample, m: BurnerModel) -> str:
    if b.knob == "off":
        return " (knob turned off)"
    if a.knob == "held":
        return ""
    drop = f"{m.params.drop_out_a * 1000:.0f} mA"
    if not b.relay:
        return " — the magnet let go: the relay opened the thermocouple loop"
    if m.tc_open:
        return " — the magnet let go: the thermocouple circuit is broken"
    if a.flame:
        return f" — the magnet let go: {b.coil_ma:.0f} mA in the coil is below its {drop} drop-out current"
    return f" — the magnet let go: the thermocouple cooled, the coil current fell below {drop}"


def format_timeline(result: ScenarioResult, width: int = 100) -> str:
    """The scenario as a readable story: who did what when, what happened
    physically, what the device said, and whether every expectation held."""
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
