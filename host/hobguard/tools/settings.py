"""`hobguard settings`: write and check the device settings file.

    hobguard settings example > my_settings.json    every key with its default
    hobguard settings check my_settings.json        what the device would say

The check is the device's own `hobguard_fw.settings.validate` (the same code
runs at boot: types, ranges, ids, pins per chip, rules between keys), plus
what only the host can see: a key given twice (the device's JSON parser
keeps the last one without a word), JSON the device's parser refuses (NaN,
Infinity), a file too long for the device, and warnings for wiring that
works only on some boards. Every problem is listed, not just the first.
`hobguard deploy --settings FILE` runs the same check and refuses to copy a
file that fails it. Every key is explained in docs/settings.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from hobguard_fw import settings as fw_settings
from hobguard_fw import settings_rules as rules


class _Object(dict):
    """A JSON object that remembers the keys it was given more than once."""

    duplicates: dict[str, list]


def _object(pairs: list[tuple[str, object]]) -> _Object:
    obj = _Object()
    obj.duplicates = {}
    for key, value in pairs:
        if key in obj:
            obj.duplicates.setdefault(key, [obj[key]]).append(value)
        obj[key] = value
    return obj


def _duplicate_errors(value, path: str = "") -> list[str]:
    errors = []
    if isinstance(value, _Object):
        for key, values in value.duplicates.items():
            where = f"{path}.{key}" if path else key
            shown = ", then ".join(rules._show(v) for v in values)
            errors.append(
                f"{where}: given {len(values)} times ({shown}); the device would silently keep the last one. Keep one."
            )
        for key, item in value.items():
            errors += _duplicate_errors(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for n, item in enumerate(value):
            errors += _duplicate_errors(item, f"{path}[{n}]")
    return errors


def parse_settings_text(text: str) -> tuple[object, list[str]]:
    """Parse a settings file's text as the device would, and stricter.
    Returns (candidate, errors); candidate is None when the text is not a
    JSON document the device can read."""
    size = len(text.encode())
    if size > fw_settings.MAX_FILE_BYTES:
        return None, [
            f"the file is {size} bytes; the device reads at most {fw_settings.MAX_FILE_BYTES} "
            "(a complete settings file is about 1 KB)"
        ]
    constants: list[str] = []

    def constant(name: str) -> float:
        # NaN and Infinity are not JSON: the device's parser refuses the
        # whole file. Read on, so every other problem is listed too.
        constants.append(name)
        return float(name)

    try:
        candidate = json.loads(text, object_pairs_hook=_object, parse_constant=constant)
    except json.JSONDecodeError as err:
        return None, [f"not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}"]
    except (ValueError, RecursionError) as err:
        return None, [f"not valid JSON: {err}"]
    errors = [
        f"not valid JSON: {name} is not a JSON number, and the device's JSON parser refuses the whole file"
        for name in dict.fromkeys(constants)
    ]
    return candidate, errors + _duplicate_errors(candidate)


def check_candidate(candidate: object) -> tuple[dict | None, list[str], list[str]]:
    """The device's checks, then the host's warnings for a valid document.
    Returns (settings or None, errors, warnings)."""
    result, errors = fw_settings.validate(candidate)
    if errors:
        return None, list(errors), []
    return result, [], pin_warnings(result)


def read_settings_file(path: str | Path) -> tuple[str, dict | None, list[str], list[str]]:
    """Read and check a settings file. Returns (text, settings, errors,
    warnings); settings is None when there are errors. Never raises."""
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        return "", None, [f"cannot read {path}: {err.strerror or err}"], []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        return "", None, [f"cannot read {path}: not UTF-8 text (byte {err.start})"], []
    candidate, errors = parse_settings_text(text)
    if candidate is None:
        return text, None, errors, []
    result, check_errors, warnings = check_candidate(candidate)
    errors += check_errors
    if errors:
        return text, None, errors, []
    return text, result, [], warnings


# -- warnings: wiring that works on some boards and not on others -------------

_USB_LINES = {"esp32s2": (19, 20), "esp32s3": (19, 20), "esp32c3": (18, 19), "esp32c6": (12, 13)}
_UART0 = {"esp32s2": (43, 44), "esp32s3": (43, 44), "esp32c3": (21, 20), "esp32c6": (16, 17)}


def _pin_caveat(chip: str, pin: int, role: str) -> str | None:
    """What may go wrong with `pin` as `role` on `chip`, on some boards or
    with some circuits; None when nothing is known."""
    info = rules.CHIPS[chip]
    input_only, boot_pin = info[3], info[5]
    if role == "button" and input_only and input_only[0] <= pin <= input_only[1]:
        return (
            f"GPIO {pin} has no internal pull-up on an {chip}: fit a 10 kΩ pull-up to 3.3 V, or the button "
            "input floats (phantom presses; a long one cuts every burner)"
        )
    if pin == boot_pin and role in ("led", "buzzer"):
        what = "an LED to GND" if role == "led" else "a buzzer driver with a pull-down"
        return f"{what} on GPIO {pin} can hold it low at reset, and the {chip} then starts in download mode"
    if chip == "esp32":
        if pin == 2 and role == "i2c":
            return (
                "GPIO 2 must be low or open at reset for download mode, and the I2C pull-ups hold it high: "
                "`hobguard flash` cannot reach the board while they are connected"
            )
        if pin in (16, 17):
            return "GPIO 16 and 17 drive the PSRAM on ESP32-WROVER modules (they are free on an ESP32-WROOM-32)"
        if pin == 20:
            return "GPIO 20 exists only on the ESP32-PICO-V3; other ESP32 packages have no such pin"
        return None
    if pin in _USB_LINES[chip]:
        return (
            f"GPIO {pin} is a USB data line of the {chip}: on a board whose USB socket is wired to the chip "
            "itself (no USB-serial chip), hobguard's serial link and mpremote run over it"
        )
    if pin in _UART0[chip]:
        return (
            f"GPIO {pin} is the serial line (UART0) to the USB-serial chip on boards that have one: "
            "hobguard's serial link and mpremote run over it there"
        )
    if chip == "esp32s3" and 33 <= pin <= 37:
        return (
            f"GPIO {pin} belongs to the octal flash/PSRAM on ESP32-S3 modules that have it (N8R8, N16R8, "
            "WROOM-2); it is free on the others"
        )
    if chip in ("esp32s2", "esp32s3") and pin == 46 and role == "i2c":
        return (
            "GPIO 46 must be low at reset for download mode, and the I2C pull-ups hold it high: "
            "`hobguard flash` cannot reach the board while they are connected"
        )
    if chip in ("esp32c3", "esp32c6") and pin == 8 and role in ("relay", "led", "buzzer"):
        return (
            "GPIO 8 must be high at reset for download mode; a pull-down or an LED holds it low, so "
            "`hobguard flash` cannot reach the board"
        )
    if chip == "esp32c3" and pin == 2 and role in ("relay", "led", "buzzer"):
        return (
            "GPIO 2 is a strapping pin that Espressif asks to be high at reset; a pull-down or an LED may "
            "keep the board from starting"
        )
    return None


def pin_warnings(settings: dict) -> list[str]:
    warnings = []
    for key, pin, role in rules.pin_jobs(settings):
        caveat = _pin_caveat(settings["chip"], pin, role)
        if caveat:
            warnings.append(f"{key}: {caveat}")
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
    lines = ["%d burner%s on an %s:" % (len(burners), "" if len(burners) == 1 else "s", settings["chip"])]
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
            f"{args.file} is not valid: the device would refuse it and run on its defaults. "
            f"{len(errors)} problem{'s' if len(errors) != 1 else ''} to fix:",
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
