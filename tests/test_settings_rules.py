"""`hobguard settings check` catches everything the device or the bridge would
refuse, lists every problem, and says plainly what each key takes.

The rules the device shares (types and ranges in words, device ids, pins per
chip, pins used twice) live in `hobguard_fw.settings.validate`; the host adds
what only it can see (keys given twice, NaN, a file too long, warnings).
Property tests over random documents are in test_settings_properties.py."""

import json

import pytest
from hobguard import cli
from hobguard.tools import settings as settingscli
from hobguard_fw import protocol
from hobguard_fw import settings as fw_settings
from hobguard_fw import settings_rules as rules


def check(tmp_path, capsys, content):
    path = tmp_path / "s.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    code = cli.main(["settings", "check", str(path)])
    out = capsys.readouterr()
    return code, out.out, out.err


def problems(err):
    return [line[4:] for line in err.splitlines() if line.startswith("  - ")]


def burner(relay_pin, ident="left", address=72, pair=0):
    return {"id": ident, "relay_pin": relay_pin, "adc_address": address, "adc_pair": pair}


# -- every problem, not the first ------------------------------------------------


def test_every_problem_is_listed_not_only_the_first(tmp_path, capsys):
    content = (
        '{"sample_ms": 5, "relay_active_high": 1, "device_id": "Kitchen Hob", "colour": "red",'
        ' "flame_off_mv": 9.0, "led_pin": 22, "sample_ms": 50,'
        ' "burners": [{"id": "left", "relay_pin": 7, "adc_address": 72, "adc_pair": 0}]}'
    )
    code, out, err = check(tmp_path, capsys, content)
    assert code == 1 and out == ""
    listed = problems(err)
    assert "8 problems to fix" in err
    assert [p.split(":")[0] for p in listed] == [
        "sample_ms",  # given twice (host)
        "sample_ms",  # out of range
        "relay_active_high",
        "device_id",
        "colour",
        "flame_off_mv",  # a rule between keys, with a type error elsewhere
        "burners[0].relay_pin",  # a flash pin
        "led_pin",  # used twice
    ]


# -- pins -------------------------------------------------------------------------


@pytest.mark.parametrize("pin", range(6, 12))
@pytest.mark.parametrize("where", ["relay", "i2c_sda", "i2c_scl", "button_pin", "led_pin", "buzzer_pin"])
def test_a_flash_pin_is_an_error_for_every_job_on_a_classic_esp32(tmp_path, capsys, pin, where):
    content = {"burners": [burner(pin)]} if where == "relay" else {where: pin}
    code, out, err = check(tmp_path, capsys, content)
    assert code == 1, out
    key = "burners[0].relay_pin" if where == "relay" else where
    assert f"  - {key}: GPIO {pin} is wired to the flash chip on an esp32 (using it crashes the board); " in err


def test_a_flash_pin_of_a_classic_esp32_is_fine_on_an_esp32_s3(tmp_path, capsys):
    content = {
        "chip": "esp32s3",
        "burners": [burner(6), burner(7, "right", pair=1)],
        "i2c_sda": 8,
        "i2c_scl": 9,
        "led_pin": 10,
    }
    code, out, err = check(tmp_path, capsys, content)
    assert code == 0, err
    assert "2 burners on an esp32s3:" in out


def test_the_default_pins_are_refused_on_an_esp32_s3_with_what_to_use(tmp_path, capsys):
    code, out, err = check(tmp_path, capsys, {"chip": "esp32s3"})
    assert code == 1
    assert problems(err) == [
        "burners[0].relay_pin: GPIO 26 is wired to the flash chip on an esp32s3 (using it crashes the board); "
        "a relay can use GPIO 1-18, 21, 38-42, 45, 47, 48",
        "burners[1].relay_pin: GPIO 27 is wired to the flash chip on an esp32s3 (using it crashes the board); "
        "a relay can use GPIO 1-18, 21, 38-42, 45, 47, 48",
        "i2c_scl: GPIO 22 does not exist on an esp32s3; I2C can use GPIO 1-18, 21, 38-42, 47, 48",
    ]


def test_a_relay_on_gpio_0_is_an_error_the_boot_button_there_is_not(tmp_path, capsys):
    code, out, err = check(tmp_path, capsys, {"burners": [burner(0)], "button_pin": -1})
    assert code == 1
    assert problems(err) == [
        "burners[0].relay_pin: GPIO 0 must be high at reset or the esp32 starts in download mode, and a relay "
        "driver's pull-down holds it low: hobguard would never start; "
        "a relay can use GPIO 4, 5, 12-15, 18, 19, 21-23, 25-27, 32, 33"
    ]
    code, out, err = check(tmp_path, capsys, {"button_pin": 0})
    assert code == 0, err
    assert "  warning: " not in out


def test_the_boot_pin_of_an_esp32_c3_is_gpio_9(tmp_path, capsys):
    content = {"chip": "esp32c3", "burners": [burner(9)], "i2c_sda": 4, "i2c_scl": 5, "button_pin": -1, "led_pin": -1}
    code, out, err = check(tmp_path, capsys, content)
    assert code == 1
    assert "burners[0].relay_pin: GPIO 9 must be high at reset or the esp32c3 starts in download mode" in err
    content["burners"] = [burner(0)]
    code, out, err = check(tmp_path, capsys, content)
    assert code == 0, err


def test_i2c_on_the_flash_voltage_pin_is_an_error_a_relay_there_is_not(tmp_path, capsys):
    code, out, err = check(tmp_path, capsys, {"i2c_sda": 12})
    assert code == 1
    assert (
        "  - i2c_sda: GPIO 12 must be low at reset (it sets the flash voltage on an esp32), and the I2C pull-ups "
        "hold it high: the board would not boot; I2C can use GPIO" in err
    )
    code, out, err = check(tmp_path, capsys, {"burners": [burner(12)]})
    assert code == 0, err


@pytest.mark.parametrize("where", ["relay", "i2c_sda", "led_pin", "buzzer_pin"])
@pytest.mark.parametrize("pin", [34, 39])
def test_input_only_pins_cannot_drive_anything(tmp_path, capsys, where, pin):
    content = {"burners": [burner(pin)]} if where == "relay" else {where: pin}
    code, out, err = check(tmp_path, capsys, content)
    assert code == 1
    assert f"GPIO {pin} is input-only on an esp32; " in err


def test_the_serial_lines_of_a_classic_esp32_are_errors(tmp_path, capsys):
    code, out, err = check(tmp_path, capsys, {"led_pin": 1, "buzzer_pin": 3})
    assert code == 1
    assert "led_pin: GPIO 1 is the serial line to the USB port on an esp32 (hobguard's link and mpremote)" in err
    assert "buzzer_pin: GPIO 3 is the serial line to the USB port on an esp32" in err


@pytest.mark.parametrize(
    "content, words",
    [
        ({"i2c_sda": 2, "led_pin": -1}, "i2c_sda: GPIO 2 must be low or open at reset for download mode"),
        ({"led_pin": 0, "button_pin": -1}, "led_pin: an LED to GND on GPIO 0 can hold it low at reset"),
        ({"button_pin": 36}, "button_pin: GPIO 36 has no internal pull-up on an esp32"),
        ({"buzzer_pin": 17}, "buzzer_pin: GPIO 16 and 17 drive the PSRAM on ESP32-WROVER modules"),
        ({"buzzer_pin": 20}, "buzzer_pin: GPIO 20 exists only on the ESP32-PICO-V3"),
        (
            {"chip": "esp32s3", "burners": [burner(4)], "i2c_sda": 5, "i2c_scl": 6, "led_pin": 19},
            "led_pin: GPIO 19 is a USB data line of the esp32s3",
        ),
        (
            {"chip": "esp32s3", "burners": [burner(35)], "i2c_sda": 5, "i2c_scl": 6, "led_pin": -1},
            "burners[0].relay_pin: GPIO 35 belongs to the octal flash/PSRAM",
        ),
        (
            {"chip": "esp32c3", "burners": [burner(8)], "i2c_sda": 4, "i2c_scl": 5, "led_pin": -1},
            "burners[0].relay_pin: GPIO 8 must be high at reset for download mode",
        ),
        (
            {"chip": "esp32c6", "burners": [burner(4)], "i2c_sda": 5, "i2c_scl": 6, "led_pin": 16, "button_pin": -1},
            "led_pin: GPIO 16 is the serial line (UART0) to the USB-serial chip on boards that have one",
        ),
    ],
)
def test_pins_that_work_only_on_some_boards_are_warnings(tmp_path, capsys, content, words):
    code, out, err = check(tmp_path, capsys, content)
    assert code == 0, err
    assert "  warning: " + words in out


def test_no_pin_offered_instead_has_a_problem_or_a_caveat():
    for chip in rules.CHIPS:
        for role in ("relay", "i2c", "button", "led", "buzzer"):
            offered = rules.usable_pins(chip, role)
            assert offered, (chip, role)
            for pin in offered:
                assert rules.pin_problem(chip, role, pin) is None
                assert settingscli._pin_caveat(chip, pin, role) is None, (chip, role, pin)


# -- device ids: the bridge's rule ------------------------------------------------


@pytest.mark.parametrize(
    "device_id", ["Kitchen", "hob\n", "hob one", "-hob", "_hob", "hob/1", "hob+", "hob#", "a" * 33, "höb", 7, None]
)
def test_a_device_id_the_bridge_refuses_is_refused(tmp_path, capsys, device_id):
    assert not protocol.is_device_id(device_id)
    code, out, err = check(tmp_path, capsys, {"device_id": device_id})
    assert code == 1
    assert (
        '  - device_id: "" (made from the chip id) or 1 to 32 characters of a-z, 0-9, _ and -, starting with a '
        'letter or digit, other than "bridge", not ' + json.dumps(device_id)[:21] in err
    )


@pytest.mark.parametrize("device_id", protocol.RESERVED_DEVICE_IDS)
def test_a_reserved_device_id_is_refused_as_the_bridge_would(tmp_path, capsys, device_id):
    # The bridge quarantines a hello with this id (protocol.hello_problem):
    # the settings check says so before the board ever runs it.
    assert protocol.is_device_id(device_id)
    assert protocol.hello_problem({"proto": protocol.PROTOCOL_VERSION, "device": device_id}) is not None
    code, out, err = check(tmp_path, capsys, {"device_id": device_id})
    assert code == 1
    assert "device_id" in err and "not " + json.dumps(device_id) in err


@pytest.mark.parametrize("device_id", ["", "hob", "kitchen-hob_2", "0", "a" * 32])
def test_a_device_id_the_bridge_takes_is_taken(tmp_path, capsys, device_id):
    code, out, err = check(tmp_path, capsys, {"device_id": device_id})
    assert code == 0, err


# -- what only the host can see ---------------------------------------------------


def test_a_key_given_twice_is_an_error_at_any_depth(tmp_path, capsys):
    content = (
        '{"left_on_min": 90, "left_on_min": 30,'
        ' "burners": [{"id": "left", "relay_pin": 26, "relay_pin": 25, "adc_address": 72, "adc_pair": 0}]}'
    )
    code, out, err = check(tmp_path, capsys, content)
    assert code == 1
    assert problems(err) == [
        "left_on_min: given 2 times (90, then 30); the device would silently keep the last one. Keep one.",
        "burners[0].relay_pin: given 2 times (26, then 25); the device would silently keep the last one. Keep one.",
    ]


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused_and_the_rest_is_still_checked(tmp_path, capsys, constant):
    code, out, err = check(tmp_path, capsys, '{"flame_on_mv": %s, "relay_active_high": 0}' % constant)
    assert code == 1
    listed = problems(err)
    assert listed[0] == (
        f"not valid JSON: {constant} is not a JSON number, and the device's JSON parser refuses the whole file"
    )
    assert listed[1].startswith("flame_on_mv: a number of millivolts from 0.5 to 50, not ")
    assert listed[2] == "relay_active_high: true or false, not 0"


def test_a_file_longer_than_the_device_reads_is_refused(tmp_path, capsys):
    content = json.dumps(fw_settings.defaults(), indent=2) + " " * fw_settings.MAX_FILE_BYTES
    code, out, err = check(tmp_path, capsys, content)
    assert code == 1
    assert f"the device reads at most {fw_settings.MAX_FILE_BYTES}" in err


def test_the_device_reads_no_more_than_that_either(tmp_path):
    path = tmp_path / fw_settings.SETTINGS_FILE
    path.write_text(json.dumps({"left_on_min": 90}) + " " * fw_settings.MAX_FILE_BYTES)
    settings, errors = fw_settings.load(str(path))
    assert settings == fw_settings.defaults()
    assert errors == ["%s is longer than %d bytes" % (path, fw_settings.MAX_FILE_BYTES)]


def test_the_device_refuses_what_the_check_refuses(tmp_path):
    """The shared rules run at boot: a relay on a flash pin, an id the bridge
    refuses, a pin used twice: the device runs on its defaults and says why."""
    path = tmp_path / fw_settings.SETTINGS_FILE
    path.write_text(json.dumps({"burners": [burner(9)], "device_id": "Hob 1", "led_pin": 21}))
    settings, errors = fw_settings.load(str(path))
    assert settings == fw_settings.defaults()
    assert [e.split(":")[0] for e in errors] == ["device_id", "burners[0].relay_pin", "led_pin"]
