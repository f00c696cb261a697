# The firmware App on minimal fakes: boot, serial commands, settings file,
# lock persistence. Runs under CPython and inside real MicroPython.
import mpfakes
from hobguard_fw import app, protocol
from hobguard_fw import settings as store


def boot(root=None, settings_text=None, state_text=None, start=0):
    if root is None:
        root = mpfakes.fresh_root()
    if settings_text is not None:
        with open(root + store.SETTINGS_FILE, "w") as f:
            f.write(settings_text)
    if state_text is not None:
        with open(root + store.STATE_FILE, "w") as f:
            f.write(state_text)
    clock = mpfakes.Time(start)
    machine = mpfakes.Machine(clock)
    link = mpfakes.Link()
    device = app.App(machine, clock, link, root=root)
    return device, machine, clock, link, root


def run(device, clock, ms):
    end = clock.now + ms
    while clock.now < end:
        wait = device.step()
        clock.now += max(1, min(wait, end - clock.now))


def frames(link):
    result = []
    for chunk in link.out:
        for line in chunk.split("\n"):
            if line:
                result.append(protocol.decode(line))
    link.out = []
    return result


def test_boot_reports_cause_and_closes_relays_after_the_pulse():
    device, machine, clock, link, root = boot()
    assert machine.levels[26] == 0 and machine.levels[27] == 0  # open at start
    run(device, clock, 5000)
    sent = frames(link)
    boots = [f for f in sent if f.get("event_type") == "boot"]
    assert len(boots) == 1 and boots[0]["reset_cause"] == "power_on"
    assert machine.levels[26] == 1 and machine.levels[27] == 1
    assert machine.fed > 0


def test_hello_and_cut_over_the_line():
    device, machine, clock, link, root = boot()
    run(device, clock, 5000)
    frames(link)
    link.inbound = (protocol.request(5, "hello") + protocol.request(6, "cut", burner="right")).encode()
    run(device, clock, 10)
    sent = frames(link)
    replies = [f for f in sent if f.get("t") == "ok"]
    assert replies[0]["id"] == 5 and replies[0]["burners"] == ["left", "right"]
    assert replies[0]["device"] == "hob-aabbcc"
    assert replies[1]["id"] == 6 and replies[1]["state"]["burners"][1]["relay"] == "open"
    assert machine.levels[27] == 0 and machine.levels[26] == 1


def test_garbage_lines_are_answered_and_change_nothing():
    device, machine, clock, link, root = boot()
    run(device, clock, 5000)
    frames(link)
    good = protocol.request(9, "cut", burner="left")
    flipped = good.replace("left", "lefu")
    link.inbound = b"\x00\xff hello\n" + flipped.encode() + b"x" * 600 + b"\n" + good[:-12].encode() + b"\n"
    run(device, clock, 10)
    sent = frames(link)
    codes = [f["code"] for f in sent if f.get("t") == "err"]
    assert codes == ["bad_frame", "bad_crc", "too_long", "bad_frame"]
    assert machine.levels[26] == 1 and machine.levels[27] == 1
    assert [f for f in sent if f.get("t") == "evt"] == []


def test_corrupt_settings_file_falls_back_to_defaults_and_says_so():
    device, machine, clock, link, root = boot(settings_text='{"burners": [}')
    run(device, clock, 5000)
    sent = frames(link)
    warnings = [f for f in sent if f.get("reason") == "settings_invalid"]
    assert len(warnings) == 1
    assert device.hob.names == ["left", "right"]


def test_invalid_settings_value_falls_back_to_defaults():
    device, machine, clock, link, root = boot(settings_text='{"timer_max_min": -5}')
    run(device, clock, 5000)
    assert device.settings["timer_max_min"] == 720
    assert [f for f in frames(link) if f.get("reason") == "settings_invalid"]


def test_lock_persists_across_a_reboot():
    device, machine, clock, link, root = boot()
    run(device, clock, 5000)
    link.inbound = protocol.request(1, "lock", on=True).encode()
    run(device, clock, 1000)
    assert machine.levels[26] == 0
    device2, machine2, clock2, link2, root = boot(root=root)
    run(device2, clock2, 10000)
    assert machine2.levels[26] == 0 and machine2.levels[27] == 0
    assert device2.hob.locked


def test_dead_adc_reports_sensor_faults_but_runs():
    device, machine, clock, link, root = boot()
    machine.adc_dead = True
    run(device, clock, 10000)
    faults = [f for f in frames(link) if f.get("event_type") == "fault"]
    assert sorted(f["burner"] for f in faults) == ["left", "right"]
    assert device.hob.fault() == "sensor"


def test_flame_seen_through_the_ads1115_driver():
    device, machine, clock, link, root = boot()
    run(device, clock, 5000)
    machine.mv[1] = 11.5
    run(device, clock, 8000)
    ignited = [f for f in frames(link) if f.get("event_type") == "ignited"]
    assert len(ignited) == 1 and ignited[0]["burner"] == "right"


def test_indicator_blinks_by_pwm_without_waking_the_loop():
    from hobguard_fw import drivers

    device, machine, clock, link, root = boot()
    run(device, clock, 5000)
    led = machine.pwm[2]
    assert led.duty == 0  # idle: dark
    link.inbound = protocol.request(1, "lock", on=True).encode()
    run(device, clock, 100)
    freq, duty = drivers.PATTERNS["locked"]
    assert led.frequency == freq and led.duty == int(duty * 65535)
    # an idle, locked hob sleeps until its next sample: no wake-ups to blink
    assert device.step() >= 1000


def test_a_deadline_left_days_behind_still_comes_due():
    # No step can come 6.2 days late on the board (the watchdog resets it
    # first), but no stored tick may turn meaningless either: ticks_diff()
    # reads a sample or heartbeat deadline 2**29 ms behind as lying days
    # ahead, and the device used to stop sampling and reporting.
    device, machine, clock, link, root = boot()
    run(device, clock, 5000)
    frames(link)
    clock.now += (1 << 29) + 5000
    machine.mv[0] = 11.5
    run(device, clock, 30000)
    sent = frames(link)
    assert [f["burner"] for f in sent if f.get("event_type") == "ignited"] == ["left"]
    states = [f for f in sent if f.get("t") == "state"]
    assert len(states) >= 3  # the flame change and heartbeats every 10 s
    assert states[-1]["burners"][0]["flame"] == "on"
    # the missed time is not counted as uptime: it never jumps nor goes back
    assert 0 <= states[-1]["uptime_s"] <= 5 + 30


def test_uptime_in_state_frames_never_goes_back():
    device, machine, clock, link, root = boot(start=(1 << 30) - 20000)  # the counter wraps in the run
    seen = []
    end = clock.now + 60000
    while clock.now < end:
        wait = device.step()
        clock.now += max(1, min(wait, end - clock.now))
        for f in frames(link):
            if f.get("t") == "state":
                seen.append(f["uptime_s"])
    assert len(seen) >= 6
    assert seen == sorted(seen) and seen[0] >= 0 and 58 <= seen[-1] <= 60
