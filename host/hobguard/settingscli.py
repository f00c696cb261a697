"""`hobguard settings`: write and check the device settings file.

    hobguard settings example > my_settings.json    every key with its default
    hobguard settings check my_settings.json        what the device would say

The check is the device's own `hobguard_fw.settings.validate` (the same code
runs at boot), plus wiring checks only the host makes: a GPIO used for two
jobs is an error; pins that cannot drive a relay on a classic ESP32 give a
warning. `hobguard deploy --settings FILE` runs the same check and refuses to
copy a file that fails it. Every key is explained in docs/settings.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from hobguard_fw import settings as fw_settings

# Classic ESP32 (ESP32-WROOM-32 DevKit): GPIO 34-39 are inputs only, 6-11
# belong to the flash chip. Other chips differ, so these are warnings.
INPUT_ONLY_PINS = range(34, 40)
FLASH_PINS = range(6, 12)


def read_settings_file(path: str | Path) -> tuple[str, dict | None, list[str], list[str]]:
    """Read and check a settings file. Returns (text, settings, errors,
    warnings); settings is None when there are errors. Never raises."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as err:
        return "", None, [f"cannot read {path}: {getattr(err, 'strerror', None) or err}"], []
    try:
        candidate = json.loads(text)
    except json.JSONDecodeError as err:
        return text, None, [f"not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}"], []
    result, errors = fw_settings.validate(candidate)
    if errors:
        return text, None, list(errors), []
    errors = pin_conflicts(result)
    if errors:
        return text, None, errors, []
    return text, result, [], pin_warnings(result)


def _pins(settings: dict) -> list[tuple[int, str]]:
    pins = [(b["relay_pin"], "burners[%d].relay_pin (%s)" % (n, b["id"])) for n, b in enumerate(settings["burners"])]
    pins += [(settings["i2c_sda"], "i2c_sda"), (settings["i2c_scl"], "i2c_scl")]
    for key in ("button_pin", "led_pin", "buzzer_pin"):
        if settings[key] >= 0:
            pins.append((settings[key], key))
    return pins


def pin_conflicts(settings: dict) -> list[str]:
    """A GPIO given two jobs (a relay on the I2C data line, say) is an error."""
    seen: dict[int, str] = {}
    errors = []
    for pin, user in _pins(settings):
        if pin in seen:
            errors.append(f"GPIO {pin} is used twice: {seen[pin]} and {user}")
        else:
            seen[pin] = user
    return errors


def pin_warnings(settings: dict) -> list[str]:
    warnings = []
    for pin, user in _pins(settings):
        if pin in FLASH_PINS:
            warnings.append(f"{user}: GPIO {pin} belongs to the flash chip on a classic ESP32; the board will crash")
        elif pin in INPUT_ONLY_PINS and user not in ("button_pin",):
            warnings.append(f"{user}: GPIO {pin} is input-only on a classic ESP32 and cannot drive anything")
    if not settings["relay_active_high"]:
        warnings.append(
            "relay_active_high is false: right for normally-closed wiring, where a dead or unpowered "
            "controller leaves the hob working without protection (see docs/hardware.md)"
        )
    return warnings


def _pin_name(pin: int) -> str:
    return "none" if pin < 0 else "GPIO%d" % pin


def summary(settings: dict, candidate_keys=()) -> list[str]:
    """A few lines that say what the settings do, in the hob's terms."""
    burners = settings["burners"]
    lines = ["%d burner%s:" % (len(burners), "" if len(burners) == 1 else "s")]
    for b in burners:
        pair = "AIN0-AIN1" if b["adc_pair"] == 0 else "AIN2-AIN3"
        lines.append(
            "  %-8s relay on GPIO%d, thermocouple on ADS1115 0x%02X %s"
            % (b["id"], b["relay_pin"], b["adc_address"], pair)
        )
    if settings["relay_active_high"]:
        lines.append(
            "relay: pin high closes the loop (normally open, energised to run: a dead controller shuts the gas)"
        )
    else:
        lines.append("relay: pin low closes the loop (normally closed: a dead controller leaves the hob unprotected)")
    lines.append(
        "I2C %d: SDA GPIO%d, SCL GPIO%d, %d kHz"
        % (settings["i2c_id"], settings["i2c_sda"], settings["i2c_scl"], settings["i2c_freq"] // 1000)
    )
    lines.append(
        "button %s, LED %s, buzzer %s"
        % (_pin_name(settings["button_pin"]), _pin_name(settings["led_pin"]), _pin_name(settings["buzzer_pin"]))
    )
    guard = "off" if not settings["left_on_min"] else "after %g min" % settings["left_on_min"]
    lines.append(
        "timers up to %g min, warning %g s before a cut; burner-left-on guard %s; button timer %g min"
        % (settings["timer_max_min"], settings["warn_before_s"], guard, settings["button_timer_min"])
    )
    defaulted = [key for key in fw_settings.defaults() if key not in candidate_keys]
    if candidate_keys and defaulted:
        lines.append("keys not in the file take their defaults: " + ", ".join(defaulted))
    return lines


def example_text() -> str:
    """A complete settings file: every key at its default."""
    return json.dumps(fw_settings.defaults(), indent=2) + "\n"


def cmd_check(args) -> int:
    text, result, errors, warnings = read_settings_file(args.file)
    if errors:
        print(
            f"{args.file}: {len(errors)} problem{'s' if len(errors) != 1 else ''}; fix before copying it to a board:",
            file=sys.stderr,
        )
        for error in errors:
            print("  - " + error, file=sys.stderr)
        print(
            "Every key is explained in docs/settings.md; `hobguard settings example` prints a valid file.",
            file=sys.stderr,
        )
        return 1
    assert result is not None
    print(f"{args.file} is valid.")
    for line in summary(result, list(json.loads(text))):
        print("  " + line)
    for warning in warnings:
        print("  warning: " + warning)
    return 0


def cmd_example(args) -> int:
    sys.stdout.write(example_text())
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "settings",
        help="check or write the device settings file (hobguard_settings.json)",
        description=(
            "The device reads its burners, pins, relay polarity and timer defaults from one JSON file, "
            f"/{fw_settings.SETTINGS_FILE} on the board. Every key is explained in docs/settings.md."
        ),
    )
    actions = parser.add_subparsers(dest="settings_action", metavar="ACTION")
    check = actions.add_parser(
        "check",
        help="validate a settings file as the device does, plus wiring checks (exit status 1 on errors)",
    )
    check.add_argument("file", metavar="FILE")
    check.set_defaults(func=cmd_check)
    example = actions.add_parser("example", help="print a complete settings file with every default")
    example.set_defaults(func=cmd_example)

    def _help(_args) -> int:
        parser.print_help()
        return 2

    parser.set_defaults(func=_help)
