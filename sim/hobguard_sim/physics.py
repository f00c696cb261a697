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
the flame burns at full, else 0.  ``tau = heat_tau_s`` while the flame burns at
full, else ``cool_tau_s``.  [PHYSICS: Thermocouple / open-circuit EMF 25 mV
(18-30); heating time constant 5 s (3-7, G); cooling time constant 9 s (6-12,
G)].  The loop current does not heat or cool the junction (Peltier/Joule effects
ignored).

**Flame level** (``turn(t, level, ramp_s)``; ``LEVEL_MIN`` = 0.2 is the lowest
simmer, 1.0 full; lighting is always at full).  No source gives the EMF against
the flame size [PHYSICS: "no source found: derive it"], so it is derived, grade
G.  The tip is one lumped thermal mass ``C``, heated by convection from the
flame gas (conductance ``hA``) and losing heat down its sheath to the burner
and by radiation (linearised conductance ``G``).  In a flame at ``level``::

    C dT/dt = hA(level) (T_gas - T) - G (T - T_room)
    hA(level) = hA(1) * level**n         (n = tip_h_exponent)

The gas leaves the ports at a speed proportional to the flow, so the level;
for a small cylinder in cross-flow Nu ~ Re**m with m = 0.385 (Re 4-40) to 0.466
(Re 40-4000) (Hilpert's correlation, e.g. Incropera & DeWitt, Fundamentals of
Heat and Mass Transfer, table 7.2) -- a tip of ~3 mm in flame gas at ~1-3 m/s
has Re of order 10-50: n = 0.4 (0.33-0.5, M).  The tip is assumed inside the
flame at every level (makers place it so that the simmer flame still licks it);
``T_gas`` then does not depend on the level.  With ``b = hA(1)/G`` and
``g = level**n`` the equilibrium and the time constant are::

    T(level) = T(1) * g (1 + b) / (1 + b g)
    tau(level) = heat_tau_s * (1 + b) / (1 + b g)

``b`` is solved from ``simmer_emf_ratio`` (EMF at 0.2 / EMF at full; 0.75,
0.6-0.95, G): ``b = (r - s) / (s (1 - r))`` with ``s = 0.2**n``.  Defaults:
b = 1.71, EMF 75 / 86 / 92 / 97 % of full at levels 0.2 / 0.4 / 0.6 / 0.8, tau
7.1 / 6.2 / 5.7 / 5.3 s.  The same lumped tip after a blow-out (cold gas and room
air, ``b0``) gives ``cool_tau / heat_tau = (1 + b) / (1 + b0)``: ``b0 >= 0``
needs ``1 + b >= cool_tau / heat_tau``.  Combinations that break it are
accepted (``BurnerParams.lumped_consistent`` is False; defaults: b0 = 0.51) but
are not physical in this model; the flame-loss study reports them apart.
Consequence used by the detector: a turn-down's EMF falls, relative to itself,
at most ``(1 - s) / (1 + b0)`` (about half) as fast as the same burner's EMF
after a blow-out.  A slow turn moves the level in steps of ``RAMP_STEP_S``.

**Draughts** (``draught(t, duration_s, severity)``) bend the flame off the tip
for a while; the flame keeps burning [PHYSICS: draughts and boil-overs, M].
Meanwhile the tip heads for ``(1 - severity) T(level)`` with ``1/tau =
(1 - severity)/tau(level) + severity/cool_tau_s`` (severity 1, the default and
the worst case, cools it exactly as a blow-out would); then it heats back.
**Boil-over** (``boil_over(t)``): the flame goes out and the wet tip cools with
``cool_tau_s * wet_cool_ratio`` (0.4, 0.1-1, G: water evaporating from the tip)
until it is lit again.

**Flicker**: the flame's fluctuations reach the EMF through the tip's lag
(10-20 Hz flame flicker is attenuated ~300x by a tau of seconds; what remains
is slow wander from room air, pots and the person).  Modelled as an
Ornstein-Uhlenbeck process added to the *reading*: rms ``flicker_mv`` (0.2 mV,
0-1 mV, G) scaled with ``T(level)/emf_hot_mv``, correlation time
``flicker_tau_s`` (2 s, 1-10 s, G: a tip that lags by seconds cannot wander
faster; quicker jitter is electrical, ``adc_noise_mv``), drawn exactly at each reading from its
own random stream.  When the flame goes out the deviation it had decays with the
cooling.  The magnet sees the smooth EMF (flicker of tenths of a millivolt only
matters within that much of the drop-out EMF).

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
lowest simmer (0.2): EMF / current               18.75 mV / 150 mA (holds)
  valve closes after a blow-out at simmer       11.95 s (9 ln 3.75 + 0.05)
boil-over at full: valve closes after           5.84 s (3.6 ln 5 + 0.05)
2.9 s draught at full, severity 1: EMF          25 e^(-2.9/9) = 18.1 mV (145 mA)
aged TC (18 mV) + magnet dropping at 110 mA     lights (144 mA; hold 122 mA at
  (hysteresis 0.9):                             hysteresis 0.9) but at simmer
                                                gets 108 mA: the valve closes
                                                20.7 s after a turn-down; a
                                                2.9 s draught at full drops it
                                                too (104 mA)
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
from typing import Any, NamedTuple

__all__ = [
    "LEVEL_MIN",
    "ADC_FS_CHOICES_MV",
    "ADC_SPS_CHOICES",
    "PARAM_SPECS",
    "BurnerModel",
    "BurnerParams",
    "Hob",
    "validate_params",
]

INF = math.inf
#: The lowest flame level (simmer), as a fraction of full flame.
LEVEL_MIN = 0.2
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
    "heat_tau_s": _Spec(3.0, 7.0, "s", "G", "thermocouple heating time constant (full flame)"),
    "cool_tau_s": _Spec(6.0, 12.0, "s", "G", "thermocouple cooling time constant (flame out, dry tip)"),
    "simmer_emf_ratio": _Spec(0.6, 0.95, "", "G", "EMF at the lowest level (0.2 of full) / EMF at full flame"),
    "tip_h_exponent": _Spec(0.33, 0.5, "", "M", "tip heat transfer ~ gas speed^n (cylinder in cross-flow, Hilpert)"),
    "flicker_mv": _Spec(0.0, 1.0, "mV", "G", "flame flicker on the open-circuit EMF at full flame, rms"),
    "flicker_tau_s": _Spec(1.0, 10.0, "s", "G", "correlation time of the flicker seen through the tip's lag"),
    "wet_cool_ratio": _Spec(0.1, 1.0, "", "G", "cooling time constant of a tip wetted by a boil-over / dry"),
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
    simmer_emf_ratio: float = 0.75
    tip_h_exponent: float = 0.4
    flicker_mv: float = 0.2
    flicker_tau_s: float = 2.0
    wet_cool_ratio: float = 0.4
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

    # -- the flame level (see "Flame level" in the module docstring) -----------
    @property
    def tip_beta(self) -> float:
        """beta_1: the tip's convective conductance from the full flame / its loss conductance.

        Solved from ``simmer_emf_ratio`` and ``tip_h_exponent`` (the range of
        ``simmer_emf_ratio`` keeps it > 0 for every exponent in range)."""
        s = LEVEL_MIN**self.tip_h_exponent
        r = self.simmer_emf_ratio
        return (r - s) / (s * (1.0 - r))

    def level_emf_ratio(self, level: float) -> float:
        """Hot EMF at ``level`` / hot EMF at full flame (1 at 1.0, ``simmer_emf_ratio`` at 0.2)."""
        b = self.tip_beta
        g = level**self.tip_h_exponent
        return g * (1.0 + b) / (1.0 + b * g)

    def level_tau_s(self, level: float) -> float:
        """Time constant of the tip in a flame at ``level`` (``heat_tau_s`` at full flame)."""
        b = self.tip_beta
        return self.heat_tau_s * (1.0 + b) / (1.0 + b * level**self.tip_h_exponent)

    @property
    def blowout_beta(self) -> float:
        """beta_0: convective / loss conductance of the tip after a blow-out, implied by the
        time constants: cool_tau / heat_tau = (1 + beta_1) / (1 + beta_0).  Negative means the
        combination of heat_tau_s, cool_tau_s and simmer_emf_ratio is not physical in the
        lumped model (accepted, but the flame-loss study leaves such burners out)."""
        return (1.0 + self.tip_beta) * self.heat_tau_s / self.cool_tau_s - 1.0

    @property
    def lumped_consistent(self) -> bool:
        return self.blowout_beta >= 0.0

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
_EV_CONTACT, _EV_DROP_CROSS, _EV_UP_CROSS, _EV_DROP, _EV_HOLD_SEEN, _EV_RELEASE, _EV_STAIR, _EV_DRAUGHT_END = range(8)
_EV_NAMES = (
    "contact",
    "drop_out_crossing",
    "drop_out_recovered",
    "magnet_drop",
    "hold_reached",
    "knob_release",
    "level_step",
    "draught_end",
)

#: A slow turn of the knob moves the flame level in steps this far apart (s).
RAMP_STEP_S = 0.1


class PhysicsEvent(NamedTuple):
    """An internal event of a burner's physics, as processed."""

    t: float  # s
    kind: str  # one of _EV_NAMES: "magnet_drop", "knob_release", ...


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
        flicker_rng: random.Random | None = None,
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
        # Flicker has its own stream, so the ADC noise drawn for a given seed is
        # the same whether or not the flame flickers.
        if flicker_rng is None:
            flicker_rng = random.Random(f"flicker:{seed}") if rng is None else random.Random(rng.random())
        self._flicker_gauss = flicker_rng.gauss
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
        self.level = 1.0  # flame level set by the knob, LEVEL_MIN..1.0 of full
        # A slow turn in progress: from, to, start, steps, steps done, next step time.
        self._ramp_from = self._ramp_to = 1.0
        self._ramp_t0 = 0.0
        self._ramp_n = self._ramp_k = 0
        self._stair_at = INF
        self._draught_until = INF  # a draught bends the flame off the tip until then
        self._draught_severity = 0.0
        self.wet = False  # the tip was wetted by a boil-over (until relit)
        # flicker: Ornstein-Uhlenbeck state (mV, open circuit) and the time it was last drawn
        self._flicker = 0.0
        self._flicker_t = self._t
        self._flicker_dt = -1.0
        self._flicker_decay = 0.0
        self._flicker_kick = 0.0
        self._flicker_sigma = 0.0
        self._residue = 0.0  # flicker the tip had when the flame went out (mV)
        self._residue_t = self._t
        self._next_t = INF
        self._next_kind = -1
        #: every internal event processed, for tests/tracing (bounded)
        self.events: list[PhysicsEvent] = []
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
        self._inv_flicker_tau = 1.0 / p.flicker_tau_s
        self._flicker_dt = -1.0  # the cached decay belongs to the old flicker_tau_s

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
        if not self._flame and (self._flicker_sigma or self._flicker):
            # The flame is gone: the tip keeps the deviation it had and cools it
            # away like the rest of its heat (the reading sees it; the magnet's
            # timing stays the analytic one).
            self._residue = self._flicker_at(t)
            self._residue_t = t
            self._flicker = 0.0
        elif self._flame:
            self._residue = 0.0
        p = self.params
        if self._flame:
            level = self.level
            if level >= 1.0:  # full flame: exactly the original model
                self._T = p.emf_hot_mv * p.tc_aging
                self._inv_tau = 1.0 / p.heat_tau_s
            else:
                self._T = p.emf_hot_mv * p.tc_aging * p.level_emf_ratio(level)
                self._inv_tau = 1.0 / p.level_tau_s(level)
            if self._draught_until < INF:
                # The flame is bent off the tip: it sees (1 - severity) of its heat
                # and is cooled by the moving air meanwhile.
                sev = self._draught_severity
                self._T *= 1.0 - sev
                self._inv_tau = (1.0 - sev) * self._inv_tau + sev / p.cool_tau_s
        else:
            self._T = 0.0
            self._inv_tau = 1.0 / (p.cool_tau_s * (p.wet_cool_ratio if self.wet else 1.0))
        # Flicker scales with the heat the flame puts into the tip; none without a flame.
        self._flicker_sigma = p.flicker_mv * self._T / p.emf_hot_mv if self._flame else 0.0

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
        if self._stair_at < best:
            best, kind = self._stair_at, _EV_STAIR
        if self._draught_until < best:
            best, kind = self._draught_until, _EV_DRAUGHT_END
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
            self.events.append(PhysicsEvent(t, _EV_NAMES[kind]))
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
        elif kind == _EV_STAIR:
            self._stair(t)
            self._reanchor()
        elif kind == _EV_DRAUGHT_END:
            self._draught_until = INF
            self._draught_severity = 0.0
            self._reanchor()
        self._after_change()

    def _stair(self, t: float) -> None:
        """One step of a slow turn: the level moves on; the last step lands on the target."""
        self._ramp_k += 1
        k, n = self._ramp_k, self._ramp_n
        if k >= n:
            self.level = self._ramp_to
            self._stair_at = INF
        else:
            self.level = self._ramp_from + (self._ramp_to - self._ramp_from) * k / n
            self._stair_at = self._ramp_t0 + (k + 1) * RAMP_STEP_S

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
            self._draught_until = INF
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
        self.level = 1.0  # the ignition position is full flame
        self._stair_at = INF
        self.wet = False
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
        self._stair_at = INF
        self._after_change()
        self.advance(t)

    def blow_out(self, t: float) -> None:
        """Flame blown out (draught, boil-over); gas keeps flowing until the magnet drops."""
        self.advance(t)
        if self._flame:
            self._flame = False
            self._draught_until = INF
            self._reanchor()
        self._after_change()
        self.advance(t)

    def boil_over(self, t: float) -> None:
        """A pot boils over: the flame goes out and the wet tip cools faster
        (``cool_tau_s * wet_cool_ratio``) until the burner is lit again."""
        self.advance(t)
        if self._flame:
            self._flame = False
            self._draught_until = INF
        self.wet = True
        self._reanchor()
        self._after_change()
        self.advance(t)

    def turn(self, t: float, level: float, ramp_s: float = 0.0) -> None:
        """The person turns the knob to ``level`` (LEVEL_MIN..1.0 of full flame),
        at once or evenly over ``ramp_s`` seconds (steps of RAMP_STEP_S).

        The flame follows the gas at once; the tip follows with its own lag.
        Turning a knob that is off only moves it: the valve needs a press."""
        if not (isinstance(level, (int, float)) and LEVEL_MIN <= level <= 1.0):
            raise ValueError(f"level={_fmt(level)} must be a number in {LEVEL_MIN:g}..1 (fraction of full flame)")
        if not (isinstance(ramp_s, (int, float)) and 0.0 <= ramp_s <= 600.0):
            raise ValueError(f"ramp_s={_fmt(ramp_s)} must be a number of seconds in 0..600")
        self.advance(t)
        level = float(level)
        steps = math.ceil(ramp_s / RAMP_STEP_S - 1e-9) if ramp_s > 0.0 else 0
        if steps <= 1 or level == self.level:
            self.level = level
            self._stair_at = INF
        else:
            self._ramp_from, self._ramp_to = self.level, level
            self._ramp_t0, self._ramp_n, self._ramp_k = t, steps, 0
            self._stair_at = t + RAMP_STEP_S  # the last step lands on the level at t + steps x RAMP_STEP_S
        self._reanchor()
        self._after_change()
        self.advance(t)

    def draught(self, t: float, duration_s: float, severity: float = 1.0) -> None:
        """A draught bends the flame off the tip for ``duration_s`` seconds; the
        flame keeps burning.  ``severity`` is the share of the flame's heat the tip
        loses meanwhile (1: all of it, the worst case).  No effect without a flame."""
        if not (isinstance(duration_s, (int, float)) and 0.0 < duration_s <= 600.0):
            raise ValueError(f"duration_s={_fmt(duration_s)} must be a number of seconds in (0, 600]")
        if not (isinstance(severity, (int, float)) and 0.0 < severity <= 1.0):
            raise ValueError(f"severity={_fmt(severity)} must be a number in (0, 1]")
        self.advance(t)
        if self._flame:
            self._draught_until = max(t + duration_s, self._draught_until if self._draught_until < INF else t)
            self._draught_severity = max(float(severity), self._draught_severity)
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

    @property
    def target_emf_mv(self) -> float:
        """The EMF the tip is heading for now (its equilibrium in the present state)."""
        return self._T

    @property
    def gas_flow_rate(self) -> float:
        """Gas flowing, as a fraction of the full-flame flow (the level; 0 when the valve is shut)."""
        return self.level if self.gas_flow else 0.0

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
        """Noise-free voltage across the thermocouple terminals (what the ADC ideally sees;
        the readings add the flame's flicker and the ADC's noise)."""
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
        if self._flicker_sigma or self._flicker:
            v += self._flicker_at(self._t)
        elif self._residue:
            r = self._residue * _exp((self._residue_t - self._t) * self._inv_tau)
            if -1e-6 < r < 1e-6:
                self._residue = 0.0
            v += r
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

    def _flicker_at(self, t: float) -> float:
        """Flicker (mV, open circuit) at ``t``: an Ornstein-Uhlenbeck process drawn
        exactly at the times it is read, so any sampling schedule sees the same
        statistics (rms ``flicker_mv`` scaled by the level, correlation time
        ``flicker_tau_s``).  Without a flame it decays and stops."""
        dt = t - self._flicker_t
        if dt <= 0.0:
            return self._flicker
        if dt != self._flicker_dt:
            self._flicker_dt = dt
            self._flicker_decay = _exp(-dt * self._inv_flicker_tau)
            self._flicker_kick = math.sqrt(1.0 - self._flicker_decay * self._flicker_decay)
        f = self._flicker * self._flicker_decay
        sigma = self._flicker_sigma
        if sigma:
            f += sigma * self._flicker_kick * self._flicker_gauss(0.0, 1.0)
        elif -1e-6 < f < 1e-6:
            f = 0.0
        self._flicker = f
        self._flicker_t = t
        return f

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
            "level": self.level,
            "draught": self._draught_until < INF,
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
            flicker = random.Random(f"hobguard:{seed}:{name}:flicker")
            self.burners[name] = BurnerModel(
                p, name=name, rng=rng, flicker_rng=flicker, coil_energised=coil_energised, t0=t0
            )
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
