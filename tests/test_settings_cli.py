"""`hobguard settings check` and `hobguard settings example`, the example file,
and docs/settings.md: every key the firmware has is documented there, with
the default and the range the code uses."""

import json
import re
from pathlib import Path

import pytest
from hobguard import cli, settingscli
from hobguard_fw import settings as fw_settings

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
    assert "keys not in the file take their defaults: device_id, burners," in out


def test_one_burner_on_a_second_adc_pair(tmp_path, capsys):
    content = {"burners": [{"id": "wok", "relay_pin": 25, "adc_address": 73, "adc_pair": 1}]}
    code, out, err = check(write(tmp_path, "wok.json", content), capsys)
    assert code == 0, err
    assert "1 burner:" in out
    assert "wok      relay on GPIO25, thermocouple on ADS1115 0x49 AIN2-AIN3" in out


@pytest.mark.parametrize(
    "content, expected",
    [
        ({"sample_ms": 5}, ["sample_ms: int in 100..5000"]),
        ({"relay_active_high": 1}, ["relay_active_high: bool in 0..0"]),
        ({"colour": "red"}, ["unknown key 'colour'"]),
        ({"flame_on_mv": 2.0}, ["flame_off_mv must be below flame_on_mv"]),
        (
            {"burners": [{"id": "Left", "relay_pin": 26, "adc_address": 80, "adc_pair": 2}]},
            ["burners[0].id: 1-16 characters", "burners[0].adc_address: 72..75", "burners[0].adc_pair: 0 (AIN0-AIN1)"],
        ),
        ({"burners": []}, ["burners: a list of 1 to 4 burners"]),
        ([1, 2], ["settings: a JSON object"]),
    ],
)
def test_an_invalid_file_lists_every_problem_and_exits_1(tmp_path, capsys, content, expected):
    code, out, err = check(write(tmp_path, "bad.json", content), capsys)
    assert code == 1
    assert out == ""
    for words in expected:
        assert "  - " + words in err
    assert "docs/settings.md" in err


def test_a_gpio_used_twice_is_an_error(tmp_path, capsys):
    content = {"burners": [{"id": "left", "relay_pin": 21, "adc_address": 72, "adc_pair": 0}], "led_pin": 22}
    code, out, err = check(write(tmp_path, "clash.json", content), capsys)
    assert code == 1
    assert "GPIO 21 is used twice: burners[0].relay_pin (left) and i2c_sda" in err
    assert "GPIO 22 is used twice: i2c_scl and led_pin" in err


def test_pins_that_cannot_drive_a_relay_and_nc_wiring_give_warnings(tmp_path, capsys):
    content = {
        "burners": [{"id": "left", "relay_pin": 34, "adc_address": 72, "adc_pair": 0}],
        "buzzer_pin": 7,
        "relay_active_high": False,
    }
    code, out, err = check(write(tmp_path, "warn.json", content), capsys)
    assert code == 0, err
    assert "warning: burners[0].relay_pin (left): GPIO 34 is input-only" in out
    assert "warning: buzzer_pin: GPIO 7 belongs to the flash chip" in out
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
    for key in fw_settings._BURNER_KEYS:
        assert key in rows, "burner key %s is not documented" % key
    assert "`burners`" in SETTINGS_DOC.read_text()
    assert "`hobguard_settings.json`" in SETTINGS_DOC.read_text()


def test_documented_keys_exist():
    known = set(fw_settings.defaults()) | set(fw_settings._BURNER_KEYS)
    assert set(_doc_rows()) - known == set()


@pytest.mark.parametrize("key", sorted(fw_settings._LIMITS))
def test_documented_default_and_range_agree_with_the_code(key):
    rows = _doc_rows()
    kind, low, high = fw_settings._LIMITS[key]
    cells = rows[key]
    default, allowed = cells[-2], cells[-1]
    assert default == "`%s`" % json.dumps(fw_settings.defaults()[key])
    if kind == "bool":
        assert allowed == "`true` / `false`"
    elif kind == "str":
        assert allowed == "`%d..%d` characters" % (low, high)
    else:
        assert allowed == "`%s..%s`" % (low, high)
    assert cells[1], "no meaning given for " + key
