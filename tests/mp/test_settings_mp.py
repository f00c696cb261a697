# The settings rules the device shares with `hobguard settings check`, run
# under CPython and inside real MicroPython alike: the same messages, word
# for word, and the same pin rules on the board as on the host.
import gc
import os
import sys

import mpfakes
from hobguard_fw import settings


def errors_of(candidate):
    return settings.validate(candidate)[1]


def burner(pin):
    return {"id": "left", "relay_pin": pin, "adc_address": 72, "adc_pair": 0}


def test_defaults_are_valid():
    assert errors_of(settings.defaults()) == []
    assert errors_of({}) == []


def test_messages_say_what_a_key_takes_in_words():
    assert errors_of({"relay_active_high": 1}) == ["relay_active_high: true or false, not 1"]
    assert errors_of({"sample_ms": 5}) == ["sample_ms: a whole number of milliseconds from 100 to 5000, not 5"]
    assert errors_of({"cut_pulse_s": "3"}) == ['cut_pulse_s: a number of seconds from 0.5 to 30, not "3"']
    assert errors_of({"flame_on_mv": 2.0}) == ["flame_off_mv: below flame_on_mv (2.0), not 3.0"]


def test_every_problem_is_listed():
    found = errors_of({"sample_ms": 5, "relay_active_high": 1, "device_id": "Hob 1", "colour": 1})
    # (MicroPython's dicts keep no order: compare as sets)
    assert sorted([e.split(":")[0] for e in found]) == ["colour", "device_id", "relay_active_high", "sample_ms"]


def test_device_ids_follow_the_bridges_rule():
    assert errors_of({"device_id": ""}) == []
    assert errors_of({"device_id": "kitchen-hob_2"}) == []
    for bad in ("Hob", "hob\n", "-hob", "a" * 33, "hob/1"):
        assert len(errors_of({"device_id": bad})) == 1


def test_pins_the_board_cannot_use_are_refused():
    flash = errors_of({"burners": [burner(7)]})
    assert flash == [
        "burners[0].relay_pin: GPIO 7 is wired to the flash chip on an esp32 (using it crashes the board); "
        "a relay can use GPIO 4, 5, 12-15, 18, 19, 21-23, 25-27, 32, 33"
    ]
    assert errors_of({"burners": [burner(0)], "button_pin": -1})[0].startswith(
        "burners[0].relay_pin: GPIO 0 must be high at reset"
    )
    assert errors_of({"led_pin": 34})[0].startswith("led_pin: GPIO 34 is input-only on an esp32")
    assert errors_of({"led_pin": 22}) == ["led_pin: GPIO 22 is already i2c_scl's; give each job its own GPIO"]
    assert errors_of({"button_pin": 34}) == []


def test_a_file_with_a_flash_pin_makes_the_device_run_on_defaults():
    path = "hobguard_settings_mp_test.json"
    with open(path, "w") as f:
        f.write('{"burners": [{"id": "left", "relay_pin": 9, "adc_address": 72, "adc_pair": 0}]}')
    try:
        loaded, found = settings.load(path)
    finally:
        import os

        os.remove(path)
    assert loaded == settings.defaults()
    assert len(found) == 1 and found[0].startswith("burners[0].relay_pin: GPIO 9 is wired to the flash chip")


def test_the_rules_leave_the_heap_after_a_check_on_micropython():
    # On the board the rules are checked once per boot, then dropped so
    # their code is collected; on the host they stay loaded.
    on_board = sys.implementation.name == "micropython"
    settings.validate({"sample_ms": 5})
    gc.collect()
    assert ("hobguard_fw.settings_rules" in sys.modules) != on_board
    import hobguard_fw

    assert ("settings_rules" in hobguard_fw.__dict__) != on_board


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def test_the_child_lock_is_written_as_a_new_file_renamed_over_the_old():
    root = mpfakes.fresh_root()
    path = root + settings.STATE_FILE
    assert settings.load_locked(path) is False  # no file: unlocked
    assert settings.save_locked(True, path) is True
    assert settings.load_locked(path) is True and not _exists(path + ".tmp")
    assert settings.save_locked(False, path) is True
    assert settings.load_locked(path) is False and not _exists(path + ".tmp")


def test_a_lock_write_the_flash_refuses_is_reported_and_keeps_the_old_value():
    root = mpfakes.fresh_root()
    path = root + settings.STATE_FILE
    assert settings.save_locked(True, path) is True
    os.mkdir(path + ".tmp")  # the new file cannot be created
    try:
        assert settings.save_locked(False, path) is False
        assert settings.load_locked(path) is True  # the old value, whole
    finally:
        os.rmdir(path + ".tmp")


def test_a_power_cut_between_remove_and_rename_keeps_the_new_value():
    # On FAT the old file is removed before the new one takes its name: a
    # power cut in between leaves only the new file, which is read.
    root = mpfakes.fresh_root()
    path = root + settings.STATE_FILE
    with open(path + ".tmp", "w") as f:
        f.write('{"locked": true}')
    assert settings.load_locked(path) is True
    with open(path, "w") as f:
        f.write('{"locked": fal')  # a torn file (the old in-place write)
    assert settings.load_locked(path) is True  # falls back to the whole new one
