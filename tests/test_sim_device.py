"""SimDevice and the fakes under it: the ADS1115 at register level, the
button, power loss, the watchdog, garbage on the line, the link, and the
tick counter's wraparound. The real firmware runs in every test."""

from __future__ import annotations

import pytest
from hobguard_fw import protocol
from hobguard_sim.device import BOOT_MS, SimDevice
from hobguard_sim.fakes import TICKS_MASK, Clock, FakeTime
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

LSB_MV = 0.0078125
# ADS1115 config: OS (start) | MUX | PGA +-0.256 V | single-shot | 860 SPS | comparator off
CFG_PAIR0 = 0x8000 | 0x0000 | 0x0A00 | 0x0100 | 0x00E0 | 0x0003
CFG_PAIR1 = 0x8000 | 0x3000 | 0x0A00 | 0x0100 | 0x00E0 | 0x0003


def lit(dev: SimDevice, burner: str = "left", at_ms: int | None = None, settle_ms: int = 60_000) -> None:
    """A person lights a burner; run until it burns steadily."""
    if at_ms is not None:
        dev.run_until(at_ms)
    dev.physics.ignite(dev.burner_index(burner), dev.clock.seconds)
    dev.run_for(settle_ms)


def truth(dev: SimDevice, burner: str = "left") -> dict:
    return dev.truth()[dev.burner_index(burner)]


def core_state(dev: SimDevice) -> tuple:
    """What a command could change in the control core."""
    assert dev.app is not None
    hob = dev.app.hob
    return (
        hob.locked,
        tuple(hob.relay_closed),
        tuple((b.timer_deadline, b.cut_until, b.cut_fault, b.last_cut_reason) for b in hob.burners),
    )


# ---------------------------------------------------------------- ADS1115


def _i2c(dev: SimDevice):
    return dev.board.I2C(0)


def test_ads1115_power_on_config_and_scan():
    dev = SimDevice()
    i2c = _i2c(dev)
    assert i2c.scan() == [0x48]
    fresh = SimDevice(seed=2)
    assert fresh.board.adcs[0x48].config == 0x8583  # datasheet power-on default
    dev.board.adc_dead = True
    assert i2c.scan() == []


def test_ads1115_single_shot_conversion_at_register_level():
    dev = SimDevice()
    lit(dev, "left", at_ms=5_000)
    i2c = _i2c(dev)
    i2c.writeto(0x48, bytes([1, CFG_PAIR0 >> 8, CFG_PAIR0 & 0xFF]))
    # Busy: OS reads 0 until 1/860 s has passed.
    status = i2c.readfrom_mem(0x48, 1, 2)
    assert status[0] & 0x80 == 0
    dev.clock.ms += 2
    status = i2c.readfrom_mem(0x48, 1, 2)
    assert status[0] & 0x80
    raw = i2c.readfrom_mem(0x48, 0, 2)
    code = int.from_bytes(raw, "big", signed=True)
    true_mv = truth(dev, "left")["tc_mv"]
    assert 12.0 < true_mv < 14.0  # loaded thermocouple, relay closed: ~13 mV
    assert abs(code * LSB_MV - true_mv) < 0.1  # noise 0.01 mV, one LSB 7.8 µV
    # Pair 1 (AIN2-AIN3) is the right burner: cold.
    i2c.writeto(0x48, bytes([1, CFG_PAIR1 >> 8, CFG_PAIR1 & 0xFF]))
    dev.clock.ms += 2
    i2c.readfrom_mem(0x48, 1, 2)
    code = int.from_bytes(i2c.readfrom_mem(0x48, 0, 2), "big", signed=True)
    assert abs(code * LSB_MV) < 0.1


def test_ads1115_pga_scales_the_code():
    dev = SimDevice()
    lit(dev, "left", at_ms=5_000)
    i2c = _i2c(dev)
    codes = {}
    for pga_bits, fsr in ((0x0A00, 256.0), (0x0400, 2048.0)):
        cfg = 0x8000 | pga_bits | 0x0100 | 0x00E0 | 0x0003
        i2c.writeto(0x48, bytes([1, cfg >> 8, cfg & 0xFF]))
        dev.clock.ms += 2
        i2c.readfrom_mem(0x48, 1, 2)
        codes[fsr] = int.from_bytes(i2c.readfrom_mem(0x48, 0, 2), "big", signed=True)
    assert codes[256.0] == pytest.approx(codes[2048.0] * 8, abs=16)


def test_ads1115_errors_when_dead_or_absent():
    dev = SimDevice()
    i2c = _i2c(dev)
    with pytest.raises(OSError):
        i2c.writeto(0x49, bytes([1, 0x85, 0x83]))  # nothing at 0x49
    dev.board.adc_dead = True
    with pytest.raises(OSError):
        i2c.readfrom_mem(0x48, 0, 2)
    dev.board.adc_dead = False
    # One input's converter dead: the conversion fails the bus transfer.
    dev.physics.set_fault(0, "adc_dead", True, dev.clock.seconds)
    i2c.writeto(0x48, bytes([1, CFG_PAIR0 >> 8, CFG_PAIR0 & 0xFF]))
    dev.clock.ms += 2
    with pytest.raises(OSError):
        i2c.readfrom_mem(0x48, 1, 2)


def test_firmware_reads_the_thermocouple_through_the_fake():
    dev = SimDevice()
    lit(dev, "left", at_ms=2_000)
    state = dev.last_state()
    assert state is not None
    left = state["burners"][0]
    assert left["flame"] == "on" and left["gas"] == "open"
    # The truth is the smooth EMF; the reading carries the flame's flicker
    # (0.1 mV rms loaded with the defaults) and the ADC's noise.
    assert left["tc_mv"] == pytest.approx(truth(dev)["tc_mv"], abs=0.5)


def test_dead_adc_is_a_sensor_fault_and_the_timer_still_cuts():
    dev = SimDevice()
    lit(dev, "left", at_ms=2_000)
    dev.command("timer_set", burner="left", minutes=2)
    dev.run_for(10_000)
    dev.board.adc_dead = True
    dev.run_for(10_000)
    faults = dev.events("fault")
    assert faults and all(f["reason"] == "sensor" for f in faults)
    dev.run_until(62_000 + 120_000 + 100)
    cuts = dev.events("cut")
    assert [c["reason"] for c in cuts] == ["timer"]
    assert truth(dev)["valve"] == "closed"


# ---------------------------------------------------------------- button


def test_short_press_starts_a_timer_on_the_lit_burner_and_long_press_cuts():
    dev = SimDevice()
    lit(dev, "right", at_ms=2_000)
    dev.press_button(200)
    dev.run_for(1_000)
    sets = dev.events("timer_set")
    assert [(e["burner"], e["minutes"]) for e in sets] == [("right", 10)]
    assert dev.last_state()["burners"][1]["timer_remaining_s"] in (599, 600)
    pressed = dev.clock.ms
    dev.press_button(3_000)
    dev.run_for(4_000)
    cuts = dev.events("cut")
    assert {c["burner"] for c in cuts} == {"left", "right"}
    assert all(c["reason"] == "button" for c in cuts)
    # The long press fires while the button is still held (long_press_ms = 1500).
    assert all(pressed + 1_500 <= c["_t_ms"] <= pressed + 1_600 for c in cuts)
    assert truth(dev, "right")["valve"] == "closed"


def test_short_press_with_nothing_lit_is_rejected():
    dev = SimDevice()
    dev.run_until(5_000)
    dev.press_button(200)
    dev.run_for(1_000)
    assert dev.events("timer_set") == []
    assert [e["reason"] for e in dev.events("rejected")] == ["button: no burner is lit"]


def test_device_without_button_refuses_presses():
    dev = SimDevice(settings={"button_pin": -1})
    with pytest.raises(ValueError):
        dev.press_button(200)


# ---------------------------------------------------------------- power and resets


def test_power_loss_cuts_gas_and_the_boot_reports_it():
    dev = SimDevice()
    lit(dev, "left", at_ms=2_000)
    dev.command("timer_set", burner="left", minutes=30)
    dev.run_for(1_000)
    t0 = dev.clock.ms
    dev.power_loss(2_000)
    # The relay coil drops with the supply; contact and magnet follow within 0.1 s.
    assert not dev.physics.models[0].coil_energised
    dev.run_for(100)
    assert truth(dev)["valve"] == "closed" and not truth(dev)["gas_flow"]
    assert dev.app is None
    dev.run_until(t0 + 2_000 + BOOT_MS + 2_000)
    boots = dev.events("boot")
    assert len(boots) == 2
    assert boots[1]["reset_cause"] == "power_on"
    assert boots[1]["hot_burners"] == ["left"]  # still hot 2.8 s later
    assert [c["reason"] for c in dev.events("cut")] == ["reset"]
    assert dev.boots == 2
    assert dev.last_state()["burners"][0]["timer_remaining_s"] is None  # RAM is gone


def test_a_power_loss_during_an_outage_starts_a_new_outage_and_boots_once():
    # Found by the reliability properties: the power-on of a superseded outage
    # used to boot the board a second time (and wipe a later hang), and a boot
    # scheduled before a power loss used to happen with the power off.
    dev = SimDevice()
    dev.run_for(1_000)
    dev.power_loss(20_000)
    dev.run_for(10_000)
    dev.power_loss(150)  # the power flickers while it is still out
    dev.run_for(150 + BOOT_MS // 2)
    dev.power_loss(5_000)  # and goes again while the chip boots
    dev.run_until(40_000)
    assert dev.boots == 2, "one boot at power-on, one after the last outage only"
    assert [f["reset_cause"] for f in dev.events("boot")] == ["power_on", "power_on"]
    first_boot_after = dev.events("boot")[1]["_t_ms"]
    assert first_boot_after >= 11_000 + 150 + BOOT_MS // 2 + 5_000 + BOOT_MS


def test_a_timer_command_in_the_deadlines_own_millisecond_cannot_postpone_the_cut():
    # Found by the safety properties: a new timer arriving in the same step as
    # the old timer's end used to replace it, so the cut came later. Deadlines
    # due now are served before any input.
    dev = SimDevice()
    lit(dev, "left", at_ms=2_000)
    dev.command("timer_set", burner="left", minutes=1)
    dev.run_for(1)
    deadline = dev.events("timer_set")[-1]["_t_ms"] + 60_000
    dev.run_until(deadline - 1)
    assert not dev.events("cut")
    dev.clock.ms = deadline  # the command lands exactly on the deadline
    dev.command("timer_set", burner="left", minutes=10)
    dev.run_for(1)
    cuts = dev.events("cut")
    assert [c["reason"] for c in cuts] == ["timer"]
    assert cuts[0]["_t_ms"] == deadline


def test_watchdog_resets_a_hung_firmware_mid_timer():
    dev = SimDevice()
    lit(dev, "left", at_ms=2_000)
    dev.command("timer_set", burner="left", minutes=20)
    dev.run_for(60_000)
    wdt = dev.board.wdt
    assert wdt is not None
    last_feed = wdt.last_feed_ms
    dev.hang()
    dev.run_for(20_000)
    assert len(dev.resets) == 1
    at, cause = dev.resets[0]
    assert cause == "watchdog"
    assert at == last_feed + wdt.timeout_ms + 1
    assert truth(dev)["valve"] == "closed"
    boots = dev.events("boot")
    assert boots[-1]["reset_cause"] == "watchdog"
    assert boots[-1]["hot_burners"] == ["left"]
    cut = dev.events("cut")[-1]
    assert (cut["burner"], cut["reason"]) == ("left", "reset")
    assert dev.last_state()["burners"][0]["timer_remaining_s"] is None


def test_fed_watchdog_never_bites():
    dev = SimDevice()
    dev.run_until(3 * 3_600_000)
    assert dev.resets == []
    assert len(dev.events("boot")) == 1


# ---------------------------------------------------------------- the line


def test_garbage_lines_are_answered_with_errors_and_change_nothing():
    dev = SimDevice()
    lit(dev, "left", at_ms=2_000)
    dev.command("timer_set", burner="left", minutes=10)
    dev.run_for(1_000)
    before = core_state(dev)
    n_frames = len(dev.frames)
    rejected_before = dev.app.lines_rejected
    dev.garbage(200)
    dev.send_line(b'HG1 {"id": 5, "cmd": "cut", "burner": "left"} *00000000\n')  # bad CRC
    dev.send_line(b'{"id": 6, "cmd": "cut"}\n')  # no frame
    dev.send_line(b"x" * 600 + b"\n")  # too long
    dev.send_line(protocol.encode({"id": 7, "cmd": "open_gas", "burner": "left"}).encode())  # no such command
    dev.run_for(2_000)
    new = dev.frames[n_frames:]
    errors = [f for f in new if f.get("t") == "err"]
    codes = {f["code"] for f in errors}
    assert {"bad_crc", "bad_frame", "too_long", "unknown_cmd"} <= codes
    assert dev.app.lines_rejected - rejected_before == len(errors)
    assert not [f for f in new if f.get("t") == "evt"]
    assert core_state(dev) == before
    assert truth(dev)["valve"] == "open"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(min_size=0, max_size=300), min_size=1, max_size=5))
def test_random_bytes_never_change_the_hob(chunks):
    dev = SimDevice(seed=3)
    dev.run_until(3_500)
    before = core_state(dev)
    n_frames = len(dev.frames)
    for chunk in chunks:
        dev.send_line(chunk + b"\n")
        dev.run_for(50)
    new = dev.frames[n_frames:]
    assert all(f.get("t") in ("err", "state") for f in new)
    assert core_state(dev) == before
    assert dev.resets == []


def test_link_lost_drops_commands_and_output_but_the_device_runs_on():
    dev = SimDevice()
    lit(dev, "left", at_ms=2_000)
    dev.command("timer_set", burner="left", minutes=2)
    dev.run_for(1_000)
    dev.link.connected = False
    n_frames = len(dev.frames)
    dev.command("timer_cancel", burner="left")  # lost on the way
    dev.run_until(62_000 + 120_000 + 100)
    assert len(dev.frames) == n_frames  # nothing heard
    assert truth(dev)["valve"] == "closed"  # cut on time all the same
    dev.link.connected = True
    dev.run_for(25_000)  # the flame has gone out (cooling + filter) and a heartbeat came
    left = dev.last_state()["burners"][0]
    assert left["last_cut_reason"] == "timer" and left["gas"] == "closed"


def test_commands_are_answered_with_the_request_id():
    dev = SimDevice()
    dev.run_until(5_000)
    rid = dev.command("hello")
    dev.run_for(10)
    ok = [f for f in dev.frames if f.get("t") == "ok" and f.get("id") == rid]
    assert ok and ok[0]["burners"] == ["left", "right"]
    rid = dev.command("timer_set", burner="nope", minutes=5)
    dev.run_for(10)
    err = [f for f in dev.frames if f.get("t") == "err" and f.get("id") == rid]
    assert err and err[0]["code"] == "no_burner"


# ---------------------------------------------------------------- ticks


def test_fake_time_wraps_like_micropython():
    clock = Clock(ticks_offset=(1 << 30) - 500)
    t = FakeTime(clock)
    start = t.ticks_ms()
    assert start == (1 << 30) - 500
    clock.ms += 1_000
    assert t.ticks_ms() == 500
    assert t.ticks_diff(t.ticks_ms(), start) == 1_000
    assert t.ticks_add(start, 1_000) == 500
    assert t.ticks_diff(start, t.ticks_ms()) == -1_000
    assert t.ticks_ms() <= TICKS_MASK


@pytest.mark.parametrize("wrap_after_ms", [30_000, 60_050, 120_000])
def test_timer_across_the_tick_wrap_cuts_on_time(wrap_after_ms):
    dev = SimDevice(ticks_offset=(1 << 30) - (10_000 + wrap_after_ms))
    lit(dev, "left", at_ms=2_000, settle_ms=8_000)
    t0 = dev.clock.ms  # 10 s (plus the few ms an ADC read takes)
    assert 10_000 <= t0 < 10_020
    dev.command("timer_set", burner="left", minutes=2)
    dev.run_until(t0 + 120_000 + 200)
    cuts = dev.events("cut")
    assert [(c["burner"], c["reason"]) for c in cuts] == [("left", "timer")]
    assert t0 + 120_000 <= cuts[0]["_t_ms"] <= t0 + 120_000 + 10
    warnings = dev.events("warning")
    assert warnings and t0 + 60_000 <= warnings[0]["_t_ms"] <= t0 + 60_010
    assert truth(dev)["valve"] == "closed"
    assert dev.time.ticks_ms() < 1 << 29  # the counter did wrap


def test_left_on_guard_across_the_tick_wrap():
    dev = SimDevice(settings={"left_on_min": 10}, ticks_offset=(1 << 30) - 300_000)
    lit(dev, "left", at_ms=2_000, settle_ms=1_000)
    dev.run_until(12 * 60_000)
    cuts = dev.events("cut")
    assert cuts and {(c["burner"], c["reason"]) for c in cuts} == {("left", "left_on")}
    # Lit at 2 s, seen after the 2 s filter: cut ~10 minutes later, not 12 days.
    assert 600_000 <= cuts[0]["_t_ms"] <= 612_000
    # (core.py re-cuts every cut pulse while the thermocouple cools: see test_scenarios)
    assert all(c["_t_ms"] - cuts[0]["_t_ms"] < 30_000 for c in cuts)
    assert truth(dev)["valve"] == "closed"


def test_a_due_cut_reaches_the_relay_before_the_steps_input_is_handled():
    """Review F13: in the step where a timer ends, the relay coil drops
    before the firmware handles what came in on the line in that step
    (here a ping at the very millisecond of the deadline, which replies
    without touching the relays). Before, the coil dropped only at the end
    of the step, after the line's (and the network's) work."""
    dev = SimDevice(seed=3)
    lit(dev)
    assert dev.app is not None
    dev.command("timer_set", burner="left", minutes=1)
    dev.run_for(5)
    hob, time = dev.app.hob, dev.app.time
    deadline = hob.burners[0].timer_deadline
    assert deadline is not None
    due_ms = dev.clock.ms + time.ticks_diff(deadline, time.ticks_ms())
    order: list[tuple[int, str]] = []
    ping_id: list[int] = []
    dev.hooks.coil.append(lambda t, index, energised: order.append((t, f"coil {index} {energised}")))

    def replies(t: int, frame: dict, heard: bool) -> None:
        if frame.get("t") == "ok" and frame.get("id") in ping_id:
            order.append((t, "ping answered"))

    dev.hooks.frame.append(replies)
    dev.schedule(due_ms, lambda: ping_id.append(dev.command("ping")), "ping at the deadline")
    dev.run_until(due_ms + 100)
    assert [e for e in dev.events("cut") if e["reason"] == "timer"], dev.events()[-5:]
    assert (due_ms, "coil 0 False") in order and (due_ms, "ping answered") in order, order
    assert order.index((due_ms, "coil 0 False")) < order.index((due_ms, "ping answered")), order
