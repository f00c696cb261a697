# Device settings: defaults, validation, and the JSON file on flash.
# validate() is pure and shared with the host (`hobguard settings check`),
# so a file is checked the same way before it is copied and at boot.
import json

from hobguard_fw.protocol import is_burner_id, is_number

SETTINGS_FILE = "hobguard_settings.json"
STATE_FILE = "hobguard_state.json"


def defaults():
    return {
        # Empty: derived from the chip's unique id ("hob-1a2b3c").
        "device_id": "",
        # One entry per burner (1..4): its relay pin and its ADS1115
        # differential pair (chip address, pair 0 = AIN0-AIN1, 1 = AIN2-AIN3).
        "burners": [
            {"id": "left", "relay_pin": 26, "adc_address": 72, "adc_pair": 0},
            {"id": "right", "relay_pin": 27, "adc_address": 72, "adc_pair": 1},
        ],
        # Pin level that closes the relay (thermocouple loop closed, burner
        # usable). The default wiring is normally open and energised to run,
        # so a dead controller leaves every loop open and the gas shut.
        "relay_active_high": True,
        "i2c_id": 0,
        "i2c_scl": 22,
        "i2c_sda": 21,
        "i2c_freq": 400000,
        "button_pin": 0,  # the BOOT button on most boards; -1 = none
        "led_pin": 2,  # -1 = none
        "buzzer_pin": -1,  # -1 = none
        "timer_max_min": 720,
        "warn_before_s": 60,
        "cut_pulse_s": 3,
        "left_on_min": 120,  # 0 = guard off
        "verify_s": 30,
        "button_timer_min": 10,
        "long_press_ms": 1500,
        # Flame thresholds with the loop closed (loaded voltage, ~10-12 mV
        # hot) and with the relay open (open-circuit EMF, ~25 mV hot).
        "flame_on_mv": 5.0,
        "flame_off_mv": 3.0,
        "flame_open_on_mv": 10.0,
        "flame_open_off_mv": 6.0,
        "flame_filter_ms": 2000,
        "tc_max_mv": 80.0,  # a reading beyond +-this is impossible: sensor fault
        "sample_ms": 1000,
        # While every burner is cold and nothing is pending, sample this
        # seldom: a lighting takes 3-15 s of holding the knob anyway.
        "idle_sample_ms": 4000,
        "heartbeat_s": 10,
        "watchdog_ms": 8000,
    }


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


def _check_burners(burners, errors):
    if not isinstance(burners, list) or not 1 <= len(burners) <= 4:
        errors.append("burners: a list of 1 to 4 burners")
        return
    seen_ids = []
    seen_pins = []
    seen_inputs = []
    for n, burner in enumerate(burners):
        where = "burners[%d]" % n
        if not isinstance(burner, dict):
            errors.append(where + ": an object")
            continue
        for key in burner:
            if key not in _BURNER_KEYS:
                errors.append("%s: unknown key %r" % (where, key))
        for key in _BURNER_KEYS:
            if key not in burner:
                errors.append("%s: missing %r" % (where, key))
        ident = burner.get("id")
        if not is_burner_id(ident):
            errors.append(where + ".id: 1-16 characters of a-z, 0-9, _")
        elif ident in seen_ids:
            errors.append(where + ".id: %r used twice" % ident)
        else:
            seen_ids.append(ident)
        pin = burner.get("relay_pin")
        if isinstance(pin, bool) or not isinstance(pin, int) or not 0 <= pin <= 48:
            errors.append(where + ".relay_pin: a GPIO number 0..48")
        elif pin in seen_pins:
            errors.append(where + ".relay_pin: %d used twice" % pin)
        else:
            seen_pins.append(pin)
        address = burner.get("adc_address")
        pair = burner.get("adc_pair")
        if address not in (72, 73, 74, 75) or isinstance(address, bool):
            errors.append(where + ".adc_address: 72..75 (0x48..0x4B)")
        if pair not in (0, 1) or isinstance(pair, bool):
            errors.append(where + ".adc_pair: 0 (AIN0-AIN1) or 1 (AIN2-AIN3)")
        elif (address, pair) in seen_inputs:
            errors.append(where + ": ADC input used twice")
        else:
            seen_inputs.append((address, pair))


def validate(candidate):
    """Return (settings, errors). settings is complete: every key the
    candidate lacks takes its default. errors lists what was wrong; a caller
    that gets errors must not use the candidate (fall back to defaults())."""
    result = defaults()
    errors = []
    if not isinstance(candidate, dict):
        return result, ["settings: a JSON object"]
    for key in candidate:
        if key not in result:
            errors.append("unknown key %r" % key)
            continue
        value = candidate[key]
        if key == "burners":
            _check_burners(value, errors)
            result[key] = value
            continue
        kind, low, high = _LIMITS[key]
        if kind == "bool":
            ok = isinstance(value, bool)
        elif kind == "str":
            ok = isinstance(value, str) and low <= len(value) <= high
        elif kind == "int":
            ok = not isinstance(value, bool) and isinstance(value, int) and low <= value <= high
        else:
            ok = is_number(value) and low <= value <= high
        if ok:
            result[key] = value
        else:
            errors.append("%s: %s in %s..%s" % (key, kind, low, high))
    if not errors:
        if result["flame_off_mv"] >= result["flame_on_mv"]:
            errors.append("flame_off_mv must be below flame_on_mv")
        if result["flame_open_off_mv"] >= result["flame_open_on_mv"]:
            errors.append("flame_open_off_mv must be below flame_open_on_mv")
        if result["idle_sample_ms"] < result["sample_ms"]:
            errors.append("idle_sample_ms must be at least sample_ms")
        if result["idle_sample_ms"] * 2 > result["watchdog_ms"]:
            errors.append("watchdog_ms must be at least 2 x idle_sample_ms")
    return result, errors


def load(path=SETTINGS_FILE):
    """Read the settings file. Never raises: a missing, unreadable or
    invalid file gives the defaults plus a list of what was wrong."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return defaults(), []  # no file: defaults, nothing wrong
    try:
        candidate = json.loads(text)
    except Exception:
        return defaults(), ["%s is not valid JSON" % path]
    settings, errors = validate(candidate)
    if errors:
        return defaults(), errors
    return settings, []


def load_locked(path=STATE_FILE):
    try:
        with open(path) as f:
            return json.loads(f.read()).get("locked") is True
    except Exception:
        return False


def save_locked(locked, path=STATE_FILE):
    try:
        with open(path, "w") as f:
            f.write(json.dumps({"locked": bool(locked)}))
        return True
    except OSError:
        return False
