# The rules a settings document must follow, shared by the device (at boot,
# through settings.validate) and the host (`hobguard settings check`): types
# and ranges in words, ids, the pins each ESP32 chip can give each job, and
# the rules between keys. Every message names its key and what it takes.
# On the board this module is imported for one check and dropped again
# (see settings.validate), so its code does not hold the heap all day.
import json

from hobguard_fw.protocol import RESERVED_DEVICE_IDS, is_burner_id, is_device_id, is_number

# key -> (type, low, high). Types: "int", "num", "bool", "str".
_LIMITS = {
    "device_id": ("str", 0, 32),
    "relay_active_high": ("bool", 0, 0),
    "i2c_id": ("int", 0, 1),
    "i2c_scl": ("int", 0, 48),
    "i2c_sda": ("int", 0, 48),
    "i2c_freq": ("int", 10000, 1000000),
    "button_pin": ("int", -1, 48),
    "led_pin": ("int", -1, 48),
    "buzzer_pin": ("int", -1, 48),
    "timer_max_min": ("num", 1, 1440),
    "warn_before_s": ("num", 0, 600),
    "cut_pulse_s": ("num", 0.5, 30),
    "left_on_min": ("num", 0, 1440),
    "unattended_min": ("num", 0, 720),
    "flame_loss_cut": ("bool", 0, 0),
    "verify_s": ("num", 5, 300),
    "button_timer_min": ("num", 1, 120),
    "long_press_ms": ("int", 300, 10000),
    "flame_on_mv": ("num", 0.5, 50),
    "flame_off_mv": ("num", 0.1, 50),
    "flame_open_on_mv": ("num", 0.5, 80),
    "flame_open_off_mv": ("num", 0.1, 80),
    "flame_filter_ms": ("int", 0, 30000),
    "tc_max_mv": ("num", 30, 250),
    "sample_ms": ("int", 100, 5000),
    "idle_sample_ms": ("int", 100, 10000),
    "heartbeat_s": ("num", 1, 300),
    "watchdog_ms": ("int", 2000, 60000),
}

_BURNER_KEYS = ("id", "relay_pin", "adc_address", "adc_pair")
_UNITS = (("_ms", "milliseconds"), ("_s", "seconds"), ("_min", "minutes"), ("_mv", "millivolts"))

# What each chip's GPIOs can do, for the pin checks below (ESP-IDF soc_caps
# and the chips' datasheets). Per chip: last GPIO, GPIOs missing below it,
# flash/PSRAM pins (first, last), input-only pins (first, last) or None,
# the serial console's pins when nothing else can carry hobguard's serial
# link, the boot-mode pin (must be high at reset, else download mode), the
# flash-voltage pin (must be low at reset on 3.3 V-flash modules) or -1,
# and pins that work but need care (the host says why; never suggested).
CHIPS = {
    "esp32": (39, (24, 28, 29, 30, 31), (6, 11), (34, 39), (1, 3), 0, 12, (2, 16, 17, 20)),
    "esp32s2": (46, (22, 23, 24, 25), (26, 32), (46, 46), (), 0, 45, (19, 20, 43, 44, 46)),
    "esp32s3": (48, (22, 23, 24, 25), (26, 32), None, (), 0, 45, (19, 20, 33, 34, 35, 36, 37, 43, 44, 46)),
    "esp32c3": (21, (), (12, 17), None, (), 9, -1, (2, 8, 18, 19, 20, 21)),
    "esp32c6": (30, (), (24, 30), None, (), 9, -1, (8, 12, 13, 16, 17)),
}
# What drives each kind of pin at reset, which decides the strapping rules:
# a relay driver has a pull-down (docs/hardware.md), the ADS1115 module's
# I2C lines have pull-ups, the button (to GND) leaves its pin alone.
_ROLE_WORDS = {"relay": "a relay", "i2c": "I2C", "button": "the button", "led": "the LED", "buzzer": "the buzzer"}


def _show(value):
    try:
        text = json.dumps(value)
    except Exception:
        text = repr(value)
    if len(text) > 24:
        text = text[:21] + "..."
    return text


def _name(key):
    # An unknown key as written, quoted when it is not a plain name (an
    # empty key, spaces, a newline), so the message cannot be misread.
    if isinstance(key, str) and key and is_burner_id(key[:16]) and len(key) <= 40:
        return key
    return _show(key)


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _number_words(key, kind, low, high):
    unit = ""
    for suffix, words in _UNITS:
        if key.endswith(suffix):
            unit = " of " + words
    if key.endswith("_pin") or key in ("i2c_scl", "i2c_sda"):
        return "a GPIO number from 0 to %d" % high + (", or -1 for none" if low < 0 else "")
    if kind == "int":
        return "a whole number%s from %d to %d" % (unit, low, high)
    return "a number%s from %s to %s" % (unit, _show(low), _show(high))


def _expected(key, value):
    """None when value is right for key, else what key takes, in words."""
    if key == "chip":
        if isinstance(value, str) and value in CHIPS:
            return None
        return "one of " + ", ".join([_show(name) for name in CHIPS])
    if key == "device_id":
        if value == "" or (is_device_id(value) and value not in RESERVED_DEVICE_IDS):
            return None
        return (
            '"" (made from the chip id) or 1 to 32 characters of a-z, 0-9, _ and -, starting with a letter or digit, '
            "other than " + ", ".join([_show(name) for name in RESERVED_DEVICE_IDS])
        )
    kind, low, high = _LIMITS[key]
    if kind == "bool":
        return None if isinstance(value, bool) else "true or false"
    if kind == "int":
        ok = _is_int(value) and low <= value <= high
    else:
        ok = is_number(value) and low <= value <= high
    return None if ok else _number_words(key, kind, low, high)


def _check_burners(burners, errors):
    """Check the burner list; return [(key, pin)] for every relay pin that is
    a whole number (so the pin checks can judge it), or None if the list
    itself is unusable."""
    if not isinstance(burners, list) or not 1 <= len(burners) <= 4:
        errors.append("burners: a list of 1 to 4 burners, not " + _show(burners))
        return None
    ids = {}
    inputs = {}
    relays = []
    for n, burner in enumerate(burners):
        where = "burners[%d]" % n
        if not isinstance(burner, dict):
            errors.append(where + ": an object with id, relay_pin, adc_address and adc_pair, not " + _show(burner))
            continue
        for key in burner:
            if key not in _BURNER_KEYS:
                errors.append(
                    "%s.%s: unknown key; a burner has id, relay_pin, adc_address and adc_pair" % (where, _name(key))
                )
        for key in _BURNER_KEYS:
            if key not in burner:
                errors.append(
                    "%s.%s: missing; every burner needs id, relay_pin, adc_address and adc_pair" % (where, key)
                )
        ident = burner.get("id")
        if "id" not in burner:
            pass
        elif not is_burner_id(ident):
            errors.append(where + ".id: 1 to 16 characters of a-z, 0-9 and _, not " + _show(ident))
        elif ident in ids:
            errors.append("%s.id: %s is already %s's; each burner needs its own id" % (where, _show(ident), ids[ident]))
        else:
            ids[ident] = where
        pin = burner.get("relay_pin")
        if "relay_pin" not in burner:
            pass
        elif not _is_int(pin) or pin not in range(49):
            errors.append(where + ".relay_pin: a GPIO number from 0 to 48, not " + _show(pin))
        else:
            relays.append((where + ".relay_pin", pin))
        address = burner.get("adc_address")
        pair = burner.get("adc_pair")
        address_ok = _is_int(address) and address in (72, 73, 74, 75)
        pair_ok = _is_int(pair) and pair in (0, 1)
        if "adc_address" in burner and not address_ok:
            errors.append(where + ".adc_address: 72, 73, 74 or 75 (0x48 to 0x4B), not " + _show(address))
        if "adc_pair" in burner and not pair_ok:
            errors.append(where + ".adc_pair: 0 (AIN0-AIN1) or 1 (AIN2-AIN3), not " + _show(pair))
        if address_ok and pair_ok:
            if (address, pair) in inputs:
                errors.append(
                    "%s.adc_pair: ADS1115 %d pair %d is already %s's; each burner needs its own input"
                    % (where, address, pair, inputs[(address, pair)])
                )
            else:
                inputs[(address, pair)] = where
    return relays


def _ranges(pins):
    """[2, 4, 5, 12, 13, 14] -> '2, 4, 5, 12-14'"""
    parts = []
    i = 0
    while i < len(pins):
        j = i
        while j + 1 < len(pins) and pins[j + 1] == pins[j] + 1:
            j += 1
        if j - i >= 2:
            parts.append("%d-%d" % (pins[i], pins[j]))
        else:
            for k in range(i, j + 1):
                parts.append(str(pins[k]))
        i = j + 1
    return ", ".join(parts)


def pin_problem(chip, role, pin):
    """Why `pin` cannot serve `role` on `chip`, or None. Only what stops the
    board or the job; what merely needs care is the host's warning."""
    last, missing, flash, input_only, console, boot_pin, voltage_pin, _care = CHIPS[chip]
    if pin < 0 or pin > last or pin in missing:
        return "GPIO %d does not exist on an %s" % (pin, chip)
    if flash[0] <= pin <= flash[1]:
        return "GPIO %d is wired to the flash chip on an %s (using it crashes the board)" % (pin, chip)
    if input_only and input_only[0] <= pin <= input_only[1] and role != "button":
        return "GPIO %d is input-only on an %s" % (pin, chip)
    if pin in console:
        return "GPIO %d is the serial line to the USB port on an %s (hobguard's link and mpremote)" % (pin, chip)
    if pin == boot_pin and role == "relay":
        return (
            "GPIO %d must be high at reset or the %s starts in download mode, and a relay driver's pull-down "
            "holds it low: hobguard would never start" % (pin, chip)
        )
    if pin == voltage_pin and role == "i2c":
        return (
            "GPIO %d must be low at reset (it sets the flash voltage on an %s), and the I2C pull-ups hold it "
            "high: the board would not boot" % (pin, chip)
        )
    return None


def usable_pins(chip, role):
    """The pins that serve `role` on `chip` without a problem or a caveat:
    no pin that needs care, no input-only pin, the boot pin only for the
    button (it is the board's BOOT button)."""
    info = CHIPS[chip]
    usable = []
    for pin in range(info[0] + 1):
        if pin in info[7] or (info[3] and info[3][0] <= pin <= info[3][1]):
            continue
        if (pin == info[5] and role != "button") or pin_problem(chip, role, pin) is not None:
            continue
        usable.append(pin)
    return usable


def pin_jobs(settings, relays=None):
    """[(key, pin, role)] for every GPIO the settings use, relays first."""
    if relays is None:
        relays = [("burners[%d].relay_pin" % n, b["relay_pin"]) for n, b in enumerate(settings["burners"])]
    jobs = [(key, pin, "relay") for key, pin in relays]
    jobs.append(("i2c_sda", settings["i2c_sda"], "i2c"))
    jobs.append(("i2c_scl", settings["i2c_scl"], "i2c"))
    for key in ("button_pin", "led_pin", "buzzer_pin"):
        if settings[key] >= 0:
            jobs.append((key, settings[key], key[:-4]))
    return jobs


def _check_pins(settings, relays, bad, errors):
    chip = None if "chip" in bad else settings["chip"]
    seen = {}
    for key, pin, role in pin_jobs(settings, relays):
        if key in bad:
            continue
        if pin in seen:
            errors.append("%s: GPIO %d is already %s's; give each job its own GPIO" % (key, pin, seen[pin]))
            continue
        seen[pin] = key
        problem = chip and pin_problem(chip, role, pin)
        if problem:
            errors.append(
                "%s: %s; %s can use GPIO %s" % (key, problem, _ROLE_WORDS[role], _ranges(usable_pins(chip, role)))
            )


def _relations(result, bad, errors):
    """Rules between keys, judged only between keys that are right alone."""

    def ok(*keys):
        for key in keys:
            if key in bad:
                return False
        return True

    for off, on in (("flame_off_mv", "flame_on_mv"), ("flame_open_off_mv", "flame_open_on_mv")):
        if ok(off, on) and result[off] >= result[on]:
            errors.append("%s: below %s (%s), not %s" % (off, on, _show(result[on]), _show(result[off])))
    if ok("sample_ms", "idle_sample_ms") and result["idle_sample_ms"] < result["sample_ms"]:
        errors.append(
            "idle_sample_ms: at least sample_ms (%d), not %d" % (result["sample_ms"], result["idle_sample_ms"])
        )
    # A guard must be able to give its whole warning before it cuts.
    for guard in ("left_on_min", "unattended_min"):
        if ok(guard, "warn_before_s") and result[guard] and result["warn_before_s"] >= result[guard] * 60:
            errors.append(
                "warn_before_s: shorter than %s (%s min = %s s) while that guard is on, not %s"
                % (guard, _show(result[guard]), _show(result[guard] * 60), _show(result["warn_before_s"]))
            )
    if ok("idle_sample_ms", "watchdog_ms") and result["idle_sample_ms"] * 2 > result["watchdog_ms"]:
        errors.append(
            "watchdog_ms: at least 2 x idle_sample_ms (%d), not %d"
            % (result["idle_sample_ms"] * 2, result["watchdog_ms"])
        )


def validate(candidate, result):
    """settings.validate() with `result` = settings.defaults(), which it
    fills in from the candidate."""
    errors = []
    if not isinstance(candidate, dict):
        return result, ["settings: a JSON object ({...}), not " + _show(candidate)]
    bad = []
    relays = None
    for key in candidate:
        value = candidate[key]
        if key not in result:
            errors.append("%s: unknown key (a misspelling? docs/settings.md lists every key)" % _name(key))
            continue
        if key == "burners":
            relays = _check_burners(value, errors)
            if relays is None:
                bad.append(key)
            result[key] = value
            continue
        expected = _expected(key, value)
        if expected is None:
            result[key] = value
        else:
            errors.append("%s: %s, not %s" % (key, expected, _show(value)))
            bad.append(key)
    _relations(result, bad, errors)
    # A burner list too broken to read still lets the other pins be judged.
    _check_pins(result, [] if "burners" in bad else relays, bad, errors)
    return result, errors
