"""What a scenario run leaves: the physical record (named samples), what the
device said, the timeline rows, the checks, and the result that holds them."""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ..times import fmt_time
from .spec import ScenarioSpec, Step


class Sample(NamedTuple):
    """One burner's physical truth at one instant (recorded when it changed)."""

    t: int  # ms
    knob: str  # off / held / on
    valve: bool  # open
    gas_flow: bool
    flame: bool
    relay: bool  # the contact is closed (the loop can carry current)
    tc_mv: float  # at the terminals
    emf_mv: float  # open circuit: the thermocouple's "temperature"
    coil_ma: float  # magnet coil current
    relay_coil: bool  # the firmware energises the relay coil

    def to_dict(self, burner: str) -> dict[str, Any]:
        return {
            "t": self.t / 1000,
            "burner": burner,
            "knob": self.knob,
            "valve": "open" if self.valve else "closed",
            "gas_flow": self.gas_flow,
            "flame": self.flame,
            "relay": "closed" if self.relay else "open",
            "tc_mv": round(self.tc_mv, 4),
            "emf_mv": round(self.emf_mv, 4),
            "coil_ma": round(self.coil_ma, 2),
            "relay_coil": "energised" if self.relay_coil else "off",
        }


SAMPLE_FIELDS = Sample._fields


@dataclass
class Message:
    """Something the device wrote: an event, a reply or a state frame."""

    t_ms: int
    frame: dict[str, Any]
    heard: bool  # False: written while the host's link was down


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
    """One line of the timeline."""

    t_ms: int
    who: str
    what: str
    order: int = -1  # within one millisecond: narration, actions, the device, then physical effects

    def __post_init__(self) -> None:
        if self.order < 0:
            self.order = _ROW_ORDER.get(self.who, 3)

    def to_dict(self) -> dict[str, Any]:
        return {"t": self.t_ms / 1000, "time": fmt_time(self.t_ms), "who": self.who, "what": self.what}


@dataclass
class ScenarioResult:
    spec: ScenarioSpec
    seed: int
    checks: list[Check]
    timeline: list[Row]
    #: burner -> its samples, in time order
    samples: dict[str, list[Sample]]
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
    #: request id -> (t_ms sent, protocol command, arguments) for every intact host command
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

    def state_at(self, burner: str, t_ms: int) -> Sample | None:
        """The burner's physical state in force at t_ms (after every change at t_ms)."""
        s = self.samples[burner]
        i = bisect_right(s, t_ms, key=lambda x: x.t)
        return s[i - 1] if i else None

    def sample_dicts(self, burner: str) -> list[dict[str, Any]]:
        return [s.to_dict(burner) for s in self.samples[burner]]

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
