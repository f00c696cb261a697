"""Playing a scenario: its steps applied to a :class:`SimDevice` in virtual
time, and a :class:`Recorder` watching the device through its hooks.

The recorder keeps the physics only when something changes: after every
step, at every relay movement and every internal physics event (knob
released, magnet drop-out, ...) at its own millisecond, and once a
simulated second while a thermocouple is still heating or cooling. A quiet
hob costs nothing, so a simulated day runs in about as long as the firmware
itself needs."""

from __future__ import annotations

import math
import time as _walltime
from typing import Any

from ..actions import Action
from ..device import BOOT_MS, SimDevice
from . import timeline
from .checks import check_all
from .result import Message, Row, Sample, ScenarioResult
from .spec import ScenarioSpec, Step

#: While a thermocouple is still heating or cooling, record at least this often.
RECORD_EVERY_MS = 1000
#: A continuous change smaller than this (mV) since the last sample is not recorded.
RECORD_MIN_DELTA_MV = 0.05
#: A firmware reading is kept if it moved this much (mV) or this long passed.
READING_MIN_DELTA_MV = 0.2
READING_MAX_GAP_MS = 60_000


class Recorder:
    """What happens to a SimDevice, kept for a scenario result: the physics
    when it changes, the firmware's readings, what the device said (heard
    or not), resets, outages, knob presses and the timeline's rows."""

    def __init__(self, dev: SimDevice, settings: dict[str, Any]) -> None:
        self.dev = dev
        self.settings = settings
        self.names = dev.names
        self.models = dev.physics.models
        self.rows: list[Row] = []
        self.samples: dict[str, list[Sample]] = {n: [] for n in self.names}
        self.readings: dict[str, list[tuple[int, float]]] = {n: [] for n in self.names}
        self.timers: dict[str, list[tuple[int, float | None]]] = {n: [] for n in self.names}
        self.messages: list[Message] = []
        self.states: list[tuple[int, dict[str, Any]]] = []
        self.steps_done: list[tuple[int, Step]] = []
        self.presses: dict[str, list[int]] = {n: [] for n in self.names}
        self.downtime: list[tuple[int, int, str]] = []
        self.link_down: list[tuple[int, int]] = []
        self.requests: dict[int, tuple[int, str, dict[str, Any]]] = {}
        self.firmware_steps = 0
        self._link_lost_at: int | None = None
        self._labels: dict[int, str] = {}  # request id -> the action that sent it
        self._acting: Action | None = None
        self._pending: set[int] = set()
        self._last_reading: list[tuple[int, float] | None] = [None] * len(self.names)
        hooks = dev.hooks
        hooks.coil.append(self._coil)
        hooks.adc.append(self._adc)
        hooks.frame.append(self._frame)
        hooks.step.append(self._step)
        hooks.knob.append(lambda t_ms, index: self.presses[self.names[index]].append(t_ms))
        hooks.reset.append(self._reset)
        hooks.power.append(lambda t_ms, ms: self.downtime.append((t_ms, t_ms + ms + BOOT_MS, "power loss")))
        hooks.link.append(self._link)
        hooks.command.append(self._command)
        self.record()

    # -- what happens, as the hooks tell it ---------------------------------

    def _step(self, t_ms: int) -> None:
        self.firmware_steps += 1

    def _coil(self, t_ms: int, index: int, energised: bool) -> None:
        self.record()

    def _reset(self, t_ms: int, cause: str) -> None:
        self.rows.append(Row(t_ms, "device", timeline.reset_words(cause)))
        self.downtime.append((t_ms, t_ms + BOOT_MS, "reset: " + cause))

    def _adc(self, t_ms: int, index: int, mv: float | None) -> None:
        if mv is None:
            return
        last = self._last_reading[index]
        if last is None or abs(mv - last[1]) >= READING_MIN_DELTA_MV or t_ms - last[0] >= READING_MAX_GAP_MS:
            self._last_reading[index] = (t_ms, mv)
            self.readings[self.names[index]].append((t_ms, mv))

    def _link(self, t_ms: int, up: bool, cause: str) -> None:
        if up and self._link_lost_at is not None:
            self.link_down.append((self._link_lost_at, t_ms))
            self._link_lost_at = None
        elif not up and self._link_lost_at is None:
            self._link_lost_at = t_ms

    def _command(self, t_ms: int, request_id: int, cmd: str, args: dict[str, Any]) -> None:
        acting = self._acting
        if acting is not None and acting.inner is not None:
            self._labels[request_id] = acting.inner.text + " (corrupted)"
            return
        self._labels[request_id] = acting.text if acting is not None else cmd
        self.requests[request_id] = (t_ms, cmd, args)

    def _frame(self, t_ms: int, frame: dict[str, Any], heard: bool) -> None:
        kind = frame.get("t")
        state = frame if kind == "state" else frame.get("state") if kind == "ok" else None
        if isinstance(state, dict):
            if heard:
                self.states.append((t_ms, state))
            self._timers(t_ms, state)
        if kind == "state":
            return
        request = self._labels.get(frame["id"]) if frame.get("id") is not None else None
        what = timeline.frame_words(frame, request)
        if kind == "ok" and "state" in frame:
            frame = {k: v for k, v in frame.items() if k != "state"}
        self.messages.append(Message(t_ms, frame, heard))
        if what:
            self.rows.append(Row(t_ms, "device", what if heard else what + "  [not heard: link down]"))

    def _timers(self, t_ms: int, state: dict[str, Any]) -> None:
        for b in state.get("burners", ()):
            series = self.timers.get(b.get("id"))
            if series is None:
                continue
            remaining = b.get("timer_remaining_s")
            if remaining is not None or (series and series[-1][1] is not None):
                series.append((t_ms, remaining))

    # -- the physics ------------------------------------------------------------

    def record(self) -> None:
        """Record every burner whose state changed; schedule the next record."""
        dev = self.dev
        now = dev.clock.ms
        t = now / 1000.0
        want = math.inf
        for i, m in enumerate(self.models):
            if t > m.t:
                m.advance(t)
            emf = m.emf_mv()
            series = self.samples[self.names[i]]
            last = series[-1] if series else None
            knob, valve, flame, relay, coil = m.knob, m.valve_open, m.flame, m.relay_closed, m.coil_energised
            discrete = last is None or (
                knob != last.knob
                or valve != last.valve
                or flame != last.flame
                or relay != last.relay
                or coil != last.relay_coil
            )
            tc = m.tc_mv_true()
            if (
                last is None
                or discrete
                or abs(tc - last.tc_mv) >= RECORD_MIN_DELTA_MV
                or abs(emf - last.emf_mv) >= RECORD_MIN_DELTA_MV
            ):
                s = Sample(now, knob, valve, m.gas_flow, flame, relay, tc, emf, m.coil_current_a() * 1000.0, coil)
                series.append(s)
                if discrete and last is not None:
                    what = timeline.physics_change(self.names[i], last, s, m)
                    if what:
                        self.rows.append(Row(now, "physics", what))
            nxt = m.next_event_time()
            if nxt < math.inf:
                want = min(want, math.ceil(nxt * 1000 - 1e-6))
            if abs(emf - m.target_emf_mv) > RECORD_MIN_DELTA_MV:
                want = min(want, now + RECORD_EVERY_MS)
        if want < math.inf:
            at = max(int(want), now + 1)
            if not self._pending or min(self._pending) > at:
                self._pending.add(at)
                dev.schedule(at, lambda: self._fire(at), "record")

    def _fire(self, at: int) -> None:
        self._pending.discard(at)
        self.record()

    # -- the scenario's steps ------------------------------------------------------

    def do(self, step: Step) -> None:
        """One step now: its narration, its action (in words, then done)."""
        now = self.dev.clock.ms
        if step.note:
            self.rows.append(Row(now, "note", step.note))
        a = step.action
        if a is not None:
            self.rows.append(Row(now, a.who, a.describe(self.settings), order=1))
            self._acting = a
            try:
                a.apply(self.dev)
            finally:
                self._acting = None
        self.steps_done.append((self.dev.clock.ms, step))
        self.record()

    def finish(self, end_ms: int) -> None:
        self.record()
        if self._link_lost_at is not None:
            self.link_down.append((self._link_lost_at, end_ms))
            self._link_lost_at = None


def run(spec: ScenarioSpec, seed: int | None = None) -> ScenarioResult:
    """Play a scenario in virtual time; check its expectations and the safety invariants."""
    seed = spec.seed if seed is None else seed
    wall0 = _walltime.perf_counter()
    dev = SimDevice(
        settings=spec.settings or None,
        burner_params=spec.physics or None,
        seed=seed,
        ticks_offset=spec.ticks_offset,
        virtual_wifi=True,
    )
    dev.keep_frames = False  # the recorder keeps what it needs
    recorder = Recorder(dev, spec.device_settings)
    for step in spec.steps:
        dev.run_until(step.at_ms)
        recorder.do(step)
    dev.run_until(spec.duration_ms)
    recorder.finish(spec.duration_ms)
    wall = _walltime.perf_counter() - wall0
    result = ScenarioResult(
        spec=spec,
        seed=seed,
        checks=[],
        timeline=sorted(recorder.rows, key=lambda r: (r.t_ms, r.order)),  # stable within a kind
        samples=recorder.samples,
        readings=recorder.readings,
        timers=recorder.timers,
        messages=recorder.messages,
        states=recorder.states,
        steps_done=recorder.steps_done,
        resets=list(dev.resets),
        downtime=recorder.downtime,
        link_down=recorder.link_down,
        presses=recorder.presses,
        wall_s=wall,
        firmware_steps=recorder.firmware_steps,
        requests=recorder.requests,
    )
    result.checks = check_all(result)
    return result
