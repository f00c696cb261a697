"""`hobguard settings check` and `hobguard settings example`, the example file,
and docs/settings.md: every key the firmware has is documented there, with
the default and the range the code uses."""

import json
import re
from pathlib import Path

import pytest
from hobguard import cli
from hobguard.tools import settings as settingscli
from hobguard_fw import settings as fw_settings
from hobguard_fw import settings_rules as rules

REPO = Path(__file__).resolve().parents[1]
SETTINGS_DOC = REPO / "docs" / "settings.md"
EXAMPLE = REPO / "firmware" / "hobguard_settings.example.json"


def check(path, capsys):
    code = cli.main(["settings", "check", str(path)])
    out = capsys.readouterr()
    return code, out.out, out.err


def write(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


# -- check ----------------------------------------------------------------------


def test_a_valid_file_passes_with_a_summary_of_burners_and_pins(tmp_path, capsys):
    code, out, err = check(write(tmp_path, "ok.json", fw_settings.defaults()), capsys)
    assert code == 0, err
    assert "is valid" in out
    assert "2 burners" in out
    assert "left     relay on GPIO26, thermocouple on ADS1115 0x48 AIN0-AIN1" in out
    assert "right    relay on GPIO27, thermocouple on ADS1115 0x48 AIN2-AIN3" in out
    assert "SDA GPIO21, SCL GPIO22" in out
    assert "button GPIO0, LED GPIO2, buzzer none" in out
    assert "dead controller shuts the gas" in out
    assert err == ""


def test_a_partial_file_is_valid_and_says_what_takes_defaults(tmp_path, capsys):
    code, out, err = check(write(tmp_path, "few.json", {"left_on_min": 90, "led_pin": -1}), capsys)
    assert code == 0, err
    assert "burner-left-on guard after 90 min" in out
    assert "LED none" in out
    assert "keys not in the file take their defaults: device_id, chip, burners," in out


def test_one_burner_on_a_second_adc_pair(tmp_path, capsys):
    content = {"burners": [{"id": "wok", "relay_pin": 25, "adc_address": 73, "adc_pair": 1}]}
    code, out, err = check(write(tmp_path, "wok.json", content), capsys)
    assert code == 0, err
    assert "1 burner on an esp32:" in out
    assert "wok      relay on GPIO25, thermocouple on ADS1115 0x49 AIN2-AIN3" in out


@pytest.mark.parametrize(
    "content, expected",
    [
        ({"sample_ms": 5}, ["sample_ms: a whole number of milliseconds from 100 to 5000, not 5"]),
        ({"relay_active_high": 1}, ["relay_active_high: true or false, not 1"]),
        ({"relay_active_high": "yes"}, ['relay_active_high: true or false, not "yes"']),
        ({"cut_pulse_s": "3"}, ['cut_pulse_s: a number of seconds from 0.5 to 30, not "3"']),
        ({"led_pin": 2.0}, ["led_pin: a GPIO number from 0 to 48, or -1 for none, not 2.0"]),
        ({"colour": "red"}, ["colour: unknown key (a misspelling? docs/settings.md lists every key)"]),
        ({"flame_on_mv": 2.0}, ["flame_off_mv: below flame_on_mv (2.0), not 3.0"]),
        ({"idle_sample_ms": 500}, ["idle_sample_ms: at least sample_ms (1000), not 500"]),
        ({"watchdog_ms": 6000}, ["watchdog_ms: at least 2 x idle_sample_ms (8000), not 6000"]),
        ({"left_on_min": 1}, ["warn_before_s: shorter than left_on_min (1 min = 60 s) while that guard is on, not 60"]),
        (
            {"unattended_min": 0.5, "warn_before_s": 45},
            ["warn_before_s: shorter than unattended_min (0.5 min = 30.0 s) while that guard is on, not 45"],
        ),
        ({"flame_loss_cut": "on"}, ['flame_loss_cut: true or false, not "on"']),
        ({"chip": "esp8266"}, ['chip: one of "esp32", "esp32s2", "esp32s3", "esp32c3", "esp32c6", not "esp8266"']),
        (
            {"burners": [{"id": "Left", "relay_pin": 26, "adc_address": 80, "adc_pair": 2}]},
            [
                'burners[0].id: 1 to 16 characters of a-z, 0-9 and _, not "Left"',
                "burners[0].adc_address: 72, 73, 74 or 75 (0x48 to 0x4B), not 80",
                "burners[0].adc_pair: 0 (AIN0-AIN1) or 1 (AIN2-AIN3), not 2",
            ],
        ),
        ({"burners": []}, ["burners: a list of 1 to 4 burners, not []"]),
        ([1, 2], ["settings: a JSON object ({...}), not [1, 2]"]),
    ],
)
def test_an_invalid_file_lists_every_problem_and_exits_1(tmp_path, capsys, content, expected):
    code, out, err = check(write(tmp_path, "bad.json", content), capsys)
    assert code == 1
    assert out == ""
    assert "is not valid: the device would refuse it and run on its defaults" in err
    for words in expected:
        assert "  - " + words + "\n" in err
    assert "docs/settings.md" in err


def test_a_gpio_used_twice_is_an_error(tmp_path, capsys):
    content = {"burners": [{"id": "left", "relay_pin": 21, "adc_address": 72, "adc_pair": 0}], "led_pin": 22}
    code, out, err = check(write(tmp_path, "clash.json", content), capsys)
    assert code == 1
    assert "i2c_sda: GPIO 21 is already burners[0].relay_pin's; give each job its own GPIO" in err
    assert "led_pin: GPIO 22 is already i2c_scl's; give each job its own GPIO" in err


def test_wiring_that_works_only_on_some_boards_and_nc_wiring_give_warnings(tmp_path, capsys):
    content = {
        "burners": [{"id": "left", "relay_pin": 16, "adc_address": 72, "adc_pair": 0}],
        "button_pin": 34,
        "relay_active_high": False,
    }
    code, out, err = check(write(tmp_path, "warn.json", content), capsys)
    assert code == 0, err
    assert "warning: burners[0].relay_pin: GPIO 16 and 17 drive the PSRAM on ESP32-WROVER modules" in out
    assert "warning: button_pin: GPIO 34 has no internal pull-up on an esp32: fit a 10 kΩ pull-up" in out
    assert "warning: relay_active_high is false" in out
    assert "pin low closes the loop" in out


@pytest.mark.parametrize(
    "content, words",
    [
        ('{"left_on_min": 90,', "not valid JSON: Expecting property name enclosed in double quotes at line 1"),
        ("", "not valid JSON: Expecting value at line 1, column 1"),
        ('{"a": 1} trailing', "not valid JSON: Extra data"),
    ],
)
def test_a_corrupt_file_is_reported_with_its_position(tmp_path, capsys, content, words):
    code, out, err = check(write(tmp_path, "corrupt.json", content), capsys)
    assert code == 1
    assert words in err


def test_a_binary_or_missing_file_is_reported(tmp_path, capsys):
    binary = tmp_path / "junk.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    code, out, err = check(binary, capsys)
    assert code == 1 and "cannot read" in err
    code, out, err = check(tmp_path / "nowhere.json", capsys)
    assert code == 1 and "cannot read" in err


def test_settings_without_an_action_prints_help_and_exits_2(capsys):
    assert cli.main(["settings"]) == 2
    assert "check" in capsys.readouterr().out


# -- example ----------------------------------------------------------------------


def test_example_prints_every_default(capsys):
    assert cli.main(["settings", "example"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == fw_settings.defaults()
    assert list(printed) == list(fw_settings.defaults())


def test_the_example_file_is_the_example_output_and_validates():
    text = EXAMPLE.read_text()
    assert text == settingscli.example_text(), "regenerate: hobguard settings example > " + str(EXAMPLE)
    _, result, errors, warnings = settingscli.read_settings_file(EXAMPLE)
    assert errors == []
    assert warnings == []
    assert result == fw_settings.defaults()


# -- docs/settings.md -------------------------------------------------------------


def _doc_rows():
    """key -> cells of its row in the 'Every other key' table."""
    rows = {}
    for line in SETTINGS_DOC.read_text().splitlines():
        match = re.match(r"^\| `(\w+)` \|", line)
        if match:
            rows[match.group(1)] = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
    return rows


def test_every_settings_key_is_documented():
    rows = _doc_rows()
    missing = [key for key in fw_settings.defaults() if key != "burners" and key not in rows]
    assert missing == [], "document these keys in docs/settings.md"
    for key in rules._BURNER_KEYS:
        assert key in rows, "burner key %s is not documented" % key
    assert "`burners`" in SETTINGS_DOC.read_text()
    assert "`hobguard_settings.json`" in SETTINGS_DOC.read_text()


def test_documented_keys_exist():
    known = set(fw_settings.defaults()) | set(rules._BURNER_KEYS)
    assert set(_doc_rows()) - known == set()


@pytest.mark.parametrize("key", sorted(rules._LIMITS))
def test_documented_default_and_range_agree_with_the_code(key):
    rows = _doc_rows()
    kind, low, high = rules._LIMITS[key]
    cells = rows[key]
    default, allowed = cells[-2], cells[-1]
    assert default == "`%s`" % json.dumps(fw_settings.defaults()[key])
    if kind == "bool":
        assert allowed == "`true` / `false`"
    elif key == "device_id":
        assert allowed == '`""`, or 1..%d of `a-z 0-9 _ -` starting with a letter or digit' % high
    else:
        assert allowed == "`%s..%s`" % (low, high)
    assert cells[1], "no meaning given for " + key


def test_the_chip_row_lists_every_chip_the_code_knows():
    cells = _doc_rows()["chip"]
    assert cells[-2] == '`"esp32"`' == "`%s`" % json.dumps(fw_settings.defaults()["chip"])
    assert cells[-1] == ", ".join("`%s`" % json.dumps(chip) for chip in rules.CHIPS)
