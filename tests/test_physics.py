"""The hob's physics (sim/hobguard_sim/physics.py) against shared/PHYSICS.md.

Run as a script for a micro-benchmark: ``python tests/test_physics.py``.
"""

from __future__ import annotations

import math
from dataclasses import fields

import pytest
from hobguard_sim.physics import (
    PARAM_SPECS,
    BurnerModel,
    BurnerParams,
    Hob,
    validate_params,
)
from hypothesis import given, settings
from hypothesis import strategies as st

LSB_MV = 0.0078125
AGED = 0.72  # 25 mV * 0.72 = 18 mV, PHYSICS.md's aged thermocouple
WORN = 0.120  # worn magnet unit drops out at 120 mA


def lit(params: BurnerParams | None = None, t_press: float = 0.0, **kw) -> BurnerModel:
    """A burner with the relay closed, lit by a person at t_press."""
    b = BurnerModel(params, coil_energised=True, **kw)
    b.press_knob(t_press)
    return b


def steady(params: BurnerParams | None = None) -> BurnerModel:
    """Lit, released, and burning long enough to be at its hot EMF."""
    b = lit(params)
    b.advance(300.0)
    assert b.knob == "on" and b.valve_open and b.flame
    return b


# ---------------------------------------------------------------- parameters


def test_defaults_are_physics_md_and_inside_their_ranges():
    p = BurnerParams()
    assert (p.emf_hot_mv, p.r_thermocouple_ohm, p.r_coil_ohm) == (25.0, 0.060, 0.050)
    assert (p.drop_out_a, p.hold_hysteresis, p.drop_out_time_s) == (0.040, 0.8, 0.05)
    assert (p.heat_tau_s, p.cool_tau_s, p.knob_give_up_s) == (5.0, 9.0, 15.0)
    assert (p.adc_fs_mv, p.adc_sps) == (256.0, 860)
    assert p.adc_lsb_mv == LSB_MV
    assert p.r_switch_ohm == 0.010
    assert set(PARAM_SPECS) == {f.name for f in fields(BurnerParams)}
    for name, spec in PARAM_SPECS.items():
        v = getattr(p, name)
        if spec.choices is not None:
            assert v in spec.choices
        else:
            assert spec.lo <= v <= spec.hi, name


@pytest.mark.parametrize(
    "name,value",
    [
        ("r_switch_ohm", -1),
        ("r_switch_ohm", 11.0),
        ("emf_hot_mv", 40.0),
        ("r_thermocouple_ohm", 0.2),
        ("r_coil_ohm", 0.0),
        ("drop_out_a", 0.5),
        ("hold_hysteresis", 1.0),
        ("drop_out_time_s", 0.2),
        ("heat_tau_s", 1.0),
        ("cool_tau_s", 20.0),
        ("tc_aging", 1.5),
        ("knob_give_up_s", 0.0),
        ("adc_noise_mv", -0.1),
        ("relay_operate_s", 1.0),
    ],
)
def test_out_of_range_parameter_is_rejected_naming_it(name, value):
    with pytest.raises(ValueError) as e:
        BurnerParams(**{name: value})
    msg = str(e.value)
    spec = PARAM_SPECS[name]
    assert msg.startswith(f"{name}=")
    assert "outside" in msg and f"{spec.lo:g}..{spec.hi:g}" in msg


def test_validation_message_format():
    with pytest.raises(ValueError, match=r"^r_switch_ohm=-1 is outside 0\.\.10 Ω$"):
        BurnerParams(r_switch_ohm=-1)
    with pytest.raises(ValueError, match=r"^adc_fs_mv=300 is not one of 256, 512, .* mV$"):
        BurnerParams(adc_fs_mv=300)
    with pytest.raises(ValueError, match=r"^adc_sps=100 is not one of 8, 16, .*860 SPS$"):
        BurnerParams(adc_sps=100)
    with pytest.raises(ValueError, match=r"^emf_hot_mv='hot' is not a number"):
        BurnerParams(emf_hot_mv="hot")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^cool_tau_s=True is not a number"):
        BurnerParams(cool_tau_s=True)
    with pytest.raises(ValueError, match=r"^heat_tau_s=nan is not a finite number"):
        BurnerParams(heat_tau_s=float("nan"))


def test_from_dict_accepts_toml_values_and_rejects_unknown_keys():
    p = BurnerParams.from_dict({"r_switch_ohm": 0.1, "emf_hot_mv": 25, "adc_sps": 860})
    assert p.r_switch_ohm == 0.1 and isinstance(p.emf_hot_mv, float) and p.emf_hot_mv == 25.0
    assert validate_params({}) == BurnerParams()
    assert BurnerParams.validate({"tc_aging": 0.72}).tc_aging == 0.72
    with pytest.raises(ValueError) as e:
        BurnerParams.from_dict({"r_switch": 0.1})
    msg = str(e.value)
    assert "'r_switch'" in msg and "valid:" in msg
    for f in fields(BurnerParams):
        assert f.name in msg
    with pytest.raises(ValueError, match="drop_out_a=1"):
        BurnerParams.from_dict({"drop_out_a": 1})
    # round trip
    assert BurnerParams.from_dict(p.to_dict()) == p


def test_runtime_param_change_is_validated():
    b = steady()
    with pytest.raises(ValueError, match="r_switch_ohm=-0.5 is outside"):
        b.set_param("r_switch_ohm", -0.5, 301.0)
    with pytest.raises(ValueError, match="unknown burner parameter"):
        b.set_param("nope", 1, 301.0)
    assert b.params.r_switch_ohm == 0.010


# ---------------------------------------------------------- loop electrics


def test_hot_loop_current_is_0_2_to_0_25_a_with_defaults():
    b = steady()
    i = b.coil_current_a()
    # 25 mV / (60 + 50 + 5 + 10) mΩ = 200 mA [PHYSICS: loop current 0.2-0.25 A]
    assert i == pytest.approx(0.200, abs=1e-6)
    assert 0.2 - 1e-6 <= i <= 0.25
    # The hob alone (no hobguard wiring and switch): 25 / 0.110 = 227 mA, PHYSICS.md's "about 230 mA".
    alone = steady(BurnerParams(r_switch_ohm=0.0, r_wiring_ohm=0.0))
    assert alone.coil_current_a() == pytest.approx(0.2273, abs=1e-4)
    assert b.truth()["coil_ma"] == pytest.approx(200.0, abs=1e-3)


def test_loaded_terminal_voltage_hot():
    # Without the interrupter it is PHYSICS.md's classic closed-circuit 10-12 mV:
    alone = steady(BurnerParams(r_switch_ohm=0.0, r_wiring_ohm=0.0))
    assert 10.0 <= alone.tc_mv_true() <= 12.0
    assert alone.tc_mv_true() == pytest.approx(25 * 0.050 / 0.110, abs=1e-6)  # 11.36 mV
    # With hobguard's 5 mOhm wiring + 10 mOhm switch between terminals and coil the terminals
    # read 25 * 65/125 = 13.0 mV (the coil itself still sees 0.2 A * 50 mOhm = 10.0 mV).
    b = steady()
    assert b.tc_mv_true() == pytest.approx(13.0, abs=1e-6)
    coil_mv = b.coil_current_a() * b.params.r_coil_ohm * 1e3
    assert 10.0 - 1e-6 <= coil_mv <= 12.0
    # Loop open: the ADC sees the open-circuit EMF.
    b.set_coil(False, 301.0)
    b.advance(301.01)
    assert not b.relay_closed
    assert b.tc_mv_true() == pytest.approx(b.emf_mv(), rel=1e-12)
    assert b.tc_mv_true() == pytest.approx(25.0, abs=0.01)


# -------------------------------------------------------------- ignition


def test_ignition_person_releases_after_3_to_15_s_and_magnet_holds():
    b = lit(t_press=100.0)
    assert b.valve_open and b.gas_flow and b.flame and b.knob == "held"
    # Hold current 50 mA = 6.25 mV EMF in 125 mOhm; reached at -5 ln(1 - 6.25/25) = 1.438 s,
    # then the person's 2 s margin.
    t_hold = -5.0 * math.log(1 - 6.25 / 25.0)
    t_release = 100.0 + t_hold + 2.0
    assert b.next_event_time() == pytest.approx(100.0 + t_hold, abs=1e-9)
    b.advance(t_release - 1e-6)
    assert b.knob == "held"
    b.advance(t_release + 1e-6)
    assert b.knob == "on"
    assert 3.0 <= t_release - 100.0 <= 15.0
    assert [k for _, k in b.events] == ["hold_reached", "knob_release"]
    b.advance(10_000.0)
    assert b.valve_open and b.gas_flow and b.flame and b.magnet_holds


def test_magnet_holds_with_10_mohm_switch_and_new_thermocouple():
    b = steady(BurnerParams(r_switch_ohm=0.010))
    assert b.coil_current_a() >= b.params.hold_a
    b.advance(24 * 3600.0)
    assert b.valve_open and b.flame
    assert b.next_event_time() == math.inf


def test_press_with_relay_open_person_gives_up_at_15_s():
    """Child lock: the relay stays open, so the magnet never gets current."""
    b = BurnerModel()  # coil de-energised: contact open
    b.press_knob(10.0)
    assert b.gas_flow and b.flame  # nobody can stop a person holding the knob
    b.advance(25.0 - 1e-9)
    assert b.valve_open
    b.advance(25.0)
    assert not b.valve_open and not b.gas_flow and not b.flame
    assert b.knob == "on"


def test_press_with_fixed_hold_time_too_short():
    b = BurnerModel(coil_energised=True)
    b.press_knob(0.0, hold_s=1.0)  # current reaches only 0.18 * 200 = 36 mA < 50 mA hold
    b.advance(1.0)
    assert not b.valve_open and not b.flame
    b.press_knob(2.0, hold_s=8.0)
    b.advance(100.0)
    assert b.valve_open and b.flame


# ------------------------------------------------------ aged / worn / bad relay


def test_bad_relay_with_aged_thermocouple_and_worn_magnet_does_not_hold():
    p = BurnerParams(r_switch_ohm=0.100, tc_aging=AGED, drop_out_a=WORN)
    # 18 mV / 215 mOhm = 83.7 mA: below even the 120 mA drop-out, far below the 150 mA hold.
    assert p.hot_current_a == pytest.approx(0.0837, abs=1e-4)
    assert p.hot_current_a < p.drop_out_a < p.hold_a
    b = lit(p, t_press=0.0)
    b.advance(15.0 - 1e-9)
    assert b.knob == "held" and b.valve_open  # still holding, waiting
    b.advance(15.0)  # gives up: GB 16410 opening time
    assert not b.valve_open and not b.gas_flow and not b.flame
    # Letting go earlier does not help.
    b2 = lit(p)
    b2.advance(60.0 - 1e-9)
    b2.press_knob(60.0)
    b2.release_knob(70.0)
    assert not b2.valve_open


def test_good_relay_with_aged_thermocouple_and_worn_magnet_is_marginal():
    """What the arithmetic says with a 10 mOhm switch, 18 mV and a 120 mA drop-out magnet:

    I_hot = 18 mV / 125 mOhm = 144 mA: above the 120 mA drop-out but below the
    150 mA needed at the moment the knob is released (hold = drop-out / 0.8). So it
    does NOT light (the person gives up at 15 s), yet a magnet that is already
    holding stays held. The hob without hobguard (I = 163.6 mA) lights after
    holding the knob 14.4 s; a 4 mOhm switch (I = 151 mA) only after 24 s.
    """
    p = BurnerParams(r_switch_ohm=0.010, tc_aging=AGED, drop_out_a=WORN)
    assert p.hot_current_a == pytest.approx(0.144, abs=1e-6)
    assert p.drop_out_a < p.hot_current_a < p.hold_a == pytest.approx(0.150)
    b = lit(p)
    b.advance(15.0)
    assert not b.valve_open  # gave up at 15 s, did not hold

    # Already holding (lit while the thermocouple was still good), then it ages: stays held.
    b = steady(BurnerParams(r_switch_ohm=0.010, drop_out_a=WORN))
    b.set_param("tc_aging", AGED, 300.0)
    b.advance(10_000.0)
    assert b.valve_open and b.coil_current_a() == pytest.approx(0.144, abs=1e-6)
    # ... but the contact degrading to 100 mOhm (83.7 mA < 120 mA) drops it, 50 ms later.
    b.set_param("r_switch_ohm", 0.100, 10_000.0)
    b.advance(10_000.05)
    assert not b.valve_open

    # The hob alone (no hobguard in the loop, 110 mOhm): 163.6 mA hot; 150 mA is reached at
    # 5 ln(18 / (18 - 16.5)) = 12.4 s, so a person holding the knob for the full 15 s lights it.
    alone = BurnerParams(r_switch_ohm=0.0, r_wiring_ohm=0.0, tc_aging=AGED, drop_out_a=WORN)
    b = lit(alone)
    b.advance(100.0)
    assert b.valve_open and b.magnet_holds
    (t_rel,) = [t for t, k in b.events if k == "knob_release"]
    assert t_rel == pytest.approx(5 * math.log(18 / 1.5) + 2.0, abs=1e-9)  # 14.4 s

    # A 4 mOhm switch (151 mA hot) would hold, but only after 5 ln(18 / 0.15) = 23.9 s of
    # heating: longer than the 15 s a person holds the knob.
    p4 = BurnerParams(r_switch_ohm=0.004, tc_aging=AGED, drop_out_a=WORN)
    assert p4.hot_current_a == pytest.approx(0.15126, abs=1e-5)
    b = lit(p4)
    b.advance(100.0)
    assert not b.valve_open
    b = BurnerModel(p4, coil_energised=True)
    b.press_knob(0.0, hold_s=30.0)  # a patient person
    b.advance(100.0)
    assert b.valve_open and b.magnet_holds
    b = BurnerModel(p, coil_energised=True)
    b.press_knob(0.0, hold_s=300.0)  # 10 mOhm: 144 mA never reaches 150 mA, however long
    b.advance(400.0)
    assert not b.valve_open


def test_relay_contact_resistance_can_be_raised_while_burning():
    b = steady(BurnerParams(drop_out_a=WORN))
    b.set_param("r_switch_ohm", 0.2, 400.0)  # 25 mV / 315 mOhm = 79 mA < 120 mA
    assert b.coil_current_a() == pytest.approx(0.025 / 0.315)
    b.advance(400.05 - 1e-9)
    assert b.valve_open
    b.advance(400.05)
    assert not b.valve_open and not b.flame


# ------------------------------------------------------------- flame loss


def test_valve_closes_by_itself_10_to_20_s_after_blow_out():
    b = steady()
    b.blow_out(500.0)
    assert not b.flame and b.gas_flow  # gas keeps flowing unburnt for now
    t_cross = 500.0 + 9.0 * math.log(25.0 / 5.0)  # EMF falls to 40 mA * 125 mOhm = 5 mV
    expected = t_cross + 0.05
    assert b.next_event_time() == pytest.approx(t_cross, abs=1e-9)
    b.advance(600.0)
    closed_at = [t for t, k in b.events if k == "magnet_drop"]
    assert closed_at == [pytest.approx(expected, abs=1e-9)]
    assert 10.0 <= closed_at[0] - 500.0 <= 20.0  # 14.53 s
    assert not b.valve_open and not b.gas_flow


def test_blow_out_closing_time_follows_parameters():
    """Not hard-coded: a bad relay (higher threshold EMF) closes sooner, an aged TC too."""
    times = {}
    for label, p in {
        "default": BurnerParams(),
        "bad_relay": BurnerParams(r_switch_ohm=0.1),
        "aged": BurnerParams(tc_aging=AGED),
        "slow": BurnerParams(cool_tau_s=12.0),
    }.items():
        b = steady(p)
        b.blow_out(500.0)
        b.advance(700.0)
        (t,) = [t for t, k in b.events if k == "magnet_drop"]
        x = p.drop_out_a * p.r_loop_ohm * 1e3
        assert t - 500.0 == pytest.approx(p.cool_tau_s * math.log(p.hot_emf_mv / x) + p.drop_out_time_s, abs=1e-9)
        times[label] = t - 500.0
    assert times["bad_relay"] < times["aged"] < times["default"] < times["slow"] <= 60.0  # GB 16410


def test_next_event_time_is_exact():
    b = steady()
    b.blow_out(1000.0)
    t1 = b.next_event_time()
    assert b.next_event_kind == "drop_out_crossing"
    b.advance(t1)
    assert b.valve_open
    assert b.coil_current_a() == pytest.approx(0.040, rel=1e-9)
    t2 = b.next_event_time()
    assert b.next_event_kind == "magnet_drop"
    assert t2 == pytest.approx(t1 + 0.05, abs=1e-12)
    b.advance(t2 - 1e-9)
    assert b.valve_open
    b.advance(t2)
    assert not b.valve_open
    assert b.events[-1] == (t2, "magnet_drop")
    assert b.next_event_time() == math.inf


def test_gas_supply_loss_puts_the_flame_out_then_the_valve_closes():
    b = steady()
    b.set_supply(False, 300.0)
    assert not b.flame and not b.gas_flow and b.valve_open
    b.advance(330.0)
    assert not b.valve_open


def test_turn_off():
    b = steady()
    b.turn_off(400.0)
    assert not b.valve_open and not b.gas_flow and not b.flame and b.knob == "off"
    assert b.emf_mv(409.0) == pytest.approx(25.0 * math.exp(-1.0), rel=1e-9)  # cools with tau 9 s


# ------------------------------------------------------------------ the cut


def test_cut_drops_the_magnet_50_ms_after_the_contact_opens_and_never_pulls_in():
    b = steady()
    b.set_coil(False, 1000.0)
    assert b.relay_closed  # contact still moving
    b.advance(1000.005 - 1e-9)
    assert b.relay_closed and b.valve_open
    b.advance(1000.005)
    assert not b.relay_closed and b.coil_current_a() == 0.0
    b.advance(1000.055 - 1e-9)
    assert b.valve_open
    b.advance(1000.055)
    assert not b.valve_open and not b.gas_flow and not b.flame
    drop = [t for t, k in b.events if k == "magnet_drop"]
    assert drop == [pytest.approx(1000.055, abs=1e-9)]
    # Relay closes again after 3 s: thermocouple still hot (~18 mV, 143 mA) but the magnet
    # cannot pull in.
    b.set_coil(True, 1003.0)
    b.advance(1003.010)
    assert b.relay_closed and b.coil_current_a() > 0.1
    b.advance(2000.0)
    assert not b.valve_open and not b.gas_flow and not b.flame


def test_a_cut_shorter_than_the_drop_out_time_does_not_drop_the_magnet():
    b = steady()
    b.set_coil(False, 1000.0)  # contact opens at 1000.005
    b.set_coil(True, 1000.030)  # and closes at 1000.040: open for 35 ms < 50 ms
    b.advance(1100.0)
    assert b.valve_open and b.flame
    b.set_coil(False, 1200.0)  # 60 ms open: drops
    b.set_coil(True, 1200.055)
    b.advance(1300.0)
    assert not b.valve_open


def test_coil_command_during_motion_cancels_it():
    b = steady()
    b.set_coil(False, 1000.0)
    b.set_coil(True, 1000.002)  # before the 5 ms release completes
    b.advance(1001.0)
    assert b.relay_closed and b.valve_open
    assert not any(k == "contact" for _, k in b.events)


def test_welded_relay_keeps_the_valve_held_through_a_cut():
    b = steady()
    b.set_relay_welded(True, 500.0)
    b.set_coil(False, 1000.0)
    b.advance(2000.0)
    assert b.relay_closed and b.valve_open and b.flame and not b.coil_energised
    b.set_relay_welded(False, 2000.0)  # weld breaks: contact follows the de-energised coil
    b.advance(2000.005 + 0.05)
    assert not b.relay_closed and not b.valve_open


def test_relay_that_never_closes():
    b = BurnerModel(coil_energised=False)
    b.set_relay_stuck_open(True, 0.0)
    b.set_coil(True, 1.0)
    b.press_knob(2.0)
    b.advance(17.0)
    assert not b.relay_closed and not b.valve_open and not b.flame


def test_open_thermocouple_reads_full_scale_and_drops_the_magnet():
    b = steady()
    b.set_tc_open(True, 500.0)
    assert b.coil_current_a() == 0.0
    assert b.adc_code() == 32767
    assert b.adc_mv() == pytest.approx(255.9921875)
    assert b.tc_mv_true() == pytest.approx(255.9921875)
    b.advance(500.05)
    assert not b.valve_open


def test_dead_adc_reads_none():
    b = steady()
    b.set_adc_dead(True)
    assert b.adc_dead and b.adc_mv(301.0) is None and b.adc_code() is None
    b.set_adc_dead(False)
    assert b.adc_mv(302.0) == pytest.approx(13.0, abs=0.1)


# -------------------------------------------------------------------- ADC


def test_adc_is_quantised_to_7_8125_uv():
    b = steady(BurnerParams(flicker_mv=0.0))  # the ADC's own noise only (flicker: its own tests)
    seen = set()
    for k in range(500):
        v = b.adc_mv(300.0 + k)
        assert v is not None
        n = v / LSB_MV
        assert n == round(n)
        seen.add(v)
        assert abs(v - 13.0) < 0.06  # 0.01 mV sigma: 6 sigma
    assert len(seen) > 1  # the noise is there
    q = steady(BurnerParams(adc_noise_mv=0.0, flicker_mv=0.0))
    v = q.adc_mv(400.0)
    assert v is not None
    assert abs(v - q.tc_mv_true()) <= LSB_MV / 2
    assert v == 1664 * LSB_MV  # 13.0 mV / 7.8125 uV = 1664 exactly


def test_adc_clips_at_full_scale_range():
    # No thermocouple reaches 256 mV, so poke the EMF state directly to exercise the clipping.
    b = BurnerModel(BurnerParams(adc_noise_mv=0.0))
    b._e0 = b._T = 300.0
    assert b.adc_code(1.0) == 32767 and b.adc_mv() == pytest.approx(255.9921875)
    b._e0 = b._T = -300.0
    assert b.adc_code(2.0) == -32768 and b.adc_mv() == -256.0
    wide = BurnerModel(BurnerParams(adc_noise_mv=0.0, adc_fs_mv=512))
    wide._e0 = wide._T = 300.0
    assert wide.adc_mv(1.0) == 300.0  # 300 / 15.625 uV = 19200 codes exactly


def test_determinism_with_a_seed():
    def run(seed):
        b = BurnerModel(seed=seed, coil_energised=True)
        b.press_knob(1.0)
        out = []
        for k in range(200):
            out.append(b.adc_mv(k * 0.5 + 1.0))
        return out

    assert run(7) == run(7)
    assert run(7) != run(8)
    h1, h2 = Hob(seed=3), Hob(seed=3)
    assert [h1["left"].adc_mv(1.0) for _ in range(5)] == [h2["left"].adc_mv(1.0) for _ in range(5)]
    # each burner its own stream
    h = Hob(seed=3)
    assert [h["left"].adc_mv() for _ in range(10)] != [h["right"].adc_mv() for _ in range(10)]


def test_time_cannot_go_backwards():
    b = steady()
    with pytest.raises(ValueError, match="back in time"):
        b.advance(10.0)


# ---------------------------------------------------------------- Hob, truth


def test_truth_record_format():
    h = Hob(["left", "right"], seed=1, coil_energised=True)
    h["left"].press_knob(0.0)
    h.advance(30.0)
    rec = {r["burner"]: r for r in h.truth(30.0)}
    assert set(rec) == {"left", "right"}
    for r in rec.values():
        assert {"t", "burner", "valve", "gas_flow", "flame", "relay", "tc_mv", "emf_mv", "coil_ma"} <= set(r)
        assert r["t"] == 30.0 and r["relay"] == "closed"
    assert rec["left"]["valve"] == "open" and rec["left"]["gas_flow"] is True and rec["left"]["flame"] is True
    assert rec["right"]["valve"] == "closed" and rec["right"]["flame"] is False and rec["right"]["tc_mv"] == 0.0
    assert rec["left"]["tc_mv"] == pytest.approx(13.0 * (1 - math.exp(-6)), abs=1e-6)
    assert h.next_event_time() == math.inf
    h["right"].blow_out(31.0)
    h["left"].blow_out(31.0)
    assert h.next_event_time() == pytest.approx(31.0 + 9 * math.log(25 * (1 - math.exp(-31 / 5)) / 5), abs=1e-6)


def test_hob_from_scenario_dicts():
    h = Hob({"left": {"r_switch_ohm": 0.1}, "right": None}, seed=1)
    assert h.names == ["left", "right"] and len(h) == 2
    assert h["left"].params.r_switch_ohm == 0.1 and h["right"].params == BurnerParams()
    with pytest.raises(ValueError, match="unknown burner parameter.*'r_sw'"):
        Hob({"left": {"r_sw": 1}})
    with pytest.raises(ValueError, match="at least one burner"):
        Hob([])


# ------------------------------------------------- flame level, draughts, flicker

QUIET = {"flicker_mv": 0.0, "adc_noise_mv": 0.0}


def test_level_curve_defaults_and_derivation():
    p = BurnerParams()
    assert (p.simmer_emf_ratio, p.tip_h_exponent, p.flicker_mv, p.flicker_tau_s, p.wet_cool_ratio) == (
        0.75,
        0.4,
        0.2,
        2.0,
        0.4,
    )
    s = 0.2**0.4
    assert p.tip_beta == pytest.approx((0.75 - s) / (s * 0.25))
    assert p.tip_beta == pytest.approx(1.711, abs=1e-3)
    assert p.level_emf_ratio(1.0) == pytest.approx(1.0)
    assert p.level_emf_ratio(0.2) == pytest.approx(0.75)
    ratios = [p.level_emf_ratio(lv) for lv in (0.2, 0.4, 0.6, 0.8, 1.0)]
    assert ratios == sorted(ratios)
    assert [round(r, 2) for r in ratios] == [0.75, 0.86, 0.92, 0.97, 1.0]
    assert [round(p.level_tau_s(lv), 1) for lv in (0.2, 0.4, 0.6, 0.8, 1.0)] == [7.1, 6.2, 5.7, 5.3, 5.0]
    # The lumped tip after a blow-out: cool/heat = (1 + b) / (1 + b0).
    assert p.blowout_beta == pytest.approx(2.711 * 5 / 9 - 1, abs=1e-3)
    assert p.lumped_consistent
    assert not BurnerParams(heat_tau_s=3.0, cool_tau_s=12.0).lumped_consistent
    # Every simmer ratio in range gives a positive b for every exponent in range.
    for n in (0.33, 0.5):
        for r in (0.6, 0.95):
            assert BurnerParams(tip_h_exponent=n, simmer_emf_ratio=r).tip_beta > 0


@pytest.mark.parametrize("name, bad", [("simmer_emf_ratio", 0.5), ("tip_h_exponent", 0.6), ("flicker_mv", -0.1)])
def test_level_parameters_are_validated(name, bad):
    with pytest.raises(ValueError, match=name):
        BurnerParams.from_dict({name: bad})


def test_turn_moves_to_the_level_equilibrium_with_its_time_constant():
    b = steady(BurnerParams(**QUIET))
    assert b.emf_mv() == pytest.approx(25.0)
    b.turn(300.0, 0.2)
    assert b.level == 0.2 and b.flame and b.gas_flow_rate == 0.2
    assert b.target_emf_mv == pytest.approx(18.75)
    tau = b.params.level_tau_s(0.2)
    # One time constant later the EMF has gone 1 - 1/e of the way.
    assert b.emf_mv(300.0 + tau) == pytest.approx(18.75 + 6.25 / math.e, abs=1e-9)
    b.advance(500.0)
    assert b.emf_mv() == pytest.approx(18.75) and b.coil_current_a() == pytest.approx(0.150)
    assert b.valve_open, "a healthy hob holds at the lowest simmer"
    assert b.adc_mv() == pytest.approx(18.75 * 0.52, abs=LSB_MV)
    # And back up: heading for full with full flame's time constant.
    b.turn(500.0, 1.0)
    assert b.emf_mv(505.0) == pytest.approx(25.0 - 6.25 / math.e, abs=1e-9)


def test_slow_turn_moves_the_level_in_steps_and_lands_on_it():
    b = steady(BurnerParams(**QUIET))
    fast = steady(BurnerParams(**QUIET))
    b.turn(300.0, 0.2, ramp_s=4.0)
    fast.turn(300.0, 0.2)
    b.advance(302.05)
    assert 0.5 < b.level < 0.7  # halfway through the turn
    # The slow turn's EMF lags the quick one's.
    assert b.emf_mv() > fast.emf_mv(302.05) + 1.0
    b.advance(303.95)
    assert b.level == pytest.approx(0.22)
    b.advance(304.0)
    assert b.level == 0.2
    steps = [t for t, kind in b.events if kind == "level_step"]
    assert len(steps) == 40 and steps[0] == pytest.approx(300.1) and steps[-1] == pytest.approx(304.0)
    # Both end at the same level.
    assert b.emf_mv(400.0) == pytest.approx(fast.emf_mv(400.0), rel=1e-6)


def test_turn_rejects_levels_outside_the_knob():
    b = steady()
    for bad in (0.1, 1.2, float("nan"), "low"):
        with pytest.raises(ValueError, match="level"):
            b.turn(300.0, bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ramp_s"):
        b.turn(300.0, 0.5, ramp_s=-1.0)
    assert b.level == 1.0


def test_lighting_is_at_full_flame_and_an_off_knob_only_turns():
    b = BurnerModel(BurnerParams(**QUIET), coil_energised=True)
    b.turn(1.0, 0.3)
    assert not b.valve_open and not b.flame and b.gas_flow_rate == 0.0
    b.press_knob(2.0)
    assert b.level == 1.0 and b.target_emf_mv == pytest.approx(25.0)


def test_short_draught_bends_the_flame_and_it_recovers():
    b = steady(BurnerParams(**QUIET))
    b.draught(300.0, 2.9)
    assert b.flame and b.target_emf_mv == 0.0
    # Severity 1: it cools exactly as after a blow-out while the draught lasts.
    assert b.emf_mv(302.9) == pytest.approx(25.0 * math.exp(-2.9 / 9.0), abs=1e-9)
    assert b.emf_mv() == pytest.approx(18.12, abs=0.01)
    assert b.valve_open and b.flame
    assert any(kind == "draught_end" for _, kind in b.events)
    assert b.target_emf_mv == pytest.approx(25.0)
    b.advance(302.9 + 5.0)  # one heating time constant after it
    assert b.emf_mv() == pytest.approx(25.0 - (25.0 - 25.0 * math.exp(-2.9 / 9.0)) / math.e, abs=1e-9)
    assert b.truth()["draught"] is False and b.truth()["level"] == 1.0


def test_partial_draught_heads_for_part_of_the_heat():
    b = steady(BurnerParams(**QUIET))
    b.draught(300.0, 60.0, severity=0.5)
    b.advance(359.0)
    assert b.emf_mv() == pytest.approx(12.5, abs=0.01)
    with pytest.raises(ValueError, match="severity"):
        b.draught(360.0, 1.0, severity=0.0)
    with pytest.raises(ValueError, match="duration_s"):
        b.draught(360.0, float("inf"))


def test_draught_on_a_weak_combination_drops_the_magnet():
    weak = BurnerParams(tc_aging=AGED, drop_out_a=0.11, hold_hysteresis=0.9, **QUIET)
    b = steady(weak)
    b.draught(300.0, 2.9)
    b.advance(320.0)
    assert not b.valve_open and not b.flame
    drop = [t for t, kind in b.events if kind == "magnet_drop"]
    # 18 e^(-t/9) = 110 mA x 125 mOhm = 13.75 mV
    assert drop == [pytest.approx(300.0 + 9 * math.log(18.0 / 13.75) + 0.05)]


def test_simmer_holds_on_a_healthy_hob_but_not_on_a_worn_combination():
    assert steady(BurnerParams(**QUIET)).params.level_emf_ratio(0.2) * 25.0 / 0.125 / 1000 > 0.040
    weak = BurnerParams(tc_aging=AGED, drop_out_a=0.11, hold_hysteresis=0.9, **QUIET)
    b = steady(weak)
    assert b.valve_open and b.coil_current_a() == pytest.approx(0.144)
    b.turn(300.0, 0.2)
    b.advance(400.0)
    assert not b.valve_open and not b.flame and b.gas_flow_rate == 0.0
    drop = [t for t, kind in b.events if kind == "magnet_drop"]
    # heading for 13.5 mV (108 mA), drops at 13.75 mV (110 mA): tau(0.2) ln(4.5 / 0.25)
    assert drop == [pytest.approx(300.0 + weak.level_tau_s(0.2) * math.log(18.0) + 0.05)]
    assert drop[0] - 300.0 == pytest.approx(20.7, abs=0.05)


def test_blow_out_at_simmer_and_boil_over_close_the_valve_by_themselves():
    b = steady(BurnerParams(**QUIET))
    b.turn(300.0, 0.2)
    b.advance(600.0)
    b.blow_out(600.0)
    b.advance(700.0)
    drop = [t for t, kind in b.events if kind == "magnet_drop"]
    assert drop == [pytest.approx(600.0 + 9 * math.log(18.75 / 5.0) + 0.05)]
    w = steady(BurnerParams(**QUIET))
    w.boil_over(300.0)
    assert w.wet and not w.flame
    w.advance(400.0)
    drop = [t for t, kind in w.events if kind == "magnet_drop"]
    assert drop == [pytest.approx(300.0 + 9 * 0.4 * math.log(5.0) + 0.05)]
    w.press_knob(401.0)
    assert not w.wet


def test_flicker_statistics_match_its_parameters():
    b = steady(BurnerParams(adc_noise_mv=0.0))
    dt = 0.25
    xs = []
    for k in range(40_000):
        v = b.adc_mv(301.0 + k * dt)
        assert v is not None
        xs.append(v / 0.52 - 25.0)  # back to the open-circuit EMF (loaded: 65/125 of it)
    n = len(xs)
    mean = sum(xs) / n
    var = sum((x - mean) ** 2 for x in xs) / n
    assert abs(mean) < 0.02
    assert math.sqrt(var) == pytest.approx(0.2, rel=0.08)  # quantisation adds LSB^2/12, negligible
    lag = round(2.0 / dt)  # one correlation time
    cov = sum((xs[i] - mean) * (xs[i + lag] - mean) for i in range(n - lag)) / (n - lag)
    assert cov / var == pytest.approx(math.exp(-1.0), abs=0.08)


def test_flicker_scales_with_the_level_and_stops_with_the_flame():
    b = steady(BurnerParams(adc_noise_mv=0.0))
    b.turn(300.0, 0.2)
    b.advance(400.0)
    xs = [b.adc_mv(400.0 + k * 2.0) / 0.52 - 18.75 for k in range(3000)]  # type: ignore[operator]
    assert math.sqrt(sum(x * x for x in xs) / len(xs)) == pytest.approx(0.2 * 0.75, rel=0.1)
    b.blow_out(7000.0)
    # The deviation it had decays with the cooling: the reading is smooth.
    reads = [b.adc_mv(7000.0 + k * 0.25) for k in range(1, 40)]
    steps = [reads[i] - reads[i + 1] for i in range(len(reads) - 1)]  # type: ignore[operator]
    assert all(s > 0 for s in steps)


def test_flicker_draws_from_its_own_stream():
    """The same seed gives the same ADC noise with or without flicker."""
    a = Hob({"x": {"flicker_mv": 0.5}}, seed=3, coil_energised=True)["x"]
    q = Hob({"x": {"flicker_mv": 0.0}}, seed=3, coil_energised=True)["x"]
    for m in (a, q):
        m.press_knob(0.0)
        m.advance(300.0)
    diffs = [a.adc_mv(300.0 + 0.1 * k) - q.adc_mv(300.0 + 0.1 * k) for k in range(1, 2000)]  # type: ignore[operator]
    # The difference is the flicker alone: strongly correlated from one 0.1 s read to the next
    # (white ADC noise in it would make neighbouring differences unrelated).
    m = sum(diffs) / len(diffs)
    c0 = sum((d - m) ** 2 for d in diffs)
    c1 = sum((diffs[i] - m) * (diffs[i + 1] - m) for i in range(len(diffs) - 1))
    assert c1 / c0 > 0.9


# ------------------------------------------------------------- properties

_ACTIONS = st.lists(
    st.tuples(
        st.floats(min_value=0.0, max_value=30.0, allow_nan=False),
        st.sampled_from(
            [
                "press",
                "release",
                "off",
                "blow",
                "boil",
                "coil_on",
                "coil_off",
                "weld",
                "unweld",
                "tc_open",
                "simmer",
                "slow_full",
                "draught",
            ]
        ),
    ),
    max_size=25,
)


@settings(max_examples=200, deadline=None)
@given(_ACTIONS, st.integers(min_value=0, max_value=4))
def test_invariants_under_random_actions(actions, which):
    params = [
        BurnerParams(),
        BurnerParams(r_switch_ohm=0.1, tc_aging=AGED, drop_out_a=WORN),
        BurnerParams(r_switch_ohm=0.010, tc_aging=AGED, drop_out_a=WORN),
        BurnerParams(relay_operate_s=0.0, relay_release_s=0.0, drop_out_time_s=0.0),
        BurnerParams(tc_aging=AGED, drop_out_a=0.11, hold_hysteresis=0.9),
    ][which]
    b = BurnerModel(params, coil_energised=True)
    t = 0.0
    for dt, action in actions:
        # Let internal events happen, checking at each that the valve never opens by itself.
        end = t + dt
        while b.next_event_time() <= end:
            was_open = b.valve_open
            te = b.next_event_time()
            assert te >= b.t
            b.advance(te)
            assert not (b.valve_open and not was_open), "valve opened without a press"
        b.advance(end)
        t = end
        was_open = b.valve_open
        {
            "press": lambda t: b.press_knob(t),
            "release": lambda t: b.release_knob(t),
            "off": lambda t: b.turn_off(t),
            "blow": lambda t: b.blow_out(t),
            "boil": lambda t: b.boil_over(t),
            "simmer": lambda t: b.turn(t, 0.2),
            "slow_full": lambda t: b.turn(t, 1.0, ramp_s=3.0),
            "draught": lambda t: b.draught(t, 2.5),
            "coil_on": lambda t: b.set_coil(True, t),
            "coil_off": lambda t: b.set_coil(False, t),
            "weld": lambda t: b.set_relay_welded(True, t),
            "unweld": lambda t: b.set_relay_welded(False, t),
            "tc_open": lambda t: b.set_tc_open(not b.tc_open, t),
        }[action](t)
        if action != "press":
            assert not (b.valve_open and not was_open), f"valve opened by {action}"
        assert not b.flame or b.gas_flow
        assert b.coil_current_a() == 0.0 or b.relay_closed
        assert 0.0 <= b.emf_mv() <= params.hot_emf_mv + 1e-9
        if b.valve_open and b.knob == "on":
            assert b.magnet_holds
    times = [t for t, _ in b.events]
    assert times == sorted(times)


# -------------------------------------------------------------- benchmark


def _bench() -> None:  # pragma: no cover - run as a script
    import time

    b = steady()
    n = 200_000
    t0 = time.perf_counter()
    t = 300.0
    for _ in range(n):
        t += 1.0
        b.adc_mv(t)
    per_read = (time.perf_counter() - t0) / n
    print(f"adc_mv(t) with advance: {per_read * 1e6:.2f} us per read")

    # 24 simulated hours, 4 burners read once a second, a cooking story every hour.
    hob = Hob(["a", "b", "c", "d"], seed=1, coil_energised=True)
    burners = list(hob)
    t0 = time.perf_counter()
    for s in range(24 * 3600):
        t = float(s)
        if s % 3600 == 10:
            for b in burners:
                b.press_knob(t)
        if s % 3600 == 1800:
            burners[0].blow_out(t)
            burners[1].set_coil(False, t)
        if s % 3600 == 1805:
            burners[1].set_coil(True, t)
        if s % 3600 == 3000:
            for b in burners:
                b.turn_off(t)
        for b in burners:
            b.adc_mv(t)
    print(f"24 h, 4 burners, 1 read/s each: {time.perf_counter() - t0:.3f} s wall")


if __name__ == "__main__":  # pragma: no cover
    _bench()
