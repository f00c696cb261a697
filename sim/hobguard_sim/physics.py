"""Physical model of a gas hob with thermoelectric flame-failure devices.

One :class:`BurnerModel` per burner; a :class:`Hob` holds several.  The model is
event driven and fully analytic (no fixed-step integration): between *change
points* (the flame lighting or going out, the relay contact moving, a person
acting, a parameter changing) every quantity has a closed form, and every
internal discrete event is found by solving that closed form, so it happens at
its exact time, not at a step boundary.  ``advance(t)`` moves the state to ``t``
processing the internal events in order; ``next_event_time()`` tells the
simulator how far it may jump.  Time is in seconds (float).

Every default and every validated range comes from ``shared/PHYSICS.md``; the
rows used are cited as [PHYSICS: table / row].  Values marked "G" there are
guesses and are labelled so here as well.

The chain, per burner
---------------------

**Thermocouple EMF** (open-circuit, mV) is a first-order lag toward a target::

    emf(t) = T + (e0 - T) * exp(-(t - t0) / tau)

from the last change point ``(t0, e0)``.  ``T = emf_hot_mv * tc_aging`` while
the flame burns, else 0.  ``tau = heat_tau_s`` while the flame burns, else
``cool_tau_s``.  [PHYSICS: Thermocouple / open-circuit EMF 25 mV (18-30);
heating time constant 5 s (3-7, G); cooling time constant 9 s (6-12, G)].  The
loop current does not heat or cool the junction (Peltier/Joule effects ignored).

**Loop** (thermocouple -> wiring -> relay contact -> magnet coil)::

    R_loop = r_thermocouple_ohm + r_coil_ohm + r_wiring_ohm + r_switch_ohm
    I      = emf / R_loop        when the contact is closed and the
                                 thermocouple is not open-circuited, else 0

[PHYSICS: Thermocouple / internal resistance 60 mΩ (50-75); Magnet unit / coil
resistance 50 mΩ (40-60); "The switch in the loop" / loop current formula].
With the defaults R_loop = 125 mΩ, so a hot new thermocouple drives 200 mA
[PHYSICS: loop current 0.2-0.25 A].  ``r_wiring_ohm`` (default 5 mΩ, G) is the
extra wiring hobguard adds: about 2 x 10 cm of 0.75 mm² copper (4.6 mΩ) plus
terminations.  ``r_switch_ohm`` (default 10 mΩ) is the relay contact or MOSFET
Rds(on) [PHYSICS: "Aim for a switch of <= 10 mΩ"]; 0.1 Ω models a bad relay.

**Magnet unit.**  It can only *hold*, never *pull in* [PHYSICS: Magnet unit /
pull-in by current alone: never].  Definitions used here:

* ``drop_out_a`` (default 40 mA, 20-120 mA; 120 mA = worn unit) [PHYSICS:
  drop-out current].
* ``hold_a = drop_out_a / hold_hysteresis`` (hysteresis default 0.8, 0.7-0.9,
  G) [PHYSICS: hold/drop hysteresis "release at 0.8 x hold"].  Defaults: 50 mA.
* When the knob is released, the magnet holds (valve stays open) iff the coil
  current at that instant is >= ``hold_a``; otherwise the spring shuts the
  valve at once.
* A held magnet drops (valve shuts) when the coil current has been below
  ``drop_out_a`` *continuously* for ``drop_out_time_s`` (50 ms, < 100 ms)
  [PHYSICS: drop-out time once current stops].  The downward crossing of
  ``drop_out_a`` is found analytically; if the current comes back above
  ``drop_out_a`` before the time has elapsed, the timer is cancelled.
* Once dropped it stays dropped until a person presses the knob again.

**Valve, gas, flame.**  The valve is open while the person holds the knob
(mechanically, whatever the magnet does) or while the knob is in the "on"
position and the magnet holds.  Turning the knob off closes it.  Gas flows
when the valve is open and the supply is on (``set_supply``; on by default).
Pressing the knob includes the spark: the flame lights at the press if gas
flows.  The flame goes out when gas stops, or when blown out (``blow_out``);
after a blow-out gas keeps flowing through the held valve until the
thermocouple has cooled so far that the current falls below ``drop_out_a``.
Nothing about that delay is hard-coded: with the defaults it comes out as
``cool_tau * ln(emf_hot / (drop_out_a * R_loop)) + drop_out_time``
= 9 * ln(25 / 5) + 0.05 = 14.53 s [PHYSICS: cooling tau fitted to "valve closes
10-20 s after flame loss"; GB 16410 closing time <= 60 s].

**The person.**  ``press_knob(t)`` starts holding the knob.  The person keeps
holding until the coil current first reaches ``hold_a`` (the valve would now
hold) and then ``knob_release_margin_s`` longer (default 2 s, G: people hold
"a few more seconds"; with the defaults the hold current is reached 1.44 s
after ignition, so the person lets go at 3.44 s, matching the makers' "hold
for 3-5 s" and DESIGN.md's 3-15 s).  If the current has not reached ``hold_a``
by ``knob_give_up_s`` (15 s, the GB 16410 opening time [PHYSICS: Standards])
the person gives up and lets go; the magnet does not hold, so the valve
closes.  ``press_knob(t, hold_s=...)`` instead holds for a fixed time.  The
person decides once: if the relay opens during the margin, they still let go
at the planned time and the valve closes.  ``turn_off(t)``, ``blow_out(t)``,
``release_knob(t)`` complete the set.

**Relay.**  The firmware drives the coil: ``set_coil(energised, t)``.  Wiring
is normally open, energised to run (DESIGN.md), so an energised coil closes
the contact after ``relay_operate_s`` (10 ms, G) and a de-energised one opens
it after ``relay_release_s`` (5 ms, G).  A new command during a motion cancels
the motion.  Faults: ``set_relay_welded`` (contact closed whatever the coil),
``set_relay_stuck_open`` (never closes), high contact resistance
(``set_param("r_switch_ohm", ...)``).

**ADC** (ADS1115, differential across the thermocouple terminals, upstream of
the relay) [PHYSICS: Sensing / ADS1115 +/-0.256 V, 7.8125 µV/LSB, 8-860 SPS]::

    loop open:   v = emf                                  (open circuit)
    loop closed: v = emf * (R_loop - r_thermocouple) / R_loop
                   = I * (r_coil + r_wiring + r_switch)   (loaded)

plus Gaussian noise (``adc_noise_mv``, 0.01 mV, G) from a ``random.Random``
owned by the model (deterministic per seed), quantised to the LSB
(``adc_fs_mv / 32768``) and clipped to the 16-bit code range.  With the
defaults the loaded voltage is 25 * 65/125 = 13.0 mV.  Note: PHYSICS.md's
"closed-circuit voltage 10-12 mV" is the classic service measurement on a hob
*without* an interrupter (R_loop = 110 mΩ: 25 * 50/110 = 11.4 mV, which is
also the coil voltage); hobguard's relay and wiring add 15 mΩ downstream of
the terminals and so raise the terminal voltage to 13.0 mV, while the coil
itself sees 0.2 A * 50 mΩ = 10.0 mV.  ``adc_sps`` is exposed for the ADC
emulator's conversion time (1/860 s = 1.16 ms); the model itself samples the
voltage instantaneously.

Faults on the sensing side: ``set_tc_open`` (thermocouple open-circuited: no
loop current; the ADC input floats and is modelled as pinned to positive full
scale, +255.99 mV at the ±256 mV range, as a burnout-detection bias would do;
the firmware must treat it as impossible), ``adc_dead`` (attribute; reads
return ``None`` — the ADC emulator checks it and fails the I2C transaction).

Derived numbers (defaults unless stated; all asserted in tests/test_physics.py)
-------------------------------------------------------------------------------

==============================================  =====================================
hold current / drop-out current                 50 mA / 40 mA  (EMF 6.25 / 5.0 mV)
hot loop current                                200 mA (hob without hobguard: 227 mA)
terminal voltage hot, loop closed / open        13.0 mV / 25.0 mV  (coil: 10.0 mV)
ignition: hold current reached / person lets go 1.44 s / 3.44 s after the press
valve closes after a blow-out                   14.53 s (9 ln 5 + 0.05)
  ... 100 mΩ relay / aged TC / both             9.65 s / 11.58 s / 6.70 s
cut: coil off -> contact open -> magnet drops   +5 ms -> +55 ms (never pulls in again)
EMF 3 s after a cut                             25 e^(-1/3) = 17.9 mV
aged TC (18 mV) + worn magnet (drop 120 mA):
  100 mΩ relay                                  83.7 mA: never holds
  10 mΩ relay                                   144 mA: between drop-out and hold
                                                (150 mA): does not light (person
                                                gives up at 15 s), but a magnet
                                                already holding stays held
  no hobguard (110 mΩ)                          163.6 mA: lights after 14.4 s held
  lighting within 15 s needs                    R_loop <= 114.0 mΩ, i.e. no switch
                                                can be added with 5 mΩ of wiring
==============================================  =====================================

Costs: ``adc_mv`` is one ``exp``, one ``gauss`` and a rounding (~1-2 µs);
``advance`` is a float comparison when no event is due.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

__all__ = [
    "ADC_FS_CHOICES_MV",
    "ADC_SPS_CHOICES",
    "PARAM_SPECS",
    "BurnerModel",
    "BurnerParams",
    "Hob",
    "validate_params",
]

INF = math.inf
_exp = math.exp
_log = math.log

#: ADS1115 programmable-gain full-scale ranges (mV) and data rates (SPS).
ADC_FS_CHOICES_MV = (256.0, 512.0, 1024.0, 2048.0, 4096.0, 6144.0)
ADC_SPS_CHOICES = (8, 16, 32, 64, 128, 250, 475, 860)

#: Relative band around a threshold inside which a state is not flipped by a
#: plain comparison (only by the analytic crossing event).  Prevents an event
#: from re-triggering itself through floating-point rounding.
_EPS = 1e-9


@dataclass(frozen=True)
class _Spec:
    lo: float | None  # None: the value must be one of `choices`
    hi: float | None
    unit: str
    conf: str  # PHYSICS.md confidence letter (S/M/D/G), "G*" = our guess
    doc: str
    choices: tuple | None = None


#: Allowed range, unit, confidence and source of every BurnerParams field.
PARAM_SPECS: dict[str, _Spec] = {
    "emf_hot_mv": _Spec(18.0, 30.0, "mV", "M", "open-circuit thermocouple EMF with the flame on (new)"),
    "tc_aging": _Spec(0.0, 1.0, "", "G*", "EMF multiplier: 1.0 new, 0.72 aged (25 mV -> 18 mV), 0 dead"),
    "r_thermocouple_ohm": _Spec(0.050, 0.075, "Ω", "D", "thermocouple internal resistance incl. lead"),
    "r_coil_ohm": _Spec(0.040, 0.060, "Ω", "D", "magnet unit coil resistance"),
    "r_wiring_ohm": _Spec(0.0, 0.5, "Ω", "G*", "extra wiring to the relay (2 x 10 cm 0.75 mm² Cu + terminals)"),
    "r_switch_ohm": _Spec(0.0, 10.0, "Ω", "S/D", "relay contact / MOSFET Rds(on); 0.010 good, 0.1 bad relay"),
    "drop_out_a": _Spec(0.020, 0.120, "A", "M/D", "magnet drop-out current (0.120 = worn unit)"),
    "hold_hysteresis": _Spec(0.7, 0.9, "", "G", "drop_out_a = hysteresis x hold_a"),
    "drop_out_time_s": _Spec(0.0, 0.1, "s", "D", "time below drop_out_a before the magnet lets go"),
    "heat_tau_s": _Spec(3.0, 7.0, "s", "G", "thermocouple heating time constant"),
    "cool_tau_s": _Spec(6.0, 12.0, "s", "G", "thermocouple cooling time constant"),
    "relay_operate_s": _Spec(0.0, 0.1, "s", "G*", "coil energised -> contact closed"),
    "relay_release_s": _Spec(0.0, 0.1, "s", "G*", "coil de-energised -> contact open"),
    "knob_give_up_s": _Spec(1.0, 60.0, "s", "M", "person gives up holding the knob (GB 16410 opening time 15 s)"),
    "knob_release_margin_s": _Spec(0.0, 10.0, "s", "G*", "person holds this long after the magnet would hold"),
    "adc_fs_mv": _Spec(None, None, "mV", "S", "ADS1115 full-scale range (PGA)", ADC_FS_CHOICES_MV),
    "adc_noise_mv": _Spec(0.0, 1.0, "mV", "G", "ADC input noise, Gaussian sigma"),
    "adc_sps": _Spec(None, None, "SPS", "S", "ADS1115 data rate", ADC_SPS_CHOICES),
}


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    return repr(v) if isinstance(v, str) else str(v)


@dataclass(frozen=True)
class BurnerParams:
    """Parameters of one burner (thermocouple, magnet unit, loop, relay, person, ADC).

    Defaults are PHYSICS.md's; ``PARAM_SPECS`` gives each field's range.  Frozen:
    change a running model's parameter with ``BurnerModel.set_param``.
    """

    emf_hot_mv: float = 25.0
    tc_aging: float = 1.0
    r_thermocouple_ohm: float = 0.060
    r_coil_ohm: float = 0.050
    r_wiring_ohm: float = 0.005
    r_switch_ohm: float = 0.010
    drop_out_a: float = 0.040
    hold_hysteresis: float = 0.8
    drop_out_time_s: float = 0.05
    heat_tau_s: float = 5.0
    cool_tau_s: float = 9.0
    relay_operate_s: float = 0.010
    relay_release_s: float = 0.005
    knob_give_up_s: float = 15.0
    knob_release_margin_s: float = 2.0
    adc_fs_mv: float = 256.0
    adc_noise_mv: float = 0.01
    adc_sps: int = 860

    def __post_init__(self) -> None:
        for f in fields(self):
            name = f.name
            spec = PARAM_SPECS[name]
            v = getattr(self, name)
            unit = f" {spec.unit}" if spec.unit else ""
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ValueError(  # noqa: TRY004 - one exception type for every bad scenario value
                    f"{name}={_fmt(v)} is not a number ({spec.doc}, {unit.strip() or 'unitless'})"
                )
            if not math.isfinite(v):
                raise ValueError(f"{name}={_fmt(v)} is not a finite number")
            if spec.choices is not None:
                if v not in spec.choices:
                    ok = ", ".join(_fmt(c) for c in spec.choices)
                    raise ValueError(f"{name}={_fmt(v)} is not one of {ok}{unit}")
                v = type(spec.choices[0])(v)
            else:
                lo, hi = spec.lo, spec.hi
                assert lo is not None and hi is not None
                if not (lo <= v <= hi):
                    raise ValueError(f"{name}={_fmt(v)} is outside {_fmt(lo)}..{_fmt(hi)}{unit}")
                v = float(v)
            object.__setattr__(self, name, v)

    # -- derived -------------------------------------------------------------
    @property
    def r_loop_ohm(self) -> float:
        return self.r_thermocouple_ohm + self.r_coil_ohm + self.r_wiring_ohm + self.r_switch_ohm

    @property
    def hold_a(self) -> float:
        """Current needed, at the moment the knob is released, for the magnet to hold."""
        return self.drop_out_a / self.hold_hysteresis

    @property
    def hot_emf_mv(self) -> float:
        """Open-circuit EMF the thermocouple settles at in the flame (aging applied)."""
        return self.emf_hot_mv * self.tc_aging

    @property
    def hot_current_a(self) -> float:
        return self.hot_emf_mv * 1e-3 / self.r_loop_ohm

    @property
    def adc_lsb_mv(self) -> float:
        return self.adc_fs_mv / 32768.0

    # -- dict I/O (TOML scenarios) ----------------------------------------------
    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None = None, base: BurnerParams | None = None) -> BurnerParams:
        """Build from a (TOML) dict; unknown keys are rejected, listing the valid ones.

        ``base`` supplies the values of keys not in ``d`` (default: the defaults)."""
        d = dict(d or {})
        valid = cls.field_names()
        unknown = sorted(k for k in d if k not in valid)
        if unknown:
            raise ValueError(f"unknown burner parameter(s) {', '.join(map(repr, unknown))}; valid: {', '.join(valid)}")
        return replace(base, **d) if base is not None else cls(**d)

    validate = from_dict  # alias: BurnerParams.validate(dict) -> BurnerParams or ValueError

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def validate_params(d: Mapping[str, Any] | None) -> BurnerParams:
    """Validate a dict of burner parameters; returns the BurnerParams or raises ValueError."""
    return BurnerParams.from_dict(d)


# Knob positions.
KNOB_OFF = "off"  # turned off: valve closed mechanically
KNOB_HELD = "held"  # pressed and held: valve open mechanically
KNOB_ON = "on"  # released in the on position: valve open only while the magnet holds

# Internal event kinds, in tie-break order (lower first at equal times).
_EV_CONTACT, _EV_DROP_CROSS, _EV_UP_CROSS, _EV_DROP, _EV_HOLD_SEEN, _EV_RELEASE = range(6)
_EV_NAMES = ("contact", "drop_out_crossing", "drop_out_recovered", "magnet_drop", "hold_reached", "knob_release")


class BurnerModel:
    """One burner: thermocouple, loop, magnet valve, relay, person, ADC.

    ``coil_energised``: the relay coil state at ``t0`` (the contact starts in the
    matching position).  ``seed`` / ``rng``: the noise source (an own
    ``random.Random(seed)`` unless ``rng`` is given).
    """

    def __init__(
        self,
        params: BurnerParams | Mapping[str, Any] | None = None,
        *,
        name: str = "burner",
        seed: int | str = 0,
        rng: random.Random | None = None,
        coil_energised: bool = False,
        t0: float = 0.0,
    ) -> None:
        if params is None:
            params = BurnerParams()
        elif not isinstance(params, BurnerParams):
            params = BurnerParams.from_dict(params)
        self.name = name
        self.rng = rng if rng is not None else random.Random(seed)
        self._gauss = self.rng.gauss
        self._t = float(t0)
        # thermocouple anchor
        self._t0 = self._t
        self._e0 = 0.0
        self._T = 0.0
        self._inv_tau = 0.0
        # relay
        self._coil = bool(coil_energised)
        self._contact = bool(coil_energised)
        self._contact_at = INF
        self._contact_to = self._contact
        self.welded = False
        self.stuck_open = False
        # sensing faults
        self.tc_open = False
        self.adc_dead = False
        # knob / magnet / person
        self.knob = KNOB_OFF
        self._magnet = False  # holds (meaningful with the knob "on")
        self._below_since: float | None = None
        self._give_up_at = INF
        self._hold_seen = False
        self._release_at = INF
        self._fixed_hold = False
        # gas / flame
        self.supply = True
        self._flame = False
        self._next_t = INF
        self._next_kind = -1
        #: (time, kind) of every internal event processed, for tests/tracing (bounded)
        self.events: list[tuple[float, str]] = []
        self._set_params(params)
        self._reanchor()
        self._after_change()

    # ------------------------------------------------------------------ params
    def _set_params(self, p: BurnerParams) -> None:
        self.params = p
        r = p.r_loop_ohm
        self._r_loop = r
        self._inv_r_loop_a = 1e-3 / r  # mV -> A
        self._load_ratio = (r - p.r_thermocouple_ohm) / r
        self._hold_mv = p.hold_a * r * 1e3
        self._drop_mv = p.drop_out_a * r * 1e3
        self._lsb = p.adc_lsb_mv
        self._inv_lsb = 1.0 / self._lsb
        self._fs_top_mv = 32767 * self._lsb
        self._noise = p.adc_noise_mv

    def set_param(self, name: str, value: Any, t: float) -> None:
        """Change one parameter at time ``t`` (validated), e.g. ``r_switch_ohm`` or ``tc_aging``."""
        self.advance(t)
        self._set_params(BurnerParams.from_dict({name: value}, base=self.params))
        self._reanchor()
        self._after_change()
        self.advance(t)

    # ---------------------------------------------------------- closed forms
    def _reanchor(self) -> None:
        t = self._t
        self._e0 = self._emf(t)
        self._t0 = t
        p = self.params
        if self._flame:
            self._T = p.emf_hot_mv * p.tc_aging
            self._inv_tau = 1.0 / p.heat_tau_s
        else:
            self._T = 0.0
            self._inv_tau = 1.0 / p.cool_tau_s

    def _emf(self, t: float) -> float:
        d = self._e0 - self._T
        if d == 0.0:
            return self._T
        return self._T + d * _exp((self._t0 - t) * self._inv_tau)

    def _t_reach(self, x: float, up: bool) -> float:
        """First time >= now at which the EMF reaches ``x`` moving up (or down); inf if never."""
        t = self._t
        e = self._emf(t)
        T = self._T
        if up:
            if e >= x:
                return t
            if T <= x:
                return INF
            return t + _log((T - e) / (T - x)) / self._inv_tau
        if e <= x:
            return t
        if T >= x:
            return INF
        return t + _log((e - T) / (x - T)) / self._inv_tau

    @property
    def loop_closed(self) -> bool:
        return self._contact and not self.tc_open

    # --------------------------------------------------------- event engine
    def _schedule(self) -> None:
        best, kind = self._contact_at, _EV_CONTACT
        if self.knob == KNOB_ON and self._magnet:
            closed = self._contact and not self.tc_open
            if self._below_since is None:
                if closed:
                    tc = self._t_reach(self._drop_mv, up=False)
                    if tc < best:
                        best, kind = tc, _EV_DROP_CROSS
            else:
                if closed:
                    tc = self._t_reach(self._drop_mv * (1.0 + _EPS), up=True)
                    if tc < best:
                        best, kind = tc, _EV_UP_CROSS
                td = self._below_since + self.params.drop_out_time_s
                if td < best:
                    best, kind = td, _EV_DROP
        elif self.knob == KNOB_HELD:
            if not (self._hold_seen or self._fixed_hold) and self._contact and not self.tc_open:
                tc = self._t_reach(self._hold_mv, up=True)
                if tc < best:
                    best, kind = tc, _EV_HOLD_SEEN
            tr = self._release_at if self._hold_seen or self._fixed_hold else self._give_up_at
            if tr < best:
                best, kind = tr, _EV_RELEASE
        best = max(best, self._t)
        self._next_t = best
        self._next_kind = kind

    def next_event_time(self) -> float:
        """Time of the next internal discrete event (>= current time), or ``math.inf``."""
        return self._next_t

    @property
    def next_event_kind(self) -> str | None:
        return _EV_NAMES[self._next_kind] if self._next_t < INF else None

    @property
    def t(self) -> float:
        """Time the state has been advanced to."""
        return self._t

    def advance(self, t: float) -> None:
        """Move the state to time ``t``, processing every internal event at or before ``t`` in order."""
        if t < self._t:
            raise ValueError(f"{self.name}: cannot go back in time ({t!r} < {self._t!r})")
        n = 0
        while self._next_t <= t:
            self._t = self._next_t
            self._process(self._next_kind)
            n += 1
            if n > 100000:
                raise RuntimeError(f"{self.name}: event storm at t={self._t!r}")
        self._t = t

    def _process(self, kind: int) -> None:
        t = self._t
        if len(self.events) < 100000:
            self.events.append((t, _EV_NAMES[kind]))
        if kind == _EV_CONTACT:
            self._contact = self._contact_to
            self._contact_at = INF
        elif kind == _EV_DROP_CROSS:
            self._below_since = t
            self._schedule()
            return
        elif kind == _EV_UP_CROSS:
            self._below_since = None
            self._schedule()
            return
        elif kind == _EV_DROP:
            self._magnet = False
            self._below_since = None
        elif kind == _EV_HOLD_SEEN:
            self._hold_seen = True
            self._release_at = min(t + self.params.knob_release_margin_s, self._give_up_at)
            self._schedule()
            return
        elif kind == _EV_RELEASE:
            self._release()
        self._after_change()

    def _release(self) -> None:
        self.knob = KNOB_ON
        self._magnet = self.coil_current_a() >= self.params.hold_a
        self._below_since = None
        self._give_up_at = self._release_at = INF
        self._hold_seen = self._fixed_hold = False

    def _after_change(self) -> None:
        """Re-derive gas/flame and the magnet timer from the state, then reschedule."""
        if self._flame and not (self.supply and self.valve_open):
            self._flame = False
            self._reanchor()
        if self.knob == KNOB_ON and self._magnet:
            i_mv = self._emf(self._t) if (self._contact and not self.tc_open) else 0.0
            if self._below_since is None:
                if i_mv < self._drop_mv * (1.0 - _EPS):
                    self._below_since = self._t
            elif i_mv > self._drop_mv * (1.0 + _EPS):
                self._below_since = None
        self._schedule()

    # ----------------------------------------------------------- the relay
    def set_coil(self, energised: bool, t: float) -> None:
        """Firmware drives the relay coil (normally open contact: energised = loop closed)."""
        self.advance(t)
        self._coil = bool(energised)
        self._relay_follow(t)
        self._after_change()
        self.advance(t)

    def _relay_follow(self, t: float) -> None:
        if self.welded:
            want, delay = True, 0.0
        elif self.stuck_open:
            want, delay = False, 0.0
        else:
            want = self._coil
            delay = self.params.relay_operate_s if want else self.params.relay_release_s
        if want == self._contact:
            self._contact_at = INF  # already there: cancel any motion
        elif delay == 0.0:
            self._contact = want
            self._contact_at = INF
        elif self._contact_at == INF or self._contact_to != want:
            self._contact_at = t + delay
        self._contact_to = want

    def set_relay_welded(self, on: bool, t: float) -> None:
        """Fault: contact welded shut (closes at once if open); ``False`` frees it to follow the coil."""
        self.advance(t)
        self.welded = bool(on)
        self._relay_follow(t)
        self._after_change()
        self.advance(t)

    def set_relay_stuck_open(self, on: bool, t: float) -> None:
        """Fault: contact never closes (opens at once if closed)."""
        self.advance(t)
        self.stuck_open = bool(on)
        self._relay_follow(t)
        self._after_change()
        self.advance(t)

    @property
    def coil_energised(self) -> bool:
        return self._coil

    @property
    def relay_closed(self) -> bool:
        """Relay contact position (closed = loop closed, burner usable)."""
        return self._contact

    # ---------------------------------------------------- sensing faults etc.
    def set_tc_open(self, on: bool, t: float) -> None:
        """Fault: thermocouple open-circuited (no loop current; ADC input floats to full scale)."""
        self.advance(t)
        self.tc_open = bool(on)
        self._after_change()
        self.advance(t)

    def set_adc_dead(self, on: bool) -> None:
        """Fault: ADC does not answer (reads return None; the emulator fails the I2C transfer)."""
        self.adc_dead = bool(on)

    def set_supply(self, on: bool, t: float) -> None:
        """Gas supply upstream of the valve (e.g. bottle empty): off puts the flame out."""
        self.advance(t)
        self.supply = bool(on)
        self._after_change()
        self.advance(t)

    # ------------------------------------------------------------ the person
    def press_knob(self, t: float, hold_s: float | None = None) -> None:
        """Person presses and holds the knob: valve opens, the spark lights the flame if gas flows.

        The person lets go ``knob_release_margin_s`` after the current first reaches
        ``hold_a``, or gives up after ``knob_give_up_s``; with ``hold_s`` they let go
        after exactly ``hold_s`` seconds instead.  No effect if already held."""
        self.advance(t)
        if self.knob == KNOB_HELD:
            return
        self.knob = KNOB_HELD
        self._magnet = False
        self._below_since = None
        self._hold_seen = False
        if hold_s is not None:
            if not (hold_s >= 0.0 and math.isfinite(hold_s)):
                raise ValueError(f"hold_s={_fmt(hold_s)} must be a finite number >= 0 s")
            self._fixed_hold = True
            self._release_at = t + hold_s
            self._give_up_at = INF
        else:
            self._fixed_hold = False
            self._release_at = INF
            self._give_up_at = t + self.params.knob_give_up_s
        if self.supply and not self._flame:
            self._flame = True
            self._reanchor()
        self._after_change()
        self.advance(t)

    def release_knob(self, t: float) -> None:
        """Person lets go of the knob now (the magnet holds iff current >= hold_a)."""
        self.advance(t)
        if self.knob != KNOB_HELD:
            return
        self._release()
        self._after_change()
        self.advance(t)

    def turn_off(self, t: float) -> None:
        """Person turns the knob off: valve closed, flame out, magnet released."""
        self.advance(t)
        self.knob = KNOB_OFF
        self._magnet = False
        self._below_since = None
        self._give_up_at = self._release_at = INF
        self._hold_seen = self._fixed_hold = False
        self._after_change()
        self.advance(t)

    def blow_out(self, t: float) -> None:
        """Flame blown out (draught, boil-over); gas keeps flowing until the magnet drops."""
        self.advance(t)
        if self._flame:
            self._flame = False
            self._reanchor()
        self._after_change()
        self.advance(t)

    # ------------------------------------------------------------ read-outs
    @property
    def magnet_holds(self) -> bool:
        """True while the valve is held open by the magnet (knob released, in the on position)."""
        return self.knob == KNOB_ON and self._magnet

    @property
    def valve_open(self) -> bool:
        return self.knob == KNOB_HELD or (self.knob == KNOB_ON and self._magnet)

    @property
    def gas_flow(self) -> bool:
        return self.supply and self.valve_open

    @property
    def flame(self) -> bool:
        return self._flame

    def _at(self, t: float | None) -> float:
        if t is None or t == self._t:
            return self._t
        self.advance(t)
        return t

    def emf_mv(self, t: float | None = None) -> float:
        """Open-circuit thermocouple EMF (mV) — its 'temperature'."""
        return self._emf(self._at(t))

    def coil_current_a(self, t: float | None = None) -> float:
        t = self._at(t)
        if self._contact and not self.tc_open:
            return self._emf(t) * self._inv_r_loop_a
        return 0.0

    def tc_mv_true(self, t: float | None = None) -> float:
        """Noise-free voltage across the thermocouple terminals (what the ADC ideally sees)."""
        t = self._at(t)
        if self.tc_open:
            return self._fs_top_mv
        e = self._emf(t)
        if self._contact:
            return e * self._load_ratio
        return e

    def adc_code(self, t: float | None = None) -> int | None:
        """ADS1115 conversion result (signed 16-bit code), or None if the ADC is dead.

        Hot path (called ~once per simulated second per burner): inlined on purpose."""
        if t is not None and t != self._t:
            if self._t < t < self._next_t:
                self._t = t  # no event due: nothing to process
            else:
                self.advance(t)
        if self.adc_dead:
            return None
        if self.tc_open:
            return 32767  # input pinned to the positive rail: full-scale code, no noise
        d = self._e0 - self._T
        v = self._T if d == 0.0 else self._T + d * _exp((self._t0 - self._t) * self._inv_tau)
        if self._contact:
            v *= self._load_ratio
        if self._noise:
            v += self._gauss(0.0, self._noise)
        c = round(v * self._inv_lsb)
        if c > 32767:
            return 32767
        if c < -32768:
            return -32768
        return c

    def adc_mv(self, t: float | None = None) -> float | None:
        """Noisy, quantised, clipped ADC reading (mV), or None if the ADC is dead."""
        c = self.adc_code(t)
        return None if c is None else c * self._lsb

    def truth(self, t: float | None = None) -> dict[str, Any]:
        """Physical truth record (the ``hobguard sim device --trace`` line for this burner)."""
        t = self._at(t)
        return {
            "t": t,
            "burner": self.name,
            "valve": "open" if self.valve_open else "closed",
            "gas_flow": self.gas_flow,
            "flame": self._flame,
            "relay": "closed" if self._contact else "open",
            "tc_mv": self.tc_mv_true(),
            "emf_mv": self._emf(t),
            "coil_ma": self.coil_current_a() * 1e3,
            "knob": self.knob,
        }

    def __repr__(self) -> str:
        return (
            f"BurnerModel({self.name!r}, t={self._t:g}, knob={self.knob}, valve={'open' if self.valve_open else 'closed'},"
            f" flame={self._flame}, relay={'closed' if self._contact else 'open'}, emf={self._emf(self._t):.3f} mV)"
        )


class Hob:
    """Several named burners sharing one seed (each gets its own stream, derived from seed and name).

    ``burners``: names (default parameters), or a mapping name -> BurnerParams / dict / None.
    """

    def __init__(
        self,
        burners: Iterable[str] | Mapping[str, BurnerParams | Mapping[str, Any] | None] = ("left", "right"),
        *,
        seed: int | str = 0,
        coil_energised: bool = False,
        t0: float = 0.0,
    ) -> None:
        items = burners.items() if isinstance(burners, Mapping) else ((n, None) for n in burners)
        self.seed = seed
        self.burners: dict[str, BurnerModel] = {}
        for name, p in items:
            if name in self.burners:
                raise ValueError(f"duplicate burner name {name!r}")
            rng = random.Random(f"hobguard:{seed}:{name}")
            self.burners[name] = BurnerModel(p, name=name, rng=rng, coil_energised=coil_energised, t0=t0)
        if not self.burners:
            raise ValueError("a hob needs at least one burner")

    def __getitem__(self, name: str) -> BurnerModel:
        return self.burners[name]

    def __iter__(self) -> Iterator[BurnerModel]:
        return iter(self.burners.values())

    def __len__(self) -> int:
        return len(self.burners)

    @property
    def names(self) -> list[str]:
        return list(self.burners)

    def advance(self, t: float) -> None:
        for b in self.burners.values():
            b.advance(t)

    def next_event_time(self) -> float:
        return min(b._next_t for b in self.burners.values())

    def truth(self, t: float | None = None) -> list[dict[str, Any]]:
        return [b.truth(t) for b in self.burners.values()]
