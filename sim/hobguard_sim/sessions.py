"""Cooking sessions through the real firmware: one session of
``hobguard_sim.cooking`` (a burner drawn over the physics' ranges, lit,
turned, draughts, flicker, then a blow-out, a boil-over, the knob off or
nothing) played on the left burner of a :class:`~hobguard_sim.device.SimDevice`,
whose firmware samples, decides and cuts exactly as on the board.

What a play leaves (:class:`Played`) is judged against the physical truth:
when the flame really went out, whether gas was still flowing then, when the
valve really shut, and every cut the firmware made with the flame burning
or not. ``tests/test_cooking_firmware.py`` judges thousands of them;
``bench/flame_loss_firmware.py`` measures the unburnt gas after a blow-out
with hobguard and with the flame-failure device alone (the same session
with ``flame_loss_cut: false``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .cooking import FULL_FLOW_L_PER_S, Session
from .device import SimDevice
from .physics import INF

__all__ = ["START_S", "Played", "play"]

START_S = 5.0  # the boot pulse is over: sessions begin here (device time, s)


@dataclass
class Played:
    """One session as it happened on the device (times in device seconds)."""

    session: Session
    cuts: list[tuple[float, str, bool]] = field(default_factory=list)  # (s, reason, flame burning then)
    flame_out_at: float | None = None
    gas_at_loss: bool = False  # gas still flowing when the flame went out (a blow-out, not the knob off)
    valve_closed_at: float | None = None  # the valve shut after the flame went out
    level_at_loss: float = 1.0  # the flame's level (share of full flow) when it went out
    lit_at: float | None = None  # the knob was pressed (the spark lights at once)
    end: float = 0.0
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def unburnt_s(self) -> float | None:
        """Seconds of gas flowing unburnt after the flame went out (None: no such loss)."""
        if self.flame_out_at is None or not self.gas_at_loss or self.valve_closed_at is None:
            return None
        return self.valve_closed_at - self.flame_out_at

    @property
    def unburnt_l(self) -> float | None:
        """The same in litres of natural gas for a 2 kW burner (cooking.FULL_FLOW_L_PER_S)."""
        seconds = self.unburnt_s
        return None if seconds is None else seconds * self.level_at_loss * FULL_FLOW_L_PER_S

    @property
    def burning_s(self) -> float:
        """How long the flame burned (from the knob press to the flame out, or the end)."""
        if self.lit_at is None:
            return 0.0
        return max(0.0, (self.flame_out_at if self.flame_out_at is not None else self.end) - self.lit_at)


def _act(model: Any, kind: str, t: float, a: float, b: float) -> None:
    t = max(t, model.t)
    if kind == "ignite":
        model.press_knob(t)
    elif kind == "turn":
        model.turn(t, a, ramp_s=b)
    elif kind == "draught":
        model.draught(t, a, severity=b)
    elif kind == "blowout":
        model.blow_out(t)
    elif kind == "boilover":
        model.boil_over(t)
    elif kind == "off":
        model.turn_off(t)
    else:
        raise ValueError(kind)


def _flame_out_time(model: Any, t: float) -> float:
    """The flame went out at or before t (it was burning at the last action):
    at the latest magnet drop or knob release up to t."""
    best = -INF
    for te, kind in model.events:
        if kind in ("magnet_drop", "knob_release") and te <= t:
            best = max(best, te)
    return best


def play(session: Session, settings: dict[str, Any] | None = None) -> Played:
    """The session on the left burner of a SimDevice with default settings
    (and `settings`)."""
    out = Played(session)
    dev: SimDevice

    def on_frame(frame: dict[str, Any]) -> None:
        if frame.get("t") != "evt":
            return
        out.events.append(frame)
        if frame.get("event_type") == "cut" and frame.get("burner") == "left":
            truth = dev.truth()[0]
            out.cuts.append((dev.clock.ms / 1000.0, frame["reason"], bool(truth["flame"])))

    dev = SimDevice(
        settings=settings,
        burner_params={"left": session.params.to_dict()},
        seed=session.seed,
        ticks_offset=session.ticks0,
        on_frame=on_frame,
    )
    dev.keep_frames = False
    model = dev.physics.models[0]
    dev.run_until(int(START_S * 1000))
    flame_was = False
    for act in sorted(session.actions, key=lambda a: a.t):
        dev.run_until(int((START_S + act.t) * 1000))
        at = max(START_S + act.t, model.t)  # (the ADC reads of the last step)
        model.advance(at)
        if flame_was and not model.flame and out.flame_out_at is None:
            out.flame_out_at = _flame_out_time(model, at)  # the magnet let go since
        burning = model.flame
        level = model.level
        if act.kind == "ignite" and out.lit_at is None:
            out.lit_at = at
        _act(model, act.kind, at, act.a, act.b)
        if burning and not model.flame and out.flame_out_at is None:
            out.flame_out_at = at
            out.level_at_loss = level
        flame_was = model.flame
    dev.run_until(int((START_S + session.end) * 1000))
    end = max(START_S + session.end, model.t)
    model.advance(end)
    out.end = end
    if flame_was and not model.flame and out.flame_out_at is None:
        out.flame_out_at = _flame_out_time(model, end)
    if out.flame_out_at is not None:
        loss = session.loss
        off = (
            loss is not None
            and loss.kind == "off"
            and abs(max(START_S + loss.t, out.flame_out_at) - out.flame_out_at) < 0.01
        )
        off = off and not any(
            kind == "magnet_drop" and t < out.flame_out_at for t, kind in model.events if t > out.flame_out_at - 0.01
        )
        drops = [t for t, kind in model.events if kind == "magnet_drop" and t >= out.flame_out_at - 1e-9]
        out.gas_at_loss = not off and bool(drops) and drops[0] > out.flame_out_at + 1e-6
        if off:
            out.valve_closed_at = out.flame_out_at
        elif drops:
            out.valve_closed_at = drops[0]
    dev.close()
    return out
